//! auditd: unit tests (an image tree shaped like Flatcar's, and plans from observed states).

use super::rules::{excludes_everything, keys, loaded_problems, neutralised};
use super::*;
use crate::controls::testkit::{self, text};
use crate::policy::{AuditdState, Policy};
use crate::report::{ControlReport, Mode, Status};
use std::fs;
use std::os::unix::fs::PermissionsExt;

const FLATCAR_99: &str = "# Always report changes to the audit subsystem itself.\n\
                          -a exclude,never -F msgtype=CONFIG_CHANGE\n\
                          \n\
                          # Ignore everything else.\n\
                          -a exclude,always -F msgtype>0\n";
const UNIT: &str = "[Unit]\nDescription=Security Auditing Service\n\n[Service]\n\
                    ExecStart=/sbin/auditd\nExecStartPost=-/sbin/augenrules --load\n\n\
                    [Install]\nWantedBy=multi-user.target\n";
const WANTS: &str = "/etc/systemd/system/multi-user.target.wants/auditd.service";

/// An image with Flatcar's audit files: auditd installed and disabled, its rules.d.
fn flatcar() -> testkit::Machine {
    let m = testkit::Machine::new("console=ttyS0\n");
    m.root_file("/usr/lib/systemd/system/auditd.service", UNIT);
    m.root_file("/usr/sbin/auditd", "");
    m.root_file("/etc/audit/rules.d/00-clear.rules", "-D\n");
    m.root_file(
        "/etc/audit/rules.d/80-selinux.rules",
        "-a exclude,never -F msgtype>=1400 -F msgtype<=1499\n",
    );
    m.root_file("/etc/audit/rules.d/99-default.rules", FLATCAR_99)
        .chmod("/etc/audit/rules.d/99-default.rules", 0o640);
    m
}

fn run(host: &Host, mode: Mode) -> ControlReport {
    let mut policy = Policy::default();
    policy.auditd.state = AuditdState::Enabled;
    testkit::run(
        host,
        &policy,
        Box::new(Auditd::new(policy.auditd.clone())),
        mode,
    )
}

fn mode_of(m: &testkit::Machine, path: &str) -> u32 {
    fs::metadata(m.root.join(path.trim_start_matches('/')))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn offline_writes_the_rules_neutralises_the_default_and_enables_auditd() {
    let m = flatcar();
    let dry = run(&m.offline(), Mode::DryRun);
    assert_eq!(dry.status, Status::WouldChange, "{}", text(&dry));
    let kinds: Vec<&str> = dry.changes.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, ["write-file", "write-file", "create-symlink"]);
    let diff = dry.changes[1].diff.as_deref().unwrap();
    assert!(
        diff.contains("--- /etc/audit/rules.d/99-default.rules"),
        "{diff}"
    );
    assert!(
        diff.contains("-a exclude,always -F msgtype>0\n+# flatcar-harden: off"),
        "{diff}"
    );
    assert!(
        !m.root
            .join("etc/audit/rules.d/50-flatcar-harden.rules")
            .exists(),
        "dry-run wrote"
    );

    let apply = run(&m.offline(), Mode::Apply);
    assert_eq!(apply.status, Status::PendingReboot, "{}", text(&apply));
    assert_eq!(m.read_root(RULES_FILE), RULES);
    assert_eq!(mode_of(&m, RULES_FILE), 0o640);
    let default = m.read_root("/etc/audit/rules.d/99-default.rules");
    assert!(
        default.contains("\n-a exclude,never -F msgtype=CONFIG_CHANGE\n"),
        "the rest is kept: {default}"
    );
    assert!(!default.lines().any(excludes_everything), "{default}");
    assert_eq!(default.lines().count(), FLATCAR_99.lines().count());
    assert_eq!(mode_of(&m, "/etc/audit/rules.d/99-default.rules"), 0o640);
    assert_eq!(
        fs::read_link(m.root.join(WANTS.trim_start_matches('/'))).unwrap(),
        Path::new("/usr/lib/systemd/system/auditd.service")
    );
    assert_eq!(m.read_root("/etc/audit/rules.d/00-clear.rules"), "-D\n");

    let again = run(&m.offline(), Mode::Apply);
    assert_eq!(again.status, Status::PendingReboot, "{}", text(&again));
    assert!(again.changes.is_empty(), "{:?}", again.changes);
}

#[test]
fn audit_4_s_rule_loader_is_enabled_too_unless_usr_enables_it() {
    let m = flatcar();
    let loader = "[Service]\nType=oneshot\nExecStart=/sbin/augenrules --load\n\n\
                  [Install]\nWantedBy=multi-user.target\n";
    m.root_file("/usr/lib/systemd/system/audit-rules.service", loader);
    let report = run(&m.offline(), Mode::DryRun);
    let links: Vec<_> = report
        .changes
        .iter()
        .filter_map(|c| c.path.clone())
        .collect();
    assert!(
        links.contains(&"/etc/systemd/system/multi-user.target.wants/audit-rules.service".into()),
        "{links:?}"
    );
    // Flatcar enables it from /usr: nothing to add in /etc.
    let wants = m
        .root
        .join("usr/lib/systemd/system/multi-user.target.wants");
    fs::create_dir_all(&wants).unwrap();
    std::os::unix::fs::symlink("../audit-rules.service", wants.join("audit-rules.service"))
        .unwrap();
    let report = run(&m.offline(), Mode::DryRun);
    assert!(
        report
            .changes
            .iter()
            .all(|c| !c.path.as_deref().unwrap_or("").contains("audit-rules")),
        "{:?}",
        report.changes
    );
}

