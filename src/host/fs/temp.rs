//! The agent's temporary files: names that cannot collide, and the removal of those a killed run
//! left behind.
//!
//! A temporary is `.NAME.fh-` and 16 random hex digits, created with `O_EXCL` (a new name on
//! EEXIST): hidden and dotted, so sudo, kmod and systemd all ignore it, and unique even when a
//! later run gets the same PID (a PID namespace in an image build, a repeatable boot). Before it
//! writes into a directory, a run removes the temporaries an interrupted run left there: only names
//! of this pattern (or the `.NAME.fh-PID-N` of earlier versions), only regular files and links,
//! never following a link. The run lock makes sure no other run is writing them at the time.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};

use super::{metadata, names_in, FileKind, RootFs};
use crate::host::HostError;

const MARK: &[u8] = b".fh-";
/// Names tried before giving up: a collision of 64 random bits is already out of reach.
const ATTEMPTS: usize = 16;

impl RootFs {
    /// Creates a new empty temporary file for `name` in `dir`, mode 0600, never through a link.
    pub(super) fn create_temp_file(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        shown: &Path,
    ) -> Result<(OsString, File), HostError> {
        for _ in 0..ATTEMPTS {
            let temp = temp_name(name);
            match openat(
                Some(dir.as_raw_fd()),
                temp.as_os_str(),
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            ) {
                // SAFETY: `openat` returned a fresh descriptor that nothing else owns.
                Ok(fd) => return Ok((temp, File::from(unsafe { OwnedFd::from_raw_fd(fd) }))),
                Err(Errno::EEXIST) => continue,
                Err(e) => {
                    return Err(HostError::io(
                        "create temporary file beside",
                        shown.display(),
                        e,
                    ))
                }
            }
        }
        Err(HostError::io(
            "create temporary file beside",
            shown.display(),
            Errno::EEXIST,
        ))
    }

    /// Removes what an interrupted run left in `dir` (the directory of `shown`): the agent's own
    /// temporaries, regular files or links, nothing else.
    pub(super) fn remove_stale_temporaries(
        &self,
        dir: &OwnedFd,
        shown: &Path,
    ) -> Result<(), HostError> {
        let shown_dir = shown.parent().unwrap_or(Path::new("/"));
        let listing = openat(
            Some(dir.as_raw_fd()),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        // SAFETY: `openat` returned a fresh descriptor that nothing else owns.
        .and_then(|fd| names_in(unsafe { OwnedFd::from_raw_fd(fd) }))
        .map_err(|e| HostError::io("read directory", shown_dir.display(), e))?;
        for name in listing.iter().map(OsString::as_os_str) {
            if !is_own_temporary(name) {
                continue;
            }
            let kind = match fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => metadata(&st).kind,
                Err(Errno::ENOENT) => continue,
                Err(e) => return Err(HostError::io("stat", shown_dir.join(name).display(), e)),
            };
            if !matches!(kind, FileKind::Regular | FileKind::Symlink) {
                continue;
            }
            match unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => tracing::info!(
                    "removed {}, left by an interrupted run",
                    shown_dir.join(name).display()
                ),
                Err(e) => {
                    return Err(HostError::io(
                        "remove stale temporary",
                        shown_dir.join(name).display(),
                        e,
                    ))
                }
            }
        }
        Ok(())
    }
}

/// `.NAME.fh-` and 16 hex digits of randomness.
pub(super) fn temp_name(name: &OsStr) -> OsString {
    let mut temp = Vec::with_capacity(name.len() + 21);
    temp.push(b'.');
    temp.extend_from_slice(name.as_bytes());
    temp.extend_from_slice(MARK);
    temp.extend_from_slice(format!("{:016x}", random_u64()).as_bytes());
    OsString::from_vec(temp)
}

/// Whether `name` is one of the agent's temporaries: `.NAME.fh-` then 16 lowercase hex digits, or
/// `.NAME.fh-PID-N` as earlier versions named them.
pub(super) fn is_own_temporary(name: &OsStr) -> bool {
    let bytes = name.as_bytes();
    if bytes.first() != Some(&b'.') {
        return false;
    }
    let Some(at) = bytes.windows(MARK.len()).rposition(|w| w == MARK) else {
        return false;
    };
    if at < 2 {
        return false;
    }
    let suffix = &bytes[at + MARK.len()..];
    let random = suffix.len() == 16
        && suffix
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
    let pid_counter = match suffix.iter().position(|&b| b == b'-') {
        Some(dash) => {
            let (pid, counter) = (&suffix[..dash], &suffix[dash + 1..]);
            !pid.is_empty()
                && !counter.is_empty()
                && pid.iter().all(u8::is_ascii_digit)
                && counter.iter().all(u8::is_ascii_digit)
        }
        None => false,
    };
    random || pid_counter
}

/// 64 bits from the kernel's random pool; where that fails (a kernel before 3.17), the clock and
/// PID, which `O_EXCL` and a retry make just as safe, if not as unpredictable.
fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    // SAFETY: `buf` is valid for `buf.len()` bytes of writes.
    let got = unsafe {
        nix::libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), nix::libc::GRND_NONBLOCK)
    };
    if got == buf.len() as isize {
        return u64::from_ne_bytes(buf);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporaries_are_recognised_by_their_pattern_only() {
        let new = temp_name(OsStr::new("core-passwd"));
        assert!(new.to_str().unwrap().starts_with(".core-passwd.fh-"));
        assert!(is_own_temporary(&new));
        assert_ne!(new, temp_name(OsStr::new("core-passwd")));
        for ours in [
            ".core-passwd.fh-1234-0",
            ".x.fh-0123456789abcdef",
            ".a.b.fh-1-2",
        ] {
            assert!(is_own_temporary(OsStr::new(ours)), "{ours}");
        }
        for theirs in [
            "core-passwd",
            "core-passwd.fh-1234-0",
            ".core-passwd.fh-",
            ".core-passwd.fh-12x4-0",
            ".core-passwd.fh-0123456789ABCDEF",
            ".core-passwd.fh-0123456789abcde",
            ".fh-1-2",
            ".core-passwd.fh-1234-",
            ".core-passwd.fh-1234-0~",
        ] {
            assert!(!is_own_temporary(OsStr::new(theirs)), "{theirs}");
        }
    }
}
