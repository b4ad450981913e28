//! Bad host files through the real binary: FIFOs, sockets and devices where files are expected,
//! directories where files are expected and files where directories are, files over the read
//! limit, names that are not UTF-8, and links out of the root. Every case runs on a fresh fixture
//! and must end (a hang fails the test), exit with the documented code, name the path, and write
//! nothing.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::{fresh_root, snapshot};

const BIN: &str = env!("CARGO_BIN_EXE_flatcar-harden");
const FULL_GUIDE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/examples/full-guide.toml");
/// Seconds before a run counts as hung: a normal run takes well under one, so a loaded machine
/// cannot fail the test, while a run blocked on a FIFO fails it instead of blocking the suite.
const HANG_AFTER: &str = "120";

/// Runs the binary on `root` under `timeout`; panics if it had to be killed.
fn run(root: &Path, args: &[&str]) -> (i32, String) {
    let out: Output = Command::new("timeout")
        .args(["--kill-after=10", HANG_AFTER, BIN])
        .args(args)
        .arg("--root")
        .arg(root)
        .env_remove("SSH_CONNECTION")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code != 124 && code != 137 && code != -1,
        "`{}` hung and was killed after {HANG_AFTER}s: {text}",
        args.join(" ")
    );
    (code, text)
}

/// What is put where a host file is expected.
#[derive(Clone, Copy, Debug)]
enum Plant {
    Fifo,
    Socket,
    CharDevice,
    Directory,
    /// A sparse file one byte over the 4 MiB the agent reads.
    Huge,
    /// A regular file where a directory is expected.
    File,
}

fn plant(root: &Path, path: &str, what: Plant) {
    let at = root.join(path.trim_start_matches('/'));
    if at.is_dir() {
        fs::remove_dir_all(&at).unwrap();
    } else if at.symlink_metadata().is_ok() {
        fs::remove_file(&at).unwrap();
    }
    fs::create_dir_all(at.parent().unwrap()).unwrap();
    let rw = nix::sys::stat::Mode::from_bits_truncate(0o644);
    match what {
        Plant::Fifo => nix::unistd::mkfifo(&at, rw).unwrap(),
        Plant::Socket => drop(std::os::unix::net::UnixListener::bind(&at).unwrap()),
        // /dev/null's numbers: harmless to open, and still not a file to read.
        Plant::CharDevice => nix::sys::stat::mknod(
            &at,
            nix::sys::stat::SFlag::S_IFCHR,
            rw,
            nix::sys::stat::makedev(1, 3),
        )
        .unwrap(),
        Plant::Directory => fs::create_dir(&at).unwrap(),
        Plant::Huge => fs::File::create(&at)
            .unwrap()
            .set_len((4 << 20) + 1)
            .unwrap(),
        Plant::File => fs::write(&at, "").unwrap(),
    }
}

