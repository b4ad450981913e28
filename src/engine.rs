//! A run: every control observed and planned first, then (apply only) changed in a fixed order and
//! verified by observing again. A control that fails while applying does not stop the others; one
//! that cannot even be observed stops every write (nothing is validated until all is read).

use std::time::{Duration, Instant};

use tracing::{debug, info};

use crate::controls::{Action, Disposition, Outcome, Plan, Step};
use crate::host::session::Origin;
use crate::host::Host;
use crate::policy::Policy;
use crate::report::{Change, ControlReport, Mode, Status};

/// Runs `steps` in `mode`; `on_report` sees each control's report as soon as it is known.
pub fn run(
    host: &Host,
    policy: &Policy,
    steps: &[Box<dyn Step>],
    mode: Mode,
    on_report: &mut dyn FnMut(ControlReport),
) {
    // Observe and plan everything before the first write.
    let plans: Vec<(Result<Plan, String>, Duration)> = steps
        .iter()
        .map(|step| {
            let started = Instant::now();
            let plan = step.assess(host).map_err(|e| e.to_string());
            (plan, started.elapsed())
        })
        .collect();

    // Validate everything before the first write: a control that cannot be observed (a FIFO
    // where a file should be, an unreadable directory, systemd out of reach) holds every write.
    let unobserved: Vec<&str> = steps
        .iter()
        .zip(&plans)
        .filter(|(_, (plan, _))| plan.is_err())
        .map(|(step, _)| step.id())
        .collect();

    for (step, (plan, observed_in)) in steps.iter().zip(plans) {
        let started = Instant::now();
        let mut report = match plan {
            Err(error) => failed(step.as_ref(), format!("cannot observe: {error}")),
            Ok(plan) => match mode {
                Mode::Check | Mode::DryRun => report_plan(host, policy, step.as_ref(), plan, mode),
                Mode::Apply if !unobserved.is_empty() && !plan.actions.is_empty() => {
                    held(step.as_ref(), plan, &unobserved)
                }
                Mode::Apply => apply(host, policy, step.as_ref(), plan),
            },
        };
        let took = observed_in + started.elapsed();
        report.duration_ms = took.as_millis() as u64;
        debug!(
            control = step.id(),
            status = report.status.as_str(),
            "took {took:?}"
        );
        on_report(report);
    }
}

fn base(step: &dyn Step, status: Status, summary: String) -> ControlReport {
    ControlReport {
        id: step.id(),
        title: step.title(),
        status,
        summary,
        changes: Vec::new(),
        notes: Vec::new(),
        duration_ms: 0,
    }
}

fn failed(step: &dyn Step, summary: String) -> ControlReport {
    info!("{}: {summary}", step.id());
    base(step, Status::Failed, summary)
}

/// A plan with changes, not applied because another control could not be observed.
fn held(step: &dyn Step, plan: Plan, unobserved: &[&str]) -> ControlReport {
    let mut report = failed(
        step,
        format!(
            "not applied: nothing is written while a control cannot be observed ({}); fix \
             what its report names, or leave it out with --only",
            unobserved.join(", ")
        ),
    );
    report.changes = plan.actions.iter().map(Action::change).collect();
    report
}

/// Status of a plan with nothing (left) to do.
fn settled(step: &dyn Step, plan: &Plan) -> ControlReport {
    let status = match plan.disposition {
        Disposition::Unmanaged => Status::Skipped,
        Disposition::NotApplicable => Status::NotApplicable,
        Disposition::Held => Status::Held,
        Disposition::Managed if !plan.problems.is_empty() => Status::Failed,
        Disposition::Managed if !plan.pending.is_empty() => Status::PendingReboot,
        Disposition::Managed => Status::Compliant,
    };
    let mut report = base(step, status, plan.summary.clone());
    report.notes.extend(plan.problems.iter().cloned());
    report.notes.extend(plan.pending.iter().cloned());
    report.notes.extend(plan.notes.iter().cloned());
    report
}

