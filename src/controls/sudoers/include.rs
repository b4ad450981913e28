//! Which files sudo reads and in what order. `sudo.conf` names the main file; every `#include`,
//! `@include`, `#includedir` and `@includedir` is followed at the point of the directive, so a
//! rule after an `#includedir` comes after the drop-ins. An include directory contributes its
//! regular files whose names hold no `.` and do not end in `~`, sorted bytewise; names are bytes.
//!
//! The walk runs over a [`Source`]: [`gather`] reads the host once and records what it read in a
//! [`FileSet`]; [`load`] walks a `FileSet` (plus an overlay) again with no I/O at all.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::grammar::{self, Entry};
use super::lexer::{self, Body};
use crate::host::fs::FileKind;
use crate::host::{Host, HostError};

const SUDO_CONF: &str = "/etc/sudo.conf";
const DEFAULT_SUDOERS: &str = "/etc/sudoers";
/// sudo's own limit on nested includes.
const MAX_DEPTH: usize = 128;

/// What sudo would read, as found on the host: regular files by path and, per include directory,
/// the names of its regular files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSet {
    pub sudo_conf: Option<Vec<u8>>,
    pub files: BTreeMap<PathBuf, Vec<u8>>,
    pub dirs: BTreeMap<PathBuf, Vec<OsString>>,
}

/// One statement with the file and line it stands on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub file: PathBuf,
    pub line: usize,
    pub text: String,
    pub entry: Entry,
}

impl Located {
    pub fn location(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

/// The configuration in force: every statement of every file, in the order sudo reads them.
#[derive(Debug, Clone)]
pub struct Sudoers {
    pub main: PathBuf,
    /// Files read, in order.
    pub read: Vec<PathBuf>,
    pub entries: Vec<Located>,
}

impl Sudoers {
    pub fn reads(&self, path: &Path) -> bool {
        self.read.iter().any(|p| p == path)
    }
}

/// Where the walk gets files and directory listings from.
pub trait Source {
    /// A regular file's bytes; `None` when there is none at `path`.
    fn file(&mut self, path: &Path) -> Result<Option<Vec<u8>>, HostError>;
    /// Names of the regular files in `dir`, in any order.
    fn dir(&mut self, dir: &Path) -> Result<Vec<OsString>, HostError>;
}

/// A gathered file set with one file standing in for what is (or is not) on disk.
pub struct Overlaid<'a> {
    pub files: &'a FileSet,
    pub overlay: Option<(&'a Path, &'a [u8])>,
}

impl Source for Overlaid<'_> {
    fn file(&mut self, path: &Path) -> Result<Option<Vec<u8>>, HostError> {
        match self.overlay {
            Some((over, bytes)) if over == path => Ok(Some(bytes.to_vec())),
            _ => Ok(self.files.files.get(path).cloned()),
        }
    }

    fn dir(&mut self, dir: &Path) -> Result<Vec<OsString>, HostError> {
        let mut names = self.files.dirs.get(dir).cloned().unwrap_or_default();
        if let Some((over, _)) = self.overlay {
            if over.parent() == Some(dir) {
                names.extend(over.file_name().map(OsStr::to_os_string));
            }
        }
        Ok(names)
    }
}

/// The main sudoers file: `sudoers_file=` on sudo.conf's sudoers plugin line (Flatcar:
/// `/usr/share/baselayout/sudoers`), else `/etc/sudoers`.
pub fn main_file(sudo_conf: Option<&[u8]>) -> PathBuf {
    let conf = String::from_utf8_lossy(sudo_conf.unwrap_or_default());
    conf.lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .filter(|line| line.split_whitespace().next() == Some("Plugin"))
        .filter(|line| line.split_whitespace().any(|w| w.ends_with("sudoers.so")))
        .flat_map(str::split_whitespace)
        .find_map(|word| word.strip_prefix("sudoers_file="))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_SUDOERS))
}

/// sudo skips files in an include directory whose name contains a dot or ends in `~`.
pub fn read_by_sudo(name: &OsStr) -> bool {
    let bytes = name.as_bytes();
    !bytes.contains(&b'.') && !bytes.ends_with(b"~")
}

