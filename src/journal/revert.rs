//! `flatcar-harden revert`: each control a run changed becomes a [`RevertStep`], which the engine
//! runs like any control — observe, plan, act, verify by observing again.
//!
//! Per object (a file, a unit's mask, a unit's running state, a socket's group, a kernel
//! setting) the run's first record holds what was there before and its last record what the run
//! left. Now equal to before: nothing to do (a second revert changes nothing). Equal to what the
//! run left: put the old state back. Anything else was changed after the run: a conflict, left
//! alone and reported (exit 1) unless `--force`.
//!
//! Order: unit files and files first (newest first), then `daemon-reload` if the run reloaded,
//! then the runtime state (newest first): a unit is unmasked before it can be started, a drop-in
//! is gone before systemd reads its unit again, then the live socket is regrouped, and a unit the
//! run restarted to take up its files is restarted again to take up the restored ones.

use std::path::{Path, PathBuf};

mod objects;

use super::read::{control_id, Run};
use super::record::{image, is_active, is_enabled, Object};
use crate::controls::UnitAction;
use crate::controls::{Action, ControlError, Outcome, Plan, Step};
use crate::host::kernel::same_value;
use crate::host::session::Session;
use crate::host::Host;
use objects::{compare, describe, key, restore_file, set_after, Found};

/// The steps that revert `run`, newest control first; `only` limits them to some controls.
pub fn steps(run: &Run, only: &[String], force: bool) -> Vec<Box<dyn Step>> {
    let titles = crate::controls::all(&crate::policy::Policy::default());
    run.controls()
        .into_iter()
        .rev()
        .filter(|id| only.is_empty() || only.iter().any(|o| o == id))
        .map(|id| {
            let records = run
                .records
                .iter()
                .filter(|r| control_id(&r.control) == Some(id));
            let mut step = RevertStep {
                id,
                title: titles
                    .iter()
                    .find(|s| s.id() == id)
                    .map_or("", |s| s.title()),
                run: run.meta.id.clone(),
                objects: Vec::new(),
                reload: false,
                reload_units: Vec::new(),
                audit_rules: false,
                restarts: Vec::new(),
                unloaded: Vec::new(),
                force,
            };
            for record in records {
                step.add(&record.object);
            }
            Box::new(step) as Box<dyn Step>
        })
        .collect()
}

/// Undoes one control's part of a run.
pub struct RevertStep {
    id: &'static str,
    title: &'static str,
    run: String,
    /// One per object, in the order the run first touched them; `before` from the first record
    /// of it, `after` from the last.
    objects: Vec<Object>,
    reload: bool,
    /// Daemons the run told to read their configuration again: told again once the files are
    /// back.
    reload_units: Vec<String>,
    /// The run loaded audit rules: load them again once the files are back.
    audit_rules: bool,
    /// Units the run restarted, in order.
    restarts: Vec<String>,
    unloaded: Vec<String>,
    force: bool,
}

impl RevertStep {
    fn add(&mut self, object: &Object) {
        match object {
            Object::Reload => self.reload = true,
            Object::UnitReload { unit } => {
                if !self.reload_units.contains(unit) {
                    self.reload_units.push(unit.clone());
                }
            }
            Object::AuditRulesLoaded => self.audit_rules = true,
            Object::Restart { unit } => {
                if !self.restarts.contains(unit) {
                    self.restarts.push(unit.clone());
                }
            }
            Object::ModuleUnloaded { module } => {
                if !self.unloaded.contains(module) {
                    self.unloaded.push(module.clone());
                }
            }
            _ => match self.objects.iter_mut().find(|o| key(o) == key(object)) {
                None => self.objects.push(object.clone()),
                Some(first) => set_after(first, object),
            },
        }
    }

    fn conflict(&self, what: &str, now: &str, left: &str) -> String {
        format!(
            "{what} changed after run {}: it is {now}, the run left {left}; left alone \
             (revert --force puts the old state back anyway)",
            self.run
        )
    }
}

