//! Reading under the root: regular files of bounded size only, metadata, links, and directory
//! listings whose names are bytes.
//!
//! A FIFO, device or socket where a file is expected is an error naming the path and what it is:
//! opening a FIFO would block and reading a device can have effects (opening `/dev/watchdog` arms
//! it), so the type is checked on an `O_PATH` descriptor before anything is opened for reading.

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, SFlag};

use super::{describe, metadata, names_in, Metadata, RootFs};
use crate::host::HostError;

/// The most the agent reads from one file. Every file it reads (passwd, sudoers, unit files,
/// grub.cfg, policies) is a few KiB; anything this large is not what it is named.
const MAX_READ: u64 = 4 << 20;

impl RootFs {
    /// Reads a whole regular file, following symlinks inside the root. `None` if it does not
    /// exist; an error naming the path if it is anything but a regular file or is larger than
    /// [`MAX_READ`].
    pub fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, HostError> {
        let probe = match self.open_in_root(path, OFlag::O_PATH) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => return Ok(None),
            Err(e) => return Err(HostError::io("open", path.display(), e)),
        };
        let probed = regular_of_bounded_size(path, &probe)?;
        let fd = self
            .open_in_root(path, OFlag::O_RDONLY)
            .map_err(|e| HostError::io("open", path.display(), e))?;
        let opened = regular_of_bounded_size(path, &fd)?;
        if (opened.st_dev, opened.st_ino) != (probed.st_dev, probed.st_ino) {
            return Err(HostError::Invalid {
                path: path.display().to_string(),
                reason: "was replaced while being read; run again".into(),
            });
        }
        let mut bytes = Vec::new();
        // One byte over the limit tells a file that grew (or a /proc file, which reports size 0)
        // apart from one that fits.
        std::fs::File::from(fd)
            .take(MAX_READ + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| HostError::io("read", path.display(), e))?;
        if bytes.len() as u64 > MAX_READ {
            return Err(too_large(path, None));
        }
        Ok(Some(bytes))
    }

    /// Reads a text file; content that is not UTF-8 is an error naming the file. For callers that
    /// edit the text and must not change bytes they do not own.
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

    /// Reads a text file for parsing only: bytes that are not UTF-8 (a Latin-1 comment or GECOS
    /// field) become U+FFFD instead of failing the control at every run.
    pub fn read_text_lossy(&self, path: &Path) -> Result<Option<String>, HostError> {
        Ok(self
            .read(path)?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Metadata of `path` itself (a final symlink is not followed). `None` if it does not exist.
    pub fn lstat(&self, path: &Path) -> Result<Option<Metadata>, HostError> {
        let Some((dir, name)) = self.open_parent(path)? else {
            return Ok(None);
        };
        match fstatat(
            Some(dir.as_raw_fd()),
            name,
            AtFlags::AT_SYMLINK_NOFOLLOW | AtFlags::AT_EMPTY_PATH,
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
                let st =
                    fstat(fd.as_raw_fd()).map_err(|e| HostError::io("stat", path.display(), e))?;
                Ok(Some(metadata(&st)))
            }
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => Ok(None),
            Err(e) => Err(HostError::io("stat", path.display(), e)),
        }
    }

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

    /// Names in a directory as bytes (a name that is not UTF-8 is listed like any other), sorted
    /// bytewise. Empty if the directory does not exist; a
    /// directory that cannot be read, or a file where the directory should be, is an error.
    pub fn list_dir(&self, path: &Path) -> Result<Vec<OsString>, HostError> {
        let fd = match self.open_in_root(path, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(Vec::new()),
            Err(Errno::ENOTDIR) => {
                return Err(HostError::Invalid {
                    path: path.display().to_string(),
                    reason: "is not a directory".into(),
                })
            }
            Err(e) => return Err(HostError::io("open directory", path.display(), e)),
        };
        names_in(fd).map_err(|e| HostError::io("read directory", path.display(), e))
    }
}

