//! The generator's output from fixture policies under a temporary root.

use std::fs;

use super::*;

const FULL_GUIDE: &str = include_str!("../../../docs/examples/full-guide.toml");

/// A root holding `files` (path, content) and an empty early directory beside it.
fn machine(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let early = dir.path().join("generator.early");
    fs::create_dir_all(&early).unwrap();
    for (path, content) in files {
        let full = root.join(path.trim_start_matches('/'));
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(full, content).unwrap();
    }
    fs::create_dir_all(&root).unwrap();
    (dir, root, early)
}

fn listing(early: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in walk(early) {
        found.push(entry.strip_prefix(early).unwrap().display().to_string());
    }
    found.sort();
    found
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && !path.is_symlink() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn the_full_guide_masks_sshd_and_restricts_docker_before_any_unit_starts() {
    let (_dir, root, early) = machine(&[("/etc/flatcar-harden/policy.toml", FULL_GUIDE)]);
    let written = generate(&root, &early).unwrap();
    assert_eq!(written.len(), 2, "{written:?}");
    assert_eq!(
        listing(&early),
        ["docker.socket.d/10-restrict.conf", "sshd.socket"]
    );
    assert_eq!(
        fs::read_link(early.join("sshd.socket")).unwrap(),
        Path::new("/dev/null")
    );
    // Byte for byte the drop-in the docker-socket control writes to /etc.
    assert_eq!(
        fs::read_to_string(early.join("docker.socket.d/10-restrict.conf")).unwrap(),
        "[Socket]\nSocketGroup=root\n"
    );
    // A second boot (or a daemon-reload) writes the same again.
    assert_eq!(generate(&root, &early).unwrap(), written);
    assert_eq!(listing(&early).len(), 2);
}

#[test]
fn with_no_policy_file_the_built_in_default_restricts_docker_only() {
    let (_dir, root, early) = machine(&[]);
    generate(&root, &early).unwrap();
    assert_eq!(listing(&early), ["docker.socket.d/10-restrict.conf"]);
}

#[test]
fn the_layers_are_merged_as_the_agent_merges_them() {
    // The vendor policy masks sshd; an admin drop-in leaves docker alone.
    let (_dir, root, early) = machine(&[
        (
            "/usr/share/flatcar-harden/policy.toml",
            "[sshd-socket]\nstate = \"masked\"\n",
        ),
        (
            "/etc/flatcar-harden/policy.d/50-docker.toml",
            "[docker-socket]\nstate = \"unmanaged\"\n",
        ),
    ]);
    generate(&root, &early).unwrap();
    assert_eq!(listing(&early), ["sshd.socket"]);
    // A later drop-in that unmasks sshd: nothing is generated.
    let (_dir, root, early) = machine(&[
        ("/etc/flatcar-harden/policy.toml", FULL_GUIDE),
        (
            "/etc/flatcar-harden/policy.d/90-ssh.toml",
            "[sshd-socket]\nstate = \"enabled\"\n[docker-socket]\nstate = \"unmanaged\"\n",
        ),
    ]);
    assert!(generate(&root, &early).unwrap().is_empty());
    assert!(listing(&early).is_empty());
}

#[test]
fn a_bad_policy_generates_nothing_and_says_where_it_is_wrong() {
    let (_dir, root, early) = machine(&[
        ("/etc/flatcar-harden/policy.toml", FULL_GUIDE),
        (
            "/etc/flatcar-harden/policy.d/10-typo.toml",
            "[sshd-socket]\nstate = \"maskd\"\n",
        ),
    ]);
    let error = generate(&root, &early).unwrap_err();
    assert!(
        error.contains("/etc/flatcar-harden/policy.d/10-typo.toml, line 2, column 9"),
        "{error}"
    );
    assert!(listing(&early).is_empty());
}

#[test]
fn a_control_held_after_a_missed_confirmation_deadline_is_not_generated() {
    let policy: Policy = toml::from_str(FULL_GUIDE).unwrap();
    assert_eq!(emitted(&policy, &[]).len(), 2);
    let out = emitted(&policy, &["sshd-socket", "core-login"]);
    assert_eq!(out.len(), 1);
    assert!(matches!(&out[0], Emitted::File { name, .. } if name.starts_with("docker.socket.d")));
}
