//! The running kernel's own files: sysfs attributes, `/proc/sys` settings and `/proc/cmdline`.
//!
//! Only a live run has a running kernel to ask. An image (`--root DIR`) has none: its `/sys` and
//! `/proc` are empty mount points, and the build machine's kernel is not the one the image will
//! boot. So [`super::Host::kernel`] is `None` offline, and controls then write only their
//! persistent half (a file read at boot) and report the runtime half as waiting for a boot.
//!
//! The kernel's files are reached through a [`RootFs`] of their own, rooted at `/` on a live host.
//! Unit tests root it at a temporary tree shaped like `/sys` and `/proc` instead, so the same
//! control code runs against a fake kernel without any switch in the shipped binary.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::fs::{FileKind, RootFs};
use super::HostError;

pub const CMDLINE: &str = "/proc/cmdline";

/// Where the running kernel shows its sysctl settings.
pub const PROC_SYS: &str = "/proc/sys";

/// Whether two values of a kernel setting are the same value: the kernel prints several numbers
/// separated by tabs (`4096\t131072\t6291456`) and takes them separated by any blanks.
pub fn same_value(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// sysfs and procfs of the running kernel.
pub struct Kernel {
    pub(super) fs: RootFs,
    /// Rooted at `/`: the kernel this process runs on. Otherwise a tree shaped like `/sys` and
    /// `/proc` (unit tests), where module unloading edits the tree's `/proc/modules`.
    pub(super) running: bool,
}

impl Kernel {
    /// The kernel whose `/sys` and `/proc` are found under `root` (`/` on a live host).
    pub fn open(root: &Path) -> Result<Kernel, HostError> {
        Ok(Kernel {
            fs: RootFs::open(root)?,
            running: root == Path::new("/"),
        })
    }

    /// A sysfs attribute or `/proc/sys` setting without its trailing newline; `None` if the
    /// kernel does not offer it.
    pub fn read(&self, path: &str) -> Result<Option<String>, HostError> {
        Ok(self
            .fs
            .read_text(Path::new(path))?
            .map(|text| text.trim_end().to_owned()))
    }

    /// Whether a sysfs directory exists (`/sys/fs/selinux` only does when SELinux is active).
    pub fn has_dir(&self, path: &str) -> Result<bool, HostError> {
        Ok(self
            .fs
            .stat(Path::new(path))?
            .is_some_and(|meta| meta.kind == FileKind::Directory))
    }

    /// Names in a sysfs directory, sorted; empty if it does not exist. The kernel names its
    /// attributes in ASCII.
    pub fn list(&self, path: &str) -> Result<Vec<String>, HostError> {
        Ok(self
            .fs
            .list_dir(Path::new(path))?
            .into_iter()
            .map(|name| name.to_string_lossy().into_owned())
            .collect())
    }

    /// When the running kernel booted, in seconds since the epoch (`btime` in `/proc/stat`).
    pub fn boot_time(&self) -> Result<Option<u64>, HostError> {
        Ok(self.read("/proc/stat")?.and_then(|stat| {
            stat.lines()
                .find_map(|line| line.strip_prefix("btime "))
                .and_then(|value| value.trim().parse().ok())
        }))
    }

    /// The arguments the running kernel was booted with.
    pub fn cmdline(&self) -> Result<Cmdline, HostError> {
        let text = self
            .fs
            .read_text(Path::new(CMDLINE))?
            .ok_or_else(|| HostError::io("read", CMDLINE, std::io::Error::from(Errno::ENOENT)))?;
        Ok(Cmdline::parse(&text))
    }

    /// Writes `value` to a sysfs attribute or a `/proc/sys` setting, as `echo value > path` does. The kernel answers a
    /// value it does not accept now with EINVAL, EPERM or EBUSY: that is reported as a refusal
    /// naming the attribute and the value, not as an I/O error.
    ///
    /// EBUSY can also be passing: the kernel disables CPU hotplug (what `smt/control` does) while
    /// a PCI driver probes, and at boot udev loads drivers while flatcar-harden.service runs. So
    /// a busy answer is retried for [`BUSY_RETRY`] before it counts as a refusal.
    pub fn write(&self, path: &str, value: &str) -> Result<(), HostError> {
        let started = Instant::now();
        loop {
            match self.fs.write_in_place(Path::new(path), value.as_bytes()) {
                Err(Errno::EBUSY) if started.elapsed() < BUSY_RETRY => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                result => return result.map_err(|errno| write_error(path, value, errno)),
            }
        }
    }
}

/// How long a write answered with EBUSY is retried.
const BUSY_RETRY: Duration = Duration::from_secs(10);

/// Every failed write names the attribute and the value; the answers that mean "not accepted
/// now" (rather than "no such attribute") say that the kernel refused it.
fn write_error(path: &str, value: &str, errno: Errno) -> HostError {
    match errno {
        Errno::EINVAL
        | Errno::EPERM
        | Errno::EACCES
        | Errno::EBUSY
        | Errno::ENODEV
        | Errno::EOPNOTSUPP => HostError::Refused(format!(
            "the kernel refused `{value}` for {path}: {}",
            errno.desc()
        )),
        _ => HostError::Invalid {
            path: path.to_owned(),
            reason: format!("cannot write `{value}`: {}", errno.desc()),
        },
    }
}

/// The kernel command line, split as the kernel splits it: on blanks, with double quotes
/// keeping blanks inside one argument.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmdline(pub Vec<String>);

impl Cmdline {
    pub fn parse(text: &str) -> Cmdline {
        let mut args = Vec::new();
        let mut current = String::new();
        let mut quoted = false;
        for c in text.trim().chars() {
            match c {
                '"' => quoted = !quoted,
                c if c.is_whitespace() && !quoted => {
                    if !current.is_empty() {
                        args.push(std::mem::take(&mut current));
                    }
                }
                c => current.push(c),
            }
        }
        if !current.is_empty() {
            args.push(current);
        }
        Cmdline(args)
    }

    /// The value of the last `key=value` argument: for the parameters read here, the last one
    /// wins, as it does in the kernel.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find_map(|arg| {
            arg.strip_prefix(key)
                .and_then(|rest| rest.strip_prefix('='))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_splits_like_the_kernel() {
        let cmdline = Cmdline::parse(
            "BOOT_IMAGE=/flatcar/vmlinuz-a mitigations=auto,nosmt enforcing=1 \
             acpi_osi=\"!Windows 2012\" enforcing=0\n",
        );
        assert_eq!(cmdline.value("mitigations"), Some("auto,nosmt"));
        assert!(!cmdline.0.iter().any(|a| a == "nosmt"));
        assert_eq!(cmdline.value("enforcing"), Some("0"), "the last one wins");
        assert_eq!(cmdline.value("acpi_osi"), Some("!Windows 2012"));
        assert_eq!(cmdline.value("selinux"), None);
    }

    #[test]
    fn writes_a_fake_attribute_and_reports_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let smt = dir.path().join("sys/devices/system/cpu/smt");
        std::fs::create_dir_all(&smt).unwrap();
        std::fs::write(smt.join("control"), "forceoff\n").unwrap();
        let kernel = Kernel::open(dir.path()).unwrap();
        kernel
            .write("/sys/devices/system/cpu/smt/control", "off")
            .unwrap();
        assert_eq!(
            kernel
                .read("/sys/devices/system/cpu/smt/control")
                .unwrap()
                .as_deref(),
            Some("off"),
            "the old, longer value is truncated"
        );
        let error = kernel.write("/sys/fs/selinux/enforce", "1").unwrap_err();
        assert!(
            error.to_string().contains("/sys/fs/selinux/enforce"),
            "{error}"
        );
        assert!(kernel.cmdline().is_err(), "no /proc/cmdline in this tree");
    }

    #[test]
    fn values_compare_as_the_kernel_prints_them() {
        assert!(same_value("4096\t131072\t6291456", "4096 131072  6291456"));
        assert!(same_value("2", "2"));
        assert!(!same_value("1", "2"));
        assert!(!same_value("1 2", "1"));
    }

    #[test]
    fn a_refused_write_names_the_attribute_and_the_value() {
        for errno in [Errno::EINVAL, Errno::EPERM, Errno::EBUSY] {
            let message =
                write_error("/sys/devices/system/cpu/smt/control", "off", errno).to_string();
            assert!(
                message.contains("refused `off` for /sys/devices/system/cpu/smt/control"),
                "{message}"
            );
        }
        let message = write_error("/sys/fs/selinux/enforce", "1", Errno::EISDIR).to_string();
        assert!(
            message.starts_with("/sys/fs/selinux/enforce: cannot write `1`"),
            "{message}"
        );
    }
}
