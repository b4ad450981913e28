//! core-sudo's plan from plain values: no host is read, so every observed fact is set by hand.

use std::path::PathBuf;

use super::*;
use crate::host::fs::{FileKind, Metadata};
use crate::policy::{CoreSudoState, SudoersMode};

const BASELAYOUT: &[u8] =
    b"root ALL=(ALL) ALL\ncore ALL=(ALL) NOPASSWD: ALL\n#includedir /etc/sudoers.d\n";

fn person(name: &str, uid: u32) -> Identity {
    Identity {
        name: name.into(),
        uid: Some(uid),
        gids: [uid].into(),
        groups: [name.to_owned()].into(),
    }
}

/// A host as observe would have found it: the baselayout, `dropins` in /etc/sudoers.d, our
/// drop-in holding `ours` (mode 0440, root's) if given.
fn state(dropins: &[(&str, &[u8])], ours: Option<&[u8]>) -> State {
    let mut files = FileSet::default();
    files
        .files
        .insert(PathBuf::from("/etc/sudoers"), BASELAYOUT.to_vec());
    let dir = files
        .dirs
        .entry(PathBuf::from("/etc/sudoers.d"))
        .or_default();
    for (name, _) in dropins {
        dir.push(name.into());
    }
    for (name, bytes) in dropins {
        let path = Path::new("/etc/sudoers.d").join(name);
        files.files.insert(path, bytes.to_vec());
    }
    let dropin = FileState {
        path: PathBuf::from(DROPIN),
        meta: ours.map(|_| Metadata {
            kind: FileKind::Regular,
            mode: 0o440,
            uid: 0,
            gid: 0,
        }),
        content: ours.map(<[u8]>::to_vec),
        linked: None,
    };
    if let Some(ours) = ours {
        files
            .dirs
            .get_mut(Path::new("/etc/sudoers.d"))
            .unwrap()
            .push("core-passwd".into());
        files.files.insert(PathBuf::from(DROPIN), ours.to_vec());
    }
    State {
        who: person("core", 500),
        targets: vec![person("root", 0)],
        hostname: Some("vm".into()),
        files,
        existing: ours.map(|_| Validity::Valid),
        rejected: Vec::new(),
        dropin,
        visudo_installed: true,
        skip_validation: false,
        owner: Owner { uid: 0, gid: 0 },
        sudo_list: None,
    }
}

fn plan(state: &State) -> Plan {
    let control = CoreSudo::new(policy::CoreSudo {
        state: CoreSudoState::RequirePassword,
        file_mode: SudoersMode(0o440),
    });
    control.plan(state).unwrap()
}

#[test]
fn the_dropin_in_place_is_compliant_and_a_missing_one_is_written() {
    let done = plan(&state(&[], Some(CONTENT.as_bytes())));
    assert!(
        done.actions.is_empty() && done.problems.is_empty(),
        "{done:?}"
    );
    let todo = plan(&state(&[], None));
    assert_eq!(todo.actions.len(), 1);
    assert!(todo.problems.is_empty(), "{:?}", todo.problems);
}

#[test]
fn a_later_nopasswd_dropin_is_named_with_its_line() {
    let found = plan(&state(
        &[("zz", b"# admins\ncore ALL=NOPASSWD:ALL\n")],
        Some(CONTENT.as_bytes()),
    ));
    assert_eq!(found.summary, "core keeps sudo without a password");
    assert!(
        found.problems[0].starts_with("/etc/sudoers.d/zz:2 `core ALL=NOPASSWD:ALL` comes after"),
        "{:?}",
        found.problems
    );
}

#[test]
fn a_scoped_defaults_names_the_defaults_line() {
    let found = plan(&state(&[("00", b"Defaults>root !authenticate\n")], None));
    assert!(
        found.problems[0].contains("/etc/sudoers.d/00:1"),
        "{:?}",
        found.problems
    );
    assert!(found.problems[0].contains("remove `!authenticate`"));
}

#[test]
fn an_existing_rule_visudo_rejects_is_replaced() {
    let mut rejected = state(&[], Some(b"core ALL=(ALL) ALL\n"));
    rejected.existing = Some(Validity::Invalid("stdin:1:1: syntax error".into()));
    let found = plan(&rejected);
    let Some(Action::WriteFile(write)) = found.actions.first() else {
        panic!("{found:?}");
    };
    assert_eq!(write.spec.content, CONTENT.as_bytes());
    assert!(
        found.notes[0].contains("visudo rejects"),
        "{:?}",
        found.notes
    );
}

#[test]
fn a_missing_visudo_fails_unless_told_not_to_validate() {
    let mut without = state(&[], None);
    without.visudo_installed = false;
    let found = plan(&without);
    assert!(
        found.problems.iter().any(|p| p.contains("--no-validate")),
        "{found:?}"
    );
    without.skip_validation = true;
    let found = plan(&without);
    assert!(found.problems.is_empty(), "{:?}", found.problems);
    assert!(found.notes.iter().any(|n| n.contains("without validation")));
}

#[test]
fn sudo_and_the_reader_disagreeing_is_not_compliant() {
    let mut live = state(&[], Some(CONTENT.as_bytes()));
    // The baselayout's NOPASSWD line is listed by sudo -l too; sudo claiming none is a
    // disagreement.
    live.sudo_list = Some(Ok(Listing {
        nopasswd: false,
        no_authenticate: false,
    }));
    let found = plan(&live);
    assert!(
        found.problems[0].contains("sudo and this reader disagree"),
        "{found:?}"
    );
    assert!(found.problems[0].contains("shows no NOPASSWD entry"));
    assert!(found.problems[0].contains("reader finds a NOPASSWD entry"));
    live.sudo_list = Some(Ok(Listing {
        nopasswd: true,
        no_authenticate: false,
    }));
    assert!(plan(&live).problems.is_empty());
    live.sudo_list = Some(Err("sudo is not installed".into()));
    let found = plan(&live);
    assert!(found.problems.is_empty());
    assert!(found.notes[0].contains("sudo is not installed"));
}

#[test]
fn no_core_is_not_applicable() {
    let mut nobody = state(&[], None);
    nobody.who.uid = None;
    assert_eq!(
        plan(&nobody).disposition,
        super::super::Disposition::NotApplicable
    );
}
