//! core: sudo only with a password.
//!
//! The guide: "A sudo drop-in can be created under /etc/sudoers.d/core-passwd with the contents
//! `core ALL=(ALL) ALL` and as long as the core user has no password set it can't use sudo."
//! sudo applies the last matching rule, so the drop-in overrides the baselayout's
//! `core ALL=(ALL) NOPASSWD: ALL`. The verdict is sudo's: the configuration is read as sudo reads
//! it (see `sudoers`), as if the drop-in were in place, and every line that still lets core use
//! sudo without a password is a problem naming its file and line. On a live host sudo itself is
//! asked too (`sudo -l -U core`); when it and the reader disagree, the verdict is not compliant.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::sudoers::{self, FileSet, Identity, Overlaid, Verdict};
use super::{Action, Control, ControlError, FileState, FileWrite, Plan, Validation};
use crate::host::fs::{FileSpec, Owner};
use crate::host::session::Session;
use crate::host::sudo::{Listing, Validity};
use crate::host::Host;
use crate::policy;

const DROPIN: &str = "/etc/sudoers.d/core-passwd";
const CONTENT: &str =
    "# Written by flatcar-harden (core-sudo): core must give a password to use sudo.\n\
                       # core has no password on Flatcar, so this takes sudo away from core.\n\
                       core ALL=(ALL) ALL\n";
/// sudo wants its include directory private to root.
const SUDOERS_D_MODE: u32 = 0o750;

pub struct CoreSudo {
    policy: policy::CoreSudo,
}

impl CoreSudo {
    pub fn new(policy: policy::CoreSudo) -> Self {
        CoreSudo { policy }
    }
}

/// Everything plan needs, read once.
pub struct State {
    who: Identity,
    /// Every user in the account files: the targets sudo could run a command as.
    targets: Vec<Identity>,
    /// This host's name (`None` in an image without /etc/hostname).
    hostname: Option<String>,
    /// sudo.conf and every sudoers file sudo reads now.
    files: FileSet,
    dropin: FileState,
    /// visudo's answer on the existing drop-in, when it holds our rule.
    existing: Option<Validity>,
    /// The other sudoers files visudo rejects, with its message.
    rejected: Vec<String>,
    visudo_installed: bool,
    /// `apply --no-validate`.
    skip_validation: bool,
    owner: Owner,
    /// sudo's own answer on a live host.
    sudo_list: Option<Result<Listing, String>>,
}

impl Control for CoreSudo {
    type State = State;

    const ID: &'static str = "core-sudo";
    const TITLE: &'static str = "core needs a password for sudo";
    type Section = policy::CoreSudo;

    fn section(&self) -> &policy::CoreSudo {
        &self.policy
    }

    fn observe(&self, host: &Host) -> Result<State, ControlError> {
        let hostname = hostname(host)?;
        let files = sudoers::gather(host, hostname.as_deref())?;
        // Every user sudo could run a command as: a runas list may name them by name, `#uid`
        // or `%group`, and `runas_default` may make any of them the default target.
        let accounts = host.accounts()?;
        let targets: Vec<Identity> = accounts
            .user_names()
            .iter()
            .map(|name| accounts.identity(name))
            .filter(|found| found.uid.is_some())
            .collect();
        let dropin = FileState::observe(host, Path::new(DROPIN))?;
        let ours = dropin
            .content
            .as_deref()
            .filter(|bytes| sudoers::same_statements(bytes, CONTENT.as_bytes()));
        let others: Vec<(&PathBuf, Vec<u8>)> = files
            .files
            .iter()
            .filter(|(p, _)| p.as_path() != Path::new(DROPIN))
            .map(|(path, bytes)| (path, sudoers::without_includes(bytes)))
            .collect();
        // One visudo run for every file (what sudo parses is all of them in one go); only when it
        // rejects something is each file asked on its own, to name the one at fault.
        let mut together: Vec<u8> = Vec::new();
        for bytes in ours
            .into_iter()
            .chain(others.iter().map(|(_, b)| b.as_slice()))
        {
            // A blank line after each file: a continuation line at its end cannot run into the next.
            together.extend_from_slice(bytes);
            together.extend_from_slice(b"\n\n");
        }
        let all = host.visudo_validate(&together)?;
        let (existing, rejected) = match all {
            Validity::Invalid(_) => {
                let existing = ours.map(|bytes| host.visudo_validate(bytes)).transpose()?;
                let mut rejected = Vec::new();
                for (path, bytes) in &others {
                    if let Validity::Invalid(reason) = host.visudo_validate(bytes)? {
                        let shown = path.display().to_string();
                        rejected.push(reason.replace("stdin:", &format!("{shown}:")));
                    }
                }
                (existing, rejected)
            }
            answer => (ours.map(|_| answer), Vec::new()),
        };
        Ok(State {
            who: accounts.identity("core"),
            rejected,
            targets,
            hostname,
            files,
            dropin,
            existing,
            visudo_installed: host.program("visudo").is_some(),
            skip_validation: host.skip_sudoers_validation,
            owner: host.file_owner(),
            sudo_list: host.is_live().then(|| host.sudo_list("core")),
        })
    }

