//! The values a policy key may hold, each checked as it is read: module names, the files the
//! agent may write (only where that key can sensibly point), sudoers file modes.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::terminal;

/// Where Flatcar's OEM partition carries grub.cfg: `/oem`, and `/usr/share/oem` on older images.
/// Nothing else may be named by `smt.grub_cfg` (or the other kernel-argument controls'
/// `grub_cfg`): the agent edits GRUB lines in that file.
pub const GRUB_CFG_PATHS: [&str; 2] = ["/oem/grub.cfg", "/usr/share/oem/grub.cfg"];

/// The only directory modprobe reads that belongs to the administrator.
pub const MODPROBE_DIR: &str = "/etc/modprobe.d";

/// A value as an error shows it: escaped, and cut when it is long.
pub(super) fn shown(value: &str) -> String {
    terminal::cut(&terminal::escape(value), 80).into_owned()
}

/// A kernel module name as modprobe accepts it (`usb-storage`, `uas`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ModuleName(pub String);

impl ModuleName {
    /// The name as the kernel knows it: modprobe treats `-` and `_` alike.
    fn canonical(&self) -> String {
        self.0.replace('-', "_")
    }
}

impl TryFrom<String> for ModuleName {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        // MODULE_NAME_LEN is 64 with the NUL, and modprobe's own limit is lower still.
        let valid = !name.is_empty()
            && name.len() <= 55
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(ModuleName(name))
        } else {
            Err(format!(
                "`{}` is not a kernel module name (letters, digits, `-` and `_` only)",
                shown(&name)
            ))
        }
    }
}

impl From<ModuleName> for String {
    fn from(name: ModuleName) -> String {
        name.0
    }
}

/// `usb-storage.modules`: every name once (`usb-storage` and `usb_storage` are one module).
/// Emptiness is refused for every list alike, in strict.rs.
pub fn module_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ModuleName>, D::Error> {
    let modules = Vec::<ModuleName>::deserialize(d)?;
    for (i, module) in modules.iter().enumerate() {
        if let Some(first) = modules[..i]
            .iter()
            .find(|m| m.canonical() == module.canonical())
        {
            return Err(D::Error::custom(format!(
                "`{}` is listed twice (as `{}` too; modprobe treats `-` and `_` alike): \
                 list each module once",
                module.0, first.0
            )));
        }
    }
    Ok(modules)
}

/// An absolute, normalized path inside the root: no `..`, `.` or empty components.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AbsolutePath(pub PathBuf);

impl TryFrom<String> for AbsolutePath {
    type Error = String;
    fn try_from(path: String) -> Result<Self, String> {
        if !path.starts_with('/') {
            return Err(format!("`{}` must be an absolute path", shown(&path)));
        }
        if path.ends_with('/') {
            return Err(format!(
                "`{}` must name a file, not a directory",
                shown(&path)
            ));
        }
        // By hand: `Path::components` would quietly drop `.` and repeated slashes.
        let plain = path[1..]
            .split('/')
            .all(|part| !matches!(part, "" | "." | ".."));
        if !plain {
            return Err(format!(
                "`{}` must be written plainly: no `..`, `.` or `//`",
                shown(&path)
            ));
        }
        Ok(AbsolutePath(PathBuf::from(path)))
    }
}

impl From<AbsolutePath> for String {
    fn from(path: AbsolutePath) -> String {
        path.0.display().to_string()
    }
}

/// `smt.grub_cfg`, `kernel-lockdown.grub_cfg`, `console-autologin.grub_cfg`: the OEM
/// partition's grub.cfg, under one of its two mount points.
pub fn oem_grub_cfg<'de, D: Deserializer<'de>>(d: D) -> Result<AbsolutePath, D::Error> {
    let path = AbsolutePath::deserialize(d)?;
    if GRUB_CFG_PATHS
        .iter()
        .any(|allowed| path.0 == Path::new(allowed))
    {
        return Ok(path);
    }
    Err(D::Error::custom(format!(
        "`{}` is not the OEM partition's grub.cfg: use \"{}\" (or \"{}\" on images that mount \
         the OEM partition there)",
        shown(&path.0.to_string_lossy()),
        GRUB_CFG_PATHS[0],
        GRUB_CFG_PATHS[1]
    )))
}

