//! Locks a run holds: the run lock (one flatcar-harden at a time per machine) and the
//! shadow-utils lock around `/etc/passwd` edits.
//!
//! `lckpwdf(3)` takes a write lock (`fcntl F_SETLKW`) on `/etc/.pwd.lock`; `useradd`, `usermod`,
//! `chsh`, `passwd` and systemd-sysusers all do. Holding the same lock while we re-read and replace
//! `/etc/passwd` means no concurrent edit is lost.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;

use tracing::{debug, info};

use super::{Host, HostError};

const PASSWD_LOCK_FILE: &str = "/etc/.pwd.lock";
/// glibc's `lckpwdf` gives up after 15 seconds.
const LOCK_TIMEOUT: Duration = Duration::from_secs(15);

const RUN_LOCK_PATH: &str = "/run/flatcar-harden.lock";
const RUN_LOCK_WAIT: Duration = Duration::from_secs(120);

/// Holds the run lock until dropped.
pub struct RunLock {
    _lock: Flock<File>,
}

/// One run at a time per machine: `flock` on `/run/flatcar-harden.lock` (on an unprivileged run,
/// which cannot write `/run`, the user's runtime directory).
pub fn run_lock() -> Result<RunLock, String> {
    // Never follow a link or block on a FIFO planted where the lock goes.
    let open = |path: &Path| {
        File::options()
            .create(true)
            .append(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
            .open(path)
    };
    let path = match open(Path::new(RUN_LOCK_PATH)) {
        Ok(_) => PathBuf::from(RUN_LOCK_PATH),
        // Only a run that may not write /run falls back; anything else there is an error.
        Err(e)
            if e.kind() == std::io::ErrorKind::PermissionDenied
                || e.raw_os_error() == Some(nix::libc::EROFS) =>
        {
            std::env::var_os("XDG_RUNTIME_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir)
                .join(format!("flatcar-harden-{}.lock", nix::unistd::geteuid()))
        }
        Err(e) => return Err(format!("cannot open lock file {RUN_LOCK_PATH}: {e}")),
    };
    let mut file =
        open(&path).map_err(|e| format!("cannot open lock file {}: {e}", path.display()))?;
    let started = Instant::now();
    let mut told = false;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => {
                debug!("holding {}", path.display());
                return Ok(RunLock { _lock: lock });
            }
            Err((back, Errno::EWOULDBLOCK)) if started.elapsed() < RUN_LOCK_WAIT => {
                file = back;
                if !told {
                    info!(
                        "waiting for another flatcar-harden run to finish ({})",
                        path.display()
                    );
                    told = true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err((_, Errno::EWOULDBLOCK)) => {
                return Err(format!(
                    "another flatcar-harden run has held {} for {}s; is one stuck?",
                    path.display(),
                    RUN_LOCK_WAIT.as_secs()
                ))
            }
            Err((_, e)) => return Err(format!("cannot lock {}: {e}", path.display())),
        }
    }
}

/// Held while `/etc/passwd` is being edited; released on drop (closing the descriptor).
pub struct PasswdLock {
    _fd: OwnedFd,
}

impl Host {
    pub fn lock_passwd(&self) -> Result<PasswdLock, HostError> {
        let fd = self
            .fs
            .open_in_root_mode(
                Path::new(PASSWD_LOCK_FILE),
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_NOFOLLOW,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(|e| HostError::io("open", PASSWD_LOCK_FILE, e))?;
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
                        "{PASSWD_LOCK_FILE} is locked by another program (useradd, passwd, …) for more \
                         than {}s; try again when it is done",
                        LOCK_TIMEOUT.as_secs()
                    )))
                }
                Err(e) => return Err(HostError::io("lock", PASSWD_LOCK_FILE, e)),
            }
        }
    }
}