    fn plan(&self, state: &State) -> Result<Plan, ControlError> {
        if state.who.uid.is_none() {
            return Ok(Plan::with(
                super::Disposition::NotApplicable,
                "there is no user core",
            ));
        }
        let mut notes = Vec::new();
        // An existing drop-in that says the same thing (the guide's Butane snippet writes
        // `core\tALL=(ALL) \tALL`) is kept as it is, unless visudo rejects it.
        let content = match (&state.dropin.content, &state.existing) {
            (Some(existing), Some(Validity::Valid)) => existing.clone(),
            (Some(existing), Some(Validity::Unavailable)) => {
                notes.push(format!(
                    "visudo is not installed: the existing {DROPIN} was not validated"
                ));
                existing.clone()
            }
            (_, Some(Validity::Invalid(reason))) => {
                notes.push(format!(
                    "visudo rejects the existing {DROPIN} ({reason}); it is replaced"
                ));
                CONTENT.as_bytes().to_vec()
            }
            _ => CONTENT.as_bytes().to_vec(),
        };
        let spec = FileSpec {
            content: content.clone(),
            mode: self.policy.file_mode.0,
            owner: state.owner,
            parent_mode: SUDOERS_D_MODE,
        };
        let dropin = Path::new(DROPIN);
        let write = FileWrite::plan(&state.dropin, spec, Validation::Sudoers);
        let hostname = state.hostname.as_deref();
        let now = sudoers::judge(
            &load(&state.files, None, hostname),
            &state.who,
            &state.targets,
            hostname,
        );
        let planned = load(&state.files, Some((dropin, &content)), hostname);
        let after = sudoers::judge(&planned, &state.who, &state.targets, hostname);

        let mut plan = Plan::managed(match (&write, after.passwordless()) {
            (_, true) => "core keeps sudo without a password".to_owned(),
            (Some(_), false) if now.passwordless() => {
                format!("core can use sudo without a password; write {DROPIN}")
            }
            (Some(_), false) => format!("{DROPIN} is not as the policy says; write it"),
            (None, false) => "core needs a password for sudo (and has none)".to_owned(),
        });
        plan.notes = notes;
        if let (Some(Validity::Invalid(reason)), None) = (&state.existing, &write) {
            plan.problems.push(format!(
                "visudo rejects {DROPIN} ({reason}); fix or remove it"
            ));
        }
        if write.is_some() && !state.visudo_installed {
            if state.skip_validation {
                plan.notes.push(format!(
                    "visudo is not installed: {DROPIN} is written without validation \
                     (--no-validate)"
                ));
            } else {
                plan.problems.push(format!(
                    "visudo is not installed on this machine, so {DROPIN} cannot be validated \
                     before it is written; install sudo, or run apply with --no-validate"
                ));
            }
        }
        if !state.visudo_installed {
            plan.notes.push(
                "visudo is not installed: the sudoers files were not checked by sudo's own parser"
                    .to_owned(),
            );
        }
        for reason in &state.rejected {
            plan.problems.push(format!(
                "visudo rejects {reason}; sudo skips what it cannot parse, so what the \
                 configuration grants core cannot be told: fix it"
            ));
        }
        report_verdict(&mut plan, &planned, &after);
        cross_check(&mut plan, &now, state.sudo_list.as_ref());
        plan.actions.extend(write.map(Action::WriteFile));
        Ok(plan)
    }

    fn lockout_risk(&self, session: &Session) -> Option<String> {
        (session.operator().as_deref() == Some("core")).then(|| {
            "you are working as core: after this, core (you) can no longer use sudo, because core \
             has no password"
                .to_owned()
        })
    }
}

