//! selinux: unit tests (plans and runs against a fixture root and a fake kernel).

use super::*;
use crate::controls::testkit::{self, text};
use crate::policy::Policy;
use crate::report::{ControlReport, Mode, Status};
use std::fs;
use std::os::unix::fs::PermissionsExt;

const FLATCAR_CONFIG: &str = "# This file controls the state of SELinux on the system.\n\
                              SELINUX=permissive\n\
                              SELINUXTYPE=mcs\n";

struct Machine(testkit::Machine);

impl Machine {
    /// An older image: `/etc/selinux/config` links into `/usr`.
    fn linked() -> Machine {
        let m = Machine::bare();
        m.root_file("/usr/lib/selinux/config", FLATCAR_CONFIG);
        std::os::unix::fs::symlink(
            "../../usr/lib/selinux/config",
            m.root.join("etc/selinux/config"),
        )
        .unwrap();
        m
    }

    /// A newer image: a regular file.
    fn regular(content: &str) -> Machine {
        let m = Machine::bare();
        m.root_file("/etc/selinux/config", content);
        m
    }

    fn bare() -> Machine {
        let m = testkit::Machine::new("BOOT_IMAGE=/flatcar/vmlinuz-a console=ttyS0\n");
        fs::create_dir_all(m.root.join("etc/selinux")).unwrap();
        Machine(m)
    }

    fn enforce(self, value: &str) -> Machine {
        self.0.kernel_file("/sys/fs/selinux/enforce", value);
        self
    }

    fn cmdline(self, text: &str) -> Machine {
        self.0.kernel_file("/proc/cmdline", text);
        self
    }

    fn config(&self) -> String {
        self.read_root("/etc/selinux/config")
    }

    fn is_link(&self) -> bool {
        fs::symlink_metadata(self.root.join("etc/selinux/config"))
            .unwrap()
            .file_type()
            .is_symlink()
    }

    fn enforcing(&self) -> String {
        self.read_kernel("/sys/fs/selinux/enforce")
    }
}

impl std::ops::Deref for Machine {
    type Target = testkit::Machine;
    fn deref(&self) -> &testkit::Machine {
        &self.0
    }
}

fn run(host: &Host, state: SelinuxState, mode: Mode) -> ControlReport {
    let mut policy = Policy::default();
    policy.selinux.state = state;
    testkit::run(
        host,
        &policy,
        Box::new(Selinux::new(policy.selinux.clone())),
        mode,
    )
}

#[test]
fn enforcing_now_and_the_link_becomes_a_regular_file() {
    let m = Machine::linked().enforce("0");
    let dry = run(&m.with_kernel(), SelinuxState::Enforcing, Mode::DryRun);
    assert_eq!(dry.status, Status::WouldChange, "{}", text(&dry));
    let kinds: Vec<&str> = dry.changes.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, ["write-file", "write-sysfs"]);
    assert!(
        dry.changes[0].detail.contains("replace symlink"),
        "{:?}",
        dry.changes
    );
    let diff = dry.changes[0].diff.as_deref().unwrap();
    // The diff is against the link's target: the one line that changes.
    assert!(
        diff.contains("-SELINUX=permissive\n+SELINUX=enforcing\n"),
        "{diff}"
    );
    assert!(diff.starts_with("--- /etc/selinux/config\n"), "{diff}");
    assert_eq!(dry.changes[1].detail, "0 -> 1");
    assert!(m.is_link() && m.enforcing() == "0", "dry-run wrote");

    let apply = run(&m.with_kernel(), SelinuxState::Enforcing, Mode::Apply);
    assert_eq!(apply.status, Status::Changed, "{}", text(&apply));
    assert_eq!(m.enforcing(), "1");
    assert!(!m.is_link(), "the link is replaced by a regular file");
    assert_eq!(
        m.config(),
        FLATCAR_CONFIG.replace("SELINUX=permissive", "SELINUX=enforcing")
    );
    assert_eq!(
        fs::read_to_string(m.root.join("usr/lib/selinux/config")).unwrap(),
        FLATCAR_CONFIG,
        "never written through the link"
    );

    let again = run(&m.with_kernel(), SelinuxState::Enforcing, Mode::Apply);
    assert_eq!(again.status, Status::Compliant, "{}", text(&again));
    assert!(again.changes.is_empty());
}

