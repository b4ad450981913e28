//! Kernel modules of the running kernel: which are loaded (`/proc/modules`), unloading one
//! (`delete_module(2)`), and kmod's own verdict on loading one (`modprobe -n -v`).

use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::Path;
use std::process::Command;

use nix::errno::Errno;
use nix::kmod::{delete_module, DeleteModuleFlags};

use super::kernel::Kernel;
use super::HostError;

const PROC_MODULES: &str = "/proc/modules";

/// What became of an attempt to unload a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unload {
    Removed,
    /// In use (a mounted USB disk): it stays until the next boot, where the deny rule holds.
    InUse,
    NotLoaded,
}

/// Kernel module names as the kernel spells them (`usb-storage` is loaded as `usb_storage`).
pub fn kernel_name(module: &str) -> String {
    module.replace('-', "_")
}

impl Kernel {
    /// The modules loaded now (kernel names), each with the modules that use it. A kernel built
    /// without module support (no `/proc/modules`) has none.
    pub fn loaded_modules(&self) -> Result<BTreeMap<String, Vec<String>>, HostError> {
        let text = self.fs.read(Path::new(PROC_MODULES))?.unwrap_or_default();
        Ok(String::from_utf8_lossy(&text)
            .lines()
            .filter_map(parse_line)
            .collect())
    }

    /// Unloads a module without waiting (`modprobe -r` without its dependency handling).
    pub fn unload_module(&self, module: &str) -> Result<Unload, HostError> {
        let name = kernel_name(module);
        if !self.running {
            return self.unload_from_tree(&name);
        }
        let c_name = CString::new(name).map_err(|_| HostError::Invalid {
            path: module.to_owned(),
            reason: "module name contains NUL".into(),
        })?;
        match delete_module(&c_name, DeleteModuleFlags::O_NONBLOCK) {
            Ok(()) => Ok(Unload::Removed),
            Err(Errno::EBUSY) | Err(Errno::EAGAIN) => Ok(Unload::InUse),
            Err(Errno::ENOENT) => Ok(Unload::NotLoaded),
            Err(e) => Err(HostError::io("unload module", module, e)),
        }
    }

    /// A kernel tree that is not the running kernel: the module's line leaves `/proc/modules`,
    /// unless another loaded module uses it — what the real kernel answers with EBUSY.
    fn unload_from_tree(&self, name: &str) -> Result<Unload, HostError> {
        let loaded = self.loaded_modules()?;
        let Some(users) = loaded.get(name) else {
            return Ok(Unload::NotLoaded);
        };
        if users.iter().any(|user| loaded.contains_key(user)) {
            return Ok(Unload::InUse);
        }
        let text = self.fs.read(Path::new(PROC_MODULES))?.unwrap_or_default();
        let kept: String = String::from_utf8_lossy(&text)
            .lines()
            .filter(|line| parse_line(line).map_or(true, |(n, _)| n != name))
            .map(|line| format!("{line}\n"))
            .collect();
        self.fs
            .write_in_place(Path::new(PROC_MODULES), kept.as_bytes())
            .map_err(|e| HostError::io("write", PROC_MODULES, e))?;
        Ok(Unload::Removed)
    }

    /// kmod's own view of loading `module`: the lines `modprobe -n -v MODULE` prints (`install
    /// /bin/false`, `insmod /lib/modules/…`), or `None` where that cannot be asked (not the
    /// running kernel, no modprobe, no answer within the timeout).
    pub fn modprobe_dry_run(&self, module: &str) -> Option<ModprobeAnswer> {
        if !self.running {
            return None;
        }
        let modprobe = ["/usr/sbin/modprobe", "/sbin/modprobe", "/usr/bin/modprobe"]
            .into_iter()
            .find(|p| Path::new(p).is_file())?;
        let output = super::command::run_bounded(
            Command::new(modprobe).args(["-n", "-v", module]),
            None,
            MODPROBE_TIMEOUT,
        )
        .ok()?;
        Some(ModprobeAnswer {
            succeeded: output.status.success(),
            lines: String::from_utf8_lossy(&output.stdout)
                .lines()
                .chain(String::from_utf8_lossy(&output.stderr).lines())
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty())
                .collect(),
        })
    }
}

const MODPROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What `modprobe -n -v` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModprobeAnswer {
    pub succeeded: bool,
    pub lines: Vec<String>,
}

impl ModprobeAnswer {
    /// kmod would insert `module` itself (an `insmod …/MODULE.ko` line), rather than run an
    /// install command for it or find it loaded already. The modules it depends on (usbcore for
    /// usb-storage) are inserted before its install command runs, so their lines do not count.
    pub fn would_load(&self, module: &str) -> bool {
        let wanted = kernel_name(module);
        self.lines.iter().any(|line| {
            line.strip_prefix("insmod ")
                .and_then(|path| path.split_whitespace().next())
                .and_then(|path| path.rsplit('/').next())
                .and_then(|file| file.split(".ko").next())
                .is_some_and(|stem| kernel_name(stem) == wanted)
        })
    }
}

/// `usb_storage 86016 1 uas, Live 0x0000000000000000` -> ("usb_storage", ["uas"])
fn parse_line(line: &str) -> Option<(String, Vec<String>)> {
    let mut fields = line.split_whitespace();
    let name = fields.next()?.to_owned();
    let users = fields
        .nth(2)
        .unwrap_or("-")
        .split(',')
        .filter(|user| !user.is_empty() && *user != "-")
        .map(str::to_owned)
        .collect();
    Some((name, users))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_modules_lines() {
        assert_eq!(
            parse_line("usb_storage 86016 1 uas, Live 0x0000000000000000"),
            Some(("usb_storage".into(), vec!["uas".into()]))
        );
        assert_eq!(
            parse_line("uas 32768 0 - Live 0x0"),
            Some(("uas".into(), vec![]))
        );
    }

    #[test]
    fn a_module_in_use_stays_and_a_free_one_leaves_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("proc")).unwrap();
        std::fs::write(
            dir.path().join("proc/modules"),
            "usb_storage 86016 1 uas, Live 0x0\nuas 32768 0 - Live 0x0\n",
        )
        .unwrap();
        let kernel = Kernel::open(dir.path()).unwrap();
        assert_eq!(kernel.unload_module("usb-storage").unwrap(), Unload::InUse);
        assert_eq!(kernel.unload_module("uas").unwrap(), Unload::Removed);
        assert_eq!(kernel.unload_module("uas").unwrap(), Unload::NotLoaded);
        assert_eq!(
            kernel.unload_module("usb-storage").unwrap(),
            Unload::Removed
        );
        assert!(kernel.loaded_modules().unwrap().is_empty());
        assert_eq!(kernel.modprobe_dry_run("usb-storage"), None);
    }

    #[test]
    fn only_the_modules_own_insmod_means_it_would_load() {
        let answer = |lines: &[&str]| ModprobeAnswer {
            succeeded: true,
            lines: lines.iter().map(|l| l.to_string()).collect(),
        };
        // Seen on Debian 12 with `install usb-storage /bin/false`: dependencies first.
        let denied = answer(&[
            "insmod /lib/modules/6.1.0-50-amd64/kernel/drivers/usb/common/usb-common.ko",
            "insmod /lib/modules/6.1.0-50-amd64/kernel/drivers/usb/core/usbcore.ko",
            "install /bin/false",
        ]);
        assert!(!denied.would_load("usb-storage"));
        let loads = answer(&[
            "insmod /lib/modules/6.1.0-50-amd64/kernel/drivers/usb/core/usbcore.ko",
            "insmod /lib/modules/6.1.0-50-amd64/kernel/drivers/usb/storage/usb-storage.ko.xz ",
        ]);
        assert!(loads.would_load("usb-storage"));
        assert!(loads.would_load("usb_storage"));
        assert!(!loads.would_load("uas"));
    }
}