/// The configuration from the gathered files, with `overlay` in place of one file.
fn load(
    files: &FileSet,
    overlay: Option<(&Path, &[u8])>,
    hostname: Option<&str>,
) -> sudoers::Sudoers {
    let main = sudoers::main_file(files.sudo_conf.as_deref());
    let mut source = Overlaid { files, overlay };
    // An overlaid file set is already in memory: loading it cannot fail.
    sudoers::load(&main, &mut source, hostname).unwrap_or_else(|_| sudoers::Sudoers {
        main,
        read: Vec::new(),
        entries: Vec::new(),
    })
}

/// Every line that still gives core sudo without a password once the drop-in is in place, and
/// every line the reader cannot read (the verdict fails closed on those).
fn report_verdict(plan: &mut Plan, planned: &sudoers::Sudoers, after: &Verdict) {
    let dropin = Path::new(DROPIN);
    for (line, reason) in &after.unreadable {
        plan.problems.push(format!(
            "{} `{}` cannot be read as sudoers ({reason}); sudo skips such a line, so what the \
             configuration grants core cannot be told: fix or remove it (`visudo -c` shows the \
             error)",
            line.location(),
            line.text
        ));
    }
    if after.passwordless() && !planned.reads(dropin) {
        plan.problems.push(format!(
            "{} does not include /etc/sudoers.d (no `#includedir /etc/sudoers.d`), so {DROPIN} \
             has no effect; add the include line",
            planned.main.display()
        ));
    }
    let ours = planned.entries.iter().rposition(|e| e.file == dropin);
    let mut by_line: BTreeMap<(usize, String), (&sudoers::Located, Vec<String>)> = BTreeMap::new();
    for grant in &after.grants {
        let line = grant.decided_by();
        let index = planned.entries.iter().position(|e| e == line).unwrap_or(0);
        let on = grant
            .on
            .as_ref()
            .map(|h| format!(" on {h}"))
            .unwrap_or_default();
        let what = format!("as {}: {}{on}", grant.runas, grant.command.shown());
        by_line
            .entry((index, line.location()))
            .or_insert((line, Vec::new()))
            .1
            .push(what);
    }
    for ((index, location), (line, mut what)) in by_line {
        if what.len() > 3 {
            let more = what.len() - 3;
            what.truncate(3);
            what.push(format!("{more} more"));
        }
        let what = what.join("; ");
        let is_defaults = matches!(line.entry, sudoers::Entry::Defaults { .. });
        plan.problems.push(if is_defaults {
            format!(
                "{location} `{}` turns authentication off for core ({what}), so core can use \
                 sudo without a password; remove `!authenticate` there or scope it away from core",
                line.text
            )
        } else if ours.is_some_and(|ours| index > ours) {
            format!(
                "{location} `{}` comes after {DROPIN} and gives core NOPASSWD again ({what}); \
                 remove it or move it before core-passwd",
                line.text
            )
        } else {
            format!(
                "{location} `{}` lets core use sudo without a password ({what}); remove \
                 NOPASSWD there",
                line.text
            )
        });
    }
}

/// sudo's own listing against the reader's, on the configuration as it is now.
fn cross_check(plan: &mut Plan, now: &Verdict, sudo_list: Option<&Result<Listing, String>>) {
    match sudo_list {
        None => {}
        Some(Err(reason)) => plan.notes.push(format!(
            "sudo itself could not be asked (`sudo -l -U core`: {reason}); the verdict is this \
             reader's alone"
        )),
        Some(Ok(listing)) => {
            let shown = |nopasswd: bool, no_auth: bool| {
                format!(
                    "{} NOPASSWD entry and {} `!authenticate` Defaults",
                    if nopasswd { "a" } else { "no" },
                    if no_auth { "a" } else { "no" }
                )
            };
            if (listing.nopasswd, listing.no_authenticate)
                != (now.lists_nopasswd, now.lists_no_authenticate)
            {
                plan.problems.push(format!(
                    "sudo and this reader disagree: `sudo -l -U core` shows {}, the reader finds \
                     {}; the verdict cannot be trusted until the sudoers files are simplified \
                     (please report this)",
                    shown(listing.nopasswd, listing.no_authenticate),
                    shown(now.lists_nopasswd, now.lists_no_authenticate)
                ));
            }
        }
    }
}

/// The name sudo matches host lists against: the running kernel's on a live host, an image's
/// /etc/hostname otherwise.
fn hostname(host: &Host) -> Result<Option<String>, ControlError> {
    let path = if host.is_live() {
        "/proc/sys/kernel/hostname"
    } else {
        "/etc/hostname"
    };
    let bytes = host.fs.read(Path::new(path))?.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    Ok(text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned))
}

#[cfg(test)]
mod tests;