/// Reads the configuration from `source`, starting at `main`. `hostname` fills in `%h`.
pub fn load(
    main: &Path,
    source: &mut dyn Source,
    hostname: Option<&str>,
) -> Result<Sudoers, HostError> {
    let mut sudoers = Sudoers {
        main: main.to_path_buf(),
        read: Vec::new(),
        entries: Vec::new(),
    };
    include(&mut sudoers, source, main, hostname, 0)?;
    Ok(sudoers)
}

fn include(
    sudoers: &mut Sudoers,
    source: &mut dyn Source,
    path: &Path,
    hostname: Option<&str>,
    depth: usize,
) -> Result<(), HostError> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let Some(bytes) = source.file(path)? else {
        return Ok(());
    };
    sudoers.read.push(path.to_path_buf());
    let base = path.parent().unwrap_or(Path::new("/"));
    for statement in lexer::statements(&bytes) {
        match statement.body {
            Body::Include { dir, path: target } => {
                let target = resolve(base, &target, hostname);
                if dir {
                    let mut names: Vec<OsString> = source
                        .dir(&target)?
                        .into_iter()
                        .filter(|n| read_by_sudo(n))
                        .collect();
                    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
                    names.dedup();
                    for name in names {
                        include(sudoers, source, &target.join(name), hostname, depth + 1)?;
                    }
                } else {
                    include(sudoers, source, &target, hostname, depth + 1)?;
                }
            }
            Body::Tokens(tokens) => {
                for entry in grammar::parse(&tokens) {
                    sudoers.entries.push(Located {
                        file: path.to_path_buf(),
                        line: statement.line,
                        text: statement.text.clone(),
                        entry,
                    });
                }
            }
        }
    }
    Ok(())
}

/// An include path as sudo resolves it: `%h` is the short host name, `%%` a percent sign, and a
/// relative path is relative to the directory of the file that includes it.
fn resolve(base: &Path, target: &str, hostname: Option<&str>) -> PathBuf {
    let short = hostname.map(|h| h.split('.').next().unwrap_or(h));
    let mut expanded = String::new();
    let mut chars = target.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('%', Some('h')) if short.is_some() => {
                chars.next();
                expanded.push_str(short.unwrap_or_default());
            }
            ('%', Some('%')) => {
                chars.next();
                expanded.push('%');
            }
            _ => expanded.push(c),
        }
    }
    base.join(expanded)
}

/// Reads the host, recording every file and listing the walk asks for.
struct Recorder<'a> {
    host: &'a Host,
    seen: FileSet,
}

impl Source for Recorder<'_> {
    fn file(&mut self, path: &Path) -> Result<Option<Vec<u8>>, HostError> {
        // sudo reads only regular files; anything else (a FIFO, a device) is never opened.
        let regular = self
            .host
            .fs
            .stat(path)?
            .is_some_and(|m| m.kind == FileKind::Regular);
        let bytes = if regular {
            self.host.fs.read(path)?
        } else {
            None
        };
        if let Some(bytes) = &bytes {
            self.seen.files.insert(path.to_path_buf(), bytes.clone());
        }
        Ok(bytes)
    }

    fn dir(&mut self, dir: &Path) -> Result<Vec<OsString>, HostError> {
        let mut regular = Vec::new();
        for name in self.host.fs.list_dir(dir)? {
            let path = dir.join(&name);
            match self.host.fs.stat(&path)?.map(|m| m.kind) {
                Some(FileKind::Regular) => regular.push(name),
                // sudo passes over a FIFO, socket or device here; the agent refuses to run past
                // one (it could be a half-made file, and a FIFO would hang a reader): the file
                // layer's error names what it is.
                Some(FileKind::Other) => {
                    self.host.fs.read(&path)?;
                }
                // Subdirectories and dangling links: sudo skips them too.
                _ => {}
            }
        }
        self.seen.dirs.insert(dir.to_path_buf(), regular.clone());
        Ok(regular)
    }
}

