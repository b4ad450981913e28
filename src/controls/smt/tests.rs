//! smt: unit tests (plans and runs against a fixture root and a fake kernel).

use super::*;
use crate::controls::testkit::{self, text};
use crate::controls::Step;
use crate::policy::{AbsolutePath, Policy};
use crate::report::{ControlReport, Mode, Status};
use std::fs;
use std::path::PathBuf;

const QEMU_GRUB: &str = "# Set kernel arguments for this platform here.\nset oem_id=\"qemu\"\n";

/// A root with an OEM grub.cfg and, beside it, a fake running kernel.
struct Machine(testkit::Machine);

impl Machine {
    fn new(grub: Option<&str>) -> Machine {
        let m = testkit::Machine::new(
            "BOOT_IMAGE=/flatcar/vmlinuz-a mount.usr=/dev/mapper/usr console=ttyS0\n",
        );
        fs::create_dir_all(m.root.join("oem")).unwrap();
        if let Some(grub) = grub {
            m.root_file("/oem/grub.cfg", grub);
        }
        Machine(m)
    }

    fn smt(self, control: &str, active: &str) -> Machine {
        self.0.kernel_file(CONTROL, &format!("{control}\n"));
        self.0.kernel_file(ACTIVE, &format!("{active}\n"));
        self
    }

    fn vulnerability(self, name: &str, text: &str) -> Machine {
        self.0
            .kernel_file(&format!("{VULNERABILITIES}/{name}"), &format!("{text}\n"));
        self
    }

    fn cmdline(self, text: &str) -> Machine {
        self.0.kernel_file("/proc/cmdline", text);
        self
    }

    fn grub(&self) -> String {
        self.0.read_root("/oem/grub.cfg")
    }

    fn control(&self) -> String {
        self.0.read_kernel(CONTROL)
    }
}

impl std::ops::Deref for Machine {
    type Target = testkit::Machine;
    fn deref(&self) -> &testkit::Machine {
        &self.0
    }
}

fn policy(state: SmtState) -> Policy {
    let mut policy = Policy::default();
    policy.smt.state = state;
    policy
}

fn run(host: &Host, state: SmtState, mode: Mode) -> ControlReport {
    let policy = policy(state);
    testkit::run(host, &policy, Box::new(Smt::new(policy.smt.clone())), mode)
}

#[test]
fn off_turns_smt_off_now_and_adds_nosmt_once() {
    let m = Machine::new(Some(QEMU_GRUB)).smt("on", "1");
    let check = run(&m.with_kernel(), SmtState::Off, Mode::Check);
    assert_eq!(check.status, Status::WouldChange, "{}", text(&check));
    let kinds: Vec<&str> = check.changes.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, ["write-file", "write-sysfs"]);
    assert_eq!(check.changes[1].target.as_deref(), Some(CONTROL));
    assert_eq!(check.changes[1].detail, "on -> off");
    assert_eq!(m.control(), "on\n", "check writes nothing");
    assert_eq!(m.grub(), QEMU_GRUB);

    let apply = run(&m.with_kernel(), SmtState::Off, Mode::Apply);
    // The running kernel was booted without nosmt: the rest comes with the next boot.
    assert_eq!(apply.status, Status::PendingReboot, "{}", text(&apply));
    assert!(
        text(&apply).contains("booted without `nosmt`"),
        "{}",
        text(&apply)
    );
    assert_eq!(m.control(), "off");
    assert_eq!(
        m.grub(),
        format!("{QEMU_GRUB}set linux_append=\"$linux_append nosmt\"\n")
    );

    let again = run(&m.with_kernel(), SmtState::Off, Mode::Apply);
    assert_eq!(again.status, Status::PendingReboot);
    assert!(again.changes.is_empty());
    assert_eq!(m.grub().matches("nosmt").count(), 1, "no duplicate line");

    // After the reboot the kernel has the argument: compliant.
    let booted = m
        .smt("off", "0")
        .cmdline("BOOT_IMAGE=/flatcar/vmlinuz-a nosmt\n");
    let after = run(&booted.with_kernel(), SmtState::Off, Mode::Check);
    assert_eq!(after.status, Status::Compliant, "{}", text(&after));
    assert!(
        after.summary.contains("SMT is off (control off, active 0)"),
        "{}",
        after.summary
    );
}

#[test]
fn control_on_with_no_sibling_active_is_still_switched_off() {
    // Siblings offline by hand (active 0) can come back while control is `on`.
    let m = Machine::new(Some(QEMU_GRUB))
        .smt("on", "0")
        .cmdline("nosmt\n");
    let report = run(&m.with_kernel(), SmtState::Off, Mode::Check);
    assert_eq!(report.status, Status::WouldChange, "{}", text(&report));
    assert!(
        report.summary.contains("control on, active 0"),
        "{}",
        report.summary
    );
    assert!(report.changes.iter().any(|c| c.kind == "write-sysfs"));
}

#[test]
fn forceoff_and_notsupported_are_compliant_and_say_why() {
    for (control, why) in [("forceoff", "forced off"), ("notsupported", "has no SMT")] {
        let m = Machine::new(Some(&format!(
            "{QEMU_GRUB}set linux_append=\"$linux_append nosmt\"\n"
        )))
        .smt(control, "0")
        .cmdline("nosmt=force\n");
        let report = run(&m.with_kernel(), SmtState::Off, Mode::Apply);
        assert_eq!(
            report.status,
            Status::Compliant,
            "{control}: {}",
            text(&report)
        );
        assert!(report.summary.contains(why), "{}", report.summary);
        assert!(report.changes.is_empty());
        assert_eq!(m.control(), format!("{control}\n"), "never written");
    }
}

