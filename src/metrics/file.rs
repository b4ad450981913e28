//! The metrics file on the machine that runs the agent (never under `--root`): replaced whole and
//! atomically, never through a symlink, in a directory that must exist.
//!
//! Not `RootFs::write_atomic`: that one creates missing directories and replaces a symlink at the
//! path, which is right for the files a control owns; here a missing directory is a mistake in
//! the path (node_exporter reads one directory) and a symlink is refused, not replaced.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, renameat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstatat, Mode, SFlag};
use nix::unistd::{fsync, unlinkat, UnlinkatFlags};

/// The mode node_exporter (any user) needs to read the file.
const FILE_MODE: u32 = 0o644;
/// A metrics file is a few kilobytes; a larger previous file is not ours to carry from.
const MAX_PREVIOUS_BYTES: u64 = 1 << 20;
/// Temporaries are `.NAME.fh-metrics-` and random hex: hidden, and not `*.prom`, so the textfile
/// collector never reads a half-written one.
const TEMP_MARK: &str = ".fh-metrics-";

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot write metrics file {path}: directory {dir} does not exist (create it, or name a file in the directory node_exporter reads)")]
    NoDirectory { path: String, dir: String },
    #[error("cannot write metrics file {path}: it is a symbolic link; the agent never writes through one (remove the link or name the real file)")]
    Symlink { path: String },
    #[error("cannot write metrics file {path}: it exists and is not a regular file")]
    NotAFile { path: String },
    #[error("cannot write metrics file {path}: it must name a file in a directory")]
    NoFileName { path: String },
    #[error("cannot {op} metrics file {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: Errno,
    },
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}

fn split(path: &Path) -> Result<(&Path, &OsStr), MetricsError> {
    let name = path
        .file_name()
        .ok_or_else(|| MetricsError::NoFileName { path: shown(path) })?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    Ok((dir, name))
}

fn open_dir(path: &Path, dir: &Path) -> Result<OwnedFd, MetricsError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_DIRECTORY | OFlag::O_CLOEXEC).bits())
        .open(dir)
        .map_err(|e| match e.raw_os_error().map(Errno::from_raw) {
            Some(Errno::ENOENT | Errno::ENOTDIR) => MetricsError::NoDirectory {
                path: shown(path),
                dir: shown(dir),
            },
            errno => MetricsError::Io {
                op: "open the directory of",
                path: shown(path),
                source: errno.unwrap_or(Errno::EIO),
            },
        })?;
    Ok(OwnedFd::from(file))
}

/// What is at `name` in `dir`, not following a link: None when nothing is.
fn kind(dir: &OwnedFd, name: &OsStr, path: &Path) -> Result<Option<SFlag>, MetricsError> {
    match fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(
            SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT,
        )),
        Err(Errno::ENOENT) => Ok(None),
        Err(source) => Err(MetricsError::Io {
            op: "inspect",
            path: shown(path),
            source,
        }),
    }
}

fn check_target(dir: &OwnedFd, name: &OsStr, path: &Path) -> Result<(), MetricsError> {
    match kind(dir, name, path)? {
        None => Ok(()),
        Some(SFlag::S_IFREG) => Ok(()),
        Some(SFlag::S_IFLNK) => Err(MetricsError::Symlink { path: shown(path) }),
        Some(_) => Err(MetricsError::NotAFile { path: shown(path) }),
    }
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

fn random_hex() -> String {
    let mut bytes = [0u8; 8];
    let read = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        // Unique enough with O_EXCL and a retry: pid and time.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        bytes = (nanos ^ u64::from(std::process::id()) << 32).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn temp_prefix(name: &OsStr) -> OsString {
    let mut prefix = b".".to_vec();
    prefix.extend_from_slice(name.as_bytes());
    prefix.extend_from_slice(TEMP_MARK.as_bytes());
    OsString::from_vec(prefix)
}

/// Removes the temporaries a killed run left beside `name` (the run lock keeps others out).
fn remove_stale(dir: &Path, name: &OsStr) {
    let prefix = temp_prefix(name);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry.file_name().as_bytes().starts_with(prefix.as_bytes())
            && entry.file_type().is_ok_and(|t| t.is_file());
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Replaces `path` with `content`: a temporary in the same directory, mode 0644, fsync, rename,
/// fsync of the directory. On any error nothing is left but what was there before.
pub fn write_atomic(path: &Path, content: &str) -> Result<(), MetricsError> {
    let (dir_path, name) = split(path)?;
    let dir = open_dir(path, dir_path)?;
    check_target(&dir, name, path)?;
    remove_stale(dir_path, name);
    let io = |op| {
        move |source| MetricsError::Io {
            op,
            path: shown(path),
            source,
        }
    };
    let (temp, mut file) = create_temp(&dir, name).map_err(io("create a temporary beside"))?;
    let result = (|| {
        file.write_all(content.as_bytes())
            .map_err(|e| io("write")(Errno::from_raw(e.raw_os_error().unwrap_or(5))))?;
        // Set explicitly: the umask must not decide whether node_exporter can read it.
        fchmod(file.as_raw_fd(), Mode::from_bits_truncate(FILE_MODE)).map_err(io("set mode of"))?;
        fsync(file.as_raw_fd()).map_err(io("fsync"))?;
        // Checked again just before the rename, which replaces whatever is there without
        // following it: a link made in between is replaced, never written through.
        check_target(&dir, name, path)?;
        renameat(
            Some(dir.as_raw_fd()),
            temp.as_os_str(),
            Some(dir.as_raw_fd()),
            name,
        )
        .map_err(io("rename into place"))?;
        fsync(dir.as_raw_fd()).map_err(io("fsync the directory of"))
    })();
    if result.is_err() {
        let _ = unlinkat(
            Some(dir.as_raw_fd()),
            temp.as_os_str(),
            UnlinkatFlags::NoRemoveDir,
        );
    }
    result
}

fn create_temp(dir: &OwnedFd, name: &OsStr) -> Result<(PathBuf, File), Errno> {
    let mut last = Errno::EEXIST;
    for _ in 0..8 {
        let mut temp = temp_prefix(name);
        temp.push(random_hex());
        match openat(
            Some(dir.as_raw_fd()),
            temp.as_os_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        ) {
            // SAFETY: `openat` returned a fresh descriptor that nothing else owns.
            Ok(fd) => {
                return Ok((
                    PathBuf::from(temp),
                    File::from(unsafe { OwnedFd::from_raw_fd(fd) }),
                ))
            }
            Err(Errno::EEXIST) => last = Errno::EEXIST,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}
