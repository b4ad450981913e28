//! What ships around the binary: man pages and shell completions generated from the CLI by the
//! xtask, the systemd unit, the sysext image and its static agent within 4 MiB, the Butane
//! examples, and colour on terminals only.
//!
//! Needs squashfs-tools (mksquashfs, unsquashfs), binutils (readelf), groff and bsdutils (`script`),
//! as .ci/run installs them.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;

const BIN: &str = env!("CARGO_BIN_EXE_flatcar-harden");
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(cmd: &mut Command) -> Output {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    output
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `tool` must be installed: these tests check real artifacts with the real tools.
fn need(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{tool} is needed for this test: apt-get install {package}"
    );
}

/// The subcommands `--help` lists (the CLI's own view), e.g. ["apply", "check", "policy"].
fn help_commands(args: &[&str]) -> Vec<String> {
    let out = run(Command::new(BIN).args(args).arg("--help"));
    assert!(out.status.success());
    let help = text(&out.stdout);
    help.lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// Every command path below the top: ["apply", "check", "policy", "policy show", "policy check"].
fn command_paths() -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    for top in help_commands(&[]) {
        paths.push(vec![top.clone()]);
        for sub in help_commands(&[&top]) {
            paths.push(vec![top.clone(), sub]);
        }
    }
    paths
}

/// `cargo xtask ARGS` at the repository root (the cargo running these tests, same target dir).
fn xtask(args: &[&std::ffi::OsStr]) -> Output {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run(Command::new(cargo)
        .current_dir(repo())
        .arg("xtask")
        .args(args))
}