#[test]
fn notimplemented_or_no_smt_directory_is_not_applicable() {
    for m in [
        Machine::new(Some(QEMU_GRUB)).smt("notimplemented", "0"),
        Machine::new(Some(QEMU_GRUB)),
    ] {
        let report = run(&m.with_kernel(), SmtState::Off, Mode::Apply);
        assert_eq!(report.status, Status::NotApplicable, "{}", text(&report));
        assert_eq!(m.grub(), QEMU_GRUB, "nothing written");
    }
}

#[test]
fn a_refused_write_fails_naming_the_file_and_value() {
    let m = Machine::new(Some(QEMU_GRUB)).smt("on", "1");
    let host = m.with_kernel();
    let smt = Smt::new(policy(SmtState::Off).smt);
    let plan = smt.assess(&host).unwrap();
    // Between plan and apply the attribute stops taking writes (here: it is a directory).
    let control = m.kernel.join("sys/devices/system/cpu/smt/control");
    fs::remove_file(&control).unwrap();
    fs::create_dir(&control).unwrap();
    let error = Step::apply(&smt, &host, &plan).unwrap_err().to_string();
    assert!(
        error.contains(CONTROL) && error.contains("cannot write `off`"),
        "{error}"
    );
}

#[test]
fn auto_turns_smt_off_only_for_a_vulnerability_that_needs_it() {
    let m = Machine::new(Some(QEMU_GRUB))
        .smt("on", "1")
        .vulnerability("meltdown", "Not affected")
        .vulnerability("mds", "Mitigation: Clear CPU buffers; SMT vulnerable")
        .vulnerability("l1tf", "Mitigation: PTE Inversion");
    let report = run(&m.with_kernel(), SmtState::Auto, Mode::Apply);
    assert_eq!(report.status, Status::PendingReboot, "{}", text(&report));
    assert!(report.summary.contains("mds"), "{}", report.summary);
    assert!(!report.summary.contains("l1tf"), "{}", report.summary);
    assert_eq!(m.control(), "off");
    assert_eq!(
        m.grub(),
        format!("{QEMU_GRUB}set linux_append=\"$linux_append mitigations=auto,nosmt\"\n")
    );

    let safe = Machine::new(Some(QEMU_GRUB))
        .smt("on", "1")
        .vulnerability("mds", "Not affected")
        .vulnerability("l1tf", "Not affected")
        .cmdline("mitigations=auto,nosmt\n");
    let report = run(&safe.with_kernel(), SmtState::Auto, Mode::Apply);
    assert_eq!(report.status, Status::Changed, "{}", text(&report));
    assert!(
        report.summary.contains("SMT stays on") && report.summary.contains("SMT vulnerable"),
        "{}",
        report.summary
    );
    assert_eq!(safe.control(), "on\n", "SMT left on");

    // No vulnerabilities directory at all: left on, and the report says why.
    let old = Machine::new(Some(QEMU_GRUB)).smt("on", "1");
    let report = run(&old.with_kernel(), SmtState::Auto, Mode::Check);
    assert!(
        report.summary.contains("lists no vulnerabilities"),
        "{}",
        report.summary
    );
    assert_eq!(report.changes.len(), 1, "only the grub.cfg line");
}

#[test]
fn offline_writes_grub_cfg_and_waits_for_boot() {
    let m = Machine::new(None);
    let report = run(&m.offline(), SmtState::Off, Mode::Apply);
    assert_eq!(report.status, Status::PendingReboot, "{}", text(&report));
    assert!(text(&report).contains("takes effect at boot"));
    assert_eq!(m.grub(), "set linux_append=\"$linux_append nosmt\"\n");
    let again = run(&m.offline(), SmtState::Off, Mode::Apply);
    assert_eq!(again.status, Status::PendingReboot);
    assert!(again.changes.is_empty());
}

#[test]
fn missing_oem_directory_is_reported_not_created() {
    let m = Machine::new(None);
    fs::remove_dir(m.root.join("oem")).unwrap();
    let report = run(&m.offline(), SmtState::Off, Mode::Apply);
    assert_eq!(report.status, Status::Failed, "{}", text(&report));
    assert!(
        text(&report).contains("OEM partition mounted"),
        "{}",
        text(&report)
    );
    assert!(!m.root.join("oem").exists());

    // Older images mount the OEM partition at /usr/share/oem: the policy names the file.
    fs::create_dir_all(m.root.join("usr/share/oem")).unwrap();
    let mut custom = policy(SmtState::Off);
    custom.smt.grub_cfg = AbsolutePath(PathBuf::from("/usr/share/oem/grub.cfg"));
    let report = testkit::run(
        &m.offline(),
        &custom,
        Box::new(Smt::new(custom.smt.clone())),
        Mode::Apply,
    );
    assert_eq!(report.status, Status::PendingReboot);
    assert!(m.root.join("usr/share/oem/grub.cfg").is_file());
}

#[test]
fn auto_reports_a_foreign_nosmt_that_defeats_it() {
    let m = Machine::new(Some(
        "set linux_append=\"$linux_append nosmt console=ttyS0\"\n",
    ));
    let report = run(&m.offline(), SmtState::Auto, Mode::Check);
    assert_eq!(report.status, Status::Failed, "{}", text(&report));
    assert!(
        text(&report).contains("/oem/grub.cfg:1 passes `nosmt`"),
        "{}",
        text(&report)
    );
}
