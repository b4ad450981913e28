//! The guard's verdict from plain facts (cgroup placement, fallback signals, logind's answer): no
//! D-Bus here; the VM scenarios `guard-detached` and `sshd-over-ssh` ask the real logind.

use super::*;
use crate::host::logind::LoginSession;

fn ssh_login() -> LoginSession {
    LoginSession {
        id: "3".into(),
        user: "root".into(),
        remote: true,
        remote_host: "10.0.2.2".into(),
        service: "sshd".into(),
        kind: "tty".into(),
        tty: String::new(),
        leader: 0,
    }
}

fn console_login() -> LoginSession {
    LoginSession {
        id: "5".into(),
        user: "core".into(),
        remote: false,
        remote_host: String::new(),
        service: "login".into(),
        kind: "tty".into(),
        tty: "tty1".into(),
        leader: 0,
    }
}

fn found(session: LoginSession) -> Answer {
    Some(Ok(LoginLookup {
        session: Some(session),
        user_sessions: Vec::new(),
    }))
}

fn no_session(user_sessions: Vec<LoginSession>) -> Answer {
    Some(Ok(LoginLookup {
        session: None,
        user_sessions,
    }))
}

fn unreachable() -> Answer {
    Some(Err(
        "cannot reach the system bus: No such file or directory".into(),
    ))
}

fn scope() -> Placement {
    Placement::Session("session-3.scope".into())
}

fn verdict(signal: Option<&str>, placement: Placement, logind: Answer) -> Origin {
    Session::known(signal, placement, logind).origin()
}

#[test]
fn a_detached_process_in_an_ssh_session_is_remote_and_the_reason_names_the_session() {
    // setsid/tmux/nohup under sudo: no SSH_*, no sshd ancestor, but still in session-3.scope.
    assert_eq!(
        verdict(None, scope(), found(ssh_login())),
        Origin::Remote("logind session 3 (sshd, from 10.0.2.2, user root)".into())
    );
}

#[test]
fn an_sshd_session_is_remote_even_when_logind_has_no_remote_host() {
    let session = LoginSession {
        remote: false,
        remote_host: String::new(),
        ..ssh_login()
    };
    assert!(matches!(
        verdict(None, scope(), found(session)),
        Origin::Remote(why) if why.starts_with("logind session 3 (sshd, local")
    ));
    let session = LoginSession {
        service: "su-l".into(),
        remote_host: String::new(),
        ..ssh_login()
    };
    assert_eq!(
        verdict(None, scope(), found(session)),
        Origin::Remote("logind session 3 (su-l, remote, user root)".into())
    );
}

#[test]
fn a_local_session_is_local_and_named() {
    assert_eq!(
        verdict(None, scope(), found(console_login())),
        Origin::Local("logind session 5 (login, local, type tty, on tty1, user core)".into())
    );
}

#[test]
fn logind_unreachable_while_in_a_session_scope_is_unknown_and_says_why() {
    let Origin::Unknown(why) = verdict(None, scope(), unreachable()) else {
        panic!("not unknown");
    };
    assert!(why.contains("logind could not be asked"), "{why}");
    assert!(why.contains("No such file or directory"), "{why}");
    assert!(why.contains("session-3.scope"), "{why}");
}

#[test]
fn logind_unreachable_outside_any_known_place_is_unknown_too() {
    let placement = Placement::Unknown("cgroup /".into());
    assert!(matches!(
        verdict(None, placement, unreachable()),
        Origin::Unknown(_)
    ));
}

#[test]
fn a_system_service_is_local_without_asking_logind() {
    let session = Session {
        logind: OnceCell::new(),
        ..Session::known(
            None,
            Placement::System("flatcar-harden.service".into()),
            None,
        )
    };
    assert_eq!(
        session.origin(),
        Origin::Local("system service flatcar-harden.service, not a login session".into())
    );
    assert_eq!(session.logind.get(), Some(&None), "logind was asked");
}

