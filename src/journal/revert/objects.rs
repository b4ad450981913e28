//! One object across a run's records (what identifies it, its state before and after the run),
//! how its state now compares, and the action that puts a file back.

use std::path::{Path, PathBuf};

use super::super::record::{unhex, Image, Object};
use crate::controls::UnitAction;
use crate::controls::{Action, FileWrite, Validation};
use crate::host::fs::{FileSpec, Owner};
use crate::host::{Host, HostError};

/// What identifies an object across records.
pub(super) fn key(object: &Object) -> Option<String> {
    match object {
        Object::File { path, .. } => Some(format!("file {path}")),
        Object::UnitFile { unit, .. } => Some(format!("unit-file {unit}")),
        Object::UnitEnabled { unit, .. } => Some(format!("unit-enabled {unit}")),
        Object::UnitActive { unit, .. } => Some(format!("unit-active {unit}")),
        Object::SocketGroup { path, .. } => Some(format!("group {path}")),
        Object::KernelSetting { path, .. } => Some(format!("kernel {path}")),
        Object::Reload
        | Object::UnitReload { .. }
        | Object::Restart { .. }
        | Object::AuditRulesLoaded
        | Object::ModuleUnloaded { .. } => None,
    }
}

/// Takes the later record's "after" into the first record of the same object.
pub(super) fn set_after(first: &mut Object, later: &Object) {
    match (first, later) {
        (Object::File { after, .. }, Object::File { after: a, .. }) => *after = a.clone(),
        (
            Object::UnitFile { masked_after, .. },
            Object::UnitFile {
                masked_after: a, ..
            },
        ) => *masked_after = *a,
        (
            Object::UnitEnabled { enabled_after, .. },
            Object::UnitEnabled {
                enabled_after: a, ..
            },
        ) => *enabled_after = *a,
        (
            Object::UnitActive { active_after, .. },
            Object::UnitActive {
                active_after: a, ..
            },
        ) => *active_after = *a,
        (Object::SocketGroup { gid_after, .. }, Object::SocketGroup { gid_after: a, .. }) => {
            *gid_after = *a
        }
        (Object::KernelSetting { after, .. }, Object::KernelSetting { after: a, .. }) => {
            *after = a.clone()
        }
        _ => {}
    }
}

/// How the comparison of an object came out.
pub(super) enum Found {
    AsBefore,
    AsLeft,
    Changed,
}

pub(super) fn compare<T: PartialEq>(now: &T, before: &T, after: &T) -> Found {
    if now == before {
        Found::AsBefore
    } else if now == after {
        Found::AsLeft
    } else {
        Found::Changed
    }
}

pub(super) fn describe(image: &Image) -> String {
    match image {
        Image::Absent => "absent".into(),
        Image::Symlink { target } => format!("a link to {target}"),
        Image::Regular { mode, uid, gid, .. } => {
            format!("a file (mode {mode:04o}, owner {uid}:{gid}) with other content")
        }
    }
}

/// The action that puts `before` back at `path`, where `now` is.
pub(super) fn restore_file(
    host: &Host,
    path: &Path,
    before: &Image,
    now: &Image,
    created_dirs: &[String],
) -> Result<Action, HostError> {
    let now_content = match now {
        Image::Regular { content, .. } => unhex(content),
        _ => None,
    };
    Ok(match before {
        Image::Absent => Action::RemoveFile {
            path: path.to_path_buf(),
            before: now_content,
            empty_dirs: created_dirs.iter().rev().map(PathBuf::from).collect(),
        },
        Image::Symlink { target } => Action::Unit(UnitAction::Link {
            path: path.to_path_buf(),
            target: PathBuf::from(target),
        }),
        Image::Regular {
            mode,
            uid,
            gid,
            content,
        } => Action::WriteFile(FileWrite {
            path: path.to_path_buf(),
            spec: FileSpec {
                content: unhex(content).unwrap_or_default(),
                mode: *mode,
                owner: Owner {
                    uid: *uid,
                    gid: *gid,
                },
                parent_mode: 0o755,
            },
            before: now_content,
            before_meta: host.fs.lstat(path)?,
            validation: Validation::None,
            linked: None,
        }),
    })
}