#[test]
fn a_link_that_already_says_the_mode_is_left_alone() {
    let m = Machine::linked().enforce("0");
    let report = run(&m.with_kernel(), SelinuxState::Permissive, Mode::Apply);
    assert_eq!(report.status, Status::Compliant, "{}", text(&report));
    assert!(m.is_link());
}

#[test]
fn a_regular_file_is_edited_in_place_keeping_every_other_line_and_its_mode() {
    let content = "# local\nSELINUXTYPE=mcs\nSELINUX=enforcing # was\nSELINUX=disabled\n";
    let m = Machine::regular(content).enforce("1\n");
    let path = m.root.join("etc/selinux/config");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let report = run(&m.with_kernel(), SelinuxState::Permissive, Mode::Apply);
    assert_eq!(report.status, Status::Changed, "{}", text(&report));
    assert_eq!(m.enforcing(), "0");
    assert_eq!(
        m.config(),
        "# local\nSELINUXTYPE=mcs\nSELINUX=permissive\nSELINUX=disabled\n",
        "only the first SELINUX= line (the one libselinux reads) changes"
    );
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
        0o640
    );

    // A comment in Latin-1 stays byte for byte.
    let m = Machine::regular("").enforce("1\n");
    fs::write(
        m.root.join("etc/selinux/config"),
        b"# gr\xfcn\nSELINUX=permissive\n",
    )
    .unwrap();
    run(&m.with_kernel(), SelinuxState::Enforcing, Mode::Apply);
    assert_eq!(
        fs::read(m.root.join("etc/selinux/config")).unwrap(),
        b"# gr\xfcn\nSELINUX=enforcing\n"
    );

    // No SELINUX= line at all: one is added at the end.
    let m = Machine::regular("SELINUXTYPE=mcs").enforce("1");
    run(&m.with_kernel(), SelinuxState::Enforcing, Mode::Apply);
    assert_eq!(m.config(), "SELINUXTYPE=mcs\nSELINUX=enforcing\n");
}

#[test]
fn no_selinuxfs_means_the_file_waits_for_a_boot() {
    let m = Machine::linked();
    let report = run(&m.with_kernel(), SelinuxState::Enforcing, Mode::Apply);
    assert_eq!(report.status, Status::PendingReboot, "{}", text(&report));
    assert!(text(&report).contains("not active"), "{}", text(&report));
    assert!(report.changes.iter().all(|c| c.kind == "write-file"));
    assert!(m.config().contains("SELINUX=enforcing\n"));
    let again = run(&m.with_kernel(), SelinuxState::Enforcing, Mode::Check);
    assert_eq!(again.status, Status::PendingReboot);

    // Only the mount point, selinuxfs not mounted: the same.
    fs::create_dir_all(m.kernel.join("sys/fs/selinux")).unwrap();
    let report = run(&m.with_kernel(), SelinuxState::Enforcing, Mode::Check);
    assert_eq!(report.status, Status::PendingReboot, "{}", text(&report));
    assert!(report.summary.contains("not mounted"), "{}", report.summary);
}

#[test]
fn kernel_arguments_that_override_the_file_are_reported() {
    for (cmdline, reason) in [
        ("console=ttyS0 enforcing=0\n", "has enforcing=0"),
        ("selinux=0 console=ttyS0\n", "has selinux=0"),
    ] {
        let m = Machine::regular(FLATCAR_CONFIG)
            .enforce("0")
            .cmdline(cmdline);
        let report = run(&m.with_kernel(), SelinuxState::Enforcing, Mode::Apply);
        assert_eq!(report.status, Status::Failed, "{}", text(&report));
        assert!(text(&report).contains(reason), "{}", text(&report));
        // What can be done is done: the file and the running mode.
        assert!(m.config().contains("SELINUX=enforcing\n"));
        assert_eq!(m.enforcing(), "1");
    }
    // enforcing=0 agrees with permissive.
    let m = Machine::regular(FLATCAR_CONFIG)
        .enforce("0")
        .cmdline("enforcing=0\n");
    let report = run(&m.with_kernel(), SelinuxState::Permissive, Mode::Check);
    assert_eq!(report.status, Status::Compliant, "{}", text(&report));
}

#[test]
fn offline_writes_the_file_and_waits_for_boot() {
    let m = Machine::linked();
    let host = Host::open(&m.root).unwrap();
    let report = run(&host, SelinuxState::Enforcing, Mode::Apply);
    assert_eq!(report.status, Status::PendingReboot, "{}", text(&report));
    assert!(text(&report).contains("takes effect at boot"));
    assert!(!m.is_link());
    assert!(m.config().contains("SELINUX=enforcing\n"));
    assert!(!m.kernel.join("sys").exists(), "no runtime write offline");
}