#[test]
fn a_fallback_signal_is_remote_whatever_logind_says() {
    let signal = Some("SSH_CONNECTION=10.0.2.2 40000 10.0.2.15 22");
    for logind in [unreachable(), found(console_login()), no_session(vec![])] {
        assert_eq!(
            verdict(signal, scope(), logind),
            Origin::Remote("SSH_CONNECTION=10.0.2.2 40000 10.0.2.15 22".into())
        );
    }
    let in_sshd = Placement::System("sshd@0-10.0.2.15:22-10.0.2.2:40000.service".into());
    assert!(matches!(
        verdict(Some("process 9 runs in sshd@…"), in_sshd, None),
        Origin::Remote(_)
    ));
}

#[test]
fn a_session_scope_that_logind_does_not_know_is_unknown() {
    assert!(matches!(
        verdict(None, scope(), no_session(vec![])),
        Origin::Unknown(why) if why.contains("logind knows no session")
    ));
}

#[test]
fn under_the_user_manager_the_users_sessions_decide() {
    let manager = || Placement::UserManager("user@0.service".into());
    let remote = verdict(
        None,
        manager(),
        no_session(vec![console_login(), ssh_login()]),
    );
    assert!(
        matches!(&remote, Origin::Remote(why) if why.contains("logind session 3 (sshd")),
        "{remote:?}"
    );
    assert!(matches!(
        verdict(None, manager(), no_session(vec![console_login()])),
        Origin::Local(_)
    ));
    assert!(matches!(
        verdict(None, manager(), no_session(vec![])),
        Origin::Unknown(_)
    ));
}

#[test]
fn no_session_and_no_signal_outside_a_login_place_is_local() {
    let placement = Placement::Unknown("cgroup /".into());
    assert!(matches!(
        verdict(None, placement, no_session(vec![])),
        Origin::Local(_)
    ));
}

#[test]
fn the_operator_is_the_sessions_user_when_sudo_user_is_absent() {
    let session = Session::known(None, scope(), found(console_login()));
    assert_eq!(session.operator().as_deref(), Some("core"));
    let behind_sudo = Session {
        sudo_user: Some("alice".into()),
        ..Session::known(None, scope(), found(console_login()))
    };
    assert_eq!(behind_sudo.operator().as_deref(), Some("alice"));
}

#[test]
fn placement_reads_the_systemd_cgroup() {
    let cases = [
        (
            "0::/system.slice/flatcar-harden.service\n",
            Placement::System("flatcar-harden.service".into()),
        ),
        (
            "0::/system.slice/system-sshd.slice/sshd@0-10.0.2.15:22-10.0.2.2:40000.service\n",
            Placement::System("sshd@0-10.0.2.15:22-10.0.2.2:40000.service".into()),
        ),
        ("0::/init.scope\n", Placement::System("init.scope".into())),
        (
            "0::/user.slice/user-0.slice/session-3.scope\n",
            Placement::Session("session-3.scope".into()),
        ),
        (
            "0::/user.slice/user-500.slice/user@500.service/app.slice/tmux-spawn-1.scope\n",
            Placement::UserManager("user@500.service".into()),
        ),
        (
            "12:cpu,cpuacct:/\n1:name=systemd:/user.slice/user-0.slice/session-c2.scope\n0::/\n",
            Placement::Session("session-c2.scope".into()),
        ),
        (
            "12:cpu,cpuacct:/\n1:name=systemd:/user.slice/user-0.slice/session-c2.scope\n",
            Placement::Session("session-c2.scope".into()),
        ),
        ("0::/\n", Placement::Unknown("cgroup /".into())),
        (
            "",
            Placement::Unknown("no systemd cgroup in /proc/self/cgroup".into()),
        ),
    ];
    for (cgroups, expected) in cases {
        assert_eq!(placement(cgroups), expected, "{cgroups:?}");
    }
}