#[test]
fn without_auditd_the_control_is_not_applicable() {
    let m = testkit::Machine::new("console=ttyS0\n");
    let report = run(&m.offline(), Mode::Apply);
    assert_eq!(report.status, Status::NotApplicable, "{}", text(&report));
    assert!(
        report.summary.contains("no auditd.service"),
        "{}",
        report.summary
    );
    let m = flatcar();
    fs::remove_file(m.root.join("usr/sbin/auditd")).unwrap();
    let report = run(&m.offline(), Mode::Apply);
    assert_eq!(report.status, Status::NotApplicable, "{}", text(&report));
    assert!(!m
        .root
        .join("etc/audit/rules.d/50-flatcar-harden.rules")
        .exists());
}

/// The live half, planned from observed states (the VM scenario `auditd` runs it for real).
fn live_state(enabled: bool, active: bool, listing: &str) -> State {
    let m = flatcar();
    let mut state = Auditd::new(policy::Auditd::default())
        .observe(&m.offline())
        .unwrap();
    state.units[0].live = Some((enabled, active));
    state.loaded = Some(Ok(listing.to_owned()));
    state
}

/// What `auditctl -l` lists once the rules are loaded (watches as `-w`, syscall rules with
/// `-F key=`), and Flatcar's own exclude rules.
fn loaded_listing() -> String {
    let mut listing = String::from("-a never,exclude -F msgtype>=1400 -F msgtype<=1499\n");
    for line in RULES.lines().filter(|l| l.starts_with('-')) {
        listing.push_str(
            &line
                .replace(" -k fh-modules", " -F key=fh-modules")
                .replace(" -k fh-time", " -F key=fh-time"),
        );
        listing.push('\n');
    }
    listing
}

fn kinds(plan: &Plan) -> Vec<&'static str> {
    plan.actions.iter().map(|a| a.change().kind).collect()
}

#[test]
fn a_live_host_gets_auditd_enabled_started_and_the_rules_loaded() {
    let control = Auditd::new(policy::Auditd::default());
    let flatcar_loaded =
        "-a never,exclude -F msgtype=CONFIG_CHANGE\n-a always,exclude -F msgtype>0\n";
    let plan = control
        .plan(&live_state(false, false, flatcar_loaded))
        .unwrap();
    assert_eq!(
        kinds(&plan),
        [
            "write-file",
            "write-file",
            "enable-unit",
            "daemon-reload",
            "start-unit",
            "load-audit-rules"
        ]
    );
    assert!(
        plan.summary.contains("drops every record"),
        "{}",
        plan.summary
    );

    // Files in place, auditd running, but the kernel still has Flatcar's rules: load them.
    let mut state = live_state(true, true, flatcar_loaded);
    state.ours.content = Some(RULES.as_bytes().to_vec());
    state.ours.meta = state.others[0]
        .meta
        .map(|m| crate::host::fs::Metadata { mode: 0o640, ..m });
    let fixed = neutralised(FLATCAR_99).unwrap();
    state.others[2].content = Some(fixed.into_bytes());
    let plan = control.plan(&state).unwrap();
    assert_eq!(kinds(&plan), ["load-audit-rules"]);
    assert!(
        plan.summary.contains("0 of 4 rules with key fh-identity"),
        "{}",
        plan.summary
    );

    // Everything in force: nothing to do.
    state.loaded = Some(Ok(loaded_listing()));
    let plan = control.plan(&state).unwrap();
    assert!(plan.actions.is_empty(), "{:?}", kinds(&plan));
    assert!(
        plan.summary.contains("enabled and running"),
        "{}",
        plan.summary
    );

    // auditctl cannot be run: failed, saying why.
    state.loaded = Some(Err("auditctl is not installed".into()));
    let plan = control.plan(&state).unwrap();
    assert!(
        plan.problems[0].contains("auditctl is not installed"),
        "{:?}",
        plan.problems
    );
}

#[test]
fn rules_that_drop_everything_are_told_from_the_rest() {
    for line in [
        "-a exclude,always -F msgtype>0",
        "-a always,exclude -F msgtype>0",
        "-A always,exclude",
        "  -a exclude,always -F msgtype>=1",
    ] {
        assert!(excludes_everything(line), "{line}");
    }
    for line in [
        "-a exclude,never -F msgtype=CONFIG_CHANGE",
        "-a always,exclude -F msgtype=CWD",
        "-a always,exit -F arch=b64 -S adjtimex -k fh-time",
        "# -a exclude,always -F msgtype>0",
        "-a always,exclude -F msgtype>0 -F uid=0",
    ] {
        assert!(!excludes_everything(line), "{line}");
    }
    assert_eq!(neutralised("-D\n"), None);
}

#[test]
fn the_loaded_rules_are_judged_key_by_key() {
    assert_eq!(
        keys(),
        [
            ("fh-identity".to_owned(), 4),
            ("fh-sudoers".to_owned(), 2),
            ("fh-sshd".to_owned(), 2),
            ("fh-modules".to_owned(), 2),
            ("fh-time".to_owned(), 2),
            ("fh-agent".to_owned(), 2),
        ]
    );
    assert!(loaded_problems(&loaded_listing()).is_empty());
    let short = loaded_listing().replace("-w /etc/gshadow -p wa -k fh-identity\n", "");
    assert_eq!(
        loaded_problems(&short),
        ["3 of 4 rules with key fh-identity"]
    );
    let dropped = format!("{}-a always,exclude -F msgtype>0\n", loaded_listing());
    assert_eq!(
        loaded_problems(&dropped),
        ["`-a always,exclude -F msgtype>0` drops every record"]
    );
    assert_eq!(loaded_problems("No rules\n").len(), 6);
}
