//! The filesystem under the target root: the types the controls use and the root handle itself.
//!
//! Every path a control names is an absolute path *inside* the root (`/etc/passwd`), whether the root
//! is the running host (`/`) or an image being built (`--root /mnt/image`). Resolution stays inside
//! the root ([`resolve`]); only regular files of bounded size are read ([`read`]); writes are
//! atomic and clean up after an interrupted run ([`write`], [`temp`]).

mod read;
mod resolve;
mod temp;
mod write;

use std::ffi::{OsStr, OsString};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag};

use super::HostError;

/// What kind of object a path names (without following a final symlink).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Regular,
    Directory,
    Symlink,
    Other,
}

/// The metadata the controls compare against the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metadata {
    pub kind: FileKind,
    /// Permission bits only (`0o7777` mask).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// Owner of a file the agent writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// Final state of a file the agent writes: content, mode and owner, all set before the rename.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    pub content: Vec<u8>,
    pub mode: u32,
    pub owner: Owner,
    /// Mode for parent directories that do not exist yet (`/etc/sudoers.d` is 0750).
    pub parent_mode: u32,
}

/// The filesystem below one root directory.
pub struct RootFs {
    root: PathBuf,
    root_fd: OwnedFd,
}

impl RootFs {
    pub fn open(root: &Path) -> Result<Self, HostError> {
        let fd = nix::fcntl::open(
            root,
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| HostError::io("open root directory", root.display(), e))?;
        // SAFETY: `open` returned a fresh descriptor that nothing else owns.
        let root_fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(RootFs {
            root: root.to_path_buf(),
            root_fd,
        })
    }

    /// The root directory as given on the command line.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

fn metadata(st: &nix::sys::stat::FileStat) -> Metadata {
    let kind = match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFREG => FileKind::Regular,
        SFlag::S_IFDIR => FileKind::Directory,
        SFlag::S_IFLNK => FileKind::Symlink,
        _ => FileKind::Other,
    };
    Metadata {
        kind,
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
    }
}

/// What an `st_mode` names, for messages: "a FIFO", "a directory".
fn describe(st_mode: u32) -> &'static str {
    match SFlag::from_bits_truncate(st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFREG => "a regular file",
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFLNK => "a symbolic link",
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        SFlag::S_IFSOCK => "a socket",
        _ => "of an unknown file type",
    }
}

/// The names in an open directory as bytes, `.` and `..` left out, sorted bytewise (the order
/// sudo, kmod and systemd use). An entry that cannot be read is an error, never a gap.
fn names_in(dir: OwnedFd) -> nix::Result<Vec<OsString>> {
    let mut dir = nix::dir::Dir::from_fd(dir.into_raw_fd())?;
    let mut names = Vec::new();
    for entry in dir.iter() {
        let name = OsStr::from_bytes(entry?.file_name().to_bytes()).to_os_string();
        if name != "." && name != ".." {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// Splits an absolute in-root path into its directory and final name.
fn split(path: &Path) -> Result<(&Path, &OsStr), HostError> {
    match (path.parent(), path.components().next_back()) {
        (Some(parent), Some(Component::Normal(name))) => Ok((parent, name)),
        _ => Err(HostError::Invalid {
            path: path.display().to_string(),
            reason: "not a path to a file".into(),
        }),
    }
}

/// Whether `name` is one of the agent's own temporaries (what an interrupted write leaves), for
/// readers of directories only the agent writes (the journal).
pub fn is_temporary(name: &OsStr) -> bool {
    temp::is_own_temporary(name)
}
