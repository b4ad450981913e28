//! sshd.socket masked and stopped.
//!
//! The guide: `systemctl mask sshd.socket --now`. On the running host that is done through PID 1's
//! D-Bus API exactly as systemctl does it: `MaskUnitFiles`, `Reload`, `StopUnit`. Connections
//! already open live in their own `sshd@….service` units and survive; no new one can be made.
//! In an image (`--root`), the mask is the link systemctl would leave,
//! `/etc/systemd/system/sshd.socket -> /dev/null`, and takes effect at boot.

use std::path::{Path, PathBuf};

use super::units::{masked_for_good, unit_file_exists, UnitAction, ETC_UNITS};
use super::{Action, Control, ControlError, Disposition, Plan};
use crate::host::fs::FileKind;
use crate::host::session::Session;
use crate::host::systemd::UnitStatus;
use crate::host::Host;
use crate::policy::{self, SshdSocketState};

pub const UNIT: &str = "sshd.socket";
pub const DEV_NULL: &str = "/dev/null";

pub struct SshdSocket {
    policy: policy::SshdSocket,
}

impl SshdSocket {
    pub fn new(policy: policy::SshdSocket) -> Self {
        SshdSocket { policy }
    }
}

pub enum State {
    /// What PID 1 says, and the persistent mask link in /etc (if any): the agent's generator
    /// masks the unit for the boot too, in `/run/systemd/generator.early`, which systemd reports
    /// as `masked-runtime` whether or not /etc has the mask.
    Live(UnitStatus, Option<PathBuf>),
    /// An image: the mask link (if any) and whether a regular file sits where it would go.
    Offline {
        exists: bool,
        mask_link: Option<PathBuf>,
        regular_file: bool,
    },
}

fn mask_path() -> PathBuf {
    Path::new(ETC_UNITS).join(UNIT)
}

impl Control for SshdSocket {
    type State = State;

    const ID: &'static str = "sshd-socket";
    const TITLE: &'static str = "sshd.socket masked";
    type Section = policy::SshdSocket;

    fn section(&self) -> &policy::SshdSocket {
        &self.policy
    }

    fn observe(&self, host: &Host) -> Result<State, ControlError> {
        if host.is_live() {
            let status = host.systemd()?.unit_status(UNIT)?;
            return Ok(State::Live(status, host.fs.read_link(&mask_path())?));
        }
        let path = mask_path();
        Ok(State::Offline {
            exists: unit_file_exists(host, UNIT)?,
            mask_link: host.fs.read_link(&path)?,
            regular_file: host
                .fs
                .lstat(&path)?
                .is_some_and(|m| m.kind == FileKind::Regular),
        })
    }

    fn plan(&self, state: &State) -> Result<Plan, ControlError> {
        let mask = self.policy.state == SshdSocketState::Masked;
        match state {
            State::Live(status, etc_link) => Ok(plan_live(mask, status, etc_link.as_deref())),
            State::Offline {
                exists,
                mask_link,
                regular_file,
            } => Ok(plan_offline(
                mask,
                *exists,
                mask_link.as_deref(),
                *regular_file,
            )),
        }
    }

    fn lockout_risk(&self, _session: &Session) -> Option<String> {
        (self.policy.state == SshdSocketState::Masked).then(|| {
            "sshd.socket stops listening: no new SSH connection can be made (open sessions \
             survive), the console is the only way in"
                .to_owned()
        })
    }
}

fn plan_live(mask: bool, status: &UnitStatus, etc_link: Option<&Path>) -> Plan {
    // Masked for good: in /etc (a runtime mask, the generator's included, goes with the boot).
    let masked = masked_for_good(&status.unit_file_state, etc_link);
    let active = !matches!(status.active_state.as_str(), "inactive" | "failed");
    if status.load_state == "not-found" && !masked {
        return Plan::with(
            Disposition::NotApplicable,
            "there is no sshd.socket on this host",
        );
    }
    let mut actions = Vec::new();
    let summary = if mask {
        if !masked {
            actions.push(UnitAction::Mask(UNIT.into()));
            actions.push(UnitAction::Reload);
        }
        if active {
            actions.push(UnitAction::Stop(UNIT.into()));
        }
        if actions.is_empty() {
            "sshd.socket is masked and stopped".to_owned()
        } else {
            format!(
                "sshd.socket is {} and {}: mask and stop it",
                status.unit_file_state, status.active_state
            )
        }
    } else {
        if status.unit_file_state.starts_with("masked") {
            actions.push(UnitAction::Unmask(UNIT.into()));
            actions.push(UnitAction::Reload);
        }
        if status.active_state != "active" {
            actions.push(UnitAction::Start(UNIT.into()));
        }
        if actions.is_empty() {
            "sshd.socket is unmasked and listening".to_owned()
        } else {
            format!(
                "sshd.socket is {} and {}: unmask and start it",
                status.unit_file_state, status.active_state
            )
        }
    };
    let mut plan = Plan::managed(summary);
    plan.actions = actions.into_iter().map(Action::Unit).collect();
    plan
}

fn plan_offline(mask: bool, exists: bool, mask_link: Option<&Path>, regular_file: bool) -> Plan {
    let path = mask_path();
    let masked = mask_link == Some(Path::new(DEV_NULL));
    let mut plan = Plan::managed("");
    if mask && regular_file {
        plan.problems.push(format!(
            "{} is a unit file, not a link: systemctl refuses to mask over it; move it away",
            path.display()
        ));
    } else if mask && !masked {
        plan.actions.push(Action::Unit(UnitAction::Link {
            path: path.clone(),
            target: PathBuf::from(DEV_NULL),
        }));
    } else if !mask && masked {
        plan.actions
            .push(Action::Unit(UnitAction::Unlink { path: path.clone() }));
    }
    if !mask && !exists {
        plan.problems.push(format!(
            "there is no {UNIT} unit file in the image to enable"
        ));
    }
    let (summary, at_boot) = if mask {
        (
            "mask sshd.socket",
            "masked: sshd.socket stays down from the next boot",
        )
    } else {
        (
            "unmask sshd.socket",
            "unmasked: sshd.socket listens from the next boot",
        )
    };
    plan.summary = if plan.actions.is_empty() {
        format!("image: sshd.socket {at_boot}")
    } else {
        format!("image: {summary} ({})", path.display())
    };
    plan.pending
        .push(format!("takes effect at boot: {at_boot}"));
    plan
}

#[cfg(test)]
mod tests;
