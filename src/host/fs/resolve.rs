//! In-root path resolution: `openat2(RESOLVE_IN_ROOT)`, or the same answer walked component by
//! component where openat2 is missing, so a symlink in an image resolves inside the image.
//!
//! A symlink in the image (`/etc/sudo.conf -> /usr/share/...`) resolves inside the image and can
//! never lead out of it, and `..` cannot climb above the root. Every descriptor is opened
//! non-blocking and without a controlling terminal: a FIFO or device planted where a file is
//! expected cannot stall a run at `open`.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fstatat, Mode};

use super::{metadata, split, FileKind, RootFs};
use crate::host::HostError;

/// Set once openat2 answered ENOSYS: every later open walks the path instead.
static OPENAT2_MISSING: AtomicBool = AtomicBool::new(false);

/// The kernel's limit on symlinks followed in one resolution (`MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

impl RootFs {
    /// Opens `path` below the root; symlinks are followed but stay inside it.
    pub(super) fn open_in_root(&self, path: &Path, flags: OFlag) -> nix::Result<OwnedFd> {
        self.open_in_root_mode(path, flags, Mode::empty())
    }

    /// `openat2(RESOLVE_IN_ROOT)`, or the same resolution done component by component where
    /// openat2 is missing (kernels before 5.6, seccomp filters that answer it with ENOSYS).
    pub fn open_in_root_mode(&self, path: &Path, flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
        let flags = with_safe_defaults(flags);
        if !OPENAT2_MISSING.load(Ordering::Relaxed) {
            match self.open_by_openat2(path, flags, mode) {
                Err(Errno::ENOSYS) => {
                    tracing::debug!("openat2 is not available: resolving paths step by step");
                    OPENAT2_MISSING.store(true, Ordering::Relaxed);
                }
                result => return result,
            }
        }
        self.open_by_walk(path, flags, mode)
    }

    fn open_by_openat2(&self, path: &Path, flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
        // open(2) ignores the mode without O_CREAT; openat2 refuses it with EINVAL.
        let mode = if flags.contains(OFlag::O_CREAT) || flags.contains(OFlag::O_TMPFILE) {
            mode
        } else {
            Mode::empty()
        };
        let how = OpenHow::new()
            .flags(flags)
            .mode(mode)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let fd = openat2(self.root_fd.as_raw_fd(), relative(path), how)?;
        // SAFETY: `openat2` returned a fresh descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// `RESOLVE_IN_ROOT` by hand: every component is opened with `O_NOFOLLOW` relative to the
    /// directory before it; a symlink is read and its target walked in its place (an absolute
    /// target from the root, `..` never above the root), at most 40 links deep as the kernel does.
    /// A final symlink is followed only where `open(2)` would follow it: not with `O_NOFOLLOW`
    /// (the kernel then answers ELOOP, or a descriptor of the link with `O_PATH`) and not with
    /// `O_CREAT|O_EXCL` (EEXIST).
    fn open_by_walk(&self, path: &Path, flags: OFlag, mode: Mode) -> nix::Result<OwnedFd> {
        let follow_final =
            !flags.contains(OFlag::O_NOFOLLOW) && !flags.contains(OFlag::O_CREAT | OFlag::O_EXCL);
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
            let is_final = pending.is_empty();
            if !is_final || follow_final {
                let is_link =
                    match fstatat(Some(at), name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                        Ok(st) => metadata(&st).kind == FileKind::Symlink,
                        Err(Errno::ENOENT) => false,
                        Err(e) => return Err(e),
                    };
                if is_link {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(Errno::ELOOP);
                    }
                    let target = PathBuf::from(nix::fcntl::readlinkat(Some(at), name.as_os_str())?);
                    if target.is_absolute() {
                        dirs.clear();
                    }
                    for (i, part) in normal_components(&target).enumerate() {
                        pending.insert(i, part);
                    }
                    continue;
                }
            }
            // O_NOFOLLOW on every component: a link swapped in after the check above is refused.
            let (open_flags, open_mode) = if is_final {
                (flags | OFlag::O_NOFOLLOW, mode)
            } else {
                (
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
            };
            let fd = openat(Some(at), name.as_os_str(), open_flags, open_mode)?;
            // SAFETY: `openat` returned a fresh descriptor that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            if is_final {
                return Ok(fd);
            }
            dirs.push(fd);
        }
        // The path named a directory reached by `..`, or the root itself.
        let at = dirs
            .last()
            .map_or(self.root_fd.as_raw_fd(), |d| d.as_raw_fd());
        let fd = openat(Some(at), ".", flags, mode)?;
        // SAFETY: `openat` returned a fresh descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// The directory holding `path`, opened, and the final component's name; `None` if the
    /// directory does not exist.
    pub(super) fn open_parent<'p>(
        &self,
        path: &'p Path,
    ) -> Result<Option<(OwnedFd, &'p OsStr)>, HostError> {
        let (parent, name) = split(path)?;
        match self.open_in_root(parent, OFlag::O_DIRECTORY | OFlag::O_PATH) {
            Ok(fd) => Ok(Some((fd, name))),
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => Ok(None),
            Err(e) => Err(HostError::io("open directory", parent.display(), e)),
        }
    }
}

