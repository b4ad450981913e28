//! [`FileWrite`]: one file brought to a wanted content, mode and owner — planned from a
//! [`FileState`] observed beforehand (pure), applied atomically with a "changed since observed"
//! check, sudoers candidates validated with visudo and rolled back if the whole set breaks, sshd
//! drop-ins validated with `sshd -t` before the rename.

use std::path::{Path, PathBuf};

use super::ControlError;
use crate::host::fs::{FileKind, FileSpec, Metadata, Owner};
use crate::host::{Host, HostError};
use crate::report::Change;

/// A file as observe found it: what is at the path (not following a final link), the content of
/// a regular file, and for a link the content it leads to (only shown in diffs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileState {
    pub path: PathBuf,
    pub meta: Option<Metadata>,
    pub content: Option<Vec<u8>>,
    pub linked: Option<Vec<u8>>,
}

impl FileState {
    /// What is at `path`. Anything but a regular file, a link or nothing (a FIFO, a device, a
    /// directory) is an error naming it: the agent never replaces such a thing with a file.
    pub fn observe(host: &Host, path: &Path) -> Result<FileState, HostError> {
        let (meta, content) = current(host, path)?;
        if meta.is_some_and(|m| !matches!(m.kind, FileKind::Regular | FileKind::Symlink)) {
            // The file layer's refusal names what it is ("is a FIFO, not a regular file").
            host.fs.read(path)?;
            return Err(HostError::Invalid {
                path: path.display().to_string(),
                reason: "is not a regular file".into(),
            });
        }
        // A dangling link reads as absent: it just shows no old side.
        let linked = match meta {
            Some(meta) if meta.kind == FileKind::Symlink => host.fs.read(path)?,
            _ => None,
        };
        Ok(FileState {
            path: path.to_path_buf(),
            meta,
            content,
            linked,
        })
    }

    /// The content as text, for controls that parse it (bytes that are not UTF-8 are replaced;
    /// a control that edits the file works on [`FileState::content`] itself).
    pub fn text(&self) -> Option<std::borrow::Cow<'_, str>> {
        self.content.as_deref().map(String::from_utf8_lossy)
    }

    /// Mode and owner of the regular file there, if any.
    pub fn mode_owner(&self) -> Option<(u32, Owner)> {
        self.meta.filter(|m| m.kind == FileKind::Regular).map(|m| {
            (
                m.mode,
                Owner {
                    uid: m.uid,
                    gid: m.gid,
                },
            )
        })
    }
}

/// Extra validation a file needs before it replaces the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    None,
    /// `visudo -c -f` on the candidate, then `visudo -c` on the whole configuration.
    Sudoers,
    /// `sshd -t` on the whole configuration with the candidate read first (live hosts only: an
    /// image's sshd is not ours to run).
    Sshd,
}

/// A file to (re)write, with what was there when the plan was made.
#[derive(Debug, Clone)]
pub struct FileWrite {
    pub path: PathBuf,
    pub spec: FileSpec,
    pub before: Option<Vec<u8>>,
    pub before_meta: Option<Metadata>,
    pub validation: Validation,
    /// For a symlink at `path` (which the write replaces): its target's content, so the diff
    /// shows what the new file changes rather than a file from nothing.
    pub linked: Option<Vec<u8>>,
}

impl FileWrite {
    /// The write that brings the observed file to `spec`, or `None` when it already has that
    /// content, mode and owner and is a regular file. Pure: compares, reads nothing.
    pub fn plan(found: &FileState, spec: FileSpec, validation: Validation) -> Option<FileWrite> {
        let in_place = found.meta.is_some_and(|m| {
            m.kind == FileKind::Regular
                && m.mode == spec.mode
                && (m.uid, m.gid) == (spec.owner.uid, spec.owner.gid)
        }) && found.content.as_deref() == Some(&spec.content[..]);
        if in_place {
            return None;
        }
        Some(FileWrite {
            path: found.path.clone(),
            spec,
            before: found.content.clone(),
            before_meta: found.meta,
            validation,
            linked: found.linked.clone(),
        })
    }

