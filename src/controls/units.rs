//! Changes to systemd units, online through PID 1's D-Bus API and offline (an image under
//! `--root`) as the same files `systemctl` would leave, so both paths end in the same disk state.

use std::path::{Path, PathBuf};

use crate::host::{Host, HostError};
use crate::report::Change;

/// Where `systemctl mask` puts its links, and where drop-ins for the administrator go.
pub const ETC_UNITS: &str = "/etc/systemd/system";
/// Directories systemd loads unit files from, highest priority first.
pub const UNIT_DIRS: [&str; 4] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitAction {
    /// `MaskUnitFiles([unit], runtime=false, force=true)`.
    Mask(String),
    /// `UnmaskUnitFiles([unit], runtime=false)`.
    Unmask(String),
    /// `EnableUnitFiles([unit], runtime=false, force=false)`: the links of its `[Install]`.
    Enable(String),
    /// `DisableUnitFiles([unit], runtime=false)`.
    Disable(String),
    /// `Reload()`: systemd reads unit files and drop-ins again.
    Reload,
    /// `StopUnit(unit, "replace")`, waiting for the job.
    Stop(String),
    /// `StartUnit(unit, "replace")`, waiting for the job.
    Start(String),
    /// `ReloadOrTryRestartUnit(unit, "replace")`: a running daemon reads its configuration again.
    ReloadUnit(String),
    /// `RestartUnit(unit, "replace")` if the unit runs (as `systemctl try-restart`), waiting
    /// until it is active again.
    Restart(String),
    /// In an image: `path -> target` (a mask is `-> /dev/null`).
    Link { path: PathBuf, target: PathBuf },
    /// In an image: remove the link at `path` (an unmask).
    Unlink { path: PathBuf },
    /// Regroup an existing socket file in place: the live socket follows a new `SocketGroup=`
    /// without restarting the socket unit (which would take its service down with it).
    SocketGroup { path: PathBuf, from: u32, to: u32 },
}

impl UnitAction {
    pub fn apply(&self, host: &Host) -> Result<(), HostError> {
        match self {
            UnitAction::Mask(unit) => host.systemd()?.mask(unit),
            UnitAction::Unmask(unit) => host.systemd()?.unmask(unit),
            UnitAction::Enable(unit) => host.systemd()?.enable(unit),
            UnitAction::Disable(unit) => host.systemd()?.disable(unit),
            UnitAction::Reload => host.systemd()?.reload(),
            UnitAction::Stop(unit) => host.systemd()?.stop(unit),
            UnitAction::Start(unit) => host.systemd()?.start(unit),
            UnitAction::ReloadUnit(unit) => host.systemd()?.reload_unit(unit),
            UnitAction::Restart(unit) => host.systemd()?.try_restart(unit),
            UnitAction::Link { path, target } => host.fs.symlink_atomic(path, target, 0o755),
            UnitAction::Unlink { path } => host.fs.remove(path),
            UnitAction::SocketGroup { path, to, .. } => host.fs.chgrp_nofollow(path, *to),
        }
    }

    pub fn change(&self) -> Change {
        let (kind, target, path, detail) = match self {
            UnitAction::Mask(unit) => (
                "mask-unit",
                Some(unit.clone()),
                None,
                "MaskUnitFiles, as systemctl mask".to_owned(),
            ),
            UnitAction::Unmask(unit) => (
                "unmask-unit",
                Some(unit.clone()),
                None,
                "UnmaskUnitFiles, as systemctl unmask".to_owned(),
            ),
            UnitAction::Enable(unit) => (
                "enable-unit",
                Some(unit.clone()),
                None,
                "EnableUnitFiles, as systemctl enable".to_owned(),
            ),
            UnitAction::Disable(unit) => (
                "disable-unit",
                Some(unit.clone()),
                None,
                "DisableUnitFiles, as systemctl disable".to_owned(),
            ),
            UnitAction::Reload => (
                "daemon-reload",
                Some("systemd".to_owned()),
                None,
                "Reload, as systemctl daemon-reload".to_owned(),
            ),
            UnitAction::Stop(unit) => (
                "stop-unit",
                Some(unit.clone()),
                None,
                "StopUnit replace, as systemctl stop".to_owned(),
            ),
            UnitAction::Start(unit) => (
                "start-unit",
                Some(unit.clone()),
                None,
                "StartUnit replace, as systemctl start".to_owned(),
            ),
            UnitAction::ReloadUnit(unit) => (
                "reload-unit",
                Some(unit.clone()),
                None,
                "ReloadOrTryRestartUnit, as systemctl try-reload-or-restart".to_owned(),
            ),
            UnitAction::Restart(unit) => (
                "restart-unit",
                Some(unit.clone()),
                None,
                "RestartUnit replace if running, as systemctl try-restart".to_owned(),
            ),
            UnitAction::Link { path, target } => (
                "create-symlink",
                None,
                Some(path),
                format!("-> {}", target.display()),
            ),
            UnitAction::Unlink { path } => (
                "remove-symlink",
                None,
                Some(path),
                "as systemctl --root unmask".to_owned(),
            ),
            UnitAction::SocketGroup { path, from, to } => (
                "chgrp-socket",
                None,
                Some(path),
                format!("group {from} -> {to}, in place"),
            ),
        };
        Change {
            kind,
            path: path.map(|p| p.display().to_string()),
            target,
            diff: None,
            detail,
        }
    }
}

/// Whether a unit is masked for good: in /etc, where `MaskUnitFiles(runtime=false)` links it and
/// `UnmaskUnitFiles` unlinks it. systemd says `masked-runtime` when a runtime mask (the agent's
/// generator's, in `/run/systemd/generator.early`) hides the unit, with or without the /etc link.
pub fn masked_for_good(unit_file_state: &str, etc_link: Option<&Path>) -> bool {
    unit_file_state == "masked"
        || (unit_file_state == "masked-runtime" && etc_link == Some(Path::new("/dev/null")))
}

/// [`masked_for_good`] on the running host: systemd's state and the /etc link.
pub fn is_masked_for_good(host: &Host, unit: &str) -> Result<bool, HostError> {
    let state = host.systemd()?.unit_status(unit)?.unit_file_state;
    let link = host.fs.read_link(&Path::new(ETC_UNITS).join(unit))?;
    Ok(masked_for_good(&state, link.as_deref()))
}

/// Whether any unit directory under the root has a file (or link) for `unit`.
pub fn unit_file_exists(host: &Host, unit: &str) -> Result<bool, HostError> {
    for dir in UNIT_DIRS {
        if host.fs.lstat(&Path::new(dir).join(unit))?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}
