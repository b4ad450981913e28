//! The controls: one file each, all behind [`Control`]. A control observes the host, compares it
//! with its part of the policy and plans [`Action`]s; the engine decides whether to carry them out
//! (apply), only show them (dry-run) or report drift (check), and verifies by observing again.

mod core_login;
mod core_sudo;
mod docker_socket;
mod envfile;
mod etcd_locksmith_tls;
mod selinux;
mod smt;
mod sshd_socket;
mod sudoers;
#[cfg(test)]
mod testkit;
mod units;
mod usb_storage;

use std::path::{Path, PathBuf};

use crate::host::fs::{FileKind, FileSpec, Metadata, Owner};
use crate::host::kmod;
use crate::host::session::Session;
use crate::host::{Host, HostError};
use crate::policy::Policy;
use crate::report::Change;

/// Stable ids, in the order a run works through them.
pub const IDS: [&str; 8] = [
    "sshd-socket",
    "docker-socket",
    "core-sudo",
    "core-login",
    "usb-storage",
    "smt",
    "selinux",
    "etcd-locksmith-tls",
];

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("{0}")]
    Failed(String),
}

/// One hardening control: observe → plan → apply; the engine verifies by observing again.
pub trait Control {
    /// What the control reads off the host.
    type State;

    fn id(&self) -> &'static str;
    fn title(&self) -> &'static str;
    /// `Some(reason)` when the policy leaves this control alone: nothing is observed.
    fn unmanaged(&self) -> Option<String>;
    fn observe(&self, host: &Host) -> Result<Self::State, ControlError>;
    fn plan(&self, host: &Host, state: &Self::State) -> Result<Plan, ControlError>;
    /// Carries out the plan. Most controls only need the shared executor.
    fn apply(&self, host: &Host, plan: &Plan) -> Result<Vec<Outcome>, ControlError> {
        execute(host, &plan.actions)
    }
    /// What remote access the plan's changes would take away from this session, if any.
    fn lockout_risk(&self, _session: &Session) -> Option<String> {
        None
    }
}

/// Object-safe face of [`Control`] for the engine.
pub trait Step {
    fn id(&self) -> &'static str;
    fn title(&self) -> &'static str;
    fn assess(&self, host: &Host) -> Result<Plan, ControlError>;
    fn apply(&self, host: &Host, plan: &Plan) -> Result<Vec<Outcome>, ControlError>;
    fn lockout_risk(&self, session: &Session) -> Option<String>;
}

impl<C: Control> Step for C {
    fn id(&self) -> &'static str {
        Control::id(self)
    }
    fn title(&self) -> &'static str {
        Control::title(self)
    }
    fn assess(&self, host: &Host) -> Result<Plan, ControlError> {
        if let Some(reason) = self.unmanaged() {
            return Ok(Plan::with(Disposition::Unmanaged, reason));
        }
        let state = self.observe(host)?;
        self.plan(host, &state)
    }
    fn apply(&self, host: &Host, plan: &Plan) -> Result<Vec<Outcome>, ControlError> {
        Control::apply(self, host, plan)
    }
    fn lockout_risk(&self, session: &Session) -> Option<String> {
        Control::lockout_risk(self, session)
    }
}

/// The controls the policy governs, in run order.
pub fn all(policy: &Policy) -> Vec<Box<dyn Step>> {
    vec![
        Box::new(sshd_socket::SshdSocket::new(policy.sshd_socket.clone())),
        Box::new(docker_socket::DockerSocket::new(
            policy.docker_socket.clone(),
        )),
        Box::new(core_sudo::CoreSudo::new(policy.core_sudo.clone())),
        Box::new(core_login::CoreLogin::new(policy.core_login.clone())),
        Box::new(usb_storage::UsbStorage::new(policy.usb_storage.clone())),
        Box::new(smt::Smt::new(policy.smt.clone())),
        Box::new(selinux::Selinux::new(policy.selinux.clone())),
        Box::new(etcd_locksmith_tls::EtcdLocksmithTls::new(
            policy.etcd_locksmith_tls.clone(),
        )),
    ]
}

