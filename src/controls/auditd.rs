//! auditd running, with a rule set that records (rules.rs), now and at every boot.
//!
//! Flatcar ships auditd disabled, and `/etc/audit/rules.d/99-default.rules` ends with
//! `-a exclude,always -F msgtype>0`: every record is dropped before it is written, so even a
//! started auditd logs nothing but SELinux and audit configuration events. The control:
//!
//! - writes its rule set to `rules.d/50-flatcar-harden.rules` (0640, as upstream wants);
//! - turns each rule in rules.d that drops every record into a comment saying why. The file
//!   is rewritten in place (journaled, so `revert` puts it back) rather than deleted or
//!   outranked: an exclude rule cannot be outranked by a later file (the exclude list takes
//!   the first match, and a `-d` deleting it fails the whole load once it is gone), and a file
//!   that stays in place is not brought back by a tmpfiles `C` line at the next boot;
//! - enables auditd.service, and audit-rules.service where audit 4 has one (the unit that loads
//!   rules.d at boot; audit 3's auditd.service does that itself with `augenrules --load` in
//!   `ExecStartPost`), starts auditd, and loads the rules with `augenrules --load`;
//! - judges the result by `auditctl -l`: every rule key of ours loaded, no rule dropping
//!   everything.
//!
//! Offline (`--root`): the files and the enablement links `systemctl enable` would leave; the
//! rest happens at boot.

mod rules;

use std::path::{Path, PathBuf};

use super::unit_file::{settings, UnitFiles};
use super::units::{UnitAction, ETC_UNITS, UNIT_DIRS};
use super::{Action, Control, ControlError, Disposition, FileState, FileWrite, Plan, Validation};
use crate::host::fs::{FileSpec, Owner};
use crate::host::Host;
use crate::journal::record::{is_active, is_enabled};
use crate::policy;
use rules::{RULES, RULES_DIR, RULES_FILE};

const AUDITD: &str = "auditd.service";
/// audit 4's unit that loads rules.d at boot (Flatcar enables it).
const AUDIT_RULES: &str = "audit-rules.service";
const BINARIES: [&str; 2] = ["/usr/sbin/auditd", "/sbin/auditd"];

pub struct Auditd {
    policy: policy::Auditd,
}

impl Auditd {
    pub fn new(policy: policy::Auditd) -> Self {
        Auditd { policy }
    }
}

pub struct State {
    /// `None`: not installed, and why.
    missing: Option<String>,
    owner: Owner,
    ours: FileState,
    /// Every other `*.rules` file in rules.d.
    others: Vec<FileState>,
    units: Vec<Unit>,
    /// `auditctl -l`, or why it could not be read; `None` for an image.
    loaded: Option<Result<String, String>>,
}

struct Unit {
    name: &'static str,
    /// Where the unit file is, and the links its `[Install]` section asks for that no unit
    /// directory has (what an image lacks for the unit to be enabled).
    file: PathBuf,
    missing_links: Vec<PathBuf>,
    /// On the running host: enabled, running.
    live: Option<(bool, bool)>,
}

impl Control for Auditd {
    type State = State;

    const ID: &'static str = "auditd";
    const TITLE: &'static str = "auditd recording security events";
    type Section = policy::Auditd;

    fn section(&self) -> &policy::Auditd {
        &self.policy
    }

    fn observe(&self, host: &Host) -> Result<State, ControlError> {
        let mut state = State {
            missing: None,
            owner: host.file_owner(),
            ours: FileState::observe(host, Path::new(RULES_FILE))?,
            others: Vec::new(),
            units: Vec::new(),
            loaded: None,
        };
        let mut binary = false;
        for path in BINARIES {
            binary |= host.fs.stat(Path::new(path))?.is_some();
        }
        let Some(auditd) = observe_unit(host, AUDITD)? else {
            state.missing = Some(format!("no {AUDITD}"));
            return Ok(state);
        };
        if !binary {
            state.missing = Some(format!("no {}", BINARIES.join(" or ")));
            return Ok(state);
        }
        state.units.push(auditd);
        state.units.extend(observe_unit(host, AUDIT_RULES)?);
        let mut names = host.fs.list_dir(Path::new(RULES_DIR))?;
        names.sort();
        for name in names {
            let path = Path::new(RULES_DIR).join(&name);
            if path.extension().is_some_and(|e| e == "rules") && path != Path::new(RULES_FILE) {
                state.others.push(FileState::observe(host, &path)?);
            }
        }
        if host.is_live() {
            let systemd = host.systemd()?;
            for unit in &mut state.units {
                let status = systemd.unit_status(unit.name)?;
                unit.live = Some((
                    is_enabled(&status.unit_file_state),
                    is_active(&status.active_state),
                ));
            }
            state.loaded = Some(crate::host::audit::loaded_rules(host).map_err(|e| e.to_string()));
        }
        Ok(state)
    }

