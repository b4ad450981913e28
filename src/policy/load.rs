//! Loading and merging. Sources, later ones winning key by key: the built-in default
//! (`Policy::default()`), `/usr/share/flatcar-harden/policy.toml`, `/etc/flatcar-harden/policy.toml`,
//! then `/etc/flatcar-harden/policy.d/*.toml` in byte order, all under `--root`; `--policy FILE`
//! replaces the file sources. Every file is checked on its own first, so an error names the file,
//! line and column it comes from; only then are the files merged.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use serde::{Deserialize, Deserializer};

use super::strict::{Refusal, Refused, Strict};
use super::Policy;
use super::{diagnose, PolicyError, ADMIN_POLICY, DROPIN_DIR, MAX_POLICY_BYTES, VENDOR_POLICY};
use crate::host::fs::RootFs;
use crate::terminal;

/// Where a policy came from, for reports and errors.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub policy: Policy,
    /// "built-in default" followed by every file that was read, in merge order.
    pub sources: Vec<String>,
}

/// Loads and merges the policy. `explicit` (`--policy FILE`, a path on this machine) replaces the
/// file sources under the root.
pub fn load(fs: &RootFs, explicit: Option<&Path>) -> Result<Loaded, PolicyError> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    match explicit {
        Some(path) => files.push((path.display().to_string(), read_file(path)?)),
        None => {
            let names = fs.list_dir(Path::new(DROPIN_DIR))?;
            let candidates = [VENDOR_POLICY.to_owned(), ADMIN_POLICY.to_owned()]
                .into_iter()
                .chain(dropin_paths(names)?);
            for path in candidates {
                if let Some(bytes) = fs.read(Path::new(&path))? {
                    if bytes.len() as u64 > MAX_POLICY_BYTES {
                        return Err(PolicyError::TooLarge { path });
                    }
                    files.push((path, bytes));
                }
            }
        }
    }
    let mut merged = toml::Table::new();
    let mut sources = vec!["built-in default".to_owned()];
    for (path, bytes) in files {
        let table = parse_file(&path, &bytes)?;
        merge(&mut merged, table);
        sources.push(path);
    }
    // Every file passed on its own; their merge can only combine valid keys and values.
    let policy = strict_policy(toml::Value::Table(merged)).map_err(|(error, key, refusal)| {
        diagnose::invalid("merged policy", "", &error, &key, refusal)
    })?;
    Ok(Loaded { policy, sources })
}

/// `policy check FILE`: reads and checks one file on its own.
pub fn check_file(path: &Path) -> Result<(), PolicyError> {
    parse_file(&path.display().to_string(), &read_file(path)?).map(drop)
}

/// Checks one policy file on its own (`policy check FILE`, and every source before a merge).
pub fn parse_file(path: &str, bytes: &[u8]) -> Result<toml::Table, PolicyError> {
    let text =
        std::str::from_utf8(bytes).map_err(|e| diagnose::not_utf8(path, bytes, e.valid_up_to()))?;
    let invalid = |(error, key, refusal)| diagnose::invalid(path, text, &error, &key, refusal);
    strict_policy(toml::Deserializer::new(text)).map_err(invalid)?;
    let table = toml::Table::deserialize(toml::Deserializer::new(text))
        .map_err(|error| invalid((error, serde_path_to_error::Track::new().path(), None)))?;
    Ok(table)
}

type Failed<E> = (E, serde_path_to_error::Path, Option<Refusal>);

/// The policy read through the strict layer, with the key path of an error.
fn strict_policy<'de, D: Deserializer<'de>>(d: D) -> Result<Policy, Failed<D::Error>> {
    let refused = Refused::default();
    let mut track = serde_path_to_error::Track::new();
    let read = Policy::deserialize(Strict::new(
        serde_path_to_error::Deserializer::new(d, &mut track),
        &refused,
    ));
    read.map_err(|error| {
        // The refusal explains this error only if it is the one that ended the read.
        let refusal = refused
            .take()
            .filter(|refusal| error.to_string().contains(&refusal.to_string()));
        (error, track.path(), refusal)
    })
}

