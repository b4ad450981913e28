//! The policy: what the operator wants of each control.
//!
//! Sources, later ones winning key by key: the built-in default (`Policy::default()`),
//! `/usr/share/flatcar-harden/policy.toml`, `/etc/flatcar-harden/policy.toml`, then
//! `/etc/flatcar-harden/policy.d/*.toml` in lexical order, all under `--root`. `--policy FILE`
//! replaces the file sources. Every file is checked on its own first, so an error names the file,
//! line and column it comes from; only then are the files merged.

use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::host::fs::RootFs;
use crate::host::HostError;

pub const VENDOR_POLICY: &str = "/usr/share/flatcar-harden/policy.toml";
pub const ADMIN_POLICY: &str = "/etc/flatcar-harden/policy.toml";
pub const DROPIN_DIR: &str = "/etc/flatcar-harden/policy.d";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    pub safety: Safety,
    #[serde(rename = "sshd-socket")]
    pub sshd_socket: SshdSocket,
    #[serde(rename = "docker-socket")]
    pub docker_socket: DockerSocket,
    #[serde(rename = "core-sudo")]
    pub core_sudo: CoreSudo,
    #[serde(rename = "core-login")]
    pub core_login: CoreLogin,
    #[serde(rename = "usb-storage")]
    pub usb_storage: UsbStorage,
    pub smt: Smt,
    pub selinux: Selinux,
    #[serde(rename = "etcd-locksmith-tls")]
    pub etcd_locksmith_tls: EtcdLocksmithTls,
}

