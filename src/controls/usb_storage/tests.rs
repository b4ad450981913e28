//! usb-storage: unit tests (plans and runs against a fixture root and a fake kernel).

use super::*;
use crate::controls::testkit::{self, text};
use crate::policy::{ModuleName, Policy, UsbStorageState};
use crate::report::{Mode, Status};

fn files(list: &[(&str, &str)]) -> Vec<(PathBuf, String)> {
    list.iter()
        .map(|(p, t)| (PathBuf::from(p), t.to_string()))
        .collect()
}

fn denied() -> Policy {
    let mut policy = Policy::default();
    policy.usb_storage.state = UsbStorageState::Denied;
    policy
}

fn run(host: &Host, mode: Mode) -> crate::report::ControlReport {
    let policy = denied();
    let step = Box::new(UsbStorage::new(policy.usb_storage.clone()));
    testkit::run(host, &policy, step, mode)
}

#[test]
fn an_earlier_install_line_is_named_and_nothing_is_appended_twice() {
    let m = testkit::Machine::new("BOOT_IMAGE=/vmlinuz\n");
    m.root_file(
        "/etc/modprobe.d/00-vendor.conf",
        "install usb-storage /sbin/modprobe --ignore-install usb-storage\n",
    );
    let host = m.offline();
    let first = run(&host, Mode::Apply);
    assert_eq!(first.status, Status::Failed, "{}", text(&first));
    assert!(
        text(&first).contains("/etc/modprobe.d/00-vendor.conf:1"),
        "{}",
        text(&first)
    );
    let written = m.read_root("/etc/modprobe.d/blacklist.conf");
    for _ in 0..3 {
        let again = run(&host, Mode::Apply);
        assert_eq!(again.status, Status::Failed, "{}", text(&again));
        assert!(again.changes.is_empty(), "{:?}", again.changes);
        assert!(
            text(&again).contains("00-vendor.conf:1"),
            "{}",
            text(&again)
        );
    }
    assert_eq!(m.read_root("/etc/modprobe.d/blacklist.conf"), written);
    assert_eq!(written.matches("install usb-storage /bin/false").count(), 1);
    let check = run(&host, Mode::Check);
    assert_eq!(check.status, Status::Failed, "{}", text(&check));
}

#[test]
fn loaded_modules_are_unloaded_through_the_kernel_users_first() {
    let m = testkit::Machine::new("BOOT_IMAGE=/vmlinuz\n");
    m.kernel_file(
        "/proc/modules",
        "usb_storage 86016 1 uas, Live 0x0\nuas 32768 0 - Live 0x0\next4 1 0 - Live 0x0\n",
    );
    let host = m.with_kernel();
    let report = run(&host, Mode::Apply);
    assert_eq!(report.status, Status::Changed, "{}", text(&report));
    let unloads: Vec<_> = report
        .changes
        .iter()
        .filter(|c| c.kind == "unload-module")
        .map(|c| c.target.clone().unwrap())
        .collect();
    assert_eq!(unloads, ["uas", "usb_storage"]);
    assert_eq!(m.read_kernel("/proc/modules"), "ext4 1 0 - Live 0x0\n");
    assert_eq!(run(&host, Mode::Check).status, Status::Compliant);
}

#[test]
fn an_image_never_unloads_anything() {
    let m = testkit::Machine::new("BOOT_IMAGE=/vmlinuz\n");
    m.kernel_file("/proc/modules", "usb_storage 86016 0 - Live 0x0\n");
    let report = run(&m.offline(), Mode::Apply);
    assert!(
        report.changes.iter().all(|c| c.kind != "unload-module"),
        "{:?}",
        report.changes
    );
}

#[test]
fn latin1_bytes_in_our_file_are_kept() {
    let m = testkit::Machine::new("BOOT_IMAGE=/vmlinuz\n");
    let dir = m.root.join("etc/modprobe.d");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("blacklist.conf"),
        b"# r\xe9seau\nblacklist usb-storage\n",
    )
    .unwrap();
    let report = run(&m.offline(), Mode::Apply);
    assert_eq!(report.status, Status::Changed, "{}", text(&report));
    let bytes = std::fs::read(dir.join("blacklist.conf")).unwrap();
    assert!(bytes.starts_with(b"# r\xe9seau\nblacklist usb-storage\n"));
    assert_eq!(run(&m.offline(), Mode::Check).status, Status::Compliant);
}

#[test]
fn first_install_wins_and_names_normalise() {
    let found = effective(&files(&[
        (
            "/usr/lib/modprobe.d/a.conf",
            "install usb_storage /sbin/modprobe --ignore-install usb-storage\n",
        ),
        (
            "/etc/modprobe.d/blacklist.conf",
            "blacklist usb-storage # guide\ninstall usb-storage /bin/false\n",
        ),
    ]));
    let usb = &found["usb_storage"];
    assert!(usb.blacklisted);
    assert_eq!(
        usb.install.as_ref().unwrap().0,
        "/usr/lib/modprobe.d/a.conf:1"
    );
    assert!(!is_deny(&usb.install.as_ref().unwrap().1));
}

#[test]
fn users_are_unloaded_first() {
    let loaded: BTreeMap<String, Vec<String>> = [
        ("usb_storage".to_string(), vec!["uas".to_string()]),
        ("uas".to_string(), vec![]),
    ]
    .into();
    let modules = vec![ModuleName("usb-storage".into()), ModuleName("uas".into())];
    assert_eq!(unload_order(&modules, &loaded), vec!["uas", "usb_storage"]);
}