/// The lockout guard: a change that can cut remote access, on the live host, in an SSH login (or
/// where that cannot be told), without the policy's acknowledgment, is refused. At boot (a system
/// service, no login) the policy is applied as written. The session's origin is asked only here,
/// once a change that can lock out is planned: logind hears nothing from a compliant run.
fn lockout(host: &Host, policy: &Policy, step: &dyn Step) -> Option<String> {
    if !host.is_live() || policy.safety.allow_remote_lockout {
        return None;
    }
    let loss = step.lockout_risk(&host.session)?;
    let origin = match host.session.origin() {
        Origin::Local(why) => {
            debug!("{}: lockout guard: not an SSH login ({why})", step.id());
            return None;
        }
        Origin::Remote(why) => format!("this run comes over SSH ({why})"),
        Origin::Unknown(why) => format!("cannot tell whether this run comes over SSH ({why})"),
    };
    let remains = match host.password_logins() {
        Ok(users) if users.is_empty() => {
            "no account has a password, so the console will not let anyone in either".to_owned()
        }
        Ok(users) => format!(
            "the way in that remains: console login as {}",
            users.join(", ")
        ),
        Err(error) => format!("cannot tell which console logins remain ({error})"),
    };
    Some(format!(
        "refused: {origin} and {loss}; {remains}. Make sure the console works, then set \
         `allow_remote_lockout = true` in [safety] to go ahead"
    ))
}

fn report_plan(
    host: &Host,
    policy: &Policy,
    step: &dyn Step,
    plan: Plan,
    mode: Mode,
) -> ControlReport {
    if plan.actions.is_empty() {
        return settled(step, &plan);
    }
    let mut report = settled(step, &plan);
    if report.status != Status::Failed {
        report.status = Status::WouldChange;
    }
    report.changes = plan.actions.iter().map(Action::change).collect();
    if let Some(refusal) = lockout(host, policy, step) {
        let note = if mode == Mode::DryRun {
            format!("apply would refuse this: {refusal}")
        } else {
            refusal
        };
        report.notes.push(note);
    }
    report
}

fn apply(host: &Host, policy: &Policy, step: &dyn Step, plan: Plan) -> ControlReport {
    if plan.actions.is_empty() {
        return settled(step, &plan);
    }
    // With `--confirm-within`, a timer gives back whatever this takes away (see confirm_note).
    let comes_back = confirm_note(host, step);
    if comes_back.is_none() {
        if let Some(refusal) = lockout(host, policy, step) {
            let mut report = failed(step, refusal);
            report.changes = plan.actions.iter().map(Action::change).collect();
            return report;
        }
    }
    info!("{}: {}", step.id(), plan.summary);
    let changes: Vec<Change> = plan.actions.iter().map(Action::change).collect();
    if let Some(journal) = host.journal.borrow_mut().as_mut() {
        journal.set_control(step.id());
    }
    let outcomes = match step.apply(host, &plan) {
        Ok(outcomes) => outcomes,
        Err(error) => return failed(step, error.to_string()),
    };
    // Outcomes come in the order of the actions: remember which changes wait for a reboot.
    let mut pending = Vec::new();
    let mut deferred = Vec::new();
    for (change, outcome) in changes.iter().zip(outcomes) {
        if let Outcome::Pending(why) = outcome {
            pending.push(why);
            deferred.push(change);
        }
    }

    // Verify: observe again; only what could not take effect before a reboot may remain.
    let after = match step.assess(host) {
        Ok(after) => after,
        Err(error) => return failed(step, format!("applied, but cannot verify: {error}")),
    };
    let unverified: Vec<String> = after
        .actions
        .iter()
        .map(Action::change)
        // An action that reported itself pending (an in-use module) is planned again: that is
        // the pending part, not a failure.
        .filter(|change| !deferred.contains(&change))
        .map(|change| {
            format!(
                "{} {}",
                change.kind,
                change.path.or(change.target).unwrap_or_default()
            )
        })
        .collect();
    let mut report = if !unverified.is_empty() {
        failed(
            step,
            format!(
                "applied, but the host still differs: {}",
                unverified.join(", ")
            ),
        )
    } else if !after.problems.is_empty() {
        let mut report = base(step, Status::Failed, plan.summary.clone());
        report.notes.extend(after.problems.iter().cloned());
        report
    } else if !pending.is_empty() || !after.pending.is_empty() {
        base(step, Status::PendingReboot, plan.summary.clone())
    } else {
        base(step, Status::Changed, plan.summary.clone())
    };
    report.changes = changes;
    report.notes.extend(comes_back);
    report.notes.extend(pending);
    report.notes.extend(after.pending.iter().cloned());
    report.notes.extend(plan.notes);
    report
}