/// A policy file given on the command line: a regular file (or `/dev/null`, no policy), opened
/// without blocking (a FIFO must not hang the run) and read up to the size limit.
fn read_file(path: &Path) -> Result<Vec<u8>, PolicyError> {
    let shown = path.display().to_string();
    let io = |source| PolicyError::Read {
        path: shown.clone(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let null = meta.file_type().is_char_device() && meta.rdev() == nix::sys::stat::makedev(1, 3);
    if !meta.is_file() && !null {
        return Err(PolicyError::NotAFile { path: shown });
    }
    let mut bytes = Vec::new();
    file.take(MAX_POLICY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_POLICY_BYTES {
        return Err(PolicyError::TooLarge { path: shown });
    }
    Ok(bytes)
}

/// The drop-ins among the names in policy.d, in byte order: `*.toml`, not hidden. A drop-in whose
/// name is not UTF-8 is an error, never skipped.
fn dropin_paths(names: impl IntoIterator<Item = OsString>) -> Result<Vec<String>, PolicyError> {
    let mut names: Vec<OsString> = names.into_iter().collect();
    names.sort();
    let mut paths = Vec::new();
    for name in names {
        let bytes = name.as_bytes();
        if !bytes.ends_with(b".toml") || bytes.starts_with(b".") {
            continue;
        }
        match name.into_string() {
            Ok(name) => paths.push(format!("{DROPIN_DIR}/{name}")),
            Err(name) => {
                return Err(PolicyError::DropinName {
                    path: format!("{DROPIN_DIR}/{}", name.to_string_lossy()),
                })
            }
        }
    }
    Ok(paths)
}

/// Key by key: tables merge recursively, any other value (arrays included) replaces.
fn merge(into: &mut toml::Table, from: toml::Table) {
    for (key, value) in from {
        match (into.get_mut(&key), value) {
            (Some(toml::Value::Table(existing)), toml::Value::Table(table)) => {
                merge(existing, table)
            }
            (_, value) => {
                into.insert(key, value);
            }
        }
    }
}

/// The effective policy as TOML, for `policy show`.
pub fn to_toml(loaded: &Loaded) -> String {
    let mut out = String::from("# Effective flatcar-harden policy, merged from:\n");
    for source in &loaded.sources {
        // Escaped: a file name with a newline must not end the comment.
        out.push_str(&format!("#   {}\n", terminal::escape(source)));
    }
    out.push('\n');
    out.push_str(&effective_toml(&loaded.policy));
    out
}

/// The effective policy as TOML, without `policy show`'s header: what the metrics' policy hash
/// is taken of.
pub fn effective_toml(policy: &Policy) -> String {
    toml::to_string_pretty(policy).expect("the policy serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{ModuleName, SudoersMode, UsbStorageState};

    fn error(text: &str) -> String {
        parse_file("p.toml", text.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unknown_key_names_table_and_suggests() {
        let msg = error("[smt]\nmod = \"off\"\n");
        assert!(msg.contains("line 2, column 1"), "{msg}");
        assert!(msg.contains("unknown key `smt.mod`"), "{msg}");
        assert!(
            msg.contains("did you mean `state`?") || msg.contains("allowed: `state`"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_value_lists_allowed() {
        let msg = error("[selinux]\nstate = \"enforce\"\n");
        assert!(
            msg.contains("`enforce` is not a value of `selinux.state`"),
            "{msg}"
        );
        assert!(msg.contains("did you mean `enforcing`?"), "{msg}");
    }

    #[test]
    fn dotted_and_inline_keys_get_their_full_path() {
        let msg = error("smt.state = \"of\"\n");
        assert!(msg.contains("line 1, column 13"), "{msg}");
        assert!(msg.contains("`of` is not a value of `smt.state`, did you mean `off`? (allowed: `unmanaged`, `off`, `auto`)"), "{msg}");
        let msg = error("usb-storage = { modules = [\"uas\", \"no such\"] }\n");
        assert!(
            msg.contains("`usb-storage.modules[1]`: `no such` is not a kernel module name"),
            "{msg}"
        );
    }

    /// Every section and every enum of the schema, from the default's own shape: a table given
    /// as an array and a word given as a table are refused, whatever the key.
    #[test]
    fn tables_only_from_tables_and_words_only_from_strings() {
        let default = toml::Value::try_from(Policy::default()).unwrap();
        let mut cases = 0;
        for (section, keys) in default.as_table().unwrap() {
            let msg = error(&format!("{section} = [true]\n"));
            assert!(
                msg.contains(&format!("`{section}` must be a table, not an array")),
                "{msg}"
            );
            for (key, value) in keys.as_table().unwrap() {
                let Some(word) = value.as_str() else { continue };
                let msg = error(&format!("[{section}]\n{key} = {{ {word} = [] }}\n"));
                assert!(msg.contains("line 2"), "{msg}");
                let expected = format!("`{section}.{key}` takes a quoted string, not a table");
                let is_word = !word.starts_with('/') && !word.starts_with('0');
                assert_eq!(msg.contains(&expected), is_word, "{msg}");
                cases += 1;
            }
        }
        assert!(cases >= 10, "{cases}");
    }

    #[test]
    fn the_issue_shapes_are_refused_with_the_fix() {
        let msg = error("safety = [true]\n");
        assert!(
            msg.contains(
                "line 1, column 10: `safety` must be a table, not an array: write `[safety]`"
            ),
            "{msg}"
        );
        assert!(msg.contains("keys: `allow_remote_lockout`"), "{msg}");
        let msg = error("smt = [\"off\", \"/etc/passwd\"]\n");
        assert!(msg.contains("`smt` must be a table, not an array"), "{msg}");
        let msg = error("[smt]\nstate = { off = [] }\n");
        assert!(msg.contains("`smt.state` takes a quoted string, not a table: write it like `state = \"unmanaged\"`"), "{msg}");
        let msg = error("[[smt]]\nstate = \"off\"\n");
        assert!(msg.contains("`smt` must be a table, not an array"), "{msg}");
        let msg = error("[selinux.state]\nenforcing = true\n");
        assert!(
            msg.contains("`selinux.state` takes a quoted string, not a table"),
            "{msg}"
        );
    }

    #[test]
    fn lists_and_strings_are_checked_everywhere() {
        let msg = error("[usb-storage]\nmodules = []\n");
        assert!(
            msg.contains("line 2, column 11: `usb-storage.modules` is an empty list"),
            "{msg}"
        );
        let msg = error("[usb-storage]\nmodules = [\"uas\", \"usb_storage\", \"usb-storage\"]\n");
        assert!(msg.contains("`usb-storage` is listed twice"), "{msg}");
        let msg = error("[smt]\ngrub_cfg = \"/oem/grub.cfg\\u0000\"\n");
        assert!(
            msg.contains("`smt.grub_cfg` holds the control character \\x00"),
            "{msg}"
        );
        let msg = error("[smt]\ngrub_cfg = \"/etc/passwd\"\n");
        assert!(msg.contains("`smt.grub_cfg`: `/etc/passwd` is not the OEM partition's grub.cfg: use \"/oem/grub.cfg\""), "{msg}");
        let msg = error("\"\\u001b[2J\" = 1\n");
        assert!(msg.contains("\\x1b[2J") && !msg.contains('\u{1b}'), "{msg}");
    }

    #[test]
    fn the_grub_cfg_of_older_images_is_accepted() {
        let table = parse_file("p.toml", b"[smt]\ngrub_cfg = \"/usr/share/oem/grub.cfg\"\n");
        assert!(table.is_ok());
    }

    #[test]
    fn dropins_named_in_bytes_that_are_not_utf8_are_an_error() {
        use std::os::unix::ffi::OsStringExt;
        let names = ["20-b.toml", "10-a.toml", ".hidden.toml", "notes.conf"].map(OsString::from);
        assert_eq!(
            dropin_paths(names).unwrap(),
            [
                format!("{DROPIN_DIR}/10-a.toml"),
                format!("{DROPIN_DIR}/20-b.toml")
            ]
        );
        let bad = OsString::from_vec(b"50-caf\xe9.toml".to_vec());
        let message = dropin_paths([OsString::from("10-a.toml"), bad])
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("50-caf\u{fffd}.toml") && message.contains("not UTF-8"),
            "{message}"
        );
        let ignored = OsString::from_vec(b"caf\xe9.conf".to_vec());
        assert!(dropin_paths([ignored]).unwrap().is_empty());
    }

    #[test]
    fn merge_is_key_by_key() {
        let mut base: toml::Table =
            toml::from_str("[usb-storage]\nstate = \"unmanaged\"\nmodules = [\"a\"]\n").unwrap();
        merge(
            &mut base,
            toml::from_str("[usb-storage]\nmodules = [\"b\"]\n").unwrap(),
        );
        let policy = strict_policy(toml::Value::Table(base))
            .map_err(|e| e.0)
            .unwrap();
        assert_eq!(policy.usb_storage.state, UsbStorageState::Unmanaged);
        assert_eq!(policy.usb_storage.modules, vec![ModuleName("b".into())]);
    }

    #[test]
    fn sudoers_mode_accepts_string_and_octal() {
        let p: Policy = toml::from_str("[core-sudo]\nfile_mode = \"0400\"\n").unwrap();
        assert_eq!(p.core_sudo.file_mode, SudoersMode(0o400));
        let p: Policy = toml::from_str("[core-sudo]\nfile_mode = 0o440\n").unwrap();
        assert_eq!(p.core_sudo.file_mode, SudoersMode(0o440));
        assert!(error("[core-sudo]\nfile_mode = \"0666\"\n").contains("sudo ignores"));
        assert!(error("[core-sudo]\nfile_mode = \"rw\"\n").contains("not an octal file mode"));
        assert!(error("[core-sudo]\nfile_mode = [\"0440\"]\n").contains("`core-sudo.file_mode`"));
    }

    #[test]
    fn default_round_trips_through_toml() {
        let text = toml::to_string(&Policy::default()).unwrap();
        assert_eq!(
            parse_file("p.toml", text.as_bytes()).map(drop).ok(),
            Some(())
        );
        assert_eq!(toml::from_str::<Policy>(&text).unwrap(), Policy::default());
    }
}