/// Where a bad file is planted, what the agent must say about it, and who reads it: the controls
/// that then fail (exit 1), or none when the policy loader reads it (exit 2 before any control).
struct Case {
    path: &'static str,
    plant: Plant,
    says: &'static str,
    readers: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        path: "/etc/sudoers.d/x",
        plant: Plant::Fifo,
        says: "is a FIFO, not a regular file",
        readers: &["core-sudo"],
    },
    Case {
        path: "/etc/flatcar-harden/policy.d/x.toml",
        plant: Plant::Fifo,
        says: "is a FIFO, not a regular file",
        readers: &[],
    },
    Case {
        path: "/etc/passwd",
        plant: Plant::Fifo,
        says: "is a FIFO, not a regular file",
        readers: &["core-sudo", "core-login"],
    },
    Case {
        path: "/etc/modprobe.d/x.conf",
        plant: Plant::Fifo,
        says: "is a FIFO, not a regular file",
        readers: &["usb-storage"],
    },
    Case {
        path: "/etc/flatcar/update.conf",
        plant: Plant::Fifo,
        says: "is a FIFO, not a regular file",
        readers: &["etcd-locksmith-tls"],
    },
    Case {
        path: "/etc/sudoers.d/x",
        plant: Plant::Socket,
        says: "is a socket, not a regular file",
        readers: &["core-sudo"],
    },
    Case {
        path: "/etc/modprobe.d/x.conf",
        plant: Plant::CharDevice,
        says: "is a character device, not a regular file",
        readers: &["usb-storage"],
    },
    Case {
        path: "/etc/passwd",
        plant: Plant::Directory,
        says: "is a directory, not a regular file",
        readers: &["core-sudo", "core-login"],
    },
    Case {
        path: "/etc/flatcar-harden/policy.toml",
        plant: Plant::Directory,
        says: "is a directory, not a regular file",
        readers: &[],
    },
    Case {
        path: "/etc/passwd",
        plant: Plant::Huge,
        says: "is larger than 4 MiB (4194305 bytes), the most the agent reads from one file",
        readers: &["core-sudo", "core-login"],
    },
    Case {
        path: "/etc/flatcar-harden/policy.d/big.toml",
        plant: Plant::Huge,
        says: "is larger than 4 MiB (4194305 bytes), the most the agent reads from one file",
        readers: &[],
    },
    Case {
        path: "/etc/sudoers.d",
        plant: Plant::File,
        says: "is not a directory",
        readers: &["core-sudo"],
    },
    Case {
        path: "/etc/flatcar-harden/policy.d",
        plant: Plant::File,
        says: "is not a directory",
        readers: &[],
    },
];

#[test]
fn bad_host_files_fail_quickly_by_name_and_nothing_is_written() {
    let privileged = nix::unistd::geteuid().is_root();
    let mut ran = 0;
    for case in CASES {
        if matches!(case.plant, Plant::CharDevice) && !privileged {
            eprintln!(
                "skipped {} as {:?}: mknod needs root",
                case.path, case.plant
            );
            continue;
        }
        let message = format!("{}: {}", case.path, case.says);
        let only = case.readers.join(",");
        let mut commands: Vec<Vec<&str>> = vec![vec!["check"], vec!["apply", "--dry-run"]];
        // A control that fails to observe writes nothing; other controls may still apply, so the
        // write check of a real apply runs the readers alone.
        commands.push(if case.readers.is_empty() {
            vec!["apply"]
        } else {
            vec!["apply", "--only", &only]
        });
        for command in commands {
            let root = fresh_root();
            let r = root.path();
            plant(r, case.path, case.plant);
            let before = snapshot(r);
            let mut args = command.clone();
            if !case.readers.is_empty() {
                args.extend(["--policy", FULL_GUIDE]);
            }
            let (code, text) = run(r, &args);
            let what = format!("{} as {:?}, `{}`", case.path, case.plant, args.join(" "));
            if case.readers.is_empty() {
                assert_eq!(code, 2, "{what}: {text}");
                assert!(
                    text.contains(&format!("error: {message}")),
                    "{what}: {text}"
                );
            } else {
                assert_eq!(code, 1, "{what}: {text}");
                for id in case.readers {
                    assert!(
                        text.lines().any(|line| line.starts_with(id)
                            && line.contains(" failed ")
                            && line.contains(&message)),
                        "{what}: {id} is not failed naming the path: {text}"
                    );
                }
            }
            assert_eq!(snapshot(r), before, "{what} wrote: {text}");
            ran += 1;
        }
    }
    println!("{ran} bad-host-file runs");
}

