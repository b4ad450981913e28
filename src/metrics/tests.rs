//! The metrics file: its contract (names, labels, one status at 1), the carried-over series of the
//! other command, and the write that never goes through a link or leaves a partial file.

use std::collections::BTreeMap;

use super::*;
use crate::report::ControlReport;

fn report(mode: Mode, statuses: &[(&'static str, Status)]) -> Report {
    let mut report = Report::new(mode, "/".into(), vec!["built-in default".into()]);
    for (id, status) in statuses {
        report.push(ControlReport {
            id,
            title: "t",
            status: *status,
            summary: String::new(),
            changes: Vec::new(),
            notes: Vec::new(),
            duration_ms: 0,
        });
    }
    report
}

fn run<'a>(report: &'a Report, exit_code: u8) -> Run<'a> {
    Run {
        report,
        exit_code,
        finished: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_250),
        duration: Duration::from_millis(1234),
        policy_toml: "[smt]\nstate = \"off\"\n",
    }
}

/// Sample lines as (name, labels, value), as a scraper reads them; panics on anything else.
fn samples(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect(line);
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.strip_suffix('}').expect(line)),
                None => (series, ""),
            };
            let labels = labels
                .split(',')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (k, v) = l.split_once('=').expect(line);
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            (name.to_owned(), labels, value.parse().expect(line))
        })
        .collect()
}

#[test]
fn every_control_has_exactly_one_status_at_1_and_every_status_a_series() {
    let report = report(
        Mode::Check,
        &[
            ("sshd-socket", Status::WouldChange),
            ("smt", Status::PendingReboot),
            ("selinux", Status::Compliant),
        ],
    );
    let text = render(&run(&report, 3), "");
    let status: Vec<_> = samples(&text)
        .into_iter()
        .filter(|(name, _, _)| name == "flatcar_harden_control_status")
        .collect();
    assert_eq!(status.len(), 3 * Status::ALL.len());
    for id in ["sshd-socket", "smt", "selinux"] {
        let mine: Vec<_> = status
            .iter()
            .filter(|(_, l, _)| l["control"] == id)
            .collect();
        let labels: Vec<_> = mine.iter().map(|(_, l, _)| l["status"].as_str()).collect();
        assert_eq!(labels, Status::ALL.map(Status::as_str));
        let at_1: Vec<_> = mine.iter().filter(|(_, _, v)| *v == 1.0).collect();
        assert_eq!(at_1.len(), 1, "{id}");
        assert!(mine.iter().all(|(_, _, v)| *v == 0.0 || *v == 1.0));
    }
    let is_1 = |id: &str, s: &str| {
        status
            .iter()
            .any(|(_, l, v)| l["control"] == id && l["status"] == s && *v == 1.0)
    };
    assert!(is_1("sshd-socket", "would-change") && is_1("smt", "pending-reboot"));
}

#[test]
fn names_labels_and_values_are_the_documented_ones() {
    let report = report(Mode::Check, &[("smt", Status::PendingReboot)]);
    let text = render(&run(&report, 3), "");
    let found: BTreeMap<String, (BTreeMap<String, String>, f64)> = samples(&text)
        .into_iter()
        .filter(|(name, _, _)| name != "flatcar_harden_control_status")
        .map(|(name, labels, value)| (name, (labels, value)))
        .collect();
    let get = |name: &str| {
        found
            .get(name)
            .unwrap_or_else(|| panic!("{name} in\n{text}"))
    };
    let check = BTreeMap::from([("command".to_owned(), "check".to_owned())]);
    assert_eq!(
        get("flatcar_harden_last_run_timestamp_seconds"),
        &(check.clone(), 1_700_000_000.25)
    );
    assert_eq!(
        get("flatcar_harden_last_run_success"),
        &(check.clone(), 0.0)
    );
    assert_eq!(get("flatcar_harden_run_duration_seconds"), &(check, 1.234));
    assert_eq!(get("flatcar_harden_pending_reboot").1, 1.0);
    let (info, one) = get("flatcar_harden_build_info");
    assert_eq!(*one, 1.0);
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    // sha256 of `[smt]\nstate = "off"\n`, by sha256sum.
    assert_eq!(
        info["policy_sha256"],
        "1df9c5ae1d09d90fccd9dd4651115ce6f6843c51e08b84e7600e4b745b4ad41f"
    );
    // Every family announced once, with HELP before TYPE, each a gauge.
    for name in found
        .keys()
        .chain(["flatcar_harden_control_status".to_owned()].iter())
    {
        let help = format!("# HELP {name} ");
        let kind = format!("# TYPE {name} gauge");
        assert_eq!(text.matches(&help).count(), 1, "{name}");
        assert!(text.find(&help) < text.find(&kind), "{name}");
    }
}

