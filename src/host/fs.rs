//! The filesystem under the target root.
//!
//! Every path a control names is an absolute path *inside* the root (`/etc/passwd`), whether the root
//! is the running host (`/`) or an image being built (`--root /mnt/image`). Paths are resolved with
//! `openat2(RESOLVE_IN_ROOT)`, so a symlink in the image (`/etc/sudo.conf -> /usr/share/...`) resolves
//! inside the image and can never lead out of it, and `..` cannot climb above the root.
//!
//! Writes are atomic: a temporary file in the same directory gets the content, mode and owner, is
//! fsynced, renamed over the target, and the directory is fsynced. The rename replaces the final path
//! component itself, so a symlink there is replaced, never written through.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, renameat, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fchmod, fstatat, mkdirat, Mode, SFlag};
use nix::unistd::{fchown, fsync, unlinkat, Gid, Uid, UnlinkatFlags};

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

static TEMP_COUNTER: AtomicU32 = AtomicU32::new(0);
/// Set once openat2 answered ENOSYS: every later open walks the path instead.
static OPENAT2_MISSING: AtomicBool = AtomicBool::new(false);

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

    /// Opens `path` below the root; symlinks are followed but stay inside it.
    fn open_in_root(&self, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
        self.open_in_root_mode(path, flags, Mode::empty())
    }

    /// `openat2(RESOLVE_IN_ROOT)`, or the same resolution done component by component where
    /// openat2 is missing (kernels before 5.6, seccomp filters that answer it with ENOSYS).
    pub fn open_in_root_mode(&self, path: &Path, flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
        if !OPENAT2_MISSING.load(Ordering::Relaxed) {
            let how = OpenHow::new()
                .flags(flags | OFlag::O_CLOEXEC)
                .mode(mode)
                .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
            match openat2(self.root_fd.as_raw_fd(), relative(path), how) {
                // SAFETY: `openat2` returned a fresh descriptor that nothing else owns.
                Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
                Err(Errno::ENOSYS) => {
                    tracing::debug!("openat2 is not available: resolving paths step by step");
                    OPENAT2_MISSING.store(true, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
        self.open_by_walk(path, flags, mode)
    }

    /// `RESOLVE_IN_ROOT` by hand: every component is opened with `O_NOFOLLOW` relative to the
    /// directory before it; a symlink is read and its target walked in its place (an absolute
    /// target from the root, `..` never above the root), at most 40 links deep as the kernel does.
    fn open_by_walk(&self, path: &Path, flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
        use std::collections::VecDeque;
        use std::ffi::OsString;
        let mut pending: VecDeque<OsString> = normal_components(path).collect();
        // Directories walked so far below the root; empty means "at the root".
        let mut dirs: Vec<OwnedFd> = Vec::new();
        let mut links = 0;
        while let Some(name) = pending.pop_front() {
            if name == ".." {
                dirs.pop();
                continue;
            }
            let at = dirs
                .last()
                .map_or(self.root_fd.as_raw_fd(), |d| d.as_raw_fd());
            let is_link = match fstatat(
                Some(at),
                name.as_os_str(),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                Ok(st) => metadata(&st).kind == FileKind::Symlink,
                Err(Errno::ENOENT) => false,
                Err(e) => return Err(e),
            };
            if is_link {
                links += 1;
                if links > 40 {
                    return Err(Errno::ELOOP);
                }
                let target = nix::fcntl::readlinkat(Some(at), name.as_os_str())?;
                let target = PathBuf::from(target);
                if target.is_absolute() {
                    dirs.clear();
                }
                for (i, part) in normal_components(&target).enumerate() {
                    pending.insert(i, part);
                }
                continue;
            }
            let (open_flags, open_mode) = if pending.is_empty() {
                (flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, mode)
            } else {
                (
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
            };
            let fd = openat(Some(at), name.as_os_str(), open_flags, open_mode)?;
            // SAFETY: `openat` returned a fresh descriptor that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            if pending.is_empty() {
                return Ok(fd);
            }
            dirs.push(fd);
        }
        // The path named a directory reached by `..` or the root itself.
        let at = dirs
            .last()
            .map_or(self.root_fd.as_raw_fd(), |d| d.as_raw_fd());
        let fd = openat(Some(at), ".", flags | OFlag::O_CLOEXEC, mode)?;
        // SAFETY: `openat` returned a fresh descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// The directory holding `path`, opened, and the final component's name.
    fn open_parent<'p>(&self, path: &'p Path) -> Result<Option<(OwnedFd, &'p OsStr)>, HostError> {
        let (parent, name) = split(path)?;
        match self.open_in_root(parent, OFlag::O_DIRECTORY | OFlag::O_PATH) {
            Ok(fd) => Ok(Some((fd, name))),
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => Ok(None),
            Err(e) => Err(HostError::io("open directory", parent.display(), e)),
        }
    }

    /// Reads a whole file, following symlinks inside the root. `None` if it does not exist.
    pub fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, HostError> {
        let fd = match self.open_in_root(path, OFlag::O_RDONLY) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => return Ok(None),
            Err(e) => return Err(HostError::io("open", path.display(), e)),
        };
        let mut bytes = Vec::new();
        std::fs::File::from(fd)
            .read_to_end(&mut bytes)
            .map_err(|e| HostError::io("read", path.display(), e))?;
        Ok(Some(bytes))
    }

    /// Reads a text file; content that is not UTF-8 is an error naming the file.
    pub fn read_text(&self, path: &Path) -> Result<Option<String>, HostError> {
        match self.read(path)? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|e| HostError::Invalid {
                    path: path.display().to_string(),
                    reason: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
                }),
        }
    }

    /// Writes `bytes` into an existing file with one `write(2)`, truncating it first and creating
    /// nothing: for kernel interfaces (sysfs, selinuxfs), where the write itself is the request
    /// and a temporary file and rename would mean nothing. The errno is the kernel's answer.
    pub fn write_in_place(&self, path: &Path, bytes: &[u8]) -> Result<(), Errno> {
        let fd = self.open_in_root(path, OFlag::O_WRONLY | OFlag::O_TRUNC)?;
        match nix::unistd::write(&fd, bytes)? {
            n if n == bytes.len() => Ok(()),
            _ => Err(Errno::EIO),
        }
    }

    /// Metadata of `path` itself (a final symlink is not followed). `None` if it does not exist.
    pub fn lstat(&self, path: &Path) -> Result<Option<Metadata>, HostError> {
        let Some((dir, name)) = self.open_parent(path)? else {
            return Ok(None);
        };
        match fstatat(
            Some(dir.as_raw_fd()),
            name,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW | nix::fcntl::AtFlags::AT_EMPTY_PATH,
        ) {
            Ok(st) => Ok(Some(metadata(&st))),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(HostError::io("stat", path.display(), e)),
        }
    }

    /// Metadata of what `path` names after following symlinks inside the root.
    pub fn stat(&self, path: &Path) -> Result<Option<Metadata>, HostError> {
        match self.open_in_root(path, OFlag::O_PATH) {
            Ok(fd) => {
                let st = nix::sys::stat::fstat(fd.as_raw_fd())
                    .map_err(|e| HostError::io("stat", path.display(), e))?;
                Ok(Some(metadata(&st)))
            }
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => Ok(None),
            Err(e) => Err(HostError::io("stat", path.display(), e)),
        }
    }

    /// Names in a directory, sorted bytewise (the order sudo, kmod and systemd use). Empty if the
    /// directory does not exist.
    pub fn list_dir(&self, path: &Path) -> Result<Vec<String>, HostError> {
        let fd = match self.open_in_root(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => return Ok(Vec::new()),
            Err(e) => return Err(HostError::io("open directory", path.display(), e)),
        };
        let dir = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(fd))
            .map_err(|e| HostError::io("read directory", path.display(), e))?;
        let mut names: Vec<String> = dir
            .into_iter()
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| entry.file_name().to_str().ok().map(str::to_owned))
            .filter(|name| name != "." && name != "..")
            .collect();
        names.sort();
        Ok(names)
    }

    /// Writes `spec` to `path` atomically. `check` runs on the complete temporary file (by its real
    /// path on the host) before the rename; an error from it leaves the target untouched.
    pub fn write_atomic(
        &self,
        path: &Path,
        spec: &FileSpec,
        check: &dyn Fn(&Path) -> Result<(), HostError>,
    ) -> Result<(), HostError> {
        let (parent, name) = split(path)?;
        let dir = self.create_dir_all(parent, spec.parent_mode)?;
        let temp_name = temp_name(name);
        let shown = path.display();
        let fd = openat(
            Some(dir.as_raw_fd()),
            temp_name.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| HostError::io("create temporary file beside", &shown, e))?;
        // SAFETY: `openat` returned a fresh descriptor that nothing else owns.
        let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let result = (|| {
            file.write_all(&spec.content)
                .map_err(|e| HostError::io("write", &shown, e))?;
            fchown(
                file.as_raw_fd(),
                Some(Uid::from_raw(spec.owner.uid)),
                Some(Gid::from_raw(spec.owner.gid)),
            )
            .map_err(|e| HostError::io("set owner of", &shown, e))?;
            fchmod(file.as_raw_fd(), Mode::from_bits_truncate(spec.mode))
                .map_err(|e| HostError::io("set mode of", &shown, e))?;
            file.sync_all()
                .map_err(|e| HostError::io("fsync", &shown, e))?;
            check(&real_path(&dir)?.join(&temp_name))?;
            renameat(
                Some(dir.as_raw_fd()),
                temp_name.as_str(),
                Some(dir.as_raw_fd()),
                name,
            )
            .map_err(|e| HostError::io("rename into place", &shown, e))?;
            fsync(dir.as_raw_fd()).map_err(|e| HostError::io("fsync directory of", &shown, e))
        })();
        if result.is_err() {
            let _ = unlinkat(
                Some(dir.as_raw_fd()),
                temp_name.as_str(),
                UnlinkatFlags::NoRemoveDir,
            );
        }
        result
    }

    /// Opens `path` as a directory (readable, so it can be fsynced), creating missing components
    /// with `mode`.
    fn create_dir_all(&self, path: &Path, mode: u32) -> Result<OwnedFd, HostError> {
        match self.open_in_root(path, OFlag::O_DIRECTORY | OFlag::O_RDONLY) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(HostError::io("open directory", path.display(), e)),
        }
        let (parent, name) = split(path)?;
        let parent_fd = self.create_dir_all(parent, 0o755)?;
        match mkdirat(
            Some(parent_fd.as_raw_fd()),
            name,
            Mode::from_bits_truncate(mode),
        ) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(HostError::io("create directory", path.display(), e)),
        }
        // mkdir applies the umask; the directory gets exactly the mode the system expects.
        let created = self
            .open_in_root(path, OFlag::O_DIRECTORY | OFlag::O_RDONLY)
            .map_err(|e| HostError::io("open directory", path.display(), e))?;
        fchmod(created.as_raw_fd(), Mode::from_bits_truncate(mode))
            .map_err(|e| HostError::io("set mode of", path.display(), e))?;
        Ok(created)
    }
}

