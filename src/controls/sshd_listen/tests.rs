//! sshd-listen: unit tests (plans from observed facts, runs against a fixture image).

use super::*;
use crate::controls::testkit::{self, text};
use crate::host::fs::{FileKind, Metadata};
use crate::host::systemd::UnitStatus;
use crate::policy::Policy;
use crate::report::{Mode, Status};

/// Flatcar's sshd.socket, and the drop-in Flatcar ships for it.
const UNIT_FILE: &str = "[Unit]\nDescription=OpenSSH Server Socket\n[Socket]\nListenStream=22\n\
                         FreeBind=true\nAccept=yes\n[Install]\nWantedBy=sockets.target\n";
const FLATCAR_DROPIN: &str = "[Socket]\nTriggerLimitBurst=0\n";

fn policy(listen: &[&str]) -> policy::SshdListen {
    policy::SshdListen {
        state: SshdListenState::Enforced,
        listen: listen
            .iter()
            .map(|a| ListenAddress::try_from(a.to_string()).unwrap())
            .collect(),
        allow_absent_address: false,
    }
}

fn files(extra: &[(&str, &str)]) -> UnitFiles {
    let mut dropins = vec![(
        PathBuf::from("/usr/lib/systemd/system/sshd.socket.d/no-trigger-limit-burst.conf"),
        FLATCAR_DROPIN.to_owned(),
    )];
    dropins.extend(extra.iter().map(|(p, t)| (PathBuf::from(p), t.to_string())));
    UnitFiles {
        name: UNIT.into(),
        unit: Some((
            "/usr/lib/systemd/system/sshd.socket".into(),
            UNIT_FILE.into(),
        )),
        dropins,
    }
}

fn socket(listen: &[&str], need_daemon_reload: bool) -> SocketListen {
    SocketListen {
        unit: UnitStatus {
            load_state: "loaded".into(),
            active_state: "active".into(),
            unit_file_state: "enabled".into(),
            need_daemon_reload,
            drop_in_paths: Vec::new(),
        },
        listen: listen
            .iter()
            .map(|a| ("Stream".to_owned(), a.to_string()))
            .collect(),
        free_bind: true,
    }
}

const OWNER: Owner = Owner { uid: 0, gid: 0 };

/// The host's state: our drop-in holding `dropin` (if any), systemd's addresses `loaded`.
fn live(dropin: Option<&str>, loaded: &[&str], extra: &[(&str, &str)]) -> State {
    State {
        dropin: FileState {
            path: dropin_path(),
            meta: dropin.map(|_| Metadata {
                kind: FileKind::Regular,
                mode: 0o644,
                uid: 0,
                gid: 0,
            }),
            content: dropin.map(|t| t.as_bytes().to_vec()),
            linked: None,
        },
        owner: OWNER,
        files: files(extra),
        live: Some(Live {
            socket: socket(loaded, false),
            addresses: vec!["127.0.0.1".parse().unwrap(), "10.0.2.15".parse().unwrap()],
        }),
    }
}

fn kinds(plan: &Plan) -> Vec<String> {
    plan.actions
        .iter()
        .map(|a| a.change().kind.to_owned())
        .collect()
}

#[test]
fn the_dropin_resets_the_units_addresses_then_lists_the_policys() {
    let mut p = policy(&["10.0.2.15:22", "[fd00::5]:2222"]);
    assert_eq!(
        dropin_content(&p),
        "# flatcar-harden sshd-listen: sshd.socket listens only on these addresses.\n\
         [Socket]\nListenStream=\nListenStream=10.0.2.15:22\nListenStream=[fd00::5]:2222\n"
    );
    p.allow_absent_address = true;
    assert!(dropin_content(&p).ends_with("ListenStream=[fd00::5]:2222\nFreeBind=yes\n"));
}