#[test]
fn a_missing_config_is_reported_not_invented() {
    let m = Machine::bare().enforce("0");
    std::os::unix::fs::symlink("/usr/lib/selinux/config", m.root.join("etc/selinux/config"))
        .unwrap();
    let report = run(&m.with_kernel(), SelinuxState::Enforcing, Mode::Check);
    assert_eq!(report.status, Status::Failed, "{}", text(&report));
    assert!(
        text(&report).contains("does not exist"),
        "{}",
        text(&report)
    );
    assert!(m.is_link());
}

/// A permissive boot at 1764500000 whose audit log has `lines`.
fn with_audit_log(lines: &[&str]) -> Machine {
    let m = Machine::linked().enforce("0");
    m.kernel_file("/proc/stat", "cpu  1 2 3\nbtime 1764500000\nprocesses 9\n");
    m.root_file("/var/log/audit/audit.log", &(lines.join("\n") + "\n"));
    m
}

const DENIED: &str = "type=AVC msg=audit(1764500100.5:61): avc:  denied  { setcurrent } for  \
                      pid=811 comm=\"bash\" scontext=system_u:system_r:fh_vm_t \
                      tcontext=system_u:system_r:fh_vm_t tclass=process permissive=1";

fn enforcing(allow_denials: bool) -> Policy {
    let mut policy = Policy::default();
    policy.selinux.state = SelinuxState::Enforcing;
    policy.selinux.allow_denials = allow_denials;
    policy
}

fn run_policy(host: &Host, policy: &Policy, mode: Mode) -> ControlReport {
    testkit::run(
        host,
        policy,
        Box::new(Selinux::new(policy.selinux.clone())),
        mode,
    )
}

#[test]
fn denials_of_this_boot_stop_both_halves_and_are_named() {
    let m = with_audit_log(&[
        "type=DAEMON_START msg=audit(1764500050.0:1): op=start",
        DENIED,
        // The same access again, and one of an earlier boot: named once, and not at all.
        &DENIED.replace("61)", "62)"),
        &DENIED
            .replace("1764500100", "1764400000")
            .replace("setcurrent", "setexec"),
    ]);
    for mode in [Mode::Check, Mode::Apply] {
        let report = run_policy(&m.with_kernel(), &enforcing(false), mode);
        assert_eq!(report.status, Status::Failed, "{}", text(&report));
        let said = text(&report);
        assert!(said.contains("1 distinct AVC denial"), "{said}");
        assert!(
            said.contains(
                "`bash` (system_u:system_r:fh_vm_t) denied `setcurrent` on process \
                 system_u:system_r:fh_vm_t"
            ),
            "{said}"
        );
        assert!(
            !said.contains("setexec"),
            "an earlier boot's denial: {said}"
        );
        assert!(said.contains("selinux.allow_denials = true"), "{said}");
        assert!(report.changes.is_empty(), "{:?}", report.changes);
        assert_eq!(m.enforcing(), "0");
        assert!(
            m.is_link(),
            "the config for the next boot is not switched either"
        );
    }

    // The operator accepts them: both halves switch.
    let report = run_policy(&m.with_kernel(), &enforcing(true), Mode::Apply);
    assert_eq!(report.status, Status::Changed, "{}", text(&report));
    assert_eq!(m.enforcing(), "1");
    assert!(m.config().contains("SELINUX=enforcing\n"));
}

#[test]
fn a_boot_without_denials_switches_and_permissive_reads_none() {
    let earlier = DENIED.replace("1764500100", "1764400000");
    let m = with_audit_log(&[&earlier, &DENIED.replace("permissive=1", "permissive=0")]);
    let report = run_policy(&m.with_kernel(), &enforcing(false), Mode::Apply);
    assert_eq!(report.status, Status::Changed, "{}", text(&report));
    assert_eq!(m.enforcing(), "1");

    // Going permissive never stops on denials.
    let m = with_audit_log(&[DENIED]).enforce("1");
    let report = run(&m.with_kernel(), SelinuxState::Permissive, Mode::Apply);
    assert_eq!(report.status, Status::Changed, "{}", text(&report));
    assert_eq!(m.enforcing(), "0");
}