/// Where a descriptor really points on the host (via `/proc/self/fd`).
fn real_path(fd: &OwnedFd) -> Result<PathBuf, HostError> {
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    std::fs::read_link(&link).map_err(|e| HostError::io("resolve", link, e))
}

fn metadata(st: &nix::sys::stat::FileStat) -> Metadata {
    let format = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    let kind = match format {
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

/// `/etc/passwd` → `etc/passwd`; openat2 resolves it below the root either way, but a relative
/// path keeps the intent obvious.
fn relative(path: &Path) -> &Path {
    let stripped = path.strip_prefix("/").unwrap_or(path);
    if stripped.as_os_str().is_empty() {
        Path::new(".")
    } else {
        stripped
    }
}

/// The names in a path, `..` included, without the root and `.` (symlink targets are walked the
/// same way).
fn normal_components(path: &Path) -> impl Iterator<Item = std::ffi::OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(name) => Some(name.to_os_string()),
        Component::ParentDir => Some("..".into()),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
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

impl RootFs {
    /// Removes a file (used to roll back a write that turned out to break the configuration).
    pub fn remove(&self, path: &Path) -> Result<(), HostError> {
        let Some((dir, name)) = self.open_parent(path)? else {
            return Ok(());
        };
        match unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(HostError::io("remove", path.display(), e)),
        }
    }
}

impl RootFs {
    /// The target of a symlink, as stored in the link; `None` if `path` is missing or no link.
    pub fn read_link(&self, path: &Path) -> Result<Option<PathBuf>, HostError> {
        let Some((dir, name)) = self.open_parent(path)? else {
            return Ok(None);
        };
        match nix::fcntl::readlinkat(Some(dir.as_raw_fd()), name) {
            Ok(target) => Ok(Some(PathBuf::from(target))),
            Err(Errno::ENOENT) | Err(Errno::EINVAL) => Ok(None),
            Err(e) => Err(HostError::io("read link", path.display(), e)),
        }
    }

    /// Points `path` at `target` atomically (a temporary link renamed into place), as
    /// `systemctl --root DIR mask` leaves `/etc/systemd/system/UNIT -> /dev/null`.
    pub fn symlink_atomic(
        &self,
        path: &Path,
        target: &Path,
        parent_mode: u32,
    ) -> Result<(), HostError> {
        let (parent, name) = split(path)?;
        let dir = self.create_dir_all(parent, parent_mode)?;
        let temp_name = temp_name(name);
        nix::unistd::symlinkat(target, Some(dir.as_raw_fd()), temp_name.as_str())
            .map_err(|e| HostError::io("create link", path.display(), e))?;
        let renamed = renameat(
            Some(dir.as_raw_fd()),
            temp_name.as_str(),
            Some(dir.as_raw_fd()),
            name,
        )
        .map_err(|e| HostError::io("rename into place", path.display(), e));
        if renamed.is_err() {
            let _ = unlinkat(
                Some(dir.as_raw_fd()),
                temp_name.as_str(),
                UnlinkatFlags::NoRemoveDir,
            );
        }
        renamed?;
        fsync(dir.as_raw_fd()).map_err(|e| HostError::io("fsync directory of", path.display(), e))
    }

    /// Changes the group of `path` itself (a link is not followed), leaving its owner.
    pub fn chgrp_nofollow(&self, path: &Path, gid: u32) -> Result<(), HostError> {
        let Some((dir, name)) = self.open_parent(path)? else {
            return Err(HostError::io(
                "change group of",
                path.display(),
                Errno::ENOENT,
            ));
        };
        nix::unistd::fchownat(
            Some(dir.as_raw_fd()),
            name,
            None,
            Some(Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| HostError::io("change group of", path.display(), e))
    }
}

/// `.NAME.fh-PID-N`: hidden, and with a dot, so sudo, kmod and systemd all ignore it.
fn temp_name(name: &OsStr) -> String {
    format!(
        ".{}.fh-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// What an open resolved to: the same inode, or the same error.
    fn identity(result: nix::Result<OwnedFd>) -> Result<(u64, u64), Errno> {
        result.map(|fd| {
            let st = nix::sys::stat::fstat(fd.as_raw_fd()).unwrap();
            (st.st_dev, st.st_ino)
        })
    }

    #[test]
    fn the_walk_resolves_exactly_like_openat2_in_root() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "outside").unwrap();
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("usr/share/baselayout")).unwrap();
        std::fs::create_dir_all(r.join("etc/sub")).unwrap();
        std::fs::write(r.join("usr/share/baselayout/sudo.conf"), "inside").unwrap();
        symlink("/usr/share/baselayout/sudo.conf", r.join("etc/sudo.conf")).unwrap();
        symlink("../usr/share/baselayout", r.join("etc/baselayout")).unwrap();
        symlink("../../../../../../../..", r.join("etc/sub/up")).unwrap();
        let climb = format!("../../../../../../../..{}", outside.path().display());
        symlink(&climb, r.join("etc/climb")).unwrap();
        symlink(outside.path(), r.join("etc/absolute-out")).unwrap();
        symlink("loop", r.join("etc/loop")).unwrap();
        symlink("/nowhere", r.join("etc/dangling")).unwrap();
        symlink("sub", r.join("etc/sublink")).unwrap();

        let fs = RootFs::open(r).unwrap();
        let cases = [
            "/etc/sudo.conf",
            "/etc/baselayout/sudo.conf",
            "/etc/sub/up/usr/share/baselayout/sudo.conf",
            "/etc/climb/secret",
            "/etc/absolute-out/secret",
            "/etc/loop",
            "/etc/dangling",
            "/etc/sublink/../sudo.conf",
            "/../../etc/sudo.conf",
            "/",
            "/etc/..",
            "/etc/sudo.conf/x",
            "/missing/file",
        ];
        for path in cases {
            for flags in [
                OFlag::O_RDONLY,
                OFlag::O_PATH,
                OFlag::O_PATH | OFlag::O_DIRECTORY,
            ] {
                let with_openat2 = identity(fs.open_in_root(Path::new(path), flags));
                let walked = identity(fs.open_by_walk(Path::new(path), flags, Mode::empty()));
                assert_eq!(walked, with_openat2, "{path} with {flags:?}");
            }
        }
        // And the escapes really stayed inside.
        assert_eq!(
            identity(fs.open_by_walk(
                Path::new("/etc/climb/secret"),
                OFlag::O_RDONLY,
                Mode::empty()
            )),
            Err(Errno::ENOENT)
        );
    }
}
