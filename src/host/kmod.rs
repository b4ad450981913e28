//! Loaded kernel modules of the running host (`/proc/modules`, `delete_module(2)`).

use std::collections::BTreeMap;
use std::ffi::CString;

use nix::errno::Errno;
use nix::kmod::{delete_module, DeleteModuleFlags};

use super::HostError;

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

/// The modules loaded now (kernel names), each with the modules that use it.
pub fn loaded() -> Result<BTreeMap<String, Vec<String>>, HostError> {
    match std::fs::read_to_string("/proc/modules") {
        Ok(text) => Ok(text.lines().filter_map(parse_line).collect()),
        // A kernel built without module support (or a container without /proc/modules):
        // nothing is loaded, nothing to unload.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(HostError::io("read", "/proc/modules", e)),
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

/// Unloads a module without waiting (`modprobe -r` without its dependency handling).
pub fn unload(module: &str) -> Result<Unload, HostError> {
    let name = CString::new(kernel_name(module)).map_err(|_| HostError::Invalid {
        path: module.to_owned(),
        reason: "module name contains NUL".into(),
    })?;
    match delete_module(&name, DeleteModuleFlags::O_NONBLOCK) {
        Ok(()) => Ok(Unload::Removed),
        Err(Errno::EBUSY) | Err(Errno::EAGAIN) => Ok(Unload::InUse),
        Err(Errno::ENOENT) => Ok(Unload::NotLoaded),
        Err(e) => Err(HostError::io("unload module", module, e)),
    }
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
}