/// Reads sudo.conf and every sudoers file sudo would read on the host, as it is now.
pub fn gather(host: &Host, hostname: Option<&str>) -> Result<FileSet, HostError> {
    let mut recorder = Recorder {
        host,
        seen: FileSet::default(),
    };
    let sudo_conf = recorder.file(Path::new(SUDO_CONF))?;
    // sudo.conf is not a sudoers file: keep it out of the set the walk reads.
    recorder.seen.files.clear();
    let main = main_file(sudo_conf.as_deref());
    load(&main, &mut recorder, hostname)?;
    recorder.seen.sudo_conf = sudo_conf;
    Ok(recorder.seen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    fn set(files: &[(&[u8], &[u8])], dirs: &[(&str, &[&[u8]])]) -> FileSet {
        FileSet {
            sudo_conf: None,
            files: files
                .iter()
                .map(|(p, b)| (PathBuf::from(OsString::from_vec(p.to_vec())), b.to_vec()))
                .collect(),
            dirs: dirs
                .iter()
                .map(|(d, names)| {
                    let names = names.iter().map(|n| OsString::from_vec(n.to_vec()));
                    (PathBuf::from(d), names.collect())
                })
                .collect(),
        }
    }

    fn order(files: &FileSet, overlay: Option<(&Path, &[u8])>) -> Vec<String> {
        let mut source = Overlaid { files, overlay };
        let sudoers = load(Path::new("/etc/sudoers"), &mut source, Some("vm.example")).unwrap();
        sudoers
            .entries
            .iter()
            .map(|e| format!("{}:{}", e.file.display(), e.line))
            .collect()
    }

    #[test]
    fn includes_are_read_where_they_stand_and_directories_in_byte_order() {
        let files = set(
            &[
                (
                    b"/etc/sudoers",
                    b"a ALL=ALL\n#includedir sudoers.d\nb ALL=ALL\n@include /etc/local.%h\n",
                ),
                (b"/etc/sudoers.d/B", b"c ALL=ALL\n"),
                (b"/etc/sudoers.d/a", b"d ALL=ALL\n"),
                (b"/etc/sudoers.d/\xff", b"e ALL=ALL\n"),
                (b"/etc/sudoers.d/x.bak", b"f ALL=ALL\n"),
                (b"/etc/local.vm", b"g ALL=ALL\n"),
            ],
            &[("/etc/sudoers.d", &[b"a", b"x.bak", b"\xff", b"B", b"y~"])],
        );
        assert_eq!(
            order(&files, None),
            [
                "/etc/sudoers:1",
                "/etc/sudoers.d/B:1",
                "/etc/sudoers.d/a:1",
                "/etc/sudoers.d/\u{fffd}:1",
                "/etc/sudoers:3",
                "/etc/local.vm:1"
            ]
        );
    }

    #[test]
    fn an_overlay_stands_in_for_a_file_not_yet_written() {
        let files = set(
            &[(b"/etc/sudoers", b"#includedir /etc/sudoers.d\n")],
            &[("/etc/sudoers.d", &[])],
        );
        let over = Path::new("/etc/sudoers.d/core-passwd");
        assert_eq!(
            order(&files, Some((over, b"core ALL=(ALL) ALL\n"))),
            ["/etc/sudoers.d/core-passwd:1"]
        );
    }

    #[test]
    fn sudo_conf_names_the_main_file() {
        let flatcar =
            b"Plugin sudoers_policy sudoers.so sudoers_file=/usr/share/baselayout/sudoers\n";
        assert_eq!(
            main_file(Some(flatcar)),
            Path::new("/usr/share/baselayout/sudoers")
        );
        assert_eq!(
            main_file(Some(b"#Plugin sudoers_policy sudoers.so sudoers_file=/x\n")),
            Path::new("/etc/sudoers")
        );
        assert_eq!(main_file(None), Path::new("/etc/sudoers"));
    }

    #[test]
    fn sudo_skips_dotted_and_backup_names() {
        assert!(read_by_sudo(OsStr::new("core-passwd")));
        assert!(!read_by_sudo(OsStr::new("core-passwd.bak")));
        assert!(!read_by_sudo(OsStr::new("core-passwd~")));
    }
}
