//! Changing files under the root: atomic writes and links, removal, group changes, and the
//! in-place writes kernel interfaces need.
//!
//! An atomic write puts the content, mode and owner on a temporary file in the same directory,
//! fsyncs it, renames it over the target and fsyncs the directory. The rename replaces the final
//! path component itself, so a symlink there is replaced, never written through.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{renameat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, mkdirat, Mode};
use nix::unistd::{fchown, fsync, unlinkat, Gid, Uid, UnlinkatFlags};

use super::temp::temp_name;
use super::{split, FileKind, FileSpec, RootFs};
use crate::host::HostError;

impl RootFs {
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
        self.replace_in(&dir, name, path, spec, check)
    }

    /// Replaces `path` atomically like [`RootFs::write_atomic`], but only in a directory that
    /// already exists (none is created) and only over a regular file or nothing: for a file the
    /// agent does not own the place of, such as the metrics file in node_exporter's directory,
    /// where a missing directory is a mistake in the path and a link is refused, not replaced.
    pub fn replace_in_existing_dir(&self, path: &Path, spec: &FileSpec) -> Result<(), HostError> {
        let (parent, name) = split(path)?;
        let dir = self
            .open_in_root(parent, OFlag::O_DIRECTORY | OFlag::O_RDONLY)
            .map_err(|e| HostError::io("open directory", parent.display(), e))?;
        let refuse_other_kinds = |_: &Path| match self.lstat(path)?.map(|m| m.kind) {
            None | Some(FileKind::Regular) => Ok(()),
            Some(kind) => Err(HostError::io(
                "replace",
                path.display(),
                std::io::Error::other(match kind {
                    FileKind::Symlink => {
                        "it is a symbolic link, which the agent never writes through (remove \
                         the link or name the real file)"
                    }
                    _ => "it exists and is not a regular file",
                }),
            )),
        };
        refuse_other_kinds(path)?;
        // Checked again just before the rename, which replaces what is there without following
        // it: a link made in between is replaced, never written through.
        self.replace_in(&dir, name, path, spec, &refuse_other_kinds)
    }

    /// The atomic write itself, in the open directory `dir`: content, owner and mode on a new
    /// temporary, fsync, `check`, rename over `name`, fsync of the directory; on an error the
    /// temporary is removed and the target is as it was.
    fn replace_in(
        &self,
        dir: &OwnedFd,
        name: &std::ffi::OsStr,
        path: &Path,
        spec: &FileSpec,
        check: &dyn Fn(&Path) -> Result<(), HostError>,
    ) -> Result<(), HostError> {
        self.remove_stale_temporaries(dir, path)?;
        let (temp, mut file) = self.create_temp_file(dir, name, path)?;
        let shown = path.display();
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
            check(&real_path(dir)?.join(&temp))?;
            renameat(
                Some(dir.as_raw_fd()),
                temp.as_os_str(),
                Some(dir.as_raw_fd()),
                name,
            )
            .map_err(|e| HostError::io("rename into place", &shown, e))?;
            fsync(dir.as_raw_fd()).map_err(|e| HostError::io("fsync directory of", &shown, e))
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
        self.remove_stale_temporaries(&dir, path)?;
        // symlinkat fails with EEXIST rather than following anything: a new name is all it takes.
        let mut attempts = 16;
        let temp = loop {
            let temp = temp_name(name);
            match nix::unistd::symlinkat(target, Some(dir.as_raw_fd()), temp.as_os_str()) {
                Ok(()) => break temp,
                Err(Errno::EEXIST) if attempts > 1 => attempts -= 1,
                Err(e) => return Err(HostError::io("create link", path.display(), e)),
            }
        };
        let renamed = renameat(
            Some(dir.as_raw_fd()),
            temp.as_os_str(),
            Some(dir.as_raw_fd()),
            name,
        )
        .map_err(|e| HostError::io("rename into place", path.display(), e));
        if renamed.is_err() {
            let _ = unlinkat(
                Some(dir.as_raw_fd()),
                temp.as_os_str(),
                UnlinkatFlags::NoRemoveDir,
            );
        }
        renamed?;
        fsync(dir.as_raw_fd()).map_err(|e| HostError::io("fsync directory of", path.display(), e))
    }

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

    /// Creates the directory at `path` with `mode` if it is missing (missing parents get 0755);
    /// an existing one is left as it is.
    pub fn ensure_dir(&self, path: &Path, mode: u32) -> Result<(), HostError> {
        self.create_dir_all(path, mode).map(drop)
    }

    /// Removes the directory at `path` if it is empty (a directory a run created); `false` if
    /// something is in it or it is not there.
    pub fn remove_empty_dir(&self, path: &Path) -> Result<bool, HostError> {
        let Some((dir, name)) = self.open_parent(path)? else {
            return Ok(false);
        };
        match unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::RemoveDir) {
            Ok(()) => Ok(true),
            Err(Errno::ENOENT) | Err(Errno::ENOTEMPTY) | Err(Errno::EEXIST) => Ok(false),
            Err(e) => Err(HostError::io("remove directory", path.display(), e)),
        }
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
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| HostError::io("change group of", path.display(), e))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fs::Owner;
    use std::os::unix::fs::{symlink, MetadataExt};

    fn spec(content: &str) -> FileSpec {
        FileSpec {
            content: content.into(),
            mode: 0o440,
            owner: Owner {
                uid: nix::unistd::geteuid().as_raw(),
                gid: nix::unistd::getegid().as_raw(),
            },
            parent_mode: 0o750,
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_stale_temporary_with_this_pid_neither_collides_nor_stays() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("etc/sudoers.d");
        std::fs::create_dir_all(&dir).unwrap();
        // What a run killed before its rename left, under the name the old scheme would pick now.
        let stale = format!(".core-passwd.fh-{}-0", std::process::id());
        std::fs::write(dir.join(&stale), "half").unwrap();
        std::fs::write(dir.join(".core-passwd.fh-0123456789abcdef"), "half").unwrap();
        symlink("/nowhere", dir.join(".docker.socket.fh-0000000000000000")).unwrap();
        // Not ours: a directory and someone else's file of a similar name stay.
        std::fs::create_dir(dir.join(".keep.fh-1-1")).unwrap();
        std::fs::write(dir.join(".core-passwd.swp"), "").unwrap();

        let fs = RootFs::open(root.path()).unwrap();
        let path = Path::new("/etc/sudoers.d/core-passwd");
        fs.write_atomic(path, &spec("core ALL=(ALL) ALL\n"), &|_| Ok(()))
            .unwrap();

        assert_eq!(
            names(&dir),
            vec![".core-passwd.swp", ".keep.fh-1-1", "core-passwd"]
        );
        let written = dir.join("core-passwd");
        assert_eq!(
            std::fs::read_to_string(&written).unwrap(),
            "core ALL=(ALL) ALL\n"
        );
        assert_eq!(std::fs::metadata(&written).unwrap().mode() & 0o7777, 0o440);
    }

    #[test]
    fn a_failed_check_leaves_neither_target_nor_temporary() {
        let root = tempfile::tempdir().unwrap();
        let fs = RootFs::open(root.path()).unwrap();
        let refused = fs.write_atomic(Path::new("/etc/x.conf"), &spec("x"), &|_| {
            Err(HostError::Refused("no".into()))
        });
        assert!(refused.is_err());
        assert!(names(&root.path().join("etc")).is_empty());
    }

    #[test]
    fn a_link_is_replaced_atomically_and_a_stale_one_removed() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("etc/systemd/system");
        std::fs::create_dir_all(&dir).unwrap();
        symlink("/dev/null", dir.join(".sshd.socket.fh-1-0")).unwrap();
        let fs = RootFs::open(root.path()).unwrap();
        fs.symlink_atomic(
            Path::new("/etc/systemd/system/sshd.socket"),
            Path::new("/dev/null"),
            0o755,
        )
        .unwrap();
        assert_eq!(names(&dir), vec!["sshd.socket"]);
        assert_eq!(
            std::fs::read_link(dir.join("sshd.socket")).unwrap(),
            Path::new("/dev/null")
        );
    }
}