    fn plan(&self, state: &State) -> Result<Plan, ControlError> {
        if let Some(missing) = &state.missing {
            return Ok(Plan::with(
                Disposition::NotApplicable,
                format!("auditd is not installed ({missing})"),
            ));
        }
        let mut plan = Plan::managed("");
        let mut summary = Vec::new();
        // 0640: upstream's mode for rules files (Flatcar's are so too); an edited file keeps its.
        let spec = |content: Vec<u8>, mode_owner: Option<(u32, Owner)>| {
            let (mode, owner) = mode_owner.unwrap_or((0o640, state.owner));
            FileSpec {
                content,
                mode,
                owner,
                parent_mode: 0o750,
            }
        };
        let ours = spec(RULES.as_bytes().to_vec(), None);
        let mut files_changed = false;
        if let Some(write) = FileWrite::plan(&state.ours, ours, Validation::None) {
            summary.push(format!("write {RULES_FILE}"));
            plan.actions.push(Action::WriteFile(write));
            files_changed = true;
        }
        for other in &state.others {
            // A link (into /usr) is read through, and replaced by an edited regular file.
            let text = other.content.as_ref().or(other.linked.as_ref());
            let Some(fixed) = text.and_then(|t| rules::neutralised(&String::from_utf8_lossy(t)))
            else {
                continue;
            };
            summary.push(format!(
                "turn the rule dropping every record in {} into a comment",
                other.path.display()
            ));
            let fixed = spec(fixed.into_bytes(), other.mode_owner());
            let write = FileWrite::plan(other, fixed, Validation::None);
            plan.actions.extend(write.map(Action::WriteFile));
            files_changed = true;
        }

        let Some(loaded) = &state.loaded else {
            // An image: what `systemctl enable` leaves, and the rest at boot.
            for unit in &state.units {
                for link in &unit.missing_links {
                    summary.push(format!("enable {}", unit.name));
                    plan.actions.push(Action::Unit(UnitAction::Link {
                        path: link.clone(),
                        target: unit.file.clone(),
                    }));
                }
            }
            plan.pending.push(
                "takes effect at boot: auditd starts and loads the rules of /etc/audit/rules.d"
                    .to_owned(),
            );
            plan.summary = match summary.is_empty() {
                true => "image: auditd enabled with the agent's rules".to_owned(),
                false => format!("image: {}", summary.join("; ")),
            };
            return Ok(plan);
        };

        let mut enabled_any = false;
        for unit in &state.units {
            if unit.live.is_some_and(|(enabled, _)| !enabled) {
                summary.push(format!("enable {}", unit.name));
                plan.actions
                    .push(Action::Unit(UnitAction::Enable(unit.name.to_owned())));
                enabled_any = true;
            }
        }
        if enabled_any {
            plan.actions.push(Action::Unit(UnitAction::Reload));
        }
        if state.units[0].live.is_some_and(|(_, active)| !active) {
            summary.push(format!("start {AUDITD}"));
            plan.actions
                .push(Action::Unit(UnitAction::Start(AUDITD.to_owned())));
        }
        match loaded {
            Err(why) => plan
                .problems
                .push(format!("the loaded audit rules cannot be read: {why}")),
            Ok(listing) => {
                let wrong = rules::loaded_problems(listing);
                if files_changed || !wrong.is_empty() {
                    let why = match wrong.is_empty() {
                        true => "the files changed".to_owned(),
                        false => format!("auditctl -l has {}", wrong.join(", ")),
                    };
                    summary.push(format!("load the rules ({why})"));
                    plan.actions.push(Action::LoadAuditRules);
                }
            }
        }
        plan.summary = match summary.is_empty() {
            true => format!(
                "{AUDITD} enabled and running; auditctl -l has every rule of {RULES_FILE} and \
                 none that drops every record"
            ),
            false => summary.join("; "),
        };
        Ok(plan)
    }
}

/// A unit's file and, from its `[Install]` section, the `.wants/` links no unit directory has.
/// `None` if there is no such unit under the root.
fn observe_unit(host: &Host, name: &'static str) -> Result<Option<Unit>, ControlError> {
    let Some(files) = UnitFiles::load(host, name)? else {
        return Ok(None);
    };
    let Some((file, text)) = files.unit else {
        return Ok(None);
    };
    let mut missing_links = Vec::new();
    for (_, key, value) in settings(&text, "Install") {
        if key != "WantedBy" {
            continue;
        }
        for target in value.split_whitespace() {
            let wants = format!("{target}.wants");
            let mut linked = false;
            for dir in UNIT_DIRS {
                linked |= host
                    .fs
                    .lstat(&Path::new(dir).join(&wants).join(name))?
                    .is_some();
            }
            if !linked {
                missing_links.push(Path::new(ETC_UNITS).join(&wants).join(name));
            }
        }
    }
    Ok(Some(Unit {
        name,
        file,
        missing_links,
        live: None,
    }))
}

#[cfg(test)]
mod tests;
