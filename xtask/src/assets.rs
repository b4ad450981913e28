//! Man pages and shell completions, generated from the agent's command line definition
//! (`src/cli.rs`) with `clap_mangen` and `clap_complete`, so they can never disagree with the
//! binary they ship with. `packaging/sysext/build.sh` runs this as `cargo xtask assets $tree/usr`.

use std::fs;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

const BIN: &str = "flatcar-harden";
const SECTION: &str = "8";

/// Writes every asset under `prefix` and returns the paths written.
pub fn generate(prefix: &Path) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    let mut cmd = Cli::command();
    cmd.build();

    // `help` is a command of the CLI (completions offer it) but has no page of its own.
    let man_dir = prefix.join("share/man").join(format!("man{SECTION}"));
    let mut man_cmd = Cli::command().disable_help_subcommand(true);
    man_cmd.build();
    for (page, text) in man_pages(&man_cmd)? {
        written.push(write(&man_dir.join(page), &text)?);
    }

    for (shell, path) in [
        (
            Shell::Bash,
            format!("share/bash-completion/completions/{BIN}"),
        ),
        (Shell::Zsh, format!("share/zsh/site-functions/_{BIN}")),
        (
            Shell::Fish,
            format!("share/fish/vendor_completions.d/{BIN}.fish"),
        ),
    ] {
        let mut text = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), BIN, &mut text);
        if shell == Shell::Bash {
            text = fix_bash_hyphen(&text);
        }
        written.push(write(&prefix.join(path), &text)?);
    }
    Ok(written)
}

/// clap_complete's bash script names its states `flatcar__harden__subcmd__apply` in the loop that
/// walks the words but `flatcar__subcmd__harden__subcmd__apply` in the `case` that offers a
/// subcommand's options, so nothing after a subcommand ever completed for a binary whose name has
/// a hyphen (clap-rs/clap#6421, open at clap_complete 4.6.11). Spell the labels as the loop does;
/// tests/packaging.rs completes `flatcar-harden apply --d` to prove it.
fn fix_bash_hyphen(script: &[u8]) -> Vec<u8> {
    let wrong = BIN.replace('-', "__subcmd__");
    let right = BIN.replace('-', "__");
    String::from_utf8_lossy(script)
        .replace(&wrong, &right)
        .into_bytes()
}

fn write(path: &Path, content: &[u8]) -> Result<PathBuf, String> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    fs::write(path, content).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path.to_owned())
}

/// One page per command: `flatcar-harden.8`, `flatcar-harden-apply.8`, …,
/// `flatcar-harden-policy-show.8`. The main page adds exit status, files and environment.
fn man_pages(cmd: &clap::Command) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut pages = Vec::new();
    let mut stack = vec![(cmd.clone(), true)];
    while let Some((command, main)) = stack.pop() {
        let subcommands: Vec<_> = command
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .cloned()
            .collect();
        let versioned = command.get_version().is_some();
        let man = clap_mangen::Man::new(command)
            .section(SECTION)
            .manual("System Administration")
            .source(format!("{BIN} {}", env!("CARGO_PKG_VERSION")));
        let mut text = Vec::new();
        let rendered = (|| {
            man.render_title(&mut text)?;
            man.render_name_section(&mut text)?;
            man.render_synopsis_section(&mut text)?;
            man.render_description_section(&mut text)?;
            if main {
                text.extend_from_slice(MAIN_DESCRIPTION.as_bytes());
            }
            man.render_options_section(&mut text)?;
            if !subcommands.is_empty() {
                man.render_subcommands_section(&mut text)?;
            }
            if main {
                text.extend_from_slice(MAIN_SECTIONS.as_bytes());
                let pages: Vec<String> = all_pages(cmd)
                    .iter()
                    .map(|page| format!("\\fB{}\\fR({SECTION}), ", page.replace('-', "\\-")))
                    .collect();
                text.extend_from_slice(
                    format!(".SH \"SEE ALSO\"\n{}{SEE_ALSO}\n", pages.concat()).as_bytes(),
                );
            } else {
                text.extend_from_slice(format!(".SH \"SEE ALSO\"\n\\fB{BIN}\\fR(8)\n").as_bytes());
            }
            if versioned {
                man.render_version_section(&mut text)?;
            }
            Ok::<(), std::io::Error>(())
        })();
        rendered.map_err(|e| format!("cannot render a man page: {e}"))?;
        pages.push((man.get_filename(), text));
        stack.extend(subcommands.into_iter().map(|sub| (sub, false)));
    }
    pages.sort();
    Ok(pages)
}

/// Names of the pages of every command below `cmd`: `flatcar-harden-apply`, ….
fn all_pages(cmd: &clap::Command) -> Vec<String> {
    let mut names = Vec::new();
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        names.push(sub.get_display_name().unwrap_or(sub.get_name()).to_owned());
        names.extend(all_pages(sub));
    }
    names
}

const SEE_ALSO: &str =
    r"\fBsystemctl\fR(1), \fBsystemd\-sysext\fR(8), \fBsudoers\fR(5), \fBmodprobe.d\fR(5)";

/// What `flatcar-harden(8)` says after the one-line description (roff).
const MAIN_DESCRIPTION: &str = r#".PP
\fBflatcar\-harden\fR applies the controls of Flatcar's hardening guide: sshd.socket masked, the
docker socket restricted to root, core's sudo and login, usb\-storage denied, SMT off, SELinux
enforcing, and an audit of etcd and locksmith TLS. Each control observes the host, compares it with
the policy, plans, applies and verifies by observing again; a second run changes nothing.
\fBapply \-\-dry\-run\fR and \fBcheck\fR write nothing. Over SSH, changes that would cut the
operator's access are refused unless the policy sets \fBsafety.allow_remote_lockout = true\fR.
\fB\-\-root\fR \fIDIR\fR works on an image being built instead of the running host.
"#;

/// The sections of `flatcar-harden(8)` that the CLI definition does not hold (roff).
const MAIN_SECTIONS: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
Success: every control compliant, changed, pending a reboot, not applicable or skipped.
.TP
\fB1\fR
A control failed: an error, a refusal by the lockout guard, or drift the agent must not fix by itself.
.TP
\fB2\fR
Usage or policy error; nothing was changed.
.TP
\fB3\fR
\fBcheck\fR found drift: a control would change.
.SH FILES
.TP
\fI/usr/share/flatcar\-harden/policy.toml\fR
Vendor policy (the sysext ships the built\-in default here).
.TP
\fI/etc/flatcar\-harden/policy.toml\fR
The administrator's policy.
.TP
\fI/etc/flatcar\-harden/policy.d/*.toml\fR
Policy drop\-ins, merged in lexical order; later sources win key by key.
.TP
\fI/run/flatcar\-harden.lock\fR
Held for the length of a run, so that runs never overlap.
.TP
\fIflatcar\-harden.service\fR
Applies the policy at every boot, before sockets.target.
.SH ENVIRONMENT
.TP
\fBRUST_LOG\fR
Log filter for stderr; overrides \fB\-v\fR.
.TP
\fBNO_COLOR\fR
When set, log lines and help are never coloured. Without it, colour is used only on a terminal; stdout never has colour.
"#;