#[test]
fn a_sudoers_drop_in_whose_name_is_not_utf8_is_read_as_sudo_reads_it() {
    let root = fresh_root();
    let r = root.path();
    let name = OsStr::from_bytes(b"core\xe9");
    fs::write(
        r.join("etc/sudoers.d").join(name),
        "core ALL=(ALL) NOPASSWD: ALL\n",
    )
    .unwrap();
    let (code, text) = run(r, &["check", "--policy", FULL_GUIDE, "--only", "core-sudo"]);
    assert_ne!(code, 0, "{text}");
    let verdict = text.lines().find(|l| l.starts_with("core-sudo")).unwrap();
    assert!(!verdict.contains("compliant"), "{text}");
    // Named by its path (however its last byte is shown), not only as the core-passwd to write.
    let names_it = |line: &str| {
        line.contains("NOPASSWD: ALL")
            && line
                .replace("/etc/sudoers.d/core-passwd", "")
                .contains("/etc/sudoers.d/core")
    };
    assert!(
        text.lines().any(names_it),
        "the drop-in is not named: {text}"
    );
}

#[test]
fn text_that_is_not_utf8_in_a_file_only_read_does_not_fail_the_control() {
    let root = fresh_root();
    let r = root.path();
    fs::write(
        r.join("etc/modprobe.d/local.conf"),
        b"# Jos\xe9's drivers\noptions snd slots=1\n",
    )
    .unwrap();
    let (code, text) = run(
        r,
        &["check", "--policy", FULL_GUIDE, "--only", "usb-storage"],
    );
    assert_eq!(code, 3, "usb-storage would change on the fixture: {text}");
    let verdict = text.lines().find(|l| l.starts_with("usb-storage")).unwrap();
    assert!(verdict.contains("would-change"), "{text}");
}

#[test]
fn links_out_of_the_root_are_never_read() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("nopasswd");
    fs::write(&secret, "core ALL=(ALL) NOPASSWD: ALL\n").unwrap();
    let bad_policy = outside.path().join("policy.toml");
    fs::write(&bad_policy, "this is not = = toml\n").unwrap();

    let root = fresh_root();
    let r = root.path();
    let climb = format!("../../../../../../../..{}", secret.display());
    std::os::unix::fs::symlink(&secret, r.join("etc/sudoers.d/absolute")).unwrap();
    std::os::unix::fs::symlink(&climb, r.join("etc/sudoers.d/climbing")).unwrap();
    std::os::unix::fs::symlink(&bad_policy, r.join("etc/flatcar-harden/policy.d/x.toml")).unwrap();
    let (code, text) = run(r, &["policy", "show"]);
    assert_eq!(code, 0, "a policy outside the root was read: {text}");
    let (_, text) = run(r, &["check", "--policy", FULL_GUIDE, "--only", "core-sudo"]);
    assert!(
        !text.contains("/etc/sudoers.d/absolute") && !text.contains("/etc/sudoers.d/climbing"),
        "a sudoers file outside the root was read: {text}"
    );
    let (code, text) = run(r, &["apply", "--policy", FULL_GUIDE, "--only", "core-sudo"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        fs::read_to_string(&secret).unwrap(),
        "core ALL=(ALL) NOPASSWD: ALL\n"
    );
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 2);
}

/// Validate everything before the first write: one control that cannot read its file holds
/// every other control's changes too, and the report says which control held them.
#[test]
fn a_control_that_cannot_be_observed_holds_every_write() {
    let root = fresh_root();
    let r = root.path();
    plant(r, "/etc/passwd", Plant::Fifo);
    let before = snapshot(r);
    let (code, text) = run(r, &["apply", "--policy", FULL_GUIDE]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("core-login")
            && l.contains(" failed ")
            && l.contains("/etc/passwd: is a FIFO, not a regular file")),
        "{text}"
    );
    for id in [
        "sshd-socket",
        "docker-socket",
        "usb-storage",
        "smt",
        "selinux",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(id)
                && l.contains(" failed ")
                && l.contains(
                    "not applied: nothing is written while a control cannot be observed"
                )),
            "{id} was not held: {text}"
        );
    }
    assert_eq!(snapshot(r), before, "apply wrote: {text}");
}