/// How the control stands towards the policy before any action is counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// The policy governs it; status follows from actions, problems and pending work.
    Managed,
    /// The policy says leave it alone.
    Unmanaged,
    /// Nothing to govern on this host (no core user, no docker.socket).
    NotApplicable,
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
    /// Write a sysfs attribute of the running kernel (`echo value > path`); `before` is what it
    /// held when the plan was made.
    WriteKernelSetting {
        path: String,
        value: String,
        before: String,
    },
    /// systemd units: mask, reload, stop, … (see `units.rs`).
    Unit(units::UnitAction),
}

/// What became of one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Could not take effect now; it will at the next boot.
    Pending(String),
}

/// Extra validation a file needs before it replaces the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validation {
    None,
    /// `visudo -c -f` on the candidate, then `visudo -c` on the whole configuration.
    Sudoers,
}

/// A file to (re)write, with what was there when the plan was made.
#[derive(Debug, Clone)]
pub struct FileWrite {
    pub path: PathBuf,
    pub spec: FileSpec,
    pub before: Option<Vec<u8>>,
    pub before_meta: Option<Metadata>,
    pub validation: Validation,
    /// For a symlink at `path` (which the write replaces): its target's content, so the diff
    /// shows what the new file changes rather than a file from nothing.
    pub linked: Option<Vec<u8>>,
}

impl FileWrite {
    /// The write that brings `path` to `spec`, or `None` when it already has that content, mode,
    /// owner and is a regular file: the common path reads and compares, nothing more.
    pub fn plan(
        host: &Host,
        path: &Path,
        spec: FileSpec,
        validation: Validation,
    ) -> Result<Option<FileWrite>, HostError> {
        Ok(FileWrite::from_current(
            path,
            spec,
            validation,
            Current::read(host, path)?,
        ))
    }

    /// As [`FileWrite::plan`], from what observe already read: no I/O.
    pub fn from_current(
        path: &Path,
        spec: FileSpec,
        validation: Validation,
        current: Current,
    ) -> Option<FileWrite> {
        let Current {
            meta: before_meta,
            content: before,
            linked,
        } = current;
        let in_place = before_meta.is_some_and(|m| {
            m.kind == FileKind::Regular
                && m.mode == spec.mode
                && (m.uid, m.gid) == (spec.owner.uid, spec.owner.gid)
        }) && before.as_deref() == Some(&spec.content[..]);
        if in_place {
            return None;
        }
        Some(FileWrite {
            path: path.to_path_buf(),
            spec,
            before,
            before_meta,
            validation,
            linked,
        })
    }

    fn apply(&self, host: &Host) -> Result<(), ControlError> {
        // Someone may have edited the file since it was read; never overwrite an edit unseen.
        let (_, now) = current(host, &self.path)?;
        if now != self.before {
            return Err(ControlError::Failed(format!(
                "{} changed while this run was planning; nothing written, run again",
                self.path.display()
            )));
        }
        let check_candidate = |candidate: &Path| match self.validation {
            Validation::Sudoers => host.visudo_check_file(candidate).map(drop),
            Validation::None => Ok(()),
        };
        host.fs
            .write_atomic(&self.path, &self.spec, &check_candidate)?;
        if self.validation == Validation::Sudoers {
            if let Err(broken) = host.visudo_check_all() {
                self.roll_back(host)?;
                return Err(ControlError::Failed(format!(
                    "{broken}; {} was put back as it was",
                    self.path.display()
                )));
            }
        }
        Ok(())
    }

    fn roll_back(&self, host: &Host) -> Result<(), HostError> {
        match (&self.before, self.before_meta) {
            (Some(content), Some(meta)) => host.fs.write_atomic(
                &self.path,
                &FileSpec {
                    content: content.clone(),
                    mode: meta.mode,
                    owner: Owner {
                        uid: meta.uid,
                        gid: meta.gid,
                    },
                    parent_mode: self.spec.parent_mode,
                },
                &|_| Ok(()),
            ),
            _ => host.fs.remove(&self.path),
        }
    }