/// `apply --confirm-within` over SSH: a lockout-class change goes ahead without
/// `allow_remote_lockout`, because the armed timer reverts it unless confirmed. The note names
/// what is lost and when it comes back. `None`: no timer on this run, or nothing at stake.
fn confirm_note(host: &Host, step: &dyn Step) -> Option<String> {
    let window = host.journal.borrow().as_ref()?.window()?;
    let loss = step.lockout_risk(&host.session)?;
    let origin = match host.session.origin() {
        Origin::Local(_) => return None,
        Origin::Remote(why) => format!("this run comes over SSH ({why})"),
        Origin::Unknown(why) => format!("this run may come over SSH ({why})"),
    };
    Some(format!(
        "{origin} and {loss}; it comes back by itself {}s after \
         its first change unless `flatcar-harden confirm` is run first",
        window.as_secs()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controls::{Control, ControlError, Outcome};

    /// A control whose plan never empties: apply reports `outcome` for its one action.
    struct Stubborn {
        outcome: Outcome,
    }

    /// Always managed.
    struct Managed;

    impl crate::controls::Managed for Managed {
        const KEY: &'static str = "state";
        fn is_unmanaged(&self) -> bool {
            false
        }
    }

    impl Control for Stubborn {
        const ID: &'static str = "usb-storage";
        const TITLE: &'static str = "stubborn";
        type Section = Managed;
        type State = ();
        fn section(&self) -> &Managed {
            &Managed
        }
        fn observe(&self, _host: &Host) -> Result<(), ControlError> {
            Ok(())
        }
        fn plan(&self, _state: &()) -> Result<Plan, ControlError> {
            let mut plan = Plan::managed("uas is loaded: unload");
            plan.actions.push(Action::UnloadModule("uas".into()));
            Ok(plan)
        }
        fn apply(&self, _host: &Host, _plan: &Plan) -> Result<Vec<Outcome>, ControlError> {
            Ok(vec![self.outcome.clone()])
        }
    }

    fn apply_with(outcome: Outcome) -> ControlReport {
        let root = tempfile::tempdir().unwrap();
        let host = Host::open(root.path()).unwrap();
        let steps: Vec<Box<dyn Step>> = vec![Box::new(Stubborn { outcome })];
        let mut reports = Vec::new();
        run(&host, &Policy::default(), &steps, Mode::Apply, &mut |r| {
            reports.push(r)
        });
        reports.pop().unwrap()
    }

    #[test]
    fn an_action_that_said_it_waits_for_a_reboot_is_pending_not_failed() {
        let report = apply_with(Outcome::Pending("uas is in use".into()));
        assert_eq!(report.status, Status::PendingReboot, "{report:?}");
        assert!(report.notes.iter().any(|n| n == "uas is in use"));
    }

    #[test]
    fn an_action_that_said_done_but_did_not_take_is_a_failure() {
        let report = apply_with(Outcome::Done);
        assert_eq!(report.status, Status::Failed, "{report:?}");
        assert!(
            report.summary.contains("still differs: unload-module uas"),
            "{}",
            report.summary
        );
    }
}