/// Guard rails that apply across controls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Safety {
    /// Apply controls that can cut remote access (mask sshd, core nologin, core's sudo when the
    /// operator is core) even when the agent itself runs over SSH.
    pub allow_remote_lockout: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshdSocket {
    pub state: SshdSocketState,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SshdSocketState {
    /// Leave sshd.socket as it is.
    #[default]
    Unmanaged,
    /// `systemctl mask --now sshd.socket`: no SSH at all, console only.
    Masked,
    /// Undo a mask: sshd.socket unmasked and listening.
    Enabled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DockerSocket {
    pub state: DockerSocketState,
}

impl Default for DockerSocket {
    fn default() -> Self {
        DockerSocket {
            state: DockerSocketState::RootOnly,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DockerSocketState {
    Unmanaged,
    /// `SocketGroup=root` through the drop-in `10-restrict.conf`.
    RootOnly,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoreSudo {
    pub state: CoreSudoState,
    /// Mode of `/etc/sudoers.d/core-passwd`. visudo and audits expect 0440.
    pub file_mode: SudoersMode,
}

impl Default for CoreSudo {
    fn default() -> Self {
        CoreSudo {
            state: CoreSudoState::Unmanaged,
            file_mode: SudoersMode(0o440),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CoreSudoState {
    #[default]
    Unmanaged,
    /// `core ALL=(ALL) ALL`: with no password set, core can no longer use sudo.
    RequirePassword,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CoreLogin {
    pub state: CoreLoginState,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CoreLoginState {
    #[default]
    Unmanaged,
    /// core's login shell becomes `/sbin/nologin`.
    Nologin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsbStorage {
    pub state: UsbStorageState,
    /// Modules to keep from loading.
    pub modules: Vec<ModuleName>,
    pub method: DenyMethod,
    /// Where missing lines are added (the guide's path).
    pub file: ModprobeFile,
}

impl Default for UsbStorage {
    fn default() -> Self {
        UsbStorage {
            state: UsbStorageState::Denied,
            modules: vec![ModuleName("usb-storage".into()), ModuleName("uas".into())],
            method: DenyMethod::InstallAndBlacklist,
            file: ModprobeFile(PathBuf::from("/etc/modprobe.d/blacklist.conf")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UsbStorageState {
    Unmanaged,
    Denied,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DenyMethod {
    /// `install MOD /bin/false` and `blacklist MOD`: no load at all (CIS, SCAP).
    InstallAndBlacklist,
    /// `blacklist MOD` only, the guide's form: stops hotplug loading, not `modprobe MOD`.
    Blacklist,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Smt {
    pub state: SmtState,
    /// The OEM grub.cfg that carries kernel arguments on Flatcar.
    pub grub_cfg: AbsolutePath,
}

impl Default for Smt {
    fn default() -> Self {
        Smt {
            state: SmtState::Unmanaged,
            grub_cfg: AbsolutePath(PathBuf::from("/oem/grub.cfg")),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmtState {
    #[default]
    Unmanaged,
    /// Kernel argument `nosmt`: SMT always off.
    Off,
    /// `mitigations=auto,nosmt`: off only where a known vulnerability needs it.
    Auto,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Selinux {
    pub state: SelinuxState,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SelinuxState {
    #[default]
    Unmanaged,
    Enforcing,
    Permissive,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EtcdLocksmithTls {
    pub state: TlsAuditState,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsAuditState {
    Unmanaged,
    /// Read-only audit: never writes.
    #[default]
    Audit,
}

/// A kernel module name as modprobe accepts it (`usb-storage`, `uas`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ModuleName(pub String);

impl TryFrom<String> for ModuleName {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        let valid = !name.is_empty()
            && name.len() <= 55
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(ModuleName(name))
        } else {
            Err(format!(
                "`{name}` is not a kernel module name (letters, digits, `-` and `_` only)"
            ))
        }
    }
}

impl From<ModuleName> for String {
    fn from(name: ModuleName) -> String {
        name.0
    }
}

/// An absolute path inside the root, without `..`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AbsolutePath(pub PathBuf);

impl TryFrom<String> for AbsolutePath {
    type Error = String;
    fn try_from(path: String) -> Result<Self, String> {
        let p = PathBuf::from(&path);
        if !p.is_absolute() {
            return Err(format!("`{path}` must be an absolute path"));
        }
        if p.components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(format!("`{path}` must not contain `..`"));
        }
        if path.ends_with('/') {
            return Err(format!("`{path}` must name a file, not a directory"));
        }
        Ok(AbsolutePath(p))
    }
}

impl From<AbsolutePath> for String {
    fn from(path: AbsolutePath) -> String {
        path.0.display().to_string()
    }
}

/// A file modprobe reads: `/etc/modprobe.d/NAME.conf`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ModprobeFile(pub PathBuf);

impl TryFrom<String> for ModprobeFile {
    type Error = String;
    fn try_from(path: String) -> Result<Self, String> {
        let AbsolutePath(p) = AbsolutePath::try_from(path.clone())?;
        let in_dir = p.parent() == Some(Path::new("/etc/modprobe.d"));
        if !in_dir || !path.ends_with(".conf") {
            return Err(format!(
                "`{path}` is not read by modprobe: use /etc/modprobe.d/NAME.conf"
            ));
        }
        Ok(ModprobeFile(p))
    }
}

impl From<ModprobeFile> for String {
    fn from(path: ModprobeFile) -> String {
        path.0.display().to_string()
    }
}

/// File mode of a sudoers file, written as an octal string (`"0440"`) or a TOML octal (`0o440`).
/// sudo ignores sudoers files that anyone but root can write, so such modes are refused here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SudoersMode(pub u32);

impl SudoersMode {
    fn check(mode: u32) -> Result<SudoersMode, String> {
        if mode > 0o777 {
            return Err(format!(
                "file mode {mode:#o} has bits beyond 0777 (setuid, setgid or sticky)"
            ));
        }
        if mode & 0o022 != 0 {
            return Err(format!(
                "file mode {mode:04o} lets group or others write the file: sudo ignores such \
                 sudoers files; use \"0440\""
            ));
        }
        if mode & 0o400 == 0 {
            return Err(format!(
                "file mode {mode:04o} does not let root read the file; use \"0440\""
            ));
        }
        Ok(SudoersMode(mode))
    }
}

impl fmt::Display for SudoersMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl Serialize for SudoersMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for SudoersMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SudoersMode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an octal file mode such as \"0440\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SudoersMode, E> {
                let digits = v.strip_prefix("0o").unwrap_or(v);
                let mode = u32::from_str_radix(digits, 8).map_err(|_| {
                    E::custom(format!(
                        "`{v}` is not an octal file mode; write it like \"0440\""
                    ))
                })?;
                SudoersMode::check(mode).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<SudoersMode, E> {
                let mode =
                    u32::try_from(v).map_err(|_| E::custom(format!("{v} is not a file mode")))?;
                SudoersMode::check(mode).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Where a policy came from, for reports and errors.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub policy: Policy,
    /// "built-in default" followed by every file that was read, in merge order.
    pub sources: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Host(#[from] HostError),
    #[error("policy {path}, line {line}, column {column}: {message}{snippet}")]
    Invalid {
        path: String,
        line: usize,
        column: usize,
        message: String,
        snippet: String,
    },
}

/// Loads and merges the policy. `explicit` (`--policy FILE`, a path on this machine) replaces the
/// file sources under the root.
pub fn load(fs: &RootFs, explicit: Option<&Path>) -> Result<Loaded, PolicyError> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    match explicit {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|source| PolicyError::Read {
                path: path.display().to_string(),
                source,
            })?;
            files.push((path.display().to_string(), bytes));
        }
        None => {
            let dropins = fs
                .list_dir(Path::new(DROPIN_DIR))?
                .into_iter()
                .filter(|name| {
                    name.as_bytes().ends_with(b".toml") && !name.as_bytes().starts_with(b".")
                })
                .map(|name| match name.to_str() {
                    Some(name) => Ok(format!("{DROPIN_DIR}/{name}")),
                    // The loader's own rule would read it: skipping it would ignore a policy.
                    None => Err(HostError::Invalid {
                        path: format!("{DROPIN_DIR}/{}", name.to_string_lossy()),
                        reason: "the file name is not UTF-8; rename the drop-in".into(),
                    }),
                })
                .collect::<Result<Vec<_>, _>>()?;
            let candidates = [VENDOR_POLICY.to_owned(), ADMIN_POLICY.to_owned()]
                .into_iter()
                .chain(dropins);
            for path in candidates {
                if let Some(bytes) = fs.read(Path::new(&path))? {
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
    let policy =
        Policy::deserialize(toml::Value::Table(merged)).map_err(|e| PolicyError::Invalid {
            path: "merged policy".into(),
            line: 0,
            column: 0,
            message: e.to_string(),
            snippet: String::new(),
        })?;
    Ok(Loaded { policy, sources })
}

/// Checks one policy file on its own (`policy check FILE`, and every source before a merge).
pub fn parse_file(path: &str, bytes: &[u8]) -> Result<toml::Table, PolicyError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = line_column(bytes, e.valid_up_to());
        PolicyError::Invalid {
            path: path.to_owned(),
            line,
            column,
            message: "the file is not UTF-8 text (TOML must be UTF-8)".into(),
            snippet: String::new(),
        }
    })?;
    let invalid = |e: toml::de::Error| {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        let (line, column) = line_column(text.as_bytes(), offset);
        PolicyError::Invalid {
            path: path.to_owned(),
            line,
            column,
            message: explain(text, offset, &e.message().trim().replace('\n', ": ")),
            snippet: snippet(text, line, column),
        }
    };
    let table: toml::Table = toml::from_str(text).map_err(invalid)?;
    let _: Policy = toml::from_str(text).map_err(invalid)?;
    Ok(table)
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

fn line_column(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

fn snippet(text: &str, line: usize, column: usize) -> String {
    match text.lines().nth(line.saturating_sub(1)) {
        Some(source) => format!(
            "\n  {line:>4} | {source}\n       | {}^",
            " ".repeat(column.saturating_sub(1))
        ),
        None => String::new(),
    }
}

/// Turns serde's message into one an operator can act on: the full key (`smt.mode`), a guess at
/// what was meant, and what is allowed.
fn explain(text: &str, offset: usize, message: &str) -> String {
    let message = message.trim();
    let key = key_at(text, offset);
    if let Some((unknown, allowed)) = parse_expected(message, "unknown field `") {
        let full = qualify(&key.table, &unknown);
        return format!(
            "unknown key `{full}`{}{}",
            did_you_mean(&unknown, &allowed),
            allowed_list(&allowed)
        );
    }
    if let Some((unknown, allowed)) = parse_expected(message, "unknown variant `") {
        let full = qualify(&key.table, &key.name);
        return format!(
            "`{unknown}` is not a value of `{full}`{}{}",
            did_you_mean(&unknown, &allowed),
            allowed_list(&allowed)
        );
    }
    if key.name.is_empty() {
        message.to_owned()
    } else {
        format!("`{}`: {message}", qualify(&key.table, &key.name))
    }
}

struct KeyAt {
    table: String,
    name: String,
}

/// The table header in force at `offset` and the key on that line (a light scan; it covers the
/// `[table]` / `key = value` form policies are written in).
fn key_at(text: &str, offset: usize) -> KeyAt {
    let before = &text[..offset.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let line = &text[line_start..line_end];
    let name = match line.split_once('=') {
        Some((key, _)) if !line.trim_start().starts_with('[') => {
            key.trim().trim_matches('"').to_owned()
        }
        _ => String::new(),
    };
    let table = before[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && !l.starts_with("[["))
        .map(|l| {
            l.trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"')
                .to_owned()
        })
        .unwrap_or_default();
    KeyAt { table, name }
}

fn qualify(table: &str, key: &str) -> String {
    match (table.is_empty(), key.is_empty()) {
        (true, _) => key.to_owned(),
        (false, true) => table.to_owned(),
        (false, false) => format!("{table}.{key}"),
    }
}

/// Splits "unknown field `x`, expected one of `a`, `b`" into ("x", ["a", "b"]).
fn parse_expected(message: &str, prefix: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix(prefix)?;
    let (unknown, rest) = rest.split_once('`')?;
    let allowed = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some((unknown.to_owned(), allowed))
}

pub fn did_you_mean(word: &str, candidates: &[String]) -> String {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!(", did you mean `{c}`?"))
        .unwrap_or_default()
}

fn allowed_list(allowed: &[String]) -> String {
    if allowed.is_empty() {
        " (this table takes no keys)".into()
    } else {
        let list: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
        format!(" (allowed: {})", list.join(", "))
    }
}

/// The effective policy as TOML, for `policy show`.
pub fn to_toml(loaded: &Loaded) -> String {
    let mut out = String::from("# Effective flatcar-harden policy, merged from:\n");
    for source in &loaded.sources {
        out.push_str(&format!("#   {source}\n"));
    }
    out.push('\n');
    out.push_str(&toml::to_string_pretty(&loaded.policy).expect("the policy serializes"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn merge_is_key_by_key() {
        let mut base: toml::Table =
            toml::from_str("[usb-storage]\nstate = \"unmanaged\"\nmodules = [\"a\"]\n").unwrap();
        merge(
            &mut base,
            toml::from_str("[usb-storage]\nmodules = [\"b\"]\n").unwrap(),
        );
        let policy = Policy::deserialize(toml::Value::Table(base)).unwrap();
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
    }

    #[test]
    fn default_round_trips_through_toml() {
        let text = toml::to_string(&Policy::default()).unwrap();
        assert_eq!(toml::from_str::<Policy>(&text).unwrap(), Policy::default());
    }
}
