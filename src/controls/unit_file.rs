//! systemd unit files read as systemd reads them, for an image (no systemd to ask) and to name the
//! file that wins on a live host: the first unit directory that has the unit, then its drop-ins
//! (`NAME.d/*.conf` in every unit directory, a name in an earlier directory hiding the same name
//! in a later one, all applied in name order), settings per section with continuation lines.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::units::UNIT_DIRS;
use crate::host::fs::FileKind;
use crate::host::{Host, HostError};

/// A unit's files in the order systemd applies them: the unit file, then its drop-ins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFiles {
    pub name: String,
    /// The unit file and its text; `None` when no unit directory under the root has it (on
    /// Flatcar, docker.socket comes from a system extension that an image tree does not show).
    pub unit: Option<(PathBuf, String)>,
    /// `(path, text)` of each drop-in, in the order systemd applies them.
    pub dropins: Vec<(PathBuf, String)>,
}

/// One `Key=value` and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub file: PathBuf,
    pub line: usize,
    pub value: String,
}

impl Assignment {
    pub fn at(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

impl UnitFiles {
    /// The unit's files under the host's root. `None` if there is no such unit or it is masked
    /// (a link to `/dev/null` — a device, or nothing at all inside an image — or an empty file).
    pub fn load(host: &Host, name: &str) -> Result<Option<UnitFiles>, HostError> {
        let files = UnitFiles::read(host, name)?;
        let present = files
            .unit
            .as_ref()
            .is_some_and(|(_, text)| !text.trim().is_empty());
        Ok(present.then_some(files))
    }

    /// The unit's files under the host's root, whatever is there: drop-ins count even where the
    /// unit file itself is not under the root. A mask reads as a unit file with no text.
    pub fn read(host: &Host, name: &str) -> Result<UnitFiles, HostError> {
        let mut unit = None;
        for dir in UNIT_DIRS {
            let path = Path::new(dir).join(name);
            if host.fs.lstat(&path)?.is_some() {
                let regular = host
                    .fs
                    .stat(&path)?
                    .is_some_and(|m| m.kind == FileKind::Regular);
                let text = match regular {
                    true => lossy(host.fs.read(&path)?),
                    false => String::new(),
                };
                unit = Some((path, text));
                break;
            }
        }
        let mut by_name: BTreeMap<OsString, PathBuf> = BTreeMap::new();
        for dir in UNIT_DIRS {
            let dropin_dir = Path::new(dir).join(format!("{name}.d"));
            for entry in host.fs.list_dir(&dropin_dir)? {
                if Path::new(&entry).extension().is_some_and(|e| e == "conf") {
                    // The first directory in UNIT_DIRS that has a name wins.
                    by_name
                        .entry(entry.clone())
                        .or_insert_with(|| dropin_dir.join(entry));
                }
            }
        }
        let mut dropins = Vec::new();
        for path in by_name.into_values() {
            if let Some(bytes) = host.fs.read(&path)? {
                dropins.push((path, lossy(Some(bytes))));
            }
        }
        Ok(UnitFiles {
            name: name.to_owned(),
            unit,
            dropins,
        })
    }

    /// Every file in the order systemd applies it.
    pub fn sources(&self) -> impl Iterator<Item = &(PathBuf, String)> {
        self.unit.iter().chain(&self.dropins)
    }

    /// The same unit with the drop-in at `path` holding `text`, in its place in name order:
    /// "what would systemd read once this is written". `path` is taken to be in the unit
    /// directory of highest priority (`/etc`), so it hides a drop-in of the same name elsewhere.
    pub fn with_dropin(&self, path: &Path, text: &str) -> UnitFiles {
        let mut dropins: Vec<(PathBuf, String)> = self
            .dropins
            .iter()
            .filter(|(p, _)| p.file_name() != path.file_name())
            .cloned()
            .collect();
        dropins.push((path.to_path_buf(), text.to_owned()));
        dropins.sort_by(|a, b| a.0.file_name().cmp(&b.0.file_name()));
        UnitFiles {
            name: self.name.clone(),
            unit: self.unit.clone(),
            dropins,
        }
    }

    /// Every assignment of `key` in `section` (`"Socket"`, `"Service"`), in the order systemd
    /// applies them; an empty value resets what came before (it is returned too).
    pub fn assignments(&self, section: &str, key: &str) -> Vec<Assignment> {
        self.sources()
            .flat_map(|(file, text)| {
                settings(text, section)
                    .into_iter()
                    .filter(|(_, k, _)| k == key)
                    .map(|(line, _, value)| Assignment {
                        file: file.clone(),
                        line,
                        value,
                    })
            })
            .collect()
    }

    /// The assignment of a single-valued `key` that is in force: the last one.
    pub fn last(&self, section: &str, key: &str) -> Option<Assignment> {
        self.assignments(section, key).pop()
    }
}

fn lossy(bytes: Option<Vec<u8>>) -> String {
    String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned()
}

/// Settings of one `[section]` of a unit file: line (where the setting starts), key, value.
/// Comments (`#`, `;`) are skipped and a trailing backslash continues a line, as systemd reads them.
pub fn settings(text: &str, section: &str) -> Vec<(usize, String, String)> {
    let wanted = format!("[{section}]");
    let mut settings = Vec::new();
    let mut current = String::new();
    let mut continued: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let (start, mut line) = match continued.take() {
            Some((start, so_far)) => (start, format!("{so_far} {}", raw.trim())),
            None => {
                let line = raw.trim();
                if line.starts_with('#') || line.starts_with(';') {
                    continue;
                }
                (index + 1, line.to_owned())
            }
        };
        if line.ends_with('\\') {
            line.pop();
            continued = Some((start, line));
            continue;
        }
        if line.starts_with('[') {
            current = line;
        } else if current == wanted {
            if let Some((key, value)) = line.split_once('=') {
                settings.push((start, key.trim().to_owned(), value.trim().to_owned()));
            }
        }
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_of_one_section_with_continuations_and_comments() {
        let found = settings(
            "[Unit]\nEnvironment=NOT=service\n[Service]\n# Environment=A=commented\n\
             Environment=A=1 \\\n  B=2\nEnvironmentFile=-/etc/x.env\n",
            "Service",
        );
        assert_eq!(
            found,
            [
                (5, "Environment".to_owned(), "A=1  B=2".to_owned()),
                (7, "EnvironmentFile".to_owned(), "-/etc/x.env".to_owned()),
            ]
        );
    }

    fn docker_socket() -> UnitFiles {
        UnitFiles {
            name: "docker.socket".into(),
            unit: Some((
                "/usr/lib/systemd/system/docker.socket".into(),
                "[Socket]\nListenStream=/run/docker.sock\nSocketGroup=docker\n".into(),
            )),
            dropins: vec![(
                "/usr/lib/systemd/system/docker.socket.d/20-mine.conf".into(),
                "[Socket]\nSocketGroup=docker\n".into(),
            )],
        }
    }

    #[test]
    fn a_dropin_goes_in_name_order_and_the_last_assignment_wins() {
        let ours = Path::new("/etc/systemd/system/docker.socket.d/10-restrict.conf");
        let after = docker_socket().with_dropin(ours, "[Socket]\nSocketGroup=root\n");
        let winner = after.last("Socket", "SocketGroup").unwrap();
        assert_eq!(
            winner.at(),
            "/usr/lib/systemd/system/docker.socket.d/20-mine.conf:2"
        );
        assert_eq!(winner.value, "docker");
        // Named after the other one, ours wins.
        let ours = Path::new("/etc/systemd/system/docker.socket.d/90-restrict.conf");
        let after = docker_socket().with_dropin(ours, "[Socket]\nSocketGroup=root\n");
        assert_eq!(after.last("Socket", "SocketGroup").unwrap().value, "root");
    }

    #[test]
    fn a_dropin_in_etc_hides_the_same_name_in_usr_lib() {
        let ours = Path::new("/etc/systemd/system/docker.socket.d/20-mine.conf");
        let after = docker_socket().with_dropin(ours, "[Socket]\nSocketGroup=root\n");
        assert_eq!(after.dropins.len(), 1, "{after:?}");
        assert_eq!(after.last("Socket", "SocketGroup").unwrap().value, "root");
    }
}