    fn change(&self) -> Change {
        let mut detail = Vec::new();
        match self.before_meta {
            None => detail.push(format!(
                "create, mode {:04o}, owner {}:{}",
                self.spec.mode, self.spec.owner.uid, self.spec.owner.gid
            )),
            // A link's own mode and owner mean nothing; say what the new file gets.
            Some(meta) if meta.kind == FileKind::Symlink => detail.push(format!(
                "replace symlink with a regular file, mode {:04o}, owner {}:{}",
                self.spec.mode, self.spec.owner.uid, self.spec.owner.gid
            )),
            Some(meta) => {
                if meta.mode != self.spec.mode {
                    detail.push(format!("mode {:04o} -> {:04o}", meta.mode, self.spec.mode));
                }
                if (meta.uid, meta.gid) != (self.spec.owner.uid, self.spec.owner.gid) {
                    detail.push(format!(
                        "owner {}:{} -> {}:{}",
                        meta.uid, meta.gid, self.spec.owner.uid, self.spec.owner.gid
                    ));
                }
            }
        }
        let shown_before = self.before.as_deref().or(self.linked.as_deref());
        let before = shown_before.unwrap_or_default();
        let diff = (before != &self.spec.content[..]).then(|| {
            let old = String::from_utf8_lossy(before);
            let new = String::from_utf8_lossy(&self.spec.content);
            let shown = self.path.display().to_string();
            let (from, to) = if shown_before.is_some() {
                (shown.clone(), shown)
            } else {
                ("/dev/null".to_owned(), shown)
            };
            if self.before.is_some() {
                detail.push("edit".to_owned());
            }
            similar::TextDiff::from_lines(old.as_ref(), new.as_ref())
                .unified_diff()
                .context_radius(3)
                .header(&from, &to)
                .to_string()
        });
        Change {
            kind: "write-file",
            path: Some(self.path.display().to_string()),
            target: None,
            diff,
            detail: detail.join(", "),
        }
    }
}

/// A file as observe found it: what is at the path (a final link not followed), a regular file's
/// content, and for a symlink its target's content (only shown in diffs, never compared).
#[derive(Debug, Clone, Default)]
pub struct Current {
    pub meta: Option<Metadata>,
    pub content: Option<Vec<u8>>,
    pub linked: Option<Vec<u8>>,
}

impl Current {
    pub fn read(host: &Host, path: &Path) -> Result<Current, HostError> {
        let (meta, content) = current(host, path)?;
        // A link that cannot be followed just shows no old side.
        let linked = match meta {
            Some(meta) if meta.kind == FileKind::Symlink => host.fs.read(path).ok().flatten(),
            _ => None,
        };
        Ok(Current {
            meta,
            content,
            linked,
        })
    }
}

/// What is at `path` now (without following a final link) and, for a regular file, its content.
fn current(host: &Host, path: &Path) -> Result<(Option<Metadata>, Option<Vec<u8>>), HostError> {
    let meta = host.fs.lstat(path)?;
    let content = match meta {
        Some(meta) if meta.kind == FileKind::Regular => host.fs.read(path)?,
        _ => None,
    };
    Ok((meta, content))
}

impl Action {
    pub fn change(&self) -> Change {
        match self {
            Action::WriteFile(write) => write.change(),
            Action::Unit(unit) => unit.change(),
            Action::UnloadModule(module) => Change {
                kind: "unload-module",
                path: None,
                target: Some(module.clone()),
                diff: None,
                detail: "delete_module, as modprobe -r".to_owned(),
            },
            Action::WriteKernelSetting {
                path,
                value,
                before,
            } => Change {
                kind: "write-sysfs",
                path: None,
                target: Some(path.clone()),
                diff: None,
                detail: format!("{before} -> {value}"),
            },
        }
    }
}

/// Carries out actions in order; the first error stops this control (others still run).
pub fn execute(host: &Host, actions: &[Action]) -> Result<Vec<Outcome>, ControlError> {
    let mut outcomes = Vec::with_capacity(actions.len());
    for action in actions {
        let outcome = match action {
            Action::WriteFile(write) => {
                write.apply(host)?;
                Outcome::Done
            }
            Action::Unit(unit) => {
                unit.apply(host)?;
                Outcome::Done
            }
            Action::UnloadModule(module) => match kmod::unload(module)? {
                kmod::Unload::Removed | kmod::Unload::NotLoaded => Outcome::Done,
                kmod::Unload::InUse => Outcome::Pending(format!(
                    "{module} is in use and stays loaded until the next boot, where the deny \
                     rule keeps it out"
                )),
            },
            Action::WriteKernelSetting { path, value, .. } => {
                let kernel = host.kernel().ok_or_else(|| {
                    ControlError::Failed(format!(
                        "cannot write `{value}` to {path}: no running kernel under this root"
                    ))
                })?;
                kernel.write(path, value)?;
                Outcome::Done
            }
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}
