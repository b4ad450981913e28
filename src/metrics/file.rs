//! The metrics file on the machine that runs the agent (never under `--root`): replaced whole and
//! atomically by the filesystem layer, in a directory that must exist, never through a symlink.
//!
//! `RootFs::replace_in_existing_dir` rather than `write_atomic`: that one creates missing
//! directories and replaces a symlink at the path, which is right for the files a control owns;
//! here a missing directory is a mistake in the path (node_exporter reads one directory) and a
//! symlink is refused, not replaced.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

use crate::host::fs::{FileKind, FileSpec, Owner, RootFs};
use crate::host::HostError;

/// The mode node_exporter (any user) needs to read the file.
const FILE_MODE: u32 = 0o644;
/// A metrics file is a few kilobytes; a larger previous file is not ours to carry from.
const MAX_PREVIOUS_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot write metrics file {path}: directory {dir} does not exist (create it, or name a file in the directory node_exporter reads)")]
    NoDirectory { path: String, dir: String },
    #[error("cannot write metrics file {path}: it must name a file in a directory")]
    NoFileName { path: String },
    #[error("metrics file: {0}")]
    Host(#[from] HostError),
}

/// The file a run replaces, to carry the other command's series from: empty when there is none
/// or it cannot be used (a link or anything else is refused by the write that follows).
pub fn read_previous(path: &Path) -> String {
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
        .open(path)
    else {
        return String::new();
    };
    if !file.metadata().is_ok_and(|meta| meta.is_file()) {
        return String::new();
    }
    let mut bytes = Vec::new();
    if file
        .take(MAX_PREVIOUS_BYTES)
        .read_to_end(&mut bytes)
        .is_err()
    {
        return String::new();
    }
    String::from_utf8(bytes).unwrap_or_default()
}

/// Replaces `path` with `content`, mode 0644, owned by the running user: the filesystem layer's
/// temporary beside it, fsync, rename, fsync of the directory. On any error nothing is left but
/// what was there before.
pub fn write_atomic(path: &Path, content: &str) -> Result<(), MetricsError> {
    let shown = || path.display().to_string();
    if path.file_name().is_none() {
        return Err(MetricsError::NoFileName { path: shown() });
    }
    // A relative path names a file below the working directory, as the shell would.
    let absolute: PathBuf =
        std::path::absolute(path).map_err(|e| HostError::io("resolve", path.display(), e))?;
    let dir = absolute.parent().unwrap_or(Path::new("/"));
    let host = RootFs::open(Path::new("/"))?;
    if host.stat(dir)?.map(|m| m.kind) != Some(FileKind::Directory) {
        return Err(MetricsError::NoDirectory {
            path: shown(),
            dir: dir.display().to_string(),
        });
    }
    let spec = FileSpec {
        content: content.as_bytes().to_vec(),
        mode: FILE_MODE,
        owner: Owner {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        },
        parent_mode: 0o755,
    };
    Ok(host.replace_in_existing_dir(&absolute, &spec)?)
}