/// The descriptor's metadata if it is a regular file of at most [`MAX_READ`] bytes; otherwise an
/// error that names the path and what it is.
fn regular_of_bounded_size(path: &Path, fd: &OwnedFd) -> Result<FileStat, HostError> {
    let st = fstat(fd.as_raw_fd()).map_err(|e| HostError::io("stat", path.display(), e))?;
    if st.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFREG.bits() {
        return Err(HostError::Invalid {
            path: path.display().to_string(),
            reason: format!("is {}, not a regular file", describe(st.st_mode)),
        });
    }
    if st.st_size as u64 > MAX_READ {
        return Err(too_large(path, Some(st.st_size as u64)));
    }
    Ok(st)
}

fn too_large(path: &Path, size: Option<u64>) -> HostError {
    let size = size.map_or(String::new(), |size| format!(" ({size} bytes)"));
    HostError::Invalid {
        path: path.display().to_string(),
        reason: format!(
            "is larger than {} MiB{size}, the most the agent reads from one file",
            MAX_READ >> 20
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStringExt;

    fn root() -> (tempfile::TempDir, RootFs) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        let fs = RootFs::open(dir.path()).unwrap();
        (dir, fs)
    }

    #[test]
    fn a_fifo_is_refused_by_name_without_blocking() {
        let (dir, fs) = root();
        nix::unistd::mkfifo(
            &dir.path().join("etc/passwd"),
            nix::sys::stat::Mode::S_IRWXU,
        )
        .unwrap();
        let err = fs.read(Path::new("/etc/passwd")).unwrap_err().to_string();
        assert_eq!(err, "/etc/passwd: is a FIFO, not a regular file");
    }

    #[test]
    fn a_socket_and_a_directory_are_refused_by_name() {
        let (dir, fs) = root();
        let _socket = std::os::unix::net::UnixListener::bind(dir.path().join("etc/s")).unwrap();
        std::fs::create_dir(dir.path().join("etc/d")).unwrap();
        let err = fs.read(Path::new("/etc/s")).unwrap_err().to_string();
        assert_eq!(err, "/etc/s: is a socket, not a regular file");
        let err = fs.read_text(Path::new("/etc/d")).unwrap_err().to_string();
        assert_eq!(err, "/etc/d: is a directory, not a regular file");
    }

    #[test]
    fn a_file_over_the_limit_is_refused_naming_the_limit() {
        let (dir, fs) = root();
        let file = std::fs::File::create(dir.path().join("etc/big")).unwrap();
        file.set_len(MAX_READ + 1).unwrap();
        let err = fs.read(Path::new("/etc/big")).unwrap_err().to_string();
        assert_eq!(
            err,
            "/etc/big: is larger than 4 MiB (4194305 bytes), the most the agent reads from one file"
        );
        file.set_len(MAX_READ).unwrap();
        assert_eq!(
            fs.read(Path::new("/etc/big")).unwrap().unwrap().len() as u64,
            MAX_READ
        );
    }

    #[test]
    fn text_that_is_not_utf8_is_an_error_for_editors_and_lossy_for_parsers() {
        let (dir, fs) = root();
        std::fs::write(
            dir.path().join("etc/passwd"),
            b"core:x:500:500:Jos\xe9:/home/core:\n",
        )
        .unwrap();
        assert!(fs.read_text(Path::new("/etc/passwd")).is_err());
        let text = fs
            .read_text_lossy(Path::new("/etc/passwd"))
            .unwrap()
            .unwrap();
        assert_eq!(text, "core:x:500:500:Jos\u{fffd}:/home/core:\n");
    }

    #[test]
    fn names_that_are_not_utf8_are_listed_bytewise_sorted() {
        let (dir, fs) = root();
        let latin1 = OsString::from_vec(b"caf\xe9".to_vec());
        for name in [OsStr::new("b"), latin1.as_os_str(), OsStr::new("a")] {
            std::fs::write(dir.path().join("etc").join(name), "").unwrap();
        }
        let names = fs.list_dir(Path::new("/etc")).unwrap();
        assert_eq!(
            names,
            vec![OsString::from("a"), OsString::from("b"), latin1]
        );
    }

    #[test]
    fn a_missing_directory_is_empty_and_a_file_in_its_place_is_an_error() {
        let (dir, fs) = root();
        assert!(fs.list_dir(Path::new("/etc/missing.d")).unwrap().is_empty());
        std::fs::write(dir.path().join("etc/file.d"), "").unwrap();
        let err = fs
            .list_dir(Path::new("/etc/file.d"))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "/etc/file.d: is not a directory");
    }
}