impl Step for RevertStep {
    fn id(&self) -> &'static str {
        self.id
    }

    fn title(&self) -> &'static str {
        self.title
    }

    fn assess(&self, host: &Host) -> Result<Plan, ControlError> {
        let mut plan = Plan::managed("");
        let mut persistent = Vec::new();
        let mut runtime = Vec::new();
        for object in self.objects.iter().rev() {
            match object {
                Object::File {
                    path,
                    before,
                    after,
                    created_dirs,
                } => {
                    let path = Path::new(path);
                    let now = image(host, path)?;
                    match compare(&now, before, after) {
                        Found::AsBefore => continue,
                        Found::Changed if !self.force => {
                            plan.problems.push(self.conflict(
                                &path.display().to_string(),
                                &describe(&now),
                                &describe(after),
                            ));
                            continue;
                        }
                        _ => persistent.push(restore_file(host, path, before, &now, created_dirs)?),
                    }
                }
                Object::UnitFile {
                    unit,
                    masked_before,
                    masked_after,
                } => {
                    let now = crate::controls::is_masked_for_good(host, unit)?;
                    let word = |masked: bool| if masked { "masked" } else { "not masked" };
                    match compare(&now, masked_before, masked_after) {
                        Found::AsBefore => continue,
                        Found::Changed if !self.force => {
                            plan.problems
                                .push(self.conflict(unit, word(now), word(*masked_after)))
                        }
                        _ => persistent.push(Action::Unit(if *masked_before {
                            UnitAction::Mask(unit.clone())
                        } else {
                            UnitAction::Unmask(unit.clone())
                        })),
                    }
                }
                Object::UnitEnabled {
                    unit,
                    enabled_before,
                    enabled_after,
                } => {
                    let now = is_enabled(&host.systemd()?.unit_status(unit)?.unit_file_state);
                    let word = |on: bool| if on { "enabled" } else { "disabled" };
                    match compare(&now, enabled_before, enabled_after) {
                        Found::AsBefore => continue,
                        Found::Changed if !self.force => {
                            plan.problems
                                .push(self.conflict(unit, word(now), word(*enabled_after)))
                        }
                        _ => persistent.push(Action::Unit(if *enabled_before {
                            UnitAction::Enable(unit.clone())
                        } else {
                            UnitAction::Disable(unit.clone())
                        })),
                    }
                }
                Object::UnitActive {
                    unit,
                    active_before,
                    active_after,
                } => {
                    let now = is_active(&host.systemd()?.unit_status(unit)?.active_state);
                    let word = |active: bool| if active { "running" } else { "stopped" };
                    match compare(&now, active_before, active_after) {
                        Found::AsBefore => continue,
                        Found::Changed if !self.force => {
                            plan.problems
                                .push(self.conflict(unit, word(now), word(*active_after)))
                        }
                        _ => runtime.push(Action::Unit(if *active_before {
                            UnitAction::Start(unit.clone())
                        } else {
                            UnitAction::Stop(unit.clone())
                        })),
                    }
                }
                Object::SocketGroup {
                    path,
                    gid_before,
                    gid_after,
                } => {
                    // A socket that is gone was made anew by systemd, with the group its unit
                    // says: nothing of the run's is left on it.
                    let Some(meta) = host.fs.lstat(Path::new(path))? else {
                        continue;
                    };
                    match compare(&meta.gid, gid_before, gid_after) {
                        Found::AsBefore => continue,
                        Found::Changed if !self.force => plan.problems.push(self.conflict(
                            path,
                            &format!("group {}", meta.gid),
                            &format!("group {gid_after}"),
                        )),
                        _ => runtime.push(Action::Unit(UnitAction::SocketGroup {
                            path: PathBuf::from(path),
                            from: meta.gid,
                            to: *gid_before,
                        })),
                    }
                }
                Object::KernelSetting {
                    path,
                    before,
                    after,
                    one_way: true,
                } => plan.notes.push(format!(
                    "{path}: run {} raised it from {before} to {after}, and the running kernel \
                     cannot lower it: it stays at {after} until the next boot, which follows \
                     the restored kernel command line",
                    self.run
                )),
                Object::KernelSetting {
                    path,
                    before,
                    after,
                    one_way: false,
                } => {
                    let Some(kernel) = host.kernel() else {
                        plan.problems.push(format!(
                            "{path} is a setting of a running kernel, and there is none under \
                             this root"
                        ));
                        continue;
                    };
                    let now = kernel.read(path)?.unwrap_or_default();
                    // As the kernel prints it: `1\t2` is the `1 2` the run wrote.
                    let found = if same_value(&now, before) {
                        Found::AsBefore
                    } else if same_value(&now, after) {
                        Found::AsLeft
                    } else {
                        Found::Changed
                    };
                    match found {
                        Found::AsBefore => continue,
                        Found::Changed if !self.force => {
                            plan.problems.push(self.conflict(path, &now, after))
                        }
                        _ => runtime.push(Action::WriteKernelSetting {
                            path: path.clone(),
                            value: before.clone(),
                            before: now,
                        }),
                    }
                }
                Object::Reload
                | Object::UnitReload { .. }
                | Object::Restart { .. }
                | Object::AuditRulesLoaded
                | Object::ModuleUnloaded { .. } => {}
            }
        }
        let restored = !persistent.is_empty();
        if restored {
            runtime.extend(
                self.reload_units
                    .iter()
                    .map(|unit| Action::Unit(UnitAction::ReloadUnit(unit.clone()))),
            );
        }
        if self.reload && restored {
            persistent.push(Action::Unit(UnitAction::Reload));
            // The restored files are read; a unit that only takes them up when it starts again
            // (a socket's addresses) is restarted, as the run did.
            runtime.extend(
                self.restarts
                    .iter()
                    .map(|unit| Action::Unit(UnitAction::Restart(unit.clone()))),
            );
        }
        // The kernel holds the rules the run loaded until they are loaded again from the files
        // put back; an image has no kernel to load them into (its next boot loads the files).
        if self.audit_rules && restored && host.kernel().is_some() {
            persistent.push(Action::LoadAuditRules);
        }
        plan.actions = persistent.into_iter().chain(runtime).collect();
        let mut summary = if plan.actions.is_empty() && plan.problems.is_empty() {
            format!("as before run {}", self.run)
        } else if plan.problems.is_empty() {
            format!("put back what run {} changed", self.run)
        } else {
            format!(
                "put back what run {} changed, except what was changed after it",
                self.run
            )
        };
        if !self.unloaded.is_empty() {
            summary.push_str(&format!(
                "; {} unloaded by that run {} not loaded back (modules load on demand)",
                self.unloaded.join(", "),
                if self.unloaded.len() == 1 {
                    "is"
                } else {
                    "are"
                }
            ));
        }
        plan.summary = summary;
        Ok(plan)
    }

    fn apply(&self, host: &Host, plan: &Plan) -> Result<Vec<Outcome>, ControlError> {
        // core-login's edit of /etc/passwd holds the shadow-utils lock; so does putting it back.
        let _lock = match self.id {
            "core-login" => Some(host.lock_passwd()?),
            _ => None,
        };
        crate::controls::execute(host, &plan.actions)
    }

    fn lockout_risk(&self, _session: &Session) -> Option<String> {
        None
    }
}
