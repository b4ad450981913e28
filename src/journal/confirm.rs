//! `apply --confirm-within`: the transient timer that reverts an unconfirmed run at its deadline,
//! `confirm`, and what the boot-time apply owes the runs a reboot interrupted. The deadline lives
//! in the run's `run.json`, so it holds across a reboot even though the timer does not.

use super::read::{self, control_id};
use super::record::write_json;
use super::{now, run_dir, utc, JournalError, RunMeta, RunState, RUN_FILE};
use crate::host::systemd::TransientTimer;
use crate::host::{Host, HostError};

/// `flatcar-harden-revert-RUN-ID`: the timer's name without `.timer`, and its service's.
pub fn timer_name(id: &str) -> String {
    format!("flatcar-harden-revert-{id}")
}

/// Starts the timer that runs `flatcar-harden revert RUN-ID --deadline` at the run's deadline.
pub fn arm(host: &Host, meta: &RunMeta) -> Result<(), HostError> {
    let deadline = meta
        .deadline
        .ok_or_else(|| HostError::Refused(format!("run {} has no deadline to arm", meta.id)))?;
    let exe = std::env::current_exe()
        .map_err(|e| HostError::io("find", "this program (/proc/self/exe)", e))?;
    let argv = vec![
        exe.display().to_string(),
        "revert".to_owned(),
        meta.id.clone(),
        "--deadline".to_owned(),
    ];
    let name = timer_name(&meta.id);
    let description = format!(
        "flatcar-harden: revert run {} unless confirmed by {}",
        meta.id,
        utc(deadline)
    );
    host.systemd()?.start_transient_timer(&TransientTimer {
        name: &name,
        description: &description,
        on_calendar: &utc(deadline),
        argv: &argv,
    })?;
    tracing::info!("armed {name}.timer for {}", utc(deadline));
    Ok(())
}

/// Stops the run's timer, if it is still there (it is gone once it fired, or after a reboot
/// that did not re-arm it).
pub fn disarm(host: &Host, id: &str) -> Result<(), HostError> {
    let timer = format!("{}.timer", timer_name(id));
    let systemd = host.systemd()?;
    if systemd.unit_status(&timer)?.load_state == "not-found" {
        return Ok(());
    }
    systemd.stop(&timer)
}

/// Writes the run's new state.
pub fn set_state(host: &Host, meta: &RunMeta, state: RunState) -> Result<RunMeta, HostError> {
    let mut meta = meta.clone();
    meta.state = state;
    meta.settled = Some(now());
    write_json(host, &run_dir(&meta.id).join(RUN_FILE), &meta)?;
    Ok(meta)
}

/// What `confirm` did, or why it could not (exit 1).
pub enum Confirmed {
    Done(String),
    Refused(String),
}

