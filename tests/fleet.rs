//! What a fleet reads, from the real binary: the Prometheus metrics file (checked by promtool, the
//! Prometheus project's own linter), the JUnit document, the `[report]` policy section, the drift
//! check units, and what happens to the metrics file on bad input.
//!
//! Needs promtool (Debian package prometheus) and unshare (util-linux), as tests/install-deps.sh
//! installs them.

mod common;
use common::fresh_root;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_flatcar-harden");
const UNIT_METRICS: &str = "/var/lib/node_exporter/textfile_collector/flatcar-harden.prom";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn agent(args: &[&str], root: &Path, extra: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--root")
        .arg(root)
        .args(extra)
        .env_remove("JOURNAL_STREAM")
        .output()
        .unwrap()
}

fn path_arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `flatcar_harden_control_status` samples: control -> [(status, value)].
fn statuses(metrics: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("flatcar_harden_control_status{control=\"") else {
            continue;
        };
        let (control, rest) = rest.split_once("\",status=\"").expect(line);
        let (status, value) = rest.split_once("\"} ").expect(line);
        out.entry(control.into())
            .or_default()
            .push((status.into(), value.into()));
    }
    out
}

/// The JSON report's statuses: control -> status.
fn json_statuses(root: &Path) -> BTreeMap<String, String> {
    let out = agent(&["check", "--format", "json"], root, &[]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report["controls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().into(),
                c["status"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn promtool(file: &Path) -> Output {
    let promtool = std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("promtool"))
                .find(|p| p.is_file())
        })
        .expect("promtool is needed for this test: apt-get install prometheus");
    Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(fs::File::open(file).unwrap())
        .output()
        .unwrap()
}

#[test]
fn check_writes_metrics_promtool_accepts_with_one_status_per_control_at_1() {
    let root = fresh_root();
    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("fh.prom");
    let before = common::snapshot(root.path());
    let out = agent(
        &["check", "--metrics-file", path_arg(&file)],
        root.path(),
        &[],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    // The metrics go where they were asked to, never under --root, which check leaves alone.
    assert_eq!(common::snapshot(root.path()), before);
    let metrics = fs::read_to_string(&file).unwrap();

    let lint = promtool(&file);
    assert!(
        lint.status.success() && lint.stdout.is_empty() && lint.stderr.is_empty(),
        "promtool check metrics: {}{}\n{metrics}",
        text(&lint.stdout),
        text(&lint.stderr)
    );

    // Every control of the report, each with one series per status, exactly one at 1: the
    // report's status.
    let expected = json_statuses(root.path());
    let found = statuses(&metrics);
    assert_eq!(
        found.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (control, series) in &found {
        assert_eq!(series.len(), 8, "{control}: one series per status");
        let at_1: Vec<_> = series.iter().filter(|(_, v)| v == "1").collect();
        assert_eq!(at_1.len(), 1, "{control}");
        assert_eq!(at_1[0].0, expected[control], "{control}");
        assert!(series.iter().all(|(_, v)| v == "0" || v == "1"));
    }
    assert!(metrics.contains("\nflatcar_harden_last_run_success{command=\"check\"} 0\n"));
    assert!(metrics.contains("\nflatcar_harden_pending_reboot 0\n"));
    assert!(!metrics.contains("command=\"apply\""), "{metrics}");

    // The policy hash is that of the effective policy as `policy show` prints it.
    let show = agent(&["policy", "show"], root.path(), &[]);
    let shown = text(&show.stdout);
    let body = &shown[shown.find("\n\n").unwrap() + 2..];
    let sum = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(body.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let hash = text(&sum.stdout)[..64].to_owned();
    assert!(
        metrics.contains(&format!(
            "flatcar_harden_build_info{{version=\"{}\",policy_sha256=\"{hash}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{metrics}"
    );
    assert!(
        fs::read_dir(out_dir.path()).unwrap().count() == 1,
        "only the file"
    );
}

#[test]
fn apply_then_check_share_one_file_and_both_last_runs_stay() {
    let root = fresh_root();
    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("fh.prom");
    let flag = ["--metrics-file", path_arg(&file)];
    let out = agent(&["apply", flag[0], flag[1]], root.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let applied = fs::read_to_string(&file).unwrap();
    assert!(applied.contains("control=\"usb-storage\",status=\"changed\"} 1"));
    assert!(applied.contains("flatcar_harden_last_run_success{command=\"apply\"} 1"));

    let out = agent(&["check", flag[0], flag[1]], root.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let checked = fs::read_to_string(&file).unwrap();
    assert!(checked.contains("control=\"usb-storage\",status=\"compliant\"} 1"));
    assert!(checked.contains("control=\"usb-storage\",status=\"changed\"} 0"));
    for command in ["apply", "check"] {
        assert!(
            checked.contains(&format!(
                "flatcar_harden_last_run_success{{command=\"{command}\"}} 1"
            )),
            "{checked}"
        );
    }
    let lint = promtool(&file);
    assert!(
        lint.status.success() && lint.stderr.is_empty(),
        "{}",
        text(&lint.stderr)
    );
}

#[test]
fn a_dry_run_writes_no_metrics_and_the_policy_key_is_used_unless_the_flag_wins() {
    let root = fresh_root();
    let out_dir = tempfile::tempdir().unwrap();
    let by_policy = out_dir.path().join("policy.prom");
    let by_flag = out_dir.path().join("flag.prom");
    let policy = out_dir.path().join("policy.toml");
    fs::write(
        &policy,
        format!("[report]\nmetrics_file = \"{}\"\n", by_policy.display()),
    )
    .unwrap();
    let with_policy = ["--policy", path_arg(&policy)];

    let out = agent(&["apply", "--dry-run"], root.path(), &with_policy);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = agent(
        &["apply", "--dry-run", "--metrics-file", path_arg(&by_flag)],
        root.path(),
        &with_policy,
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("--dry-run writes no metrics"));
    assert_eq!(fs::read_dir(out_dir.path()).unwrap().count(), 1);

    agent(&["check"], root.path(), &with_policy);
    assert!(by_policy.is_file());
    fs::remove_file(&by_policy).unwrap();
    agent(
        &["check", "--metrics-file", path_arg(&by_flag)],
        root.path(),
        &with_policy,
    );
    assert!(by_flag.is_file() && !by_policy.exists());
}

#[test]
fn an_image_s_own_policy_does_not_choose_a_file_on_the_build_machine() {
    let root = fresh_root();
    let out_dir = tempfile::tempdir().unwrap();
    let named = out_dir.path().join("by-image.prom");
    let policy = root.path().join("etc/flatcar-harden/policy.toml");
    fs::create_dir_all(policy.parent().unwrap()).unwrap();
    fs::write(
        &policy,
        format!("[report]\nmetrics_file = \"{}\"\n", named.display()),
    )
    .unwrap();
    let out = agent(&["check", "-v"], root.path(), &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(!named.exists());
    assert!(
        text(&out.stderr).contains("is the image's: not written"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_policy_that_cannot_be_read_leaves_the_previous_file_and_says_so() {
    let root = fresh_root();
    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("fh.prom");
    fs::write(&file, "previous\n").unwrap();
    let policy = out_dir.path().join("policy.toml");
    fs::write(&policy, "[smt]\nstate = \"of\"\n").unwrap();
    let out = agent(
        &["check", "--metrics-file", path_arg(&file)],
        root.path(),
        &["--policy", path_arg(&policy)],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("metrics file {} left as it was", file.display())),
        "{stderr}"
    );
    assert_eq!(fs::read_to_string(&file).unwrap(), "previous\n");
}

#[test]
fn the_report_section_is_checked_like_the_others() {
    let dir = tempfile::tempdir().unwrap();
    for (policy, expected) in [
        (
            "[report]\nmetrics_file = \"fh.prom\"\n",
            "line 2, column 16: `report.metrics_file`: `fh.prom` must be an absolute path",
        ),
        (
            "[report]\nmetrics_file = \"/var/lib/../fh.prom\"\n",
            "must be written plainly",
        ),
        (
            "[report]\nmetrics_file = \"/var/lib/\"\n",
            "must name a file, not a directory",
        ),
        (
            "[report]\nmetric_file = \"/a.prom\"\n",
            "unknown key `report.metric_file`",
        ),
        ("report = \"/a.prom\"\n", "`report` must be a table"),
    ] {
        let file = dir.path().join("p.toml");
        fs::write(&file, policy).unwrap();
        let out = Command::new(BIN)
            .args(["policy", "check"])
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{policy}");
        assert!(
            text(&out.stderr).contains(expected),
            "{policy}: {}",
            text(&out.stderr)
        );
    }
}

/// Runs check with `--metrics-file path` and returns (exit code, stderr), next to the exit code of
/// the same run without metrics.
fn check_with_bad_metrics(root: &Path, path: &Path, wrap: &[&str]) -> (Option<i32>, i32, String) {
    let plain = agent(&["check"], root, &[]).status.code().unwrap();
    let out = Command::new(wrap.first().copied().unwrap_or(BIN))
        .args(wrap.iter().skip(1))
        .args(if wrap.is_empty() { vec![] } else { vec![BIN] })
        .args(["check", "--root"])
        .arg(root)
        .arg("--metrics-file")
        .arg(path)
        .env_remove("JOURNAL_STREAM")
        .output()
        .unwrap();
    (out.status.code(), plain, text(&out.stderr))
}

#[test]
fn a_bad_metrics_path_is_an_error_naming_it_and_the_runs_result_stands() {
    let root = fresh_root();
    let dir = tempfile::tempdir().unwrap();
    let names = |dir: &Path| -> Vec<PathBuf> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        names
    };

    // A missing directory: not created.
    let missing = dir.path().join("textfile_collector/fh.prom");
    let (code, plain, stderr) = check_with_bad_metrics(root.path(), &missing, &[]);
    assert_eq!(code, Some(plain), "{stderr}");
    assert!(
        stderr.contains(&format!("metrics file {}", missing.display()))
            && stderr.contains("does not exist")
            && stderr.contains(&format!("exit {plain}")),
        "{stderr}"
    );
    assert!(names(dir.path()).is_empty());

    // A symlink to elsewhere: refused, the target untouched.
    let target = dir.path().join("elsewhere");
    fs::write(&target, "keep\n").unwrap();
    let link = dir.path().join("fh.prom");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let (code, plain, stderr) = check_with_bad_metrics(root.path(), &link, &[]);
    assert_eq!(code, Some(plain));
    assert!(
        stderr.contains(&link.display().to_string()) && stderr.contains("symbolic link"),
        "{stderr}"
    );
    assert_eq!(fs::read_to_string(&target).unwrap(), "keep\n");
    assert_eq!(names(dir.path()), [target.clone(), link.clone()]);

    // A read-only file system (a read-only bind mount of the directory, in a private mount
    // namespace of a user namespace): no temporary, no file.
    let ro = dir.path().join("ro");
    fs::create_dir(&ro).unwrap();
    let file = ro.join("fh.prom");
    let script = format!(
        "mount --bind {0} {0} && mount -o remount,bind,ro {0} && exec \"$@\"",
        ro.display()
    );
    let wrap = [
        "unshare",
        "--user",
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        &script,
        "sh",
    ];
    let (code, plain, stderr) = check_with_bad_metrics(root.path(), &file, &wrap);
    assert_eq!(code, Some(plain), "{stderr}");
    assert!(
        stderr.contains(&file.display().to_string()) && stderr.contains("Read-only file system"),
        "{stderr}"
    );
    assert!(names(&ro).is_empty());
}

#[test]
fn junit_has_one_testcase_per_control_and_the_report_s_counts() {
    let root = fresh_root();
    let out = agent(&["check", "--format", "junit"], root.path(), &[]);
    assert_eq!(out.status.code(), Some(3));
    let xml = text(&out.stdout);
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let suite = doc.root_element();
    assert_eq!(suite.tag_name().name(), "testsuite");
    let expected = json_statuses(root.path());
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let names: Vec<_> = cases.iter().map(|c| c.attribute("name").unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        expected.keys().map(String::as_str).collect::<Vec<_>>()
    );
    let count = |wanted: &[&str]| {
        expected
            .values()
            .filter(|s| wanted.contains(&s.as_str()))
            .count()
    };
    let failures = count(&["failed", "would-change"]);
    let skipped = count(&["skipped", "not-applicable"]);
    assert!(failures > 0 && skipped > 0, "{expected:?}");
    assert_eq!(
        suite.attribute("tests"),
        Some(expected.len().to_string().as_str())
    );
    assert_eq!(
        suite.attribute("failures"),
        Some(failures.to_string().as_str())
    );
    assert_eq!(
        suite.attribute("skipped"),
        Some(skipped.to_string().as_str())
    );
    for case in &cases {
        let status = &expected[case.attribute("name").unwrap()];
        assert_eq!(case.attribute("classname"), Some("flatcar-harden"));
        let has = |tag: &str| case.children().any(|n| n.has_tag_name(tag));
        assert_eq!(
            has("failure"),
            ["failed", "would-change"].contains(&status.as_str())
        );
        assert_eq!(
            has("skipped"),
            ["skipped", "not-applicable"].contains(&status.as_str())
        );
    }
}

fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|line| line.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_check_unit_only_checks_and_writes_the_file_the_boot_apply_writes() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |name: &str| fs::read_to_string(repo.join("systemd").join(name)).unwrap();
    let (check, timer, apply) = (
        read("flatcar-harden-check.service"),
        read("flatcar-harden-check.timer"),
        read("flatcar-harden.service"),
    );
    assert_eq!(
        unit_values(&check, "ExecStart"),
        [format!(
            "/usr/bin/flatcar-harden check --metrics-file {UNIT_METRICS}"
        )]
    );
    assert_eq!(
        unit_values(&apply, "ExecStart"),
        [format!(
            "/usr/bin/flatcar-harden apply --boot --metrics-file {UNIT_METRICS}"
        )]
    );
    assert_eq!(
        unit_values(&check, "StateDirectory"),
        ["node_exporter/textfile_collector"]
    );
    // The boot apply writes the same file, and its change journal.
    assert_eq!(
        unit_values(&apply, "StateDirectory"),
        ["flatcar-harden node_exporter/textfile_collector"]
    );
    assert_eq!(unit_values(&check, "Type"), ["oneshot"]);
    assert_eq!(unit_values(&check, "SuccessExitStatus"), ["3"]);
    assert_eq!(unit_values(&check, "ProtectSystem"), ["strict"]);
    assert_eq!(
        unit_values(&check, "ReadWritePaths"),
        ["-/run/flatcar-harden.lock"]
    );
    assert_eq!(
        unit_values(&check, "CapabilityBoundingSet"),
        ["CAP_DAC_READ_SEARCH CAP_AUDIT_CONTROL"]
    );
    assert_eq!(unit_values(&timer, "OnCalendar"), ["hourly"]);
    assert_eq!(unit_values(&timer, "Persistent"), ["true"]);
    assert_eq!(unit_values(&timer, "RandomizedDelaySec").len(), 1);
    let dropin = read("timers.target.d/10-flatcar-harden.conf");
    assert_eq!(
        unit_values(&dropin, "Wants"),
        ["flatcar-harden-check.timer"]
    );
}