#[test]
fn the_other_commands_last_run_is_carried_over_and_this_one_replaced() {
    let apply = report(Mode::Apply, &[("smt", Status::Changed)]);
    let first = render(&run(&apply, 0), "");
    assert!(!first.contains("command=\"check\""), "{first}");
    let check = report(Mode::Check, &[("smt", Status::Compliant)]);
    let mut later = run(&check, 0);
    later.finished += Duration::from_secs(3600);
    let second = render(&later, &first);
    let series = |text: &str, name: &str, command: &str| {
        samples(text)
            .into_iter()
            .filter(|(n, l, _)| n == name && l["command"] == command)
            .map(|(_, _, v)| v)
            .collect::<Vec<_>>()
    };
    let stamp = "flatcar_harden_last_run_timestamp_seconds";
    assert_eq!(series(&second, stamp, "apply"), [1_700_000_000.25]);
    assert_eq!(series(&second, stamp, "check"), [1_700_003_600.25]);
    // The controls are this run's alone: apply's `changed` is gone.
    assert!(
        second.contains("control=\"smt\",status=\"compliant\"} 1"),
        "{second}"
    );
    assert!(
        second.contains("control=\"smt\",status=\"changed\"} 0"),
        "{second}"
    );
    // A third run of apply replaces apply's series and keeps check's.
    let third = render(&run(&apply, 1), &second);
    assert_eq!(
        series(&third, "flatcar_harden_last_run_success", "apply"),
        [0.0]
    );
    assert_eq!(series(&third, stamp, "check"), [1_700_003_600.25]);
    // Garbage where a value should be is not carried.
    let broken = second.replace("{command=\"check\"} 1", "{command=\"check\"} x");
    assert_eq!(
        series(
            &render(&run(&apply, 0), &broken),
            "flatcar_harden_last_run_success",
            "check"
        ),
        Vec::<f64>::new()
    );
}

#[test]
fn a_dry_run_writes_none_and_the_flag_wins() {
    let (flag, policy) = (Path::new("/a.prom"), Path::new("/b.prom"));
    assert_eq!(target(Mode::DryRun, Some(flag), Some(policy)), None);
    assert_eq!(target(Mode::Apply, Some(flag), Some(policy)), Some(flag));
    assert_eq!(target(Mode::Check, None, Some(policy)), Some(policy));
    assert_eq!(target(Mode::Check, None, None), None);
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_file_is_replaced_whole_with_mode_0644_and_no_temporary_left() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fh.prom");
    std::fs::write(&path, "old\n").unwrap();
    std::fs::write(
        dir.path().join(".fh.prom.fh-0123456789abcdef"),
        "left by a killed run",
    )
    .unwrap();
    write_atomic(&path, "new\n").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o644);
    assert_eq!(names(dir.path()), ["fh.prom"]);
}

#[test]
fn a_symlink_at_the_path_is_an_error_naming_it_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::write(&elsewhere, "precious\n").unwrap();
    let path = dir.path().join("fh.prom");
    std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
    let error = write_atomic(&path, "new\n").unwrap_err().to_string();
    assert!(error.contains(&path.display().to_string()), "{error}");
    assert!(error.contains("symbolic link"), "{error}");
    assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "precious\n");
    assert_eq!(names(dir.path()), ["elsewhere", "fh.prom"]);
    assert!(read_previous(&path).is_empty(), "a link is not read either");
}

#[test]
fn a_missing_directory_or_a_directory_at_the_path_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing/fh.prom");
    let error = write_atomic(&path, "x").unwrap_err().to_string();
    assert!(error.contains(&path.display().to_string()), "{error}");
    assert!(error.contains("does not exist"), "{error}");
    assert!(!dir.path().join("missing").exists());
    std::fs::create_dir(dir.path().join("d.prom")).unwrap();
    let error = write_atomic(&dir.path().join("d.prom"), "x")
        .unwrap_err()
        .to_string();
    assert!(error.contains("not a regular file"), "{error}");
    assert_eq!(names(dir.path()), ["d.prom"]);
}