/// A file modprobe reads: `/etc/modprobe.d/NAME.conf`, NAME a plain file name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ModprobeFile(pub PathBuf);

impl TryFrom<String> for ModprobeFile {
    type Error = String;
    fn try_from(path: String) -> Result<Self, String> {
        let fix = "use /etc/modprobe.d/NAME.conf, NAME a plain file name";
        AbsolutePath::try_from(path.clone())?;
        let Some(name) = path
            .strip_prefix(MODPROBE_DIR)
            .and_then(|rest| rest.strip_prefix('/'))
        else {
            return Err(format!(
                "`{}` is not in /etc/modprobe.d, so modprobe does not read it: {fix}",
                shown(&path)
            ));
        };
        let stem = name.strip_suffix(".conf").unwrap_or("");
        let problem = if stem.is_empty() {
            Some("modprobe reads only files whose names end in `.conf`")
        } else if name.contains('/') {
            Some("it is in a subdirectory, which modprobe does not read")
        } else if name.starts_with('.') {
            Some("a hidden file name")
        } else if name.len() > 255 {
            Some("the file name is longer than 255 bytes")
        } else if name.chars().any(char::is_control) {
            Some("the file name holds a control character")
        } else {
            None
        };
        match problem {
            Some(problem) => Err(format!("`{}`: {problem}; {fix}", shown(&path))),
            None => Ok(ModprobeFile(PathBuf::from(path))),
        }
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
                        "`{}` is not an octal file mode; write it like \"0440\"",
                        shown(v)
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

/// How many runs the journal keeps: 1 to 1000, 20 by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct JournalKeep(pub u32);

impl Default for JournalKeep {
    fn default() -> Self {
        JournalKeep(20)
    }
}

impl<'de> Deserialize<'de> for JournalKeep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        bounded_u32(d, 1..=1000, |keep| {
            format!("{keep} runs: keep between 1 and 1000 (revert needs the run it undoes)")
        })
        .map(JournalKeep)
    }
}

/// A TOML integer within `range`; anything else is the error `refused` words for the value read.
pub(super) fn bounded_u32<'de, D: Deserializer<'de>>(
    d: D,
    range: std::ops::RangeInclusive<u32>,
    refused: impl FnOnce(i64) -> String,
) -> Result<u32, D::Error> {
    let value = i64::deserialize(d)?;
    u32::try_from(value)
        .ok()
        .filter(|v| range.contains(v))
        .ok_or_else(|| D::Error::custom(refused(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modprobe_files_are_plain_names_in_etc_modprobe_d() {
        let ok = |p: &str| ModprobeFile::try_from(p.to_owned()).is_ok();
        assert!(ok("/etc/modprobe.d/blacklist.conf"));
        assert!(ok("/etc/modprobe.d/usb storage.conf"));
        for bad in [
            "/etc/modprobe.d/.conf",
            "/etc/modprobe.d/.hidden.conf",
            "/etc/modprobe.d/sub/x.conf",
            "/etc/modprobe.d/blacklist",
            "/etc/modprobe.d/a\nb.conf",
            "/etc/sudoers.d/x.conf",
            "/etc/modprobe.d.conf",
            "etc/modprobe.d/x.conf",
            "/etc/modprobe.d/../sudoers.d/x.conf",
            "/run/modprobe.d/x.conf",
        ] {
            assert!(!ok(bad), "{bad:?} was accepted");
        }
    }

    #[test]
    fn absolute_paths_are_plain() {
        let ok = |p: &str| AbsolutePath::try_from(p.to_owned()).is_ok();
        assert!(ok("/oem/grub.cfg"));
        for bad in [
            "oem/grub.cfg",
            "/oem/../etc/passwd",
            "/oem/./grub.cfg",
            "//oem/grub.cfg",
            "/oem/",
        ] {
            assert!(!ok(bad), "{bad:?} was accepted");
        }
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let err = ModuleName::try_from("x".repeat(1_000_000)).unwrap_err();
        assert!(err.len() < 300, "{} bytes", err.len());
    }
}
