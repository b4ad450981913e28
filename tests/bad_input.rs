//! The bad-input corpus (`tests/fixtures/bad-input`): every bad policy is refused by the built
//! binary — `policy check`, `apply --dry-run`, `apply`, `check`, and as a drop-in — with its exit
//! code and message, on stderr that a terminal can show safely, before anything is written.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

mod common;
use common::{fresh_root, snapshot};

const BIN: &str = env!("CARGO_BIN_EXE_flatcar-harden");
const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/bad-input/policy"
);
const FULL_GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/examples/full-guide.toml");
const DROPIN_DIR: &str = "etc/flatcar-harden/policy.d";
/// More than any error needs; a refused 50 MB policy must not print itself.
const STDERR_MAX: usize = 4096;

struct Case {
    name: String,
    exit: i32,
    expect: Vec<String>,
    content: Vec<u8>,
}

/// The corpus files, each with its `# exit:` and `# expect:` header lines.
fn corpus() -> Vec<Case> {
    let mut cases: Vec<Case> = fs::read_dir(CORPUS)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let content = fs::read(&path).unwrap();
            let text = String::from_utf8_lossy(&content);
            let header = |key: &str| -> Vec<String> {
                text.lines()
                    .filter_map(|l| l.strip_prefix(&format!("# {key}: ")))
                    .map(str::to_owned)
                    .collect()
            };
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let exit = header("exit");
            assert_eq!(exit.len(), 1, "{name}: one `# exit:` line");
            let expect = header("expect");
            assert!(!expect.is_empty(), "{name}: no `# expect:` line");
            Case {
                exit: exit[0].parse().unwrap(),
                name,
                expect,
                content,
            }
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    cases
}

/// The binary with `args`, killed (and the test failed) if it takes more than a minute: a read
/// that blocks must show up as a failure, not as a hung test run.
fn run<S: AsRef<OsStr>>(args: &[S]) -> Output {
    let child = Command::new(BIN)
        .args(args)
        .env_remove("SSH_CONNECTION")
        .env_remove("SSH_CLIENT")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output().unwrap()));
    match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(output) => output,
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            let shown: Vec<_> = args.iter().map(|a| a.as_ref().to_owned()).collect();
            panic!("flatcar-harden {shown:?} hung for a minute");
        }
    }
}

/// What every refusal must look like: the exit code, the message fragments and the file named
/// on stderr, no report on stdout, and stderr short and free of control characters.
fn assert_refused(case: &Case, how: &str, out: &Output, file: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let what = format!("{} ({how})", case.name);
    assert_eq!(out.status.code(), Some(case.exit), "{what}: {stderr}");
    for fragment in &case.expect {
        assert!(
            stderr.contains(fragment.as_str()),
            "{what}: `{fragment}` not in:\n{stderr}"
        );
    }
    assert!(stderr.contains(file), "{what}: {file} not named:\n{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{what}: printed a report for a refused policy"
    );
    assert!(
        out.stderr.len() < STDERR_MAX,
        "{what}: {} bytes on stderr",
        out.stderr.len()
    );
    let unsafe_char = stderr
        .chars()
        .find(|c| (c.is_control() && *c != '\n') || ('\u{202a}'..='\u{202e}').contains(c));
    assert_eq!(
        unsafe_char, None,
        "{what}: raw control character:\n{stderr:?}"
    );
}

fn args(words: &[&str], file: &Path, root: &Path) -> Vec<PathBuf> {
    let mut args: Vec<PathBuf> = words.iter().map(PathBuf::from).collect();
    args.extend(["--policy".into(), file.into(), "--root".into(), root.into()]);
    args
}

/// `case` everywhere a policy is read; returns the number of runs.
fn refused_everywhere(case: &Case) -> usize {
    let outside = tempfile::tempdir().unwrap();
    let file = outside.path().join(format!("{}.toml", case.name));
    fs::write(&file, &case.content).unwrap();
    let shown = file.to_str().unwrap();

    let out = run(&[OsStr::new("policy"), OsStr::new("check"), file.as_os_str()]);
    assert_refused(case, "policy check", &out, shown);

    let root = fresh_root();
    let r = root.path();
    let before = snapshot(r);
    for words in [&["apply", "--dry-run"][..], &["apply"], &["check"]] {
        let out = run(&args(words, &file, r));
        let how = words.join(" ");
        assert_refused(case, &how, &out, shown);
        assert_eq!(snapshot(r), before, "{}: `{how}` wrote", case.name);
    }

    let dropin = format!("/{DROPIN_DIR}/50-{}.toml", case.name);
    fs::write(r.join(&dropin[1..]), &case.content).unwrap();
    let before = snapshot(r);
    let out = run(&[OsStr::new("apply"), OsStr::new("--root"), r.as_os_str()]);
    assert_refused(case, "apply with it in policy.d", &out, &dropin);
    assert_eq!(
        snapshot(r),
        before,
        "{}: apply with the drop-in wrote",
        case.name
    );
    5
}

