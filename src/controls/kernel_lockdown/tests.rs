//! kernel-lockdown: unit tests (plans and runs against a fixture root and a fake kernel).

use super::*;
use crate::controls::testkit::{self, text};
use crate::controls::Step;
use crate::policy::Policy;
use crate::report::{ControlReport, Mode, Status};
use std::fs;

const QEMU_GRUB: &str = "# Flatcar GRUB settings\n\nset oem_id=\"qemu\"\n";
const BOOTED: &str = "BOOT_IMAGE=/flatcar/vmlinuz-a mount.usr=/dev/mapper/usr console=ttyS0\n";

fn machine(grub: Option<&str>, lockdown: Option<&str>) -> testkit::Machine {
    let m = testkit::Machine::new(BOOTED);
    fs::create_dir_all(m.root.join("oem")).unwrap();
    if let Some(grub) = grub {
        m.root_file("/oem/grub.cfg", grub);
    }
    if let Some(lockdown) = lockdown {
        m.kernel_file(LOCKDOWN, &format!("{lockdown}\n"));
    }
    m
}

fn control(state: KernelLockdownState) -> (Policy, KernelLockdown) {
    let mut policy = Policy::default();
    policy.kernel_lockdown.state = state;
    let control = KernelLockdown::new(policy.kernel_lockdown.clone());
    (policy, control)
}

fn run(host: &Host, state: KernelLockdownState, mode: Mode) -> ControlReport {
    let (policy, control) = control(state);
    testkit::run(host, &policy, Box::new(control), mode)
}

/// `integrity` on the machine's running (fake) kernel.
fn live_integrity(m: &testkit::Machine, mode: Mode) -> ControlReport {
    run(&m.with_kernel(), KernelLockdownState::Integrity, mode)
}

/// Plans and acts without the engine's verification: the fake kernel cannot show the brackets
/// the real one puts around the level written.
fn apply(host: &Host, state: KernelLockdownState) -> Plan {
    let (_, control) = control(state);
    let plan = control.assess(host).unwrap();
    Step::apply(&control, host, &plan).unwrap();
    plan
}

#[test]
fn integrity_is_raised_now_and_written_for_every_boot() {
    let m = machine(Some(QEMU_GRUB), Some("[none] integrity confidentiality"));
    let check = live_integrity(&m, Mode::Check);
    assert_eq!(check.status, Status::WouldChange, "{}", text(&check));
    let kinds: Vec<&str> = check.changes.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, ["write-file", "write-sysfs"], "grub.cfg first");
    assert_eq!(check.changes[1].target.as_deref(), Some(LOCKDOWN));
    assert!(
        check.changes[1]
            .detail
            .starts_with("none -> integrity (one way"),
        "{}",
        check.changes[1].detail
    );
    assert!(
        text(&check).contains("loading unsigned kernel modules")
            && text(&check).contains("hibernation")
            && !text(&check).contains("kprobes"),
        "the report warns what integrity breaks: {}",
        text(&check)
    );
    assert_eq!(
        m.read_root("/oem/grub.cfg"),
        QEMU_GRUB,
        "check writes nothing"
    );

    let plan = apply(&m.with_kernel(), KernelLockdownState::Integrity);
    assert!(plan.pending[0].contains("booted without `lockdown=integrity`"));
    assert_eq!(m.read_kernel(LOCKDOWN), "integrity");
    assert_eq!(
        m.read_root("/oem/grub.cfg"),
        format!("{QEMU_GRUB}set linux_append=\"$linux_append lockdown=integrity\"\n")
    );

    // What the kernel shows after the write: raised, but not on the command line yet.
    m.kernel_file(LOCKDOWN, "none [integrity] confidentiality\n");
    let after = live_integrity(&m, Mode::Apply);
    assert_eq!(after.status, Status::PendingReboot, "{}", text(&after));
    assert!(after.changes.is_empty(), "a second apply changes nothing");

    // Booted with it: compliant.
    m.kernel_file(
        "/proc/cmdline",
        &format!("{} lockdown=integrity\n", BOOTED.trim()),
    );
    let booted = live_integrity(&m, Mode::Check);
    assert_eq!(booted.status, Status::Compliant, "{}", text(&booted));
    assert!(booted.summary.contains("locked down at `integrity`"));
}

