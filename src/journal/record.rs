//! Writing the journal. The executor calls [`before`] ahead of every action: it observes the prior
//! state of what the action touches and writes the record (temp file, fsync, rename, 0600 in 0700
//! directories) before the action runs. The run directory is created at the first record, so a
//! run that changes nothing leaves no journal.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{record_file, run_dir, time, RunMeta, RunState, FORMAT, RUNS_DIR, RUN_FILE};
use crate::controls::UnitAction;
use crate::controls::{Action, ControlError};
use crate::host::fs::{FileKind, FileSpec};
use crate::host::{Host, HostError};

pub use super::object::{Image, Object};

/// One record file: which control's action, in which order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub seq: u32,
    pub control: String,
    pub object: Object,
}

/// Arms the confirmation timer of a new run; called once, before its first record is written.
pub type Arm = Box<dyn Fn(&Host, &RunMeta) -> Result<(), HostError>>;

/// The journal of the run in progress.
pub struct Recorder {
    command: String,
    /// `--confirm-within`: the deadline and how to arm its timer.
    confirm: Option<(Duration, Arm)>,
    keep: usize,
    /// The control whose actions are being recorded (set by the engine).
    control: &'static str,
    run: Option<RunMeta>,
    seq: u32,
    /// An arming that failed fails every later record the same way: nothing is changed.
    refused: Option<String>,
}

impl Recorder {
    pub fn new(command: String, keep: usize) -> Recorder {
        Recorder {
            command,
            confirm: None,
            keep,
            control: "",
            run: None,
            seq: 0,
            refused: None,
        }
    }

    /// Revert unless confirmed within `window`; `arm` starts the timer before the first change.
    pub fn confirm_within(mut self, window: Duration, arm: Arm) -> Recorder {
        self.confirm = Some((window, arm));
        self
    }

    pub fn set_control(&mut self, id: &'static str) {
        self.control = id;
    }

    /// The run recorded so far, if anything was.
    pub fn run(&self) -> Option<&RunMeta> {
        self.run.as_ref()
    }

    /// The confirmation window, if this run has one.
    pub fn window(&self) -> Option<Duration> {
        self.confirm.as_ref().map(|(window, _)| *window)
    }

    fn write(&mut self, host: &Host, object: Object) -> Result<(), HostError> {
        if let Some(refused) = &self.refused {
            return Err(HostError::Refused(refused.clone()));
        }
        if self.run.is_none() {
            let meta = self.open_run(host)?;
            if let Some((_, arm)) = &self.confirm {
                if let Err(error) = arm(host, &meta) {
                    let _ = remove_run(host, &meta.id);
                    let refused = format!(
                        "cannot arm the confirmation timer, so nothing is changed: {error}"
                    );
                    self.refused = Some(refused.clone());
                    return Err(HostError::Refused(refused));
                }
            }
            self.run = Some(meta);
            prune(host, self.keep)?;
        }
        let id = &self.run.as_ref().expect("opened above").id;
        self.seq += 1;
        let record = Record {
            seq: self.seq,
            control: self.control.to_owned(),
            object,
        };
        write_json(host, &record_file(id, self.seq), &record)
    }

    /// Creates the run directory and `run.json`, under an id not taken yet.
    fn open_run(&self, host: &Host) -> Result<RunMeta, HostError> {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut id = time::run_id(since);
        // Two runs in one millisecond (the run lock makes them sequential): take the next one.
        let mut bump = 1;
        while host.fs.lstat(&run_dir(&id))?.is_some() {
            id = time::run_id(since + Duration::from_millis(bump));
            bump += 1;
        }
        // The journal's own directories are the agent's alone: 0700 where it creates them.
        for dir in super::JOURNAL_DIRS {
            host.fs.ensure_dir(Path::new(dir), 0o700)?;
        }
        let meta = RunMeta {
            format: FORMAT,
            id: id.clone(),
            started: since.as_secs(),
            command: self.command.clone(),
            state: match self.confirm {
                Some(_) => RunState::AwaitingConfirmation,
                None => RunState::Applied,
            },
            deadline: self
                .confirm
                .as_ref()
                .map(|(window, _)| since.as_secs() + window.as_secs()),
            settled: None,
        };
        write_json(host, &run_dir(&id).join(RUN_FILE), &meta)?;
        Ok(meta)
    }
}

