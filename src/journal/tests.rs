//! The journal on a temporary root: records written before their action, the reader's refusals
//! (each naming the file), and revert's conflict rule.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::read;
use super::revert;
use crate::controls::{execute, Action, FileState, FileWrite, Validation};
use crate::host::fs::FileSpec;
use crate::host::Host;

/// A root with `/etc/motd` ("old\n", 0644) and a host whose journal records an apply.
fn journaled() -> (tempfile::TempDir, Host) {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir_all(root.path().join("etc")).unwrap();
    fs::write(root.path().join("etc/motd"), "old\n").unwrap();
    fs::set_permissions(
        root.path().join("etc/motd"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let host = Host::open(root.path()).unwrap();
    let mut recorder = super::Recorder::new("test apply".into(), 20);
    recorder.set_control("core-login");
    host.journal.replace(Some(recorder));
    (root, host)
}

fn write(host: &Host, path: &str, content: &str) -> Action {
    let found = FileState::observe(host, Path::new(path)).unwrap();
    let spec = FileSpec {
        content: content.as_bytes().to_vec(),
        mode: 0o600,
        owner: host.file_owner(),
        parent_mode: 0o755,
    };
    Action::WriteFile(FileWrite::plan(&found, spec, Validation::None).unwrap())
}

/// Applies a write of /etc/motd and of a new /etc/new.d/file, and returns the run id.
fn applied(host: &Host) -> String {
    let actions = [
        write(host, "/etc/motd", "new\n"),
        write(host, "/etc/new.d/file", "created\n"),
    ];
    execute(host, &actions).unwrap();
    host.journal
        .borrow()
        .as_ref()
        .unwrap()
        .run()
        .unwrap()
        .id
        .clone()
}

#[test]
fn a_run_that_changes_nothing_writes_no_journal() {
    let (root, host) = journaled();
    execute(&host, &[]).unwrap();
    assert!(!root.path().join("var").exists());
    assert_eq!(read::last_id(&host).unwrap(), None);
}

#[test]
fn no_record_no_change_and_the_record_outlives_a_failed_action() {
    // The journal cannot be written (a file where its directory goes): the action never runs.
    let (root, host) = journaled();
    fs::create_dir_all(root.path().join("var/lib")).unwrap();
    fs::write(root.path().join("var/lib/flatcar-harden"), "in the way").unwrap();
    let error = execute(&host, &[write(&host, "/etc/motd", "new\n")]).unwrap_err();
    assert!(error.to_string().contains("journal"), "{error}");
    assert_eq!(fs::read(root.path().join("etc/motd")).unwrap(), b"old\n");

    // The action fails after its record was written (the file was edited behind the plan's
    // back): the record of the prior state is complete on disk all the same.
    let (root, host) = journaled();
    let action = write(&host, "/etc/motd", "new\n");
    fs::write(root.path().join("etc/motd"), "edited\n").unwrap();
    assert!(execute(&host, &[action]).is_err());
    let id = read::last_id(&host).unwrap().unwrap();
    let run = read::load(&host, &id).unwrap();
    assert_eq!(run.records.len(), 1);
    let super::record::Object::File { before, .. } = &run.records[0].object else {
        panic!("{run:?}");
    };
    let super::record::Image::Regular { content, .. } = before else {
        panic!("{before:?}");
    };
    assert_eq!(content, &super::record::hex(b"edited\n"));
}

#[test]
fn revert_puts_back_bytes_mode_and_absence_and_a_second_revert_does_nothing() {
    let (root, host) = journaled();
    let id = applied(&host);
    host.journal.replace(None);
    let run = read::load(&host, &id).unwrap();
    let steps = revert::steps(&run, &[], false);
    let plan = steps[0].assess(&host).unwrap();
    assert_eq!(plan.actions.len(), 2, "{plan:?}");
    steps[0].apply(&host, &plan).unwrap();
    let motd = root.path().join("etc/motd");
    assert_eq!(fs::read(&motd).unwrap(), b"old\n");
    assert_eq!(
        fs::metadata(&motd).unwrap().permissions().mode() & 0o7777,
        0o644
    );
    assert!(!root.path().join("etc/new.d").exists());
    let again = steps[0].assess(&host).unwrap();
    assert!(
        again.actions.is_empty() && again.problems.is_empty(),
        "{again:?}"
    );
}

#[test]
fn an_object_changed_after_the_run_is_a_conflict_unless_forced() {
    let (root, host) = journaled();
    let id = applied(&host);
    host.journal.replace(None);
    fs::write(root.path().join("etc/motd"), "someone else's\n").unwrap();
    let run = read::load(&host, &id).unwrap();
    let plan = revert::steps(&run, &[], false)[0].assess(&host).unwrap();
    // Only the untouched new file is taken back; the edited one is named and left alone.
    assert_eq!(plan.actions.len(), 1, "{plan:?}");
    assert!(matches!(plan.actions[0], Action::RemoveFile { .. }));
    assert_eq!(plan.problems.len(), 1);
    assert!(
        plan.problems[0].contains("/etc/motd changed after run"),
        "{}",
        plan.problems[0]
    );
    let forced = revert::steps(&run, &[], true)[0].assess(&host).unwrap();
    assert_eq!(forced.actions.len(), 2, "{forced:?}");
    assert!(forced.problems.is_empty());
}

/// What a case does to a run's directory (given its path and the run id).
type Damage = Box<dyn FnOnce(&Path, &str)>;

/// Damages the journal of a fresh run with `damage` and returns the reader's error.
fn damaged(damage: impl FnOnce(&Path, &str)) -> (String, String) {
    let (root, host) = journaled();
    let id = applied(&host);
    let dir = root.path().join("var/lib/flatcar-harden/runs").join(&id);
    damage(&dir, &id);
    let error = read::runs(&host)
        .and_then(|_| read::load(&host, &id))
        .unwrap_err();
    (error.file, error.reason)
}

fn edit(file: &Path, from: &str, to: &str) {
    let text = fs::read_to_string(file).unwrap();
    assert!(text.contains(from), "{text}");
    fs::write(file, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn a_damaged_journal_is_refused_naming_the_file_and_what_is_wrong() {
    let runs = "/var/lib/flatcar-harden/runs";
    let cases: Vec<(&str, Damage, &str, &str)> = vec![
        (
            "unknown key",
            Box::new(|dir, _| edit(&dir.join("000001.json"), "\"seq\"", "\"extra\": 1, \"seq\"")),
            "000001.json",
            "unknown field `extra`",
        ),
        (
            "path out of the root",
            Box::new(|dir, _| edit(&dir.join("000001.json"), "/etc/motd", "/etc/../../motd")),
            "000001.json",
            "not an absolute, plain path",
        ),
        (
            "not hex",
            Box::new(|dir, _| {
                edit(
                    &dir.join("000001.json"),
                    "\"content\": \"",
                    "\"content\": \"zz",
                )
            }),
            "000001.json",
            "not lowercase hex",
        ),
        (
            "unknown control",
            Box::new(|dir, _| edit(&dir.join("000002.json"), "core-login", "rootkit")),
            "000002.json",
            "names no control",
        ),
        (
            "missing record",
            Box::new(|dir, _| fs::remove_file(dir.join("000001.json")).unwrap()),
            "000002.json",
            "record 1 is missing",
        ),
        (
            "stray file",
            Box::new(|dir, _| fs::write(dir.join("notes.txt"), "hi").unwrap()),
            "notes.txt",
            "not a file the journal writes",
        ),
        (
            "writable by others",
            Box::new(|dir, _| {
                fs::set_permissions(dir.join("000002.json"), fs::Permissions::from_mode(0o666))
                    .unwrap()
            }),
            "000002.json",
            "lets others write it",
        ),
        (
            "not JSON",
            Box::new(|dir, _| fs::write(dir.join("000002.json"), "{").unwrap()),
            "000002.json",
            "EOF",
        ),
        (
            "id of another run",
            Box::new(|dir, id| edit(&dir.join("run.json"), id, "20000101-000000-000")),
            "run.json",
            "not its directory's",
        ),
        (
            "symlinked run directory",
            Box::new(|dir, _| {
                let away = dir.parent().unwrap().with_file_name("elsewhere");
                fs::rename(dir, &away).unwrap();
                std::os::unix::fs::symlink(&away, dir).unwrap();
            }),
            "",
            "never read through a link",
        ),
    ];
    for (what, damage, file, reason) in cases {
        let (named, why) = damaged(damage);
        assert!(named.starts_with(runs), "{what}: {named}");
        assert!(named.ends_with(file), "{what}: {named}");
        assert!(why.contains(reason), "{what}: {why}");
    }
}

/// A control that rewrites /etc/motd and says that costs remote access.
struct Motd;

struct Always;

impl crate::controls::Managed for Always {
    const KEY: &'static str = "state";
    fn is_unmanaged(&self) -> bool {
        false
    }
}

impl crate::controls::Control for Motd {
    const ID: &'static str = "core-login";
    const TITLE: &'static str = "motd";
    type Section = Always;
    type State = FileState;
    fn section(&self) -> &Always {
        &Always
    }
    fn observe(&self, host: &Host) -> Result<FileState, crate::controls::ControlError> {
        Ok(FileState::observe(host, Path::new("/etc/motd"))?)
    }
    fn plan(
        &self,
        found: &FileState,
    ) -> Result<crate::controls::Plan, crate::controls::ControlError> {
        let mut plan = crate::controls::Plan::managed("motd");
        let spec = FileSpec {
            content: b"new\n".to_vec(),
            mode: 0o644,
            owner: crate::host::fs::Owner {
                uid: found.meta.map_or(0, |m| m.uid),
                gid: found.meta.map_or(0, |m| m.gid),
            },
            parent_mode: 0o755,
        };
        plan.actions
            .extend(FileWrite::plan(found, spec, Validation::None).map(Action::WriteFile));
        Ok(plan)
    }
    fn lockout_risk(&self, _session: &crate::host::session::Session) -> Option<String> {
        Some("core loses its way in".into())
    }
}

/// An apply with `--confirm-within` over SSH whose timer arming is `arm`; the motd's content
/// when `arm` ran is put in `seen`.
fn confirm_apply(
    arm_result: Result<(), String>,
) -> (
    tempfile::TempDir,
    crate::report::ControlReport,
    Option<Vec<u8>>,
) {
    use std::rc::Rc;
    let (root, mut host) = journaled();
    host.session = crate::host::session::Session::known(
        Some("SSH_CONNECTION is set"),
        crate::host::session::Placement::Session("session-1.scope".into()),
        None,
    );
    let seen = Rc::new(std::cell::RefCell::new(None));
    let motd = root.path().join("etc/motd");
    let arm_seen = Rc::clone(&seen);
    let arm: super::record::Arm = Box::new(move |_host, meta| {
        assert!(meta.deadline.is_some());
        *arm_seen.borrow_mut() = Some(fs::read(&motd).unwrap());
        arm_result.clone().map_err(crate::host::HostError::Refused)
    });
    let recorder = super::Recorder::new("test".into(), 20)
        .confirm_within(std::time::Duration::from_secs(60), arm);
    host.journal.replace(Some(recorder));
    let steps: Vec<Box<dyn crate::controls::Step>> = vec![Box::new(Motd)];
    let mut reports = Vec::new();
    crate::engine::run(
        &host,
        &crate::policy::Policy::default(),
        &steps,
        crate::report::Mode::Apply,
        &mut |r| reports.push(r),
    );
    let seen = seen.borrow().clone();
    (root, reports.pop().unwrap(), seen)
}

#[test]
fn the_timer_is_armed_before_the_first_change_and_the_report_says_what_comes_back() {
    let (root, report, seen) = confirm_apply(Ok(()));
    assert_eq!(
        seen.as_deref(),
        Some(&b"old\n"[..]),
        "armed after the change"
    );
    assert_eq!(report.status, crate::report::Status::Changed, "{report:?}");
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("core loses its way in; it comes back by itself 60s")),
        "{report:?}"
    );
    assert_eq!(fs::read(root.path().join("etc/motd")).unwrap(), b"new\n");
}

#[test]
fn a_timer_that_cannot_be_armed_changes_nothing() {
    let (root, report, seen) = confirm_apply(Err("no bus".into()));
    assert!(seen.is_some());
    assert_eq!(report.status, crate::report::Status::Failed, "{report:?}");
    assert!(
        report.summary.contains("cannot arm the confirmation timer"),
        "{}",
        report.summary
    );
    assert_eq!(fs::read(root.path().join("etc/motd")).unwrap(), b"old\n");
    let runs = root.path().join("var/lib/flatcar-harden/runs");
    assert_eq!(
        fs::read_dir(runs).unwrap().count(),
        0,
        "the run was left behind"
    );
}

mod units;
