//! The shadow-utils lock around `/etc/passwd` edits.
//!
//! `lckpwdf(3)` takes a write lock (`fcntl F_SETLKW`) on `/etc/.pwd.lock`; `useradd`, `usermod`,
//! `chsh`, `passwd` and systemd-sysusers all do. Holding the same lock while we re-read and replace
//! `/etc/passwd` means no concurrent edit is lost.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::stat::Mode;

use super::{Host, HostError};

const LOCK_FILE: &str = "/etc/.pwd.lock";
/// glibc's `lckpwdf` gives up after 15 seconds.
const LOCK_TIMEOUT: Duration = Duration::from_secs(15);

/// Held while `/etc/passwd` is being edited; released on drop (closing the descriptor).
pub struct PasswdLock {
    _fd: OwnedFd,
}

impl Host {
    pub fn lock_passwd(&self) -> Result<PasswdLock, HostError> {
        let fd = self
            .fs
            .open_in_root_mode(
                Path::new(LOCK_FILE),
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_NOFOLLOW,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(|e| HostError::io("open", LOCK_FILE, e))?;
        let lock = nix::libc::flock {
            l_type: nix::libc::F_WRLCK as nix::libc::c_short,
            l_whence: nix::libc::SEEK_SET as nix::libc::c_short,
            l_start: 0,
            l_len: 0,
            l_pid: 0,
        };
        let started = Instant::now();
        loop {
            match fcntl(fd.as_raw_fd(), FcntlArg::F_SETLK(&lock)) {
                Ok(_) => return Ok(PasswdLock { _fd: fd }),
                Err(Errno::EACCES) | Err(Errno::EAGAIN) if started.elapsed() < LOCK_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(Errno::EACCES) | Err(Errno::EAGAIN) => {
                    return Err(HostError::Refused(format!(
                        "{LOCK_FILE} is locked by another program (useradd, passwd, …) for more \
                         than {}s; try again when it is done",
                        LOCK_TIMEOUT.as_secs()
                    )))
                }
                Err(e) => return Err(HostError::io("lock", LOCK_FILE, e)),
            }
        }
    }
}

impl Host {
    /// Accounts that can log in on the console with a password: a usable hash in `/etc/shadow`
    /// (not empty, not `*`, not `!`-locked). The lockout guard names them as the way in that
    /// remains when remote access goes.
    pub fn password_logins(&self) -> Result<Vec<String>, HostError> {
        let shadow = self
            .fs
            .read_text(Path::new("/etc/shadow"))?
            .unwrap_or_default();
        Ok(shadow
            .lines()
            .filter_map(|line| {
                let mut fields = line.split(':');
                let (user, hash) = (fields.next()?, fields.next()?);
                let usable = !hash.is_empty() && !hash.starts_with(['*', '!']);
                usable.then(|| user.to_owned())
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_usable_password_hashes_count_as_console_logins() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(
            root.path().join("etc/shadow"),
            "root:$6$salt$hash:19000::::::\ncore:*:19000::::::\nlocked:!$6$x$y:1::::::\nempty::1::::::\n",
        )
        .unwrap();
        let host = Host::open(root.path()).unwrap();
        assert_eq!(host.password_logins().unwrap(), vec!["root".to_owned()]);
    }
}