    pub(super) fn apply(&self, host: &Host) -> Result<(), ControlError> {
        // Someone may have edited the file since it was read; never overwrite an edit unseen.
        let (_, now) = current(host, &self.path)?;
        if now != self.before {
            return Err(ControlError::Failed(format!(
                "{} changed while this run was planning; nothing written, run again",
                self.path.display()
            )));
        }
        let check_candidate = |candidate: &Path| match self.validation {
            Validation::Sudoers => host.visudo_check_file(candidate).map(drop),
            Validation::Sshd => host.sshd_check_candidate(candidate),
            Validation::None => Ok(()),
        };
        host.fs
            .write_atomic(&self.path, &self.spec, &check_candidate)?;
        if self.validation == Validation::Sudoers {
            if let Err(broken) = host.visudo_check_all() {
                self.roll_back(host)?;
                return Err(ControlError::Failed(format!(
                    "{broken}; {} was put back as it was",
                    self.path.display()
                )));
            }
        }
        Ok(())
    }

    fn roll_back(&self, host: &Host) -> Result<(), HostError> {
        match (&self.before, self.before_meta) {
            (Some(content), Some(meta)) => host.fs.write_atomic(
                &self.path,
                &FileSpec {
                    content: content.clone(),
                    mode: meta.mode,
                    owner: Owner {
                        uid: meta.uid,
                        gid: meta.gid,
                    },
                    parent_mode: self.spec.parent_mode,
                },
                &|_| Ok(()),
            ),
            _ => host.fs.remove(&self.path),
        }
    }

    pub(super) fn change(&self) -> Change {
        let mut detail = Vec::new();
        match self.before_meta {
            None => detail.push(format!(
                "create, mode {:04o}, owner {}:{}",
                self.spec.mode, self.spec.owner.uid, self.spec.owner.gid
            )),
            // A link's own mode and owner mean nothing; say what the new file gets.
            Some(meta) if meta.kind == FileKind::Symlink => detail.push(format!(
                "replace symlink with a regular file, mode {:04o}, owner {}:{}",
                self.spec.mode, self.spec.owner.uid, self.spec.owner.gid
            )),
            Some(meta) => {
                if meta.mode != self.spec.mode {
                    detail.push(format!("mode {:04o} -> {:04o}", meta.mode, self.spec.mode));
                }
                if (meta.uid, meta.gid) != (self.spec.owner.uid, self.spec.owner.gid) {
                    detail.push(format!(
                        "owner {}:{} -> {}:{}",
                        meta.uid, meta.gid, self.spec.owner.uid, self.spec.owner.gid
                    ));
                }
            }
        }
        let shown_before = self.before.as_deref().or(self.linked.as_deref());
        let before = shown_before.unwrap_or_default();
        let diff = (before != &self.spec.content[..]).then(|| {
            let old = String::from_utf8_lossy(before);
            let new = String::from_utf8_lossy(&self.spec.content);
            let shown = self.path.display().to_string();
            let (from, to) = if shown_before.is_some() {
                (shown.clone(), shown)
            } else {
                ("/dev/null".to_owned(), shown)
            };
            if self.before.is_some() {
                detail.push("edit".to_owned());
            }
            similar::TextDiff::from_lines(old.as_ref(), new.as_ref())
                .unified_diff()
                .context_radius(3)
                .header(&from, &to)
                .to_string()
        });
        Change {
            kind: "write-file",
            path: Some(self.path.display().to_string()),
            target: None,
            diff,
            detail: detail.join(", "),
        }
    }
}

/// What is at `path` now (without following a final link) and, for a regular file, its content.
fn current(host: &Host, path: &Path) -> Result<(Option<Metadata>, Option<Vec<u8>>), HostError> {
    let meta = host.fs.lstat(path)?;
    let content = match meta {
        Some(meta) if meta.kind == FileKind::Regular => host.fs.read(path)?,
        _ => None,
    };
    Ok((meta, content))
}
