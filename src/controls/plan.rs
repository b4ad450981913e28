//! The plan vocabulary: what a control found ([`Plan`], [`Disposition`]), the changes it wants
//! ([`Action`]), what became of them ([`Outcome`]), and the executor that carries them out.

use std::path::PathBuf;

use super::units;
use super::{ControlError, FileWrite};
use crate::host::kernel::PROC_SYS;
use crate::host::kmod::Unload;
use crate::host::Host;
use crate::report::Change;

/// How the control stands towards the policy before any action is counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// The policy governs it; status follows from actions, problems and pending work.
    Managed,
    /// The policy says leave it alone.
    Unmanaged,
    /// Nothing to govern on this host (no core user, no docker.socket).
    NotApplicable,
    /// Reverted because an `apply --confirm-within` was not confirmed: left as it is until the
    /// operator applies by hand or confirms that run.
    Held,
}

/// What a control found and what it would do about it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub disposition: Disposition,
    /// One line: the state found, or what the actions achieve.
    pub summary: String,
    pub actions: Vec<Action>,
    /// Drift the agent must not or cannot fix by itself; each names the file, line and fix.
    pub problems: Vec<String>,
    /// What only a reboot brings (written to disk but not in effect yet).
    pub pending: Vec<String>,
    /// Warnings that do not change the status (a check that could not be made, and why).
    pub notes: Vec<String>,
}

impl Plan {
    pub fn with(disposition: Disposition, summary: impl Into<String>) -> Plan {
        Plan {
            disposition,
            summary: summary.into(),
            actions: Vec::new(),
            problems: Vec::new(),
            pending: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn managed(summary: impl Into<String>) -> Plan {
        Plan::with(Disposition::Managed, summary)
    }
}

/// A change to the host.
#[derive(Debug, Clone)]
pub enum Action {
    WriteFile(FileWrite),
    UnloadModule(String),
    /// Write a sysfs attribute or a `/proc/sys` setting of the running kernel (`echo value >
    /// path`); `before` is what it held when the plan was made.
    WriteKernelSetting {
        path: String,
        value: String,
        before: String,
    },
    /// Raise a setting the running kernel only lets go up (`/sys/kernel/security/lockdown`),
    /// written as `WriteKernelSetting` is; `before` is the level when the plan was made. No
    /// revert can write it back: the journal notes it, and it stays until the next boot.
    RaiseKernelSetting {
        path: String,
        value: String,
        before: String,
    },
    /// systemd units: mask, reload, stop, … (see `units.rs`).
    Unit(units::UnitAction),
    /// `augenrules --load`: the rules of `/etc/audit/rules.d` into the running kernel.
    LoadAuditRules,
    /// Remove the file at `path` (`before`: its content, for the diff), then each of
    /// `empty_dirs` (innermost first) if nothing is left in it: a revert taking away a file its
    /// run created, and the directories created for it.
    RemoveFile {
        path: PathBuf,
        before: Option<Vec<u8>>,
        empty_dirs: Vec<PathBuf>,
    },
}

/// What became of one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Could not take effect now; it will at the next boot.
    Pending(String),
}

impl Action {
    pub fn change(&self) -> Change {
        match self {
            Action::WriteFile(write) => write.change(),
            Action::Unit(unit) => unit.change(),
            Action::LoadAuditRules => Change {
                kind: "load-audit-rules",
                path: None,
                target: Some("/etc/audit/rules.d".to_owned()),
                diff: None,
                detail: "augenrules --load".to_owned(),
            },
            Action::UnloadModule(module) => Change {
                kind: "unload-module",
                path: None,
                target: Some(module.clone()),
                diff: None,
                detail: "delete_module, as modprobe -r".to_owned(),
            },
            Action::RemoveFile {
                path,
                before,
                empty_dirs,
            } => {
                let shown = path.display().to_string();
                let diff = before.as_deref().filter(|b| !b.is_empty()).map(|old| {
                    similar::TextDiff::from_lines(String::from_utf8_lossy(old).as_ref(), "")
                        .unified_diff()
                        .context_radius(3)
                        .header(&shown, "/dev/null")
                        .to_string()
                });
                let mut detail = "remove".to_owned();
                if !empty_dirs.is_empty() {
                    let dirs: Vec<String> =
                        empty_dirs.iter().map(|d| d.display().to_string()).collect();
                    detail.push_str(&format!(", then {} if empty", dirs.join(", ")));
                }
                Change {
                    kind: "remove-file",
                    path: Some(shown),
                    target: None,
                    diff,
                    detail,
                }
            }
            Action::WriteKernelSetting {
                path,
                value,
                before,
            }
            | Action::RaiseKernelSetting {
                path,
                value,
                before,
            } => Change {
                kind: if path.starts_with(PROC_SYS) {
                    "write-sysctl"
                } else {
                    "write-sysfs"
                },
                path: None,
                target: Some(path.clone()),
                diff: None,
                detail: match self {
                    Action::RaiseKernelSetting { .. } => format!(
                        "{before} -> {value} (one way: the kernel cannot lower it until the \
                         next boot)"
                    ),
                    _ => format!("{before} -> {value}"),
                },
            },
        }
    }
}

/// Carries out actions in order; the first error stops this control (others still run). Before
/// each action, the journal (when a run keeps one) records the prior state of what it touches.
pub fn execute(host: &Host, actions: &[Action]) -> Result<Vec<Outcome>, ControlError> {
    let mut outcomes = Vec::with_capacity(actions.len());
    for action in actions {
        crate::journal::before(host, action)?;
        let outcome = match action {
            Action::WriteFile(write) => {
                write.apply(host)?;
                Outcome::Done
            }
            Action::Unit(unit) => {
                unit.apply(host)?;
                Outcome::Done
            }
            Action::LoadAuditRules => {
                running_kernel(host, "load", "the audit rules")?;
                crate::host::audit::load_rules(host)?;
                Outcome::Done
            }
            Action::UnloadModule(module) => {
                match running_kernel(host, "unload", module)?.unload_module(module)? {
                    Unload::Removed | Unload::NotLoaded => Outcome::Done,
                    Unload::InUse => Outcome::Pending(format!(
                        "{module} is in use and stays loaded until the next boot, where the deny \
                     rule keeps it out"
                    )),
                }
            }
            Action::RemoveFile {
                path, empty_dirs, ..
            } => {
                host.fs.remove(path)?;
                for dir in empty_dirs {
                    host.fs.remove_empty_dir(dir)?;
                }
                Outcome::Done
            }
            Action::WriteKernelSetting { path, value, .. }
            | Action::RaiseKernelSetting { path, value, .. } => {
                running_kernel(host, &format!("write `{value}` to"), path)?.write(path, value)?;
                Outcome::Done
            }
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// The running kernel, for an action that changes it: an image has none, and such an action is
/// never planned for one; if it were, it fails rather than touching the build machine.
fn running_kernel<'h>(
    host: &'h Host,
    what: &str,
    object: &str,
) -> Result<&'h crate::host::kernel::Kernel, ControlError> {
    host.kernel().ok_or_else(|| {
        ControlError::Failed(format!(
            "cannot {what} {object}: no running kernel under this root"
        ))
    })
}
