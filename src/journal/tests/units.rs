//! Journal records of what a run told systemd and the kernel beside its files (a daemon reload,
//! a restart, an enablement, audit rules loaded), and how revert repeats them once the files are
//! back.

use std::fs;

use super::super::{self as journal, read, record, revert};
use super::{applied, journaled, write};
use crate::controls::{execute, Action};
use crate::host::Host;

/// sshd-config with a daemon-mode sshd: the drop-in write and the reload of `sshd.service` are
/// both recorded; revert removes the drop-in, then reloads the daemon so it forgets it, and a
/// second revert does neither.
#[test]
fn a_daemon_reload_is_recorded_and_revert_reloads_after_the_files_are_back() {
    use crate::controls::UnitAction;
    let (root, host) = journaled();
    let dropin = "/etc/ssh/sshd_config.d/00-flatcar-harden.conf";
    execute(&host, &[write(&host, dropin, "PermitRootLogin no\n")]).unwrap();
    let reload = Action::Unit(UnitAction::ReloadUnit("sshd.service".into()));
    // The record is written before the action (which needs PID 1, absent here).
    journal::before(&host, &reload).unwrap();
    let id = host
        .journal
        .borrow()
        .as_ref()
        .unwrap()
        .run()
        .unwrap()
        .id
        .clone();
    host.journal.replace(None);

    let run = read::load(&host, &id).unwrap();
    assert!(matches!(
        &run.records[1].object,
        record::Object::UnitReload { unit } if unit == "sshd.service"
    ));
    let steps = revert::steps(&run, &[], false);
    let plan = steps[0].assess(&host).unwrap();
    assert_eq!(plan.actions.len(), 2, "{plan:?}");
    assert!(
        matches!(&plan.actions[0], Action::RemoveFile { path, .. } if path.ends_with("00-flatcar-harden.conf"))
    );
    assert!(
        matches!(&plan.actions[1], Action::Unit(UnitAction::ReloadUnit(unit)) if unit == "sshd.service")
    );
    execute(&host, &plan.actions[..1]).unwrap();
    assert!(!root.path().join(&dropin[1..]).exists());
    let again = steps[0].assess(&host).unwrap();
    assert!(
        again.actions.is_empty() && again.problems.is_empty(),
        "{again:?}"
    );
}

/// A run that edited a rules file and loaded the audit rules: revert puts the file back and then
/// loads the rules again, on a running system only (an image's next boot loads its files).
#[test]
fn loaded_audit_rules_are_loaded_again_after_the_files_are_back() {
    let (root, host) = journaled();
    let id = applied(&host);
    journal::before(&host, &Action::LoadAuditRules).unwrap();
    host.journal.replace(None);
    let run = read::load(&host, &id).unwrap();
    assert_eq!(
        run.records.last().unwrap().object,
        record::Object::AuditRulesLoaded
    );
    let kinds = |host: &Host| -> Vec<&'static str> {
        let plan = revert::steps(&run, &[], false)[0].assess(host).unwrap();
        plan.actions.iter().map(|a| a.change().kind).collect()
    };
    assert_eq!(kinds(&host), ["remove-file", "write-file"], "an image");
    let kernel = tempfile::tempdir().unwrap();
    fs::create_dir_all(kernel.path().join("proc")).unwrap();
    let live = Host::open(root.path()).unwrap().with_kernel(kernel.path());
    assert_eq!(
        kinds(&live),
        ["remove-file", "write-file", "load-audit-rules"],
        "the files first, then the rules loaded from them"
    );
}

/// A unit's enablement is a record the reader accepts and `runs` names.
#[test]
fn a_unit_enablement_record_reads_back() {
    let object = record::Object::UnitEnabled {
        unit: "auditd.service".into(),
        enabled_before: false,
        enabled_after: true,
    };
    let json = serde_json::to_string(&object).unwrap();
    assert!(json.contains(r#""object":"unit-enabled""#), "{json}");
    let back: record::Object = serde_json::from_str(&json).unwrap();
    assert_eq!(back, object);
}

#[test]
fn a_run_that_restarted_a_unit_for_its_files_restarts_it_again_once_they_are_restored() {
    use record::{Object, Record};
    let (_root, host) = journaled();
    host.journal
        .borrow_mut()
        .as_mut()
        .unwrap()
        .set_control("sshd-listen");
    let id = applied(&host);
    host.journal.replace(None);
    let mut run = read::load(&host, &id).unwrap();
    // What the sshd-listen apply records after its drop-in: the reload, then the restart (no
    // systemd here to run them; revert's plan is what is checked).
    for object in [
        Object::Reload,
        Object::Restart {
            unit: "sshd.socket".into(),
        },
    ] {
        let seq = run.records.len() as u32 + 1;
        run.records.push(Record {
            seq,
            control: "sshd-listen".into(),
            object,
        });
    }
    let steps = revert::steps(&run, &[], false);
    let plan = steps[0].assess(&host).unwrap();
    let kinds: Vec<&str> = plan.actions.iter().map(|a| a.change().kind).collect();
    assert_eq!(
        kinds,
        ["remove-file", "write-file", "daemon-reload", "restart-unit"],
        "{plan:?}"
    );
    assert_eq!(
        plan.actions[3].change().target.as_deref(),
        Some("sshd.socket")
    );
    // The files put back (without systemd: only the file actions), nothing is left to restart.
    crate::controls::execute(&host, &plan.actions[..2]).unwrap();
    let again = steps[0].assess(&host).unwrap();
    assert!(again.actions.is_empty(), "{again:?}");
}