#[test]
fn a_socket_on_every_address_is_narrowed_by_a_reload_and_a_restart_of_the_socket_alone() {
    let plan = plan(&policy(&["10.0.2.15:22"]), &live(None, &["[::]:22"], &[]));
    assert_eq!(
        kinds(&plan),
        ["write-file", "daemon-reload", "restart-unit"],
        "{plan:?}"
    );
    assert_eq!(
        plan.actions[2].change().target.as_deref(),
        Some("sshd.socket")
    );
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);
    assert!(plan.summary.contains("[::]:22"), "{}", plan.summary);
}

#[test]
fn once_systemd_listens_on_the_policys_addresses_nothing_is_done() {
    let p = policy(&["10.0.2.15:22"]);
    let plan = plan(&p, &live(Some(&dropin_content(&p)), &["10.0.2.15:22"], &[]));
    assert!(plan.actions.is_empty(), "{plan:?}");
    assert!(plan.problems.is_empty(), "{:?}", plan.problems);
    assert_eq!(plan.summary, "sshd.socket listens on 10.0.2.15:22");
}

#[test]
fn a_reload_pending_from_elsewhere_is_done_and_the_socket_restarted() {
    let p = policy(&["10.0.2.15:22"]);
    let mut state = live(Some(&dropin_content(&p)), &["[::]:22"], &[]);
    state.live.as_mut().unwrap().socket.unit.need_daemon_reload = true;
    assert_eq!(kinds(&plan(&p, &state)), ["daemon-reload", "restart-unit"]);
}

#[test]
fn an_address_the_host_lacks_is_refused_before_anything_is_written_unless_allowed() {
    let mut p = policy(&["10.0.2.15:22", "192.0.2.7:22"]);
    let refused = plan(&p, &live(None, &["[::]:22"], &[]));
    assert!(refused.actions.is_empty(), "{refused:?}");
    assert_eq!(refused.problems.len(), 1, "{:?}", refused.problems);
    assert!(
        refused.problems[0].starts_with("192.0.2.7:22: this host has no address 192.0.2.7")
            && refused.problems[0].contains("allow_absent_address"),
        "{}",
        refused.problems[0]
    );
    p.allow_absent_address = true;
    let allowed = plan(&p, &live(None, &["[::]:22"], &[]));
    assert!(allowed.problems.is_empty(), "{:?}", allowed.problems);
    let Action::WriteFile(write) = &allowed.actions[0] else {
        panic!("{allowed:?}")
    };
    assert!(String::from_utf8_lossy(&write.spec.content).contains("FreeBind=yes\n"));
    // A wildcard address is on every host.
    let wildcard = plan(&policy(&["0.0.0.0:2222"]), &live(None, &["[::]:22"], &[]));
    assert!(wildcard.problems.is_empty(), "{:?}", wildcard.problems);
}

#[test]
fn a_later_dropin_that_adds_an_address_is_drift_naming_the_file_and_nothing_restarts() {
    let p = policy(&["10.0.2.15:22"]);
    let state = live(
        Some(&dropin_content(&p)),
        &["10.0.2.15:22", "0.0.0.0:2222"],
        &[(
            "/etc/systemd/system/sshd.socket.d/99-mine.conf",
            "[Socket]\nListenStream=0.0.0.0:2222\n",
        )],
    );
    let plan = plan(&p, &state);
    assert!(plan.actions.is_empty(), "{plan:?}");
    assert_eq!(plan.problems.len(), 1, "{:?}", plan.problems);
    assert!(
        plan.problems[0].starts_with(
            "/etc/systemd/system/sshd.socket.d/99-mine.conf:2 `ListenStream=0.0.0.0:2222` comes \
             after /etc/systemd/system/sshd.socket.d/90-listen.conf"
        ),
        "{}",
        plan.problems[0]
    );
}

#[test]
fn enforced_without_addresses_is_a_failure_that_writes_nothing() {
    let plan = plan(&policy(&[]), &live(None, &["[::]:22"], &[]));
    assert!(plan.actions.is_empty());
    assert!(
        plan.problems[0].contains("needs `listen"),
        "{:?}",
        plan.problems
    );
}