/// `O_CLOEXEC`, and `O_NONBLOCK|O_NOCTTY` where the descriptor can do I/O (openat2 refuses them
/// beside `O_PATH` with EINVAL, where they would mean nothing).
fn with_safe_defaults(flags: OFlag) -> OFlag {
    if flags.contains(OFlag::O_PATH) {
        flags | OFlag::O_CLOEXEC
    } else {
        flags | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY
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
fn normal_components(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(name) => Some(name.to_os_string()),
        Component::ParentDir => Some("..".into()),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A tree with every kind of link the comparison covers, and a directory outside it.
    struct Tree {
        outside: tempfile::TempDir,
        root: tempfile::TempDir,
    }

    fn tree() -> Tree {
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
        symlink(
            outside.path().join("new"),
            r.join("etc/absolute-out-dangling"),
        )
        .unwrap();
        symlink("loop", r.join("etc/loop")).unwrap();
        symlink("/nowhere", r.join("etc/dangling")).unwrap();
        symlink("../created-here", r.join("etc/dangling-relative")).unwrap();
        symlink("sub", r.join("etc/sublink")).unwrap();
        Tree { outside, root }
    }

    /// Every path below `dir` with its kind: what an open left behind.
    fn listing(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                let meta = std::fs::symlink_metadata(&path).unwrap();
                if meta.is_dir() {
                    stack.push(path.clone());
                }
                out.push(format!(
                    "{} {:?}",
                    path.strip_prefix(dir).unwrap().display(),
                    meta.file_type()
                ));
            }
        }
        out.sort();
        out
    }

    /// What an open resolved to: the path in the root it opened (links included), or the error;
    /// and what the root and the outside directory hold afterwards.
    fn outcome(
        tree: &Tree,
        result: nix::Result<OwnedFd>,
    ) -> (Result<PathBuf, Errno>, [Vec<String>; 2]) {
        let opened = result.map(|fd| {
            let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
            real.strip_prefix(tree.root.path())
                .map(Path::to_path_buf)
                .unwrap_or(real)
        });
        (
            opened,
            [listing(tree.root.path()), listing(tree.outside.path())],
        )
    }

    #[test]
    fn the_walk_resolves_exactly_like_openat2_in_root_for_every_flag() {
        let cases = [
            "/etc/sudo.conf",
            "/etc/baselayout/sudo.conf",
            "/etc/sub/up/usr/share/baselayout/sudo.conf",
            "/etc/climb/secret",
            "/etc/absolute-out/secret",
            "/etc/absolute-out-dangling",
            "/etc/loop",
            "/etc/dangling",
            "/etc/dangling-relative",
            "/etc/sublink",
            "/etc/sublink/../sudo.conf",
            "/etc/new-file",
            "/../../etc/sudo.conf",
            "/",
            "/etc/..",
            "/etc/sudo.conf/x",
            "/missing/file",
        ];
        let create = OFlag::O_WRONLY | OFlag::O_CREAT;
        let flag_sets = [
            OFlag::O_RDONLY,
            OFlag::O_PATH,
            OFlag::O_PATH | OFlag::O_DIRECTORY,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW,
            OFlag::O_PATH | OFlag::O_NOFOLLOW,
            OFlag::O_WRONLY | OFlag::O_NOFOLLOW,
            create,
            create | OFlag::O_EXCL,
            create | OFlag::O_NOFOLLOW,
            create | OFlag::O_EXCL | OFlag::O_NOFOLLOW,
        ];
        let mode = Mode::from_bits_truncate(0o600);
        for path in cases {
            for flags in flag_sets {
                // A fresh tree for each side: a create changes what the other side would see.
                let first = tree();
                let fs = RootFs::open(first.root.path()).unwrap();
                let with_openat2 = outcome(
                    &first,
                    fs.open_by_openat2(Path::new(path), with_safe_defaults(flags), mode),
                );
                let second = tree();
                let fs = RootFs::open(second.root.path()).unwrap();
                let walked = outcome(
                    &second,
                    fs.open_by_walk(Path::new(path), with_safe_defaults(flags), mode),
                );
                assert_eq!(walked, with_openat2, "{path} with {flags:?}");
            }
        }
    }

    #[test]
    fn links_out_of_the_root_stay_inside_it() {
        let tree = tree();
        let fs = RootFs::open(tree.root.path()).unwrap();
        for path in ["/etc/climb/secret", "/etc/absolute-out/secret"] {
            let walked = fs.open_by_walk(Path::new(path), OFlag::O_RDONLY, Mode::empty());
            assert_eq!(walked.err(), Some(Errno::ENOENT), "{path}");
        }
        // Creating through a dangling link creates its target inside the root, never outside.
        let create = OFlag::O_WRONLY | OFlag::O_CREAT;
        let mode = Mode::from_bits_truncate(0o600);
        let out = fs.open_by_walk(Path::new("/etc/absolute-out-dangling"), create, mode);
        assert_eq!(out.err(), Some(Errno::ENOENT));
        assert!(!tree.outside.path().join("new").exists());
        assert!(fs
            .open_by_walk(Path::new("/etc/dangling"), create, mode)
            .is_ok());
        assert!(tree.root.path().join("nowhere").is_file());
    }

    #[test]
    fn a_final_link_with_o_nofollow_is_refused_not_followed() {
        let tree = tree();
        let fs = RootFs::open(tree.root.path()).unwrap();
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_NOFOLLOW;
        let walked = fs.open_by_walk(Path::new("/etc/dangling"), flags, Mode::empty());
        assert_eq!(walked.err(), Some(Errno::ELOOP));
        assert!(!tree.root.path().join("nowhere").exists());
    }
}