/// `cargo xtask assets DIR`, as packaging runs it; returns the files it says it wrote.
fn generate_assets(dir: &Path) -> Vec<String> {
    let out = xtask(&["assets".as_ref(), dir.as_os_str()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn man_pages_cover_every_command() {
    let tmp = tempfile::tempdir().unwrap();
    let usr = tmp.path().join("usr");
    let written = generate_assets(&usr);
    let man8 = usr.join("share/man/man8");

    let paths = command_paths();
    assert!(
        paths.len() >= 5,
        "the CLI lists fewer commands than expected: {paths:?}"
    );
    let main = fs::read_to_string(man8.join("flatcar-harden.8")).unwrap();
    for path in &paths {
        let page = format!("flatcar-harden-{}.8", path.join("-"));
        assert!(
            man8.join(&page).is_file(),
            "no man page {page} (written: {written:?})"
        );
        assert!(
            written.iter().any(|w| w.ends_with(&page)),
            "{page} not reported on stdout"
        );
        // The main page names every command, nested ones in SEE ALSO.
        let reference = format!("flatcar\\-harden\\-{}", path.join("\\-"));
        assert!(
            main.contains(&reference),
            "flatcar-harden.8 does not mention {reference}"
        );
        // A parent page lists its subcommands.
        if path.len() == 2 {
            let parent =
                fs::read_to_string(man8.join(format!("flatcar-harden-{}.8", path[0]))).unwrap();
            assert!(
                parent.contains(&path[1]),
                "{} page lacks {}",
                path[0],
                path[1]
            );
        }
    }
    // Only those pages, and no page for clap's `help`.
    let pages: BTreeSet<String> = fs::read_dir(&man8)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(pages.len(), paths.len() + 1, "{pages:?}");

    for section in [
        ".TH",
        "EXIT STATUS",
        "FILES",
        "ENVIRONMENT",
        "NO_COLOR",
        "SEE ALSO",
    ] {
        assert!(main.contains(section), "flatcar-harden.8 lacks {section}");
    }
    for code in ["\\fB0\\fR", "\\fB1\\fR", "\\fB2\\fR", "\\fB3\\fR"] {
        assert!(main.contains(code), "EXIT STATUS lacks {code}");
    }
    assert!(main.contains(&format!("v{VERSION}")));
    let apply = fs::read_to_string(man8.join("flatcar-harden-apply.8")).unwrap();
    for option in ["dry\\-run", "policy", "root", "only", "format"] {
        assert!(
            apply.contains(option),
            "flatcar-harden-apply.8 lacks --{option}"
        );
    }

    // groff renders every page without a warning.
    need("groff", "groff-base");
    for page in &pages {
        let out = run(Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(man8.join(page)));
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "groff on {page}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn the_agent_carries_no_asset_generator() {
    // What generated the assets before the xtask, a hidden first argument, is now an unknown
    // command like any other, and writes nothing.
    let tmp = tempfile::tempdir().unwrap();
    let out = run(Command::new(BIN).arg("generate-assets").arg(tmp.path()));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("unrecognized subcommand"));
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    // The generator's crates are not linked in (their names would be in the binary's strings).
    let binary = fs::read(BIN).unwrap();
    for crate_name in [&b"clap_mangen"[..], b"clap_complete"] {
        assert!(
            !binary.windows(crate_name.len()).any(|w| w == crate_name),
            "{} is in the agent",
            text(crate_name)
        );
    }
    // The xtask's version is the agent's (both take the workspace's).
    let xtask_version = xtask(&["version".as_ref()]);
    assert!(
        xtask_version.status.success(),
        "{}",
        text(&xtask_version.stderr)
    );
    let agent_version = run(Command::new(BIN).arg("--version"));
    assert_eq!(
        text(&agent_version.stdout).trim(),
        format!("flatcar-harden {}", text(&xtask_version.stdout).trim())
    );
}

/// Runs bash completion for the words typed so far (the last one is being completed).
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        r#"source '{}'
COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))
COMP_LINE="${{COMP_WORDS[*]}}"; COMP_POINT=${{#COMP_LINE}}
spec=$(complete -p flatcar-harden); fn=${{spec##*-F }}; fn=${{fn%% *}}
"$fn" flatcar-harden "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#,
        script.display(),
        words = quoted.join(" ")
    );
    let out = run(Command::new("bash").arg("-c").arg(program));
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn completions_complete_commands_and_their_options() {
    let tmp = tempfile::tempdir().unwrap();
    let usr = tmp.path().join("usr");
    generate_assets(&usr);
    let bash = usr.join("share/bash-completion/completions/flatcar-harden");
    let zsh = usr.join("share/zsh/site-functions/_flatcar-harden");
    let fish = usr.join("share/fish/vendor_completions.d/flatcar-harden.fish");

    // bash, run for real.
    let out = run(Command::new("bash").arg("-n").arg(&bash));
    assert!(out.status.success(), "bash -n: {}", text(&out.stderr));
    let top = bash_complete(&bash, &["flatcar-harden", ""]);
    for command in help_commands(&[]) {
        assert!(
            top.contains(&command),
            "`flatcar-harden <TAB>` lacks {command}: {top:?}"
        );
    }
    // After a subcommand (this failed with clap_complete's own script, clap-rs/clap#6421).
    assert_eq!(
        bash_complete(&bash, &["flatcar-harden", "apply", "--d"]),
        ["--dry-run"]
    );
    assert_eq!(
        bash_complete(&bash, &["flatcar-harden", "check", "--format", ""]),
        ["text", "json", "junit"]
    );
    let policy = bash_complete(&bash, &["flatcar-harden", "policy", ""]);
    assert!(
        policy.contains(&"show".to_owned()) && policy.contains(&"check".to_owned()),
        "{policy:?}"
    );
    assert_eq!(
        bash_complete(&bash, &["flatcar-harden", "policy", "show", "--r"]),
        ["--root"]
    );

    // zsh and fish: generated, naming every command and the options.
    for file in [&zsh, &fish] {
        let script = fs::read_to_string(file).unwrap();
        for path in command_paths() {
            let last = path.last().unwrap();
            assert!(
                script.contains(last.as_str()),
                "{} lacks {last}",
                file.display()
            );
        }
        for option in ["dry-run", "format", "only", "root", "policy"] {
            assert!(
                script.contains(option),
                "{} lacks --{option}",
                file.display()
            );
        }
    }
    assert!(fs::read_to_string(&zsh)
        .unwrap()
        .starts_with("#compdef flatcar-harden"));
}

/// Runs the agent under a pseudo-terminal (`script`), stdout and stderr both on it.
fn on_tty(args: &str, no_color: bool) -> String {
    need("script", "bsdutils");
    let mut cmd = Command::new("script");
    cmd.args(["-q", "-e", "-c", &format!("{BIN} {args}"), "/dev/null"])
        .stdin(std::process::Stdio::null())
        .env_remove("NO_COLOR");
    if no_color {
        cmd.env("NO_COLOR", "1");
    }
    text(&run(&mut cmd).stdout)
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let fixture = repo().join("tests/fixtures/flatcar");
    let check = format!("-vv check --root {}", fixture.display());

    // Piped: logs (stderr) and the report (stdout) are plain.
    let out = run(Command::new(BIN)
        .args(check.split(' '))
        .env_remove("NO_COLOR"));
    assert!(text(&out.stderr).contains("DEBUG"), "no log lines to judge");
    assert!(!out.stderr.contains(&0x1b) && !out.stdout.contains(&0x1b));

    // On a terminal: log levels and clap's messages are coloured…
    let tty = on_tty(&check, false);
    assert!(tty.contains("DEBUG") && tty.contains('\x1b'), "{tty:?}");
    let usage = on_tty("--bogus", false);
    assert!(
        usage.contains("unexpected argument") && usage.contains('\x1b'),
        "{usage:?}"
    );
    // …but the report itself never is.
    let report = on_tty(&format!("check --root {}", fixture.display()), false);
    assert!(
        report.contains("docker-socket") && !report.contains('\x1b'),
        "{report:?}"
    );

    // NO_COLOR: nothing is.
    let tty = on_tty(&check, true);
    assert!(tty.contains("DEBUG") && !tty.contains('\x1b'), "{tty:?}");
    let usage = on_tty("--bogus", true);
    assert!(
        usage.contains("unexpected argument") && !usage.contains('\x1b'),
        "{usage:?}"
    );
}

/// `[section] key` values of a unit file (all values of repeated keys, space-joined).
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|line| line.strip_prefix(&format!("{key}=")))
        .flat_map(|v| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

#[test]
fn the_unit_runs_apply_once_per_boot_sandboxed() {
    let unit = fs::read_to_string(repo().join("systemd/flatcar-harden.service")).unwrap();
    let one = |key: &str| unit_values(&unit, key).join(" ");
    assert_eq!(
        one("ExecStart"),
        "/usr/bin/flatcar-harden apply --boot --metrics-file \
         /var/lib/node_exporter/textfile_collector/flatcar-harden.prom"
    );
    // The change journal and the metrics directory are writable under ProtectSystem=strict; the
    // journal keeps its runs/ root-only itself.
    assert_eq!(
        one("StateDirectory"),
        "flatcar-harden node_exporter/textfile_collector"
    );
    assert_eq!(one("StateDirectoryMode"), "0755");
    assert_eq!(one("Type"), "oneshot");
    assert_eq!(one("RemainAfterExit"), "yes");
    // The system bus is what the agent reaches systemd through.
    assert!(unit_values(&unit, "After").contains(&"dbus.service".to_owned()));
    let before = unit_values(&unit, "Before");
    for unit in [
        "systemd-user-sessions.service",
        "docker.service",
        "multi-user.target",
    ] {
        assert!(before.contains(&unit.to_owned()), "not Before={unit}");
    }
    assert_eq!(one("WantedBy"), "multi-user.target");
    assert!(!unit.contains("DefaultDependencies=no"));

    assert_eq!(
        unit_values(&unit, "CapabilityBoundingSet")
            .into_iter()
            .collect::<BTreeSet<_>>(),
        [
            "CAP_AUDIT_CONTROL",
            "CAP_CHOWN",
            "CAP_DAC_OVERRIDE",
            "CAP_FOWNER",
            "CAP_SYS_ADMIN",
            "CAP_SYS_MODULE"
        ]
        .map(str::to_owned)
        .into()
    );
    for (key, value) in [
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("RestrictAddressFamilies", "AF_UNIX AF_NETLINK"),
        ("RestrictSUIDSGID", "yes"),
        ("IPAddressDeny", "any"),
    ] {
        assert_eq!(one(key), value, "{key}");
    }
    let writable = unit_values(&unit, "ReadWritePaths");
    for path in [
        "/etc",
        "/run",
        "-/oem",
        "-/usr/share/oem",
        "-/sys/devices/system/cpu/smt",
        "-/proc/sys/kernel",
        "-/proc/sys/net",
        "-/proc/sys/fs",
        "-/proc/sys/dev",
    ] {
        assert!(
            writable.contains(&path.to_owned()),
            "ReadWritePaths lacks {path}"
        );
    }
    // The sysext's drop-in wants exactly this unit.
    let dropin =
        fs::read_to_string(repo().join("systemd/multi-user.target.d/10-flatcar-harden.conf"))
            .unwrap();
    assert_eq!(unit_values(&dropin, "Wants"), ["flatcar-harden.service"]);
}

/// build.sh with the test's agent (dynamically linked: pass --allow-dynamic to accept it).
fn build_sysext(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["--binary", BIN];
    args.extend_from_slice(extra);
    build_sysext_with(out, &args)
}

/// build.sh. The vendor policy comes from the test's agent: build.sh's default, `cargo run`,
/// would rebuild target/debug/flatcar-harden under the running tests (a plain build resolves
/// dependency features without the dev-dependencies, so it is another binary).
fn build_sysext_with(out: &Path, args: &[&str]) -> Output {
    need("mksquashfs", "squashfs-tools");
    need("readelf", "binutils");
    run(Command::new(repo().join("packaging/sysext/build.sh"))
        .args(["--host-agent", BIN, "--out"])
        .arg(out)
        .args(args))
}

fn unsquash_cat(image: &Path, path: &str) -> String {
    let out = run(Command::new("unsquashfs")
        .args(["-cat"])
        .arg(image)
        .arg(path));
    assert!(
        out.status.success(),
        "unsquashfs -cat {path}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn the_sysext_image_holds_what_flatcar_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let image = tmp
        .path()
        .join(format!("flatcar-harden-{VERSION}-x86-64.raw"));

    // A dynamically linked agent is refused unless asked for (the test binary is one).
    let out = build_sysext(tmp.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("dynamically linked"));
    assert!(!image.exists());

    let out = build_sysext(tmp.path(), &["--allow-dynamic"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), image.display().to_string());

    let listing = run(Command::new("unsquashfs")
        .args(["-lls", "-d", ""])
        .arg(&image));
    assert!(listing.status.success());
    let listing = text(&listing.stdout);
    // `-rwxr-xr-x root/root 7867424 2026-11-28 11:09 /usr/bin/flatcar-harden`; the root has no path.
    let all: Vec<String> = listing
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .map(str::to_owned)
        .collect();
    let entries: BTreeSet<String> = all.iter().cloned().collect();
    for path in [
        "/usr/bin/flatcar-harden",
        "/usr/lib/systemd/system/flatcar-harden.service",
        "/usr/lib/systemd/system/multi-user.target.d/10-flatcar-harden.conf",
        "/usr/lib/systemd/system/flatcar-harden-check.service",
        "/usr/lib/systemd/system/flatcar-harden-check.timer",
        "/usr/lib/systemd/system/timers.target.d/10-flatcar-harden.conf",
        "/usr/share/doc/flatcar-harden/fleet.md",
        "/usr/lib/extension-release.d/extension-release.flatcar-harden",
        "/usr/share/flatcar-harden/policy.toml",
        "/usr/share/man/man8/flatcar-harden.8",
        "/usr/share/man/man8/flatcar-harden-apply.8",
        "/usr/share/bash-completion/completions/flatcar-harden",
        "/usr/share/zsh/site-functions/_flatcar-harden",
        "/usr/share/fish/vendor_completions.d/flatcar-harden.fish",
        "/usr/share/doc/flatcar-harden/policy.md",
    ] {
        assert!(
            entries.contains(path),
            "{path} missing from the image:\n{listing}"
        );
    }
    // Only /usr (nothing in /etc, no shipped .wants link, no os-release of its own).
    assert!(all.iter().all(|p| p.starts_with("/usr")), "{all:?}");
    assert!(!entries
        .iter()
        .any(|p| p.contains(".wants") || p.ends_with("os-release")));
    // Everything root's; the agent executable.
    for line in listing.lines().filter(|l| l.contains("/usr")) {
        assert!(line.contains(" root/root "), "not root's: {line}");
    }
    // The generator: systemd runs the agent by this link's name before any unit starts.
    assert!(
        listing.lines().any(|l| l.starts_with('l')
            && l.ends_with(
                " /usr/lib/systemd/system-generators/flatcar-harden-generator -> /usr/bin/flatcar-harden"
            )),
        "no generator link:\n{listing}"
    );
    let agent_line = listing
        .lines()
        .find(|l| l.ends_with(" /usr/bin/flatcar-harden"))
        .unwrap();
    assert!(agent_line.starts_with("-rwxr-xr-x"), "{agent_line}");

    assert_eq!(
        unsquash_cat(
            &image,
            "usr/lib/extension-release.d/extension-release.flatcar-harden"
        ),
        "ID=flatcar\nSYSEXT_LEVEL=1.0\nARCHITECTURE=x86-64\nEXTENSION_RELOAD_MANAGER=1\n"
    );
    assert_eq!(
        unsquash_cat(&image, "usr/lib/systemd/system/flatcar-harden.service"),
        fs::read_to_string(repo().join("systemd/flatcar-harden.service")).unwrap()
    );
    let agent = run(Command::new("unsquashfs")
        .args(["-cat"])
        .arg(&image)
        .arg("usr/bin/flatcar-harden"));
    assert!(
        agent.stdout == fs::read(BIN).unwrap(),
        "the image's agent is not the binary given"
    );

    // The vendor policy is the built-in default: the same effective policy as no file at all.
    let policy = tmp.path().join("vendor.toml");
    fs::write(
        &policy,
        unsquash_cat(&image, "usr/share/flatcar-harden/policy.toml"),
    )
    .unwrap();
    let effective = |file: &Path| {
        let out = run(Command::new(BIN)
            .args(["policy", "show", "--policy"])
            .arg(file));
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(effective(&policy), effective(Path::new("/dev/null")));

    // --os any: any OS with systemd-sysext (the VM guest is Debian).
    let out = build_sysext(tmp.path(), &["--allow-dynamic", "--os", "any"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        unsquash_cat(
            &image,
            "usr/lib/extension-release.d/extension-release.flatcar-harden"
        ),
        "ID=_any\nARCHITECTURE=x86-64\nEXTENSION_RELOAD_MANAGER=1\n"
    );

    let out = build_sysext(tmp.path(), &["--allow-dynamic", "--os", "debian"]);
    assert_eq!(out.status.code(), Some(2));
}

/// The most the agent the sysext ships may weigh: it is copied to every host and read at every boot.
const MAX_AGENT_BYTES: u64 = 4 * 1024 * 1024;

#[test]
fn the_sysext_agent_is_static_and_at_most_4_mib() {
    // The real build: build.sh without --binary builds the static release agent (a release build
    // the first time, cargo's cache after) and refuses a dynamically linked one.
    let tmp = tempfile::tempdir().unwrap();
    let out = build_sysext_with(tmp.path(), &["--os", "any"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let image = PathBuf::from(text(&out.stdout).trim());
    let extracted = tmp.path().join("tree");
    let unpacked = run(Command::new("unsquashfs")
        .args(["-no-progress", "-d"])
        .arg(&extracted)
        .arg(&image)
        .arg("usr/bin/flatcar-harden"));
    assert!(unpacked.status.success(), "{}", text(&unpacked.stderr));
    let size = fs::metadata(extracted.join("usr/bin/flatcar-harden"))
        .unwrap()
        .len();
    // build.sh reports it too.
    assert!(
        text(&out.stderr).contains(&format!("{size} bytes")),
        "{}",
        text(&out.stderr)
    );
    assert!(
        size <= MAX_AGENT_BYTES,
        "the sysext's agent is {size} bytes ({:.2} MiB), more than 4 MiB: see docs/design.md, \
         \"Size of the agent\"",
        size as f64 / 1048576.0
    );
}

// --- Butane ------------------------------------------------------------------------------------
// The subset of Butane's `flatcar` 1.0.0/1.1.0 schema the examples may use. Unknown keys are
// errors, as `butane --strict` makes them; a field is there to be type-checked even where no test
// reads it (hence `dead_code` allowed on these structs).

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Butane {
    variant: String,
    version: String,
    #[serde(default)]
    storage: Storage,
    systemd: Option<Systemd>,
    passwd: Option<serde_norway::Value>,
    kernel_arguments: Option<serde_norway::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Storage {
    #[serde(default)]
    files: Vec<ButaneFile>,
    #[serde(default)]
    links: Vec<Link>,
    #[serde(default)]
    directories: Vec<serde_norway::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ButaneFile {
    path: String,
    mode: Option<serde_norway::Value>,
    overwrite: Option<bool>,
    contents: Contents,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Contents {
    source: Option<String>,
    inline: Option<String>,
    verification: Option<Verification>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Verification {
    hash: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Link {
    path: String,
    target: String,
    hard: Option<bool>,
    overwrite: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Systemd {
    units: Vec<Unit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Unit {
    name: String,
    enabled: Option<bool>,
    mask: Option<bool>,
    contents: Option<String>,
    #[serde(default)]
    dropins: Vec<Dropin>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Dropin {
    name: String,
    contents: Option<String>,
}

fn butane(name: &str) -> (String, Butane) {
    let path = repo().join("packaging/butane").join(name);
    let raw = fs::read_to_string(&path).unwrap();
    let config: Butane = serde_norway::from_str(&raw)
        .unwrap_or_else(|e| panic!("{}: not valid for the Butane schema: {e}", path.display()));
    assert_eq!(config.variant, "flatcar");
    assert!(
        ["1.0.0", "1.1.0"].contains(&config.version.as_str()),
        "{}",
        config.version
    );
    for unit in config.systemd.iter().flat_map(|s| &s.units) {
        assert!(unit.name.contains('.'), "unit name {}", unit.name);
        for dropin in &unit.dropins {
            assert!(dropin.name.ends_with(".conf") && dropin.contents.is_some());
        }
    }
    for file in &config.storage.files {
        assert!(file.path.starts_with('/'), "{}", file.path);
        let c = &file.contents;
        assert!(
            c.source.is_some() != c.inline.is_some(),
            "{}: source or inline",
            file.path
        );
        if let Some(v) = &c.verification {
            assert!(v.hash.starts_with("sha256-") || v.hash.starts_with("sha512-"));
        }
    }
    for link in &config.storage.links {
        assert!(link.path.starts_with('/') && link.target.starts_with('/'));
    }
    // Modes in octal, as Butane reads them.
    for line in raw.lines().filter(|l| l.trim_start().starts_with("mode:")) {
        assert_eq!(line.trim(), "mode: 0644", "{name}");
    }
    (raw, config)
}

/// Installs the sysext, drops a policy in policy.d, enables the unit; returns the policy text.
fn check_butane(name: &str) -> (String, String) {
    let (raw, config) = butane(name);
    let files = &config.storage.files;
    let sysext = files
        .iter()
        .find(|f| f.path == "/etc/extensions/flatcar-harden.raw")
        .unwrap_or_else(|| panic!("{name}: the sysext must be /etc/extensions/flatcar-harden.raw"));
    let source = sysext
        .contents
        .source
        .as_deref()
        .expect("the sysext is downloaded");
    assert!(source.starts_with("https://"), "{source}");
    assert!(
        source.ends_with(&format!("/flatcar-harden-{VERSION}-x86-64.raw")),
        "{name}: {source} is not this version's image"
    );
    let policy = files
        .iter()
        .find(|f| f.path.starts_with("/etc/flatcar-harden/policy.d/") && f.path.ends_with(".toml"))
        .unwrap_or_else(|| panic!("{name}: no policy drop-in"));
    let inline = policy
        .contents
        .inline
        .clone()
        .expect("the policy is inline");

    let link = config
        .storage
        .links
        .iter()
        .find(|l| l.path == "/etc/systemd/system/multi-user.target.wants/flatcar-harden.service")
        .unwrap_or_else(|| panic!("{name}: flatcar-harden.service is not enabled"));
    assert_eq!(
        link.target,
        "/usr/lib/systemd/system/flatcar-harden.service"
    );
    let timer = config
        .storage
        .links
        .iter()
        .find(|l| l.path == "/etc/systemd/system/timers.target.wants/flatcar-harden-check.timer")
        .unwrap_or_else(|| panic!("{name}: flatcar-harden-check.timer is not enabled"));
    assert_eq!(
        timer.target,
        "/usr/lib/systemd/system/flatcar-harden-check.timer"
    );
    (raw, inline)
}

/// The effective policy (`policy show`) for a policy text, without the header comments.
fn effective_policy(text_: &str) -> String {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    fs::write(tmp.path(), text_).unwrap();
    let out = run(Command::new(BIN).args(["policy", "check"]).arg(tmp.path()));
    assert!(out.status.success(), "policy check: {}", text(&out.stderr));
    let out = run(Command::new(BIN)
        .args(["policy", "show", "--policy"])
        .arg(tmp.path()));
    assert!(out.status.success());
    text(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn butane_default_config_installs_the_sysext_with_the_default_policy() {
    let (_, policy) = check_butane("flatcar-harden-default.yaml");
    assert_eq!(
        effective_policy(&policy),
        effective_policy(""),
        "not the default policy"
    );
}

#[test]
fn butane_full_guide_config_turns_every_control_on_and_warns() {
    let (raw, policy) = check_butane("flatcar-harden-full-guide.yaml");
    let guide = fs::read_to_string(repo().join("docs/examples/full-guide.toml")).unwrap();
    assert_eq!(effective_policy(&policy), effective_policy(&guide));
    for warning in [
        "WARNING",
        "every way in except the console",
        "sshd.socket is masked",
    ] {
        assert!(
            raw.lines().take(5).any(|l| l.contains(warning)),
            "the YAML must open with: {warning}"
        );
        assert!(policy.contains(warning), "the policy must carry: {warning}");
    }
    for (control, state) in [
        ("sshd-socket", "masked"),
        ("core-sudo", "require-password"),
        ("core-login", "nologin"),
        ("smt", "off"),
        ("selinux", "enforcing"),
    ] {
        assert!(
            effective_policy(&policy).contains(&format!("[{control}]\nstate = \"{state}\"")),
            "{control} is not {state}"
        );
    }
}

#[test]
fn the_butane_check_rejects_what_butane_rejects() {
    let raw =
        fs::read_to_string(repo().join("packaging/butane/flatcar-harden-default.yaml")).unwrap();
    assert!(serde_norway::from_str::<Butane>(&raw).is_ok());
    for (from, to) in [
        ("source:", "sorce:"),                          // unknown key
        ("  links:", "  link:"),                        // unknown key
        ("mode: 0644", "mode: 0644\n      mode: 0600"), // duplicate key
        ("variant: flatcar", "variant: [flatcar]"),     // wrong type
    ] {
        assert!(raw.contains(from));
        let broken = raw.replacen(from, to, 1);
        assert!(
            serde_norway::from_str::<Butane>(&broken).is_err(),
            "accepted with {to:?}"
        );
    }
}