#[test]
fn the_guard_names_the_sessions_address_when_the_list_leaves_it_out_and_fails_closed() {
    let control = SshdListen::new(policy(&["10.0.2.15:22"]));
    let session = |found| {
        Session::known(
            None,
            crate::host::session::Placement::Unknown("t".into()),
            None,
        )
        .with_local_address(found)
    };
    assert_eq!(control.lockout_risk(&session(Ok("10.0.2.15:22"))), None);
    let cut = control.lockout_risk(&session(Ok("127.0.0.1:22"))).unwrap();
    assert!(
        cut.starts_with(
            "sshd.socket stops listening on 127.0.0.1:22, the address this SSH session came in on"
        ) && cut.contains("lists only 10.0.2.15:22"),
        "{cut}"
    );
    let unknown = control
        .lockout_risk(&session(Err("no sshd ancestor")))
        .unwrap();
    assert!(
        unknown.contains("cannot be told (no sshd ancestor)"),
        "{unknown}"
    );
    // Another port on the same address is another way in, and a wildcard takes every address.
    assert!(control
        .lockout_risk(&session(Ok("10.0.2.15:2222")))
        .is_some());
    let wildcard = SshdListen::new(policy(&["[::]:22"]));
    assert_eq!(wildcard.lockout_risk(&session(Ok("10.0.2.15:22"))), None);
    let v4 = SshdListen::new(policy(&["0.0.0.0:22"]));
    assert!(v4.lockout_risk(&session(Ok("[fd00::5]:22"))).is_some());
}

fn run(m: &testkit::Machine, mode: Mode, listen: &[&str]) -> crate::report::ControlReport {
    let mut policy = Policy::default();
    policy.sshd_listen = self::policy(listen);
    let step = Box::new(SshdListen::new(policy.sshd_listen.clone()));
    testkit::run(&m.offline(), &policy, step, mode)
}

#[test]
fn an_image_gets_the_dropin_pending_the_boot_and_a_second_apply_changes_nothing() {
    let m = testkit::Machine::new("");
    m.root_file("/usr/lib/systemd/system/sshd.socket", UNIT_FILE);
    m.root_file(
        "/usr/lib/systemd/system/sshd.socket.d/no-trigger-limit-burst.conf",
        FLATCAR_DROPIN,
    );
    let dry = run(&m, Mode::DryRun, &["10.0.2.15:22"]);
    assert_eq!(dry.status, Status::WouldChange, "{}", text(&dry));
    assert!(dry.changes[0]
        .diff
        .as_deref()
        .unwrap()
        .contains("+ListenStream=10.0.2.15:22"));
    let report = run(&m, Mode::Apply, &["10.0.2.15:22"]);
    assert_eq!(report.status, Status::PendingReboot, "{}", text(&report));
    assert_eq!(
        m.read_root("/etc/systemd/system/sshd.socket.d/90-listen.conf"),
        dropin_content(&policy(&["10.0.2.15:22"]))
    );
    let again = run(&m, Mode::Apply, &["10.0.2.15:22"]);
    assert_eq!(again.status, Status::PendingReboot, "{}", text(&again));
    assert!(again.changes.is_empty());
}

#[test]
fn an_image_whose_later_dropin_wins_fails_naming_it() {
    let m = testkit::Machine::new("");
    m.root_file("/usr/lib/systemd/system/sshd.socket", UNIT_FILE);
    m.root_file(
        "/etc/systemd/system/sshd.socket.d/95-all.conf",
        "[Socket]\nListenStream=\nListenStream=22\n",
    );
    let report = run(&m, Mode::Check, &["10.0.2.15:22"]);
    assert_eq!(report.status, Status::Failed, "{}", text(&report));
    assert!(
        text(&report).contains("95-all.conf:3 `ListenStream=22`"),
        "{}",
        text(&report)
    );
}
