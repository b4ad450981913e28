//! console-autologin: unit tests (plans and runs against a fixture root and a fake kernel).

use super::*;
use crate::controls::testkit::{self, text};
use crate::policy::{ConsoleAutologinState, Policy};
use crate::report::{ControlReport, Mode, Status};

/// Flatcar's build_library/oem/azure/grub.cfg, byte for byte.
const AZURE: &str = "# Flatcar GRUB settings\n\nset oem_id=\"azure\"\nset linux_append=\"flatcar.autologin\"\n\n# Azure only has a serial console.\nserial --unit=0 --speed=115200 --word=8 --parity=no\nterminal_input serial\nterminal_output serial\n\nif [ \"$grub_cpu\" = arm64 ]; then\n  set linux_console=\"console=tty1 console=ttyAMA0,115200n8 earlycon=pl011,0xeffec000\"\nelse\n  set linux_console=\"console=tty1 console=ttyS0,115200n8 earlyprintk=ttyS0,115200\"\nfi\n";
const AUTOLOGIN: &str = "/etc/systemd/system/serial-getty@ttyS0.service.d/autologin-core.conf";
const AUTOLOGIN_CONF: &str = "[Service]\n# Override Execstart in main unit\nExecStart=\n\
     ExecStart=-/usr/sbin/agetty --autologin core --noclear %I $TERM\nTTYVTDisallocate=no\n";
const NOCLEAR: &str = "/etc/systemd/system/getty@tty1.service.d/noclear.conf";
const NOCLEAR_CONF: &str = "[Service]\nTTYVTDisallocate=no\n";

fn machine(cmdline: &str) -> testkit::Machine {
    let m = testkit::Machine::new(cmdline);
    m.root_file("/oem/grub.cfg", AZURE);
    m.root_file(AUTOLOGIN, AUTOLOGIN_CONF);
    m.root_file(NOCLEAR, NOCLEAR_CONF);
    m
}

fn run(host: &Host, mode: Mode) -> ControlReport {
    let mut policy = Policy::default();
    policy.console_autologin.state = ConsoleAutologinState::Off;
    let control = ConsoleAutologin::new(policy.console_autologin.clone());
    testkit::run(host, &policy, Box::new(control), mode)
}

fn exists(m: &testkit::Machine, path: &str) -> bool {
    m.root.join(path.trim_start_matches('/')).exists()
}

#[test]
fn the_oem_argument_and_the_getty_dropin_go_offline() {
    let m = machine("");
    let check = run(&m.offline(), Mode::Check);
    assert_eq!(check.status, Status::WouldChange, "{}", text(&check));
    let kinds: Vec<&str> = check.changes.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        ["write-file", "remove-file"],
        "no reload for an image"
    );
    assert!(
        check.summary.contains("/oem/grub.cfg:4")
            && check.summary.contains("agetty --autologin core"),
        "{}",
        check.summary
    );
    assert!(exists(&m, AUTOLOGIN), "check removes nothing");

    let apply = run(&m.offline(), Mode::Apply);
    assert_eq!(apply.status, Status::Changed, "{}", text(&apply));
    assert_eq!(
        m.read_root("/oem/grub.cfg"),
        AZURE.replace(
            "set linux_append=\"flatcar.autologin\"",
            "set linux_append=\"\""
        ),
        "every other line untouched"
    );
    assert!(!exists(&m, AUTOLOGIN));
    assert_eq!(
        m.read_root(NOCLEAR),
        NOCLEAR_CONF,
        "a drop-in without autologin stays"
    );

    let again = run(&m.offline(), Mode::Apply);
    assert_eq!(again.status, Status::Compliant, "{}", text(&again));
    assert!(again.changes.is_empty());
}

#[test]
fn the_running_command_line_keeps_it_until_the_next_boot() {
    let m = machine("BOOT_IMAGE=/flatcar/vmlinuz-a console=ttyS0 flatcar.autologin\n");
    let report = run(&m.with_kernel(), Mode::Apply);
    assert_eq!(report.status, Status::PendingReboot, "{}", text(&report));
    assert!(
        text(&report).contains("booted with `flatcar.autologin`"),
        "{}",
        text(&report)
    );
    assert!(!m.read_root("/oem/grub.cfg").contains("autologin"));
    // After the reboot: compliant.
    m.kernel_file(
        "/proc/cmdline",
        "BOOT_IMAGE=/flatcar/vmlinuz-a console=ttyS0\n",
    );
    let booted = run(&m.with_kernel(), Mode::Check);
    assert_eq!(booted.status, Status::Compliant, "{}", text(&booted));
}

#[test]
fn revert_puts_the_argument_and_the_dropin_back() {
    let m = machine("");
    let host = m.offline();
    testkit::start_journal(&host, "console-autologin");
    let report = run(&host, Mode::Apply);
    assert_eq!(report.status, Status::Changed, "{}", text(&report));
    let plan = testkit::revert(&host);
    assert_eq!(plan.actions.len(), 2, "{plan:?}");
    assert_eq!(m.read_root("/oem/grub.cfg"), AZURE);
    assert_eq!(m.read_root(AUTOLOGIN), AUTOLOGIN_CONF);
}

#[test]
fn what_counts_as_autologin() {
    for word in [
        "flatcar.autologin",
        "flatcar.autologin=ttyS0",
        "coreos.autologin",
        "coreos.autologin=tty1",
    ] {
        assert!(is_autologin(word), "{word}");
    }
    for word in ["flatcar.autologinx", "flatcar.oem.id=qemu", "autologin"] {
        assert!(!is_autologin(word), "{word}");
    }
    let found = |text: &str| autologin_exec(text).map(|(line, _)| line);
    assert_eq!(found(AUTOLOGIN_CONF), Some(4));
    assert_eq!(
        found("[Service]\nExecStart=\nExecStart=-/sbin/agetty -o '-p -- \\\\u' -a root --keep-baud 115200 %I $TERM\n"),
        Some(3)
    );
    assert_eq!(
        found("[Service]\nExecStart=-/sbin/agetty \\\n  --autologin=core %I\n"),
        Some(2),
        "a continued line"
    );
    assert_eq!(
        found("[Service]\n# ExecStart=-/sbin/agetty -a core %I\n"),
        None
    );
    assert_eq!(found("[Unit]\nExecStart=-/sbin/agetty -a core %I\n"), None);
    assert_eq!(
        found("[Service]\nExecStart=-/sbin/agetty --noclear %I\n"),
        None
    );
    assert_eq!(found("[Service]\nExecStart=/usr/bin/login -a\n"), None);
}

#[test]
fn a_form_the_editor_does_not_take_out_is_named() {
    let m = testkit::Machine::new("");
    m.root_file(
        "/oem/grub.cfg",
        "set oem_id=\"qemu\"\nif true; then set linux_append=\"flatcar.autologin\"; fi\n",
    );
    let report = run(&m.offline(), Mode::Check);
    assert_eq!(report.status, Status::Failed, "{}", text(&report));
    assert!(
        text(&report).contains("/oem/grub.cfg:2 passes console autologin"),
        "{}",
        text(&report)
    );
}