/// `flatcar-harden confirm [RUN-ID]`: stop the timer and mark the run confirmed. Without an id,
/// the newest run awaiting confirmation. A run whose deadline passed and was reverted (held) is
/// released instead: its controls are applied again by the next apply.
pub fn confirm(host: &Host, id: Option<&str>) -> Result<Confirmed, ConfirmError> {
    let runs = read::runs(host)?;
    let meta = match id {
        Some(id) => read::meta(host, id)?,
        None => match runs
            .iter()
            .rev()
            .find(|m| m.state == RunState::AwaitingConfirmation)
        {
            Some(meta) => meta.clone(),
            None => {
                return Ok(Confirmed::Refused(
                    "no run awaits confirmation (`flatcar-harden runs` lists them)".into(),
                ))
            }
        },
    };
    let deadline = meta.deadline.map(utc).unwrap_or_default();
    match meta.state {
        RunState::AwaitingConfirmation if meta.deadline.is_some_and(|d| d > now()) => {
            disarm(host, &meta.id)?;
            set_state(host, &meta, RunState::Confirmed)?;
            Ok(Confirmed::Done(format!(
                "run {} confirmed; it will not be reverted (deadline was {deadline})",
                meta.id
            )))
        }
        RunState::AwaitingConfirmation => Ok(Confirmed::Refused(format!(
            "run {} expired at {deadline}: it is being reverted (the next boot reverts it if \
             the timer could not)",
            meta.id
        ))),
        RunState::Held => {
            set_state(host, &meta, RunState::Released)?;
            Ok(Confirmed::Refused(format!(
                "run {} expired at {deadline} and was reverted; its controls are no longer \
                 held, so the next apply puts them back",
                meta.id
            )))
        }
        state => Ok(Confirmed::Refused(format!(
            "run {} does not await confirmation (it is {})",
            meta.id,
            state.as_str()
        ))),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Host(#[from] HostError),
}

/// The controls held by runs reverted at their deadline, with the run that holds each.
pub fn held(host: &Host) -> Result<Vec<(&'static str, RunMeta)>, JournalError> {
    let mut held = Vec::new();
    for meta in read::runs(host)? {
        if meta.state != RunState::Held {
            continue;
        }
        let run = read::load(host, &meta.id)?;
        for record in &run.records {
            let id = control_id(&record.control).expect("checked on read");
            if !held.iter().any(|(h, _)| *h == id) {
                held.push((id, meta.clone()));
            }
        }
    }
    Ok(held)
}

/// The controls the boot-time apply will leave alone: those held, and those of runs whose
/// confirmation deadline passed (that apply reverts them first, then holds them). The generator
/// emits nothing for them, so a boot never puts back what the deadline took away.
pub fn held_at_boot(host: &Host) -> Result<Vec<&'static str>, JournalError> {
    let mut ids: Vec<&'static str> = held(host)?.into_iter().map(|(id, _)| id).collect();
    for meta in awaiting(host)?.0 {
        for id in read::load(host, &meta.id)?.controls() {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    Ok(ids)
}

/// An apply by hand: every held run is released.
pub fn release(host: &Host) -> Result<Vec<String>, ConfirmError> {
    let mut released = Vec::new();
    for meta in read::runs(host)? {
        if meta.state == RunState::Held {
            set_state(host, &meta, RunState::Released)?;
            released.push(meta.id);
        }
    }
    Ok(released)
}

/// Runs awaiting confirmation: those whose deadline passed, and those still ahead.
pub fn awaiting(host: &Host) -> Result<(Vec<RunMeta>, Vec<RunMeta>), JournalError> {
    let t = now();
    Ok(read::runs(host)?
        .into_iter()
        .filter(|m| m.state == RunState::AwaitingConfirmation)
        .partition(|m| !m.deadline.is_some_and(|d| d > t)))
}

/// A control held by a run reverted at its deadline: reported `held`, not observed, not changed.
pub struct HeldStep {
    pub id: &'static str,
    pub title: &'static str,
    pub run: RunMeta,
}

impl crate::controls::Step for HeldStep {
    fn id(&self) -> &'static str {
        self.id
    }
    fn title(&self) -> &'static str {
        self.title
    }
    fn assess(&self, _host: &Host) -> Result<crate::controls::Plan, crate::controls::ControlError> {
        Ok(crate::controls::Plan::with(
            crate::controls::Disposition::Held,
            format!(
                "held: run {} was not confirmed by {} and was reverted; `flatcar-harden apply` \
                 by hand (or `flatcar-harden confirm {}`) lets apply change it again",
                self.run.id,
                self.run.deadline.map(utc).unwrap_or_default(),
                self.run.id
            ),
        ))
    }
    fn apply(
        &self,
        _host: &Host,
        _plan: &crate::controls::Plan,
    ) -> Result<Vec<crate::controls::Outcome>, crate::controls::ControlError> {
        Ok(Vec::new())
    }
    fn lockout_risk(&self, _session: &crate::host::session::Session) -> Option<String> {
        None
    }
}