#[test]
fn every_bad_policy_in_the_corpus_is_refused_before_anything_is_written() {
    // The harness can tell a good policy from a bad one.
    let good = run(&["policy", "check", FULL_GUIDE]);
    assert_eq!(good.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&good.stdout).ends_with("full-guide.toml: ok\n"));

    let cases = corpus();
    assert!(cases.len() >= 30, "the corpus has {} cases", cases.len());
    let runs: usize = cases.iter().map(refused_everywhere).sum();
    println!(
        "bad-input corpus: {} policy cases, {runs} runs of the binary, exit code and message \
         as expected, nothing written",
        cases.len()
    );
}

#[test]
fn policies_that_cannot_live_in_git_are_refused_too() {
    let huge = Case {
        name: "huge-one-line".into(),
        exit: 2,
        expect: vec!["is larger than".into()],
        content: format!("[smt]\ngrub_cfg = \"{}\"\n", "A".repeat(50 << 20)).into_bytes(),
    };
    // Under the size limit, one line, the error at its end: the quoted line is cut.
    let long = Case {
        name: "long-line".into(),
        exit: 2,
        expect: vec![
            "line 2, column 24: `safety.allow_remote_lockout`: invalid type: string \"AAAA".into(),
            "(cut: ".into(),
            "(line 2 cut: it is 900025 characters long".into(),
        ],
        content: format!(
            "[safety]\nallow_remote_lockout = \"{}\"\n",
            "A".repeat(900_000)
        )
        .into_bytes(),
    };
    let mut runs = 0;
    for case in [huge, long] {
        runs += refused_everywhere(&case);
    }

    // A FIFO named as the policy is refused at once, not read (which would block).
    let outside = tempfile::tempdir().unwrap();
    let fifo = outside.path().join("policy.toml");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let root = fresh_root();
    let before = snapshot(root.path());
    let fifo_case = Case {
        name: "fifo".into(),
        exit: 2,
        expect: vec!["is not a regular file".into()],
        content: Vec::new(),
    };
    let shown = fifo.to_str().unwrap();
    let out = run(&[OsStr::new("policy"), OsStr::new("check"), fifo.as_os_str()]);
    assert_refused(&fifo_case, "policy check", &out, shown);
    for words in [&["apply", "--dry-run"][..], &["apply"]] {
        let out = run(&args(words, &fifo, root.path()));
        assert_refused(&fifo_case, &words.join(" "), &out, shown);
    }
    assert_eq!(snapshot(root.path()), before);
    runs += 3;

    // A drop-in whose name holds a newline is named escaped: it cannot forge a line.
    let forged = Case {
        name: "forged-name".into(),
        exit: 2,
        expect: vec![
            "50-a\\nflatcar-harden: ok.toml, line 1, column 10: `safety` must be a table".into(),
        ],
        content: b"safety = [true]\n".to_vec(),
    };
    let r = root.path();
    fs::write(
        r.join(DROPIN_DIR).join("50-a\nflatcar-harden: ok.toml"),
        &forged.content,
    )
    .unwrap();
    let before = snapshot(r);
    let out = run(&[OsStr::new("apply"), OsStr::new("--root"), r.as_os_str()]);
    assert_refused(
        &forged,
        "apply with it in policy.d",
        &out,
        "policy.d/50-a\\n",
    );
    assert_eq!(snapshot(r), before);
    runs += 1;
    println!("generated bad-input cases: 4, {runs} runs of the binary");
}

#[test]
fn a_dropin_named_in_bytes_that_are_not_utf8_is_an_error() {
    let root = fresh_root();
    let r = root.path();
    let name = OsStr::from_bytes(b"50-caf\xe9.toml");
    fs::write(
        r.join(DROPIN_DIR).join(name),
        "[core-login]\nstate = \"nologin\"\n",
    )
    .unwrap();
    let before = snapshot(r);
    let case = Case {
        name: "not-utf8-name".into(),
        exit: 2,
        expect: vec!["has a name that is not UTF-8".into()],
        content: Vec::new(),
    };
    let out = run(&[OsStr::new("apply"), OsStr::new("--root"), r.as_os_str()]);
    assert_refused(&case, "apply", &out, "policy.d/50-caf\u{fffd}.toml");
    assert_eq!(snapshot(r), before);
}