/// Records the prior state of what `action` touches, if a journal is open; the record is on disk
/// before this returns, so the action may start.
pub fn before(host: &Host, action: &Action) -> Result<(), ControlError> {
    if host.journal.borrow().is_none() {
        return Ok(());
    }
    let object = prior(host, action)?;
    let mut slot = host.journal.borrow_mut();
    let recorder = slot.as_mut().expect("checked above");
    recorder.write(host, object).map_err(|error| {
        ControlError::Failed(format!(
            "not changed: the journal could not record the prior state: {error}"
        ))
    })
}

/// The prior state of what `action` touches, observed now, and the state it will leave.
pub fn prior(host: &Host, action: &Action) -> Result<Object, HostError> {
    Ok(match action {
        Action::WriteFile(write) => file(host, &write.path, regular(&write.spec))?,
        Action::RemoveFile { path, .. } => file(host, path, Image::Absent)?,
        Action::Unit(UnitAction::Link { path, target }) => file(
            host,
            path,
            Image::Symlink {
                target: target.display().to_string(),
            },
        )?,
        Action::Unit(UnitAction::Unlink { path }) => file(host, path, Image::Absent)?,
        Action::Unit(UnitAction::Mask(unit) | UnitAction::Unmask(unit)) => Object::UnitFile {
            unit: unit.clone(),
            masked_before: crate::controls::is_masked_for_good(host, unit)?,
            masked_after: matches!(action, Action::Unit(UnitAction::Mask(_))),
        },
        Action::Unit(UnitAction::Enable(unit) | UnitAction::Disable(unit)) => Object::UnitEnabled {
            unit: unit.clone(),
            enabled_before: is_enabled(&host.systemd()?.unit_status(unit)?.unit_file_state),
            enabled_after: matches!(action, Action::Unit(UnitAction::Enable(_))),
        },
        Action::Unit(UnitAction::Start(unit) | UnitAction::Stop(unit)) => Object::UnitActive {
            unit: unit.clone(),
            active_before: is_active(&host.systemd()?.unit_status(unit)?.active_state),
            active_after: matches!(action, Action::Unit(UnitAction::Start(_))),
        },
        Action::Unit(UnitAction::Reload) => Object::Reload,
        Action::Unit(UnitAction::ReloadUnit(unit)) => Object::UnitReload { unit: unit.clone() },
        Action::Unit(UnitAction::Restart(unit)) => Object::Restart { unit: unit.clone() },
        Action::Unit(UnitAction::SocketGroup { path, from, to }) => Object::SocketGroup {
            path: path.display().to_string(),
            gid_before: host.fs.lstat(path)?.map_or(*from, |meta| meta.gid),
            gid_after: *to,
        },
        Action::WriteKernelSetting {
            path,
            value,
            before,
        } => Object::KernelSetting {
            path: path.clone(),
            before: match host.kernel() {
                Some(kernel) => kernel.read(path)?.unwrap_or_else(|| before.clone()),
                None => before.clone(),
            },
            after: value.clone(),
            one_way: false,
        },
        // The level as the plan read it (`none`), not the attribute's whole text.
        Action::RaiseKernelSetting {
            path,
            value,
            before,
        } => Object::KernelSetting {
            path: path.clone(),
            before: before.clone(),
            after: value.clone(),
            one_way: true,
        },
        Action::LoadAuditRules => Object::AuditRulesLoaded,
        Action::UnloadModule(module) => Object::ModuleUnloaded {
            module: module.clone(),
        },
    })
}

/// A unit counts as enabled when systemd says `enabled` (links in `/etc` or `/usr`) or
/// `enabled-runtime`; `disabled`, `static`, `masked` and the rest do not start it at boot.
pub fn is_enabled(unit_file_state: &str) -> bool {
    matches!(unit_file_state, "enabled" | "enabled-runtime")
}