#[test]
fn a_running_level_above_the_policy_is_drift_and_never_written() {
    let m = machine(Some(QEMU_GRUB), Some("none integrity [confidentiality]"));
    let report = live_integrity(&m, Mode::Apply);
    assert_eq!(report.status, Status::Failed, "{}", text(&report));
    assert!(
        text(&report).contains("above the policy's `integrity`")
            && text(&report).contains("cannot be lowered")
            && text(&report).contains("Secure Boot"),
        "{}",
        text(&report)
    );
    assert!(report.changes.iter().all(|c| c.kind != "write-sysfs"));
    assert_eq!(
        m.read_kernel(LOCKDOWN),
        "none integrity [confidentiality]\n"
    );
    // Confidentiality asked, confidentiality running: the report warns what it breaks.
    let m = machine(
        Some("set linux_append=\"$linux_append lockdown=confidentiality\"\n"),
        Some("none integrity [confidentiality]"),
    );
    m.kernel_file("/proc/cmdline", "lockdown=confidentiality\n");
    let report = run(
        &m.with_kernel(),
        KernelLockdownState::Confidentiality,
        Mode::Check,
    );
    assert_eq!(report.status, Status::Compliant, "{}", text(&report));
    assert!(text(&report).contains("kprobes") && text(&report).contains("bpftrace"));
}

#[test]
fn no_lockdown_lsm_is_reported_and_grub_cfg_still_gets_the_argument() {
    let m = machine(Some(QEMU_GRUB), None);
    let report = live_integrity(&m, Mode::Apply);
    assert_eq!(report.status, Status::Failed, "{}", text(&report));
    assert!(
        text(&report).contains("no lockdown LSM")
            && text(&report).contains("CONFIG_SECURITY_LOCKDOWN_LSM"),
        "{}",
        text(&report)
    );
    assert!(m.read_root("/oem/grub.cfg").contains("lockdown=integrity"));
}

#[test]
fn a_different_lockdown_argument_is_replaced_offline() {
    let grub = "set oem_id=\"qemu\"\nset linux_append=\"$linux_append lockdown=integrity console=ttyS0\"\n";
    let m = machine(Some(grub), None);
    let report = run(
        &m.offline(),
        KernelLockdownState::Confidentiality,
        Mode::Apply,
    );
    assert_eq!(report.status, Status::PendingReboot, "{}", text(&report));
    assert!(text(&report).contains("takes effect at boot"));
    assert!(report.summary.contains("in place of the other lockdown="));
    assert_eq!(
        m.read_root("/oem/grub.cfg"),
        "set oem_id=\"qemu\"\nset linux_append=\"$linux_append console=ttyS0\"\n\
         set linux_append=\"$linux_append lockdown=confidentiality\"\n"
    );
    let again = run(
        &m.offline(),
        KernelLockdownState::Confidentiality,
        Mode::Apply,
    );
    assert!(again.changes.is_empty());
    // One the editor cannot take out is named, file and line.
    let m = machine(
        Some("if true; then set linux_append=\"lockdown=none\"; fi\n"),
        None,
    );
    let report = run(&m.offline(), KernelLockdownState::Integrity, Mode::Check);
    assert_eq!(report.status, Status::Failed, "{}", text(&report));
    assert!(text(&report).contains("/oem/grub.cfg:1 passes another `lockdown=`"));
}

#[test]
fn revert_restores_grub_cfg_and_says_the_running_level_stays() {
    let m = machine(Some(QEMU_GRUB), Some("[none] integrity confidentiality"));
    let host = m.with_kernel();
    testkit::start_journal(&host, "kernel-lockdown");
    apply(&host, KernelLockdownState::Integrity);
    assert_eq!(m.read_kernel(LOCKDOWN), "integrity");
    m.kernel_file(LOCKDOWN, "none [integrity] confidentiality\n");

    let plan = testkit::revert(&host);
    assert_eq!(plan.actions.len(), 1, "grub.cfg only: {plan:?}");
    assert_eq!(m.read_root("/oem/grub.cfg"), QEMU_GRUB);
    assert!(
        plan.notes.iter().any(|n| n.contains(LOCKDOWN)
            && n.contains("from none to integrity")
            && n.contains("stays at integrity until the next boot")),
        "{:?}",
        plan.notes
    );
    assert_eq!(
        m.read_kernel(LOCKDOWN),
        "none [integrity] confidentiality\n",
        "never written by the revert"
    );
}

#[test]
fn the_running_level_is_the_bracketed_one() {
    assert_eq!(
        running("none [integrity] confidentiality"),
        Some("integrity")
    );
    assert_eq!(running("[none] integrity confidentiality"), Some("none"));
    assert_eq!(running("none integrity confidentiality"), None);
    assert_eq!(running("[paranoid]"), None);
}