/// A unit counts as running unless it is `inactive` or `failed` (as the controls judge it).
pub fn is_active(active_state: &str) -> bool {
    !matches!(active_state, "inactive" | "failed")
}

fn regular(spec: &FileSpec) -> Image {
    Image::Regular {
        mode: spec.mode,
        uid: spec.owner.uid,
        gid: spec.owner.gid,
        content: hex(&spec.content),
    }
}

fn file(host: &Host, path: &Path, after: Image) -> Result<Object, HostError> {
    let mut created_dirs = Vec::new();
    if after != Image::Absent {
        let mut dir = path.parent();
        while let Some(d) = dir.filter(|d| *d != Path::new("/")) {
            if host.fs.lstat(d)?.is_some() {
                break;
            }
            created_dirs.insert(0, d.display().to_string());
            dir = d.parent();
        }
    }
    Ok(Object::File {
        path: path.display().to_string(),
        before: image(host, path)?,
        after,
        created_dirs,
    })
}

/// What is at `path` now, not following a final link.
pub fn image(host: &Host, path: &Path) -> Result<Image, HostError> {
    let Some(meta) = host.fs.lstat(path)? else {
        return Ok(Image::Absent);
    };
    match meta.kind {
        FileKind::Symlink => Ok(Image::Symlink {
            target: host
                .fs
                .read_link(path)?
                .unwrap_or_default()
                .display()
                .to_string(),
        }),
        FileKind::Regular => Ok(Image::Regular {
            mode: meta.mode,
            uid: meta.uid,
            gid: meta.gid,
            content: hex(&host.fs.read(path)?.unwrap_or_default()),
        }),
        FileKind::Directory | FileKind::Other => Err(HostError::Invalid {
            path: path.display().to_string(),
            reason: "is not a regular file or a link".into(),
        }),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes of a hex string; `None` if it is not one.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            let pair = text.get(i..i + 2)?;
            if !pair.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return None;
            }
            u8::from_str_radix(pair, 16).ok()
        })
        .collect()
}

/// One journal file, written atomically: 0600 in directories of 0700, owned by the agent's user.
pub fn write_json(host: &Host, path: &Path, value: &impl Serialize) -> Result<(), HostError> {
    let mut content = serde_json::to_vec_pretty(value).map_err(|e| HostError::Invalid {
        path: path.display().to_string(),
        reason: format!("cannot encode: {e}"),
    })?;
    content.push(b'\n');
    let spec = FileSpec {
        content,
        mode: 0o600,
        owner: host.file_owner(),
        parent_mode: 0o700,
    };
    host.fs.write_atomic(path, &spec, &|_| Ok(()))
}

/// Deletes a run's directory (its files, then the directory).
pub fn remove_run(host: &Host, id: &str) -> Result<(), HostError> {
    let dir = run_dir(id);
    for name in host.fs.list_dir(&dir)? {
        host.fs.remove(&dir.join(name))?;
    }
    host.fs.remove_empty_dir(&dir).map(drop)
}

/// Keeps the newest `keep` runs (the new one among them); a run awaiting confirmation or holding
/// controls is never deleted, since the boot-time apply still needs it.
fn prune(host: &Host, keep: usize) -> Result<(), HostError> {
    let mut ids: Vec<String> = host
        .fs
        .list_dir(Path::new(RUNS_DIR))?
        .into_iter()
        .filter_map(|name| name.into_string().ok())
        .filter(|name| time::is_run_id(name))
        .collect();
    ids.sort();
    let excess = ids.len().saturating_sub(keep);
    for id in &ids[..excess] {
        let meta: Option<RunMeta> = host
            .fs
            .read(&run_dir(id).join(RUN_FILE))?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let needed = meta
            .is_some_and(|m| matches!(m.state, RunState::AwaitingConfirmation | RunState::Held));
        if !needed {
            tracing::info!("journal: deleting run {id} (keeping the newest {keep})");
            remove_run(host, id)?;
        }
    }
    Ok(())
}
