//! core: sudo only with a password.
//!
//! The guide: "A sudo drop-in can be created under /etc/sudoers.d/core-passwd with the contents
//! `core ALL=(ALL) ALL` and as long as the core user has no password set it can't use sudo."
//! sudo applies the last matching rule, so the drop-in overrides the baselayout's
//! `core ALL=(ALL) NOPASSWD: ALL` — unless a later file grants NOPASSWD again, which is reported.

use std::path::Path;

use super::sudoers::{self, Config};
use super::{Control, ControlError, FileState, FileWrite, Plan, Validation};
use crate::host::fs::{FileSpec, Owner};
use crate::host::session::Session;
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

pub struct State {
    /// The drop-in as it is now.
    dropin: FileState,
    /// What the drop-in will hold: the existing text when it says the same thing.
    content: String,
    /// The sudoers configuration as sudo would read it with `content` in place.
    config: Config,
    who: sudoers::Identity,
    owner: Owner,
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
        let dropin = FileState::observe(host, Path::new(DROPIN))?;
        // An existing drop-in that says the same thing (the guide's Butane snippet writes
        // `core\tALL=(ALL) \tALL`) is kept as it is; only its mode and owner are corrected.
        let content = match dropin.text() {
            Some(existing) if same_rules(&existing, CONTENT) => existing.into_owned(),
            _ => CONTENT.to_owned(),
        };
        let config = Config::read(host, Some((Path::new(DROPIN), &content)))?;
        Ok(State {
            dropin,
            content,
            config,
            who: sudoers::identity(host, "core")?,
            owner: host.file_owner(),
        })
    }

    fn plan(&self, state: &State) -> Result<Plan, ControlError> {
        if state.who.uid.is_none() {
            return Ok(Plan::with(
                super::Disposition::NotApplicable,
                "there is no user core",
            ));
        }
        let dropin = Path::new(DROPIN);
        let spec = FileSpec {
            content: state.content.clone().into_bytes(),
            mode: self.policy.file_mode.0,
            owner: state.owner,
            parent_mode: SUDOERS_D_MODE,
        };
        let write = FileWrite::plan(&state.dropin, spec, Validation::Sudoers);

        // What sudo will do for core once the drop-in is in place.
        let config = &state.config;
        let mut plan = Plan::managed(if write.is_some() {
            format!("core can use sudo without a password; write {DROPIN}")
        } else {
            "core needs a password for sudo (and has none)".to_owned()
        });
        if !config.reads(dropin) {
            plan.problems.push(format!(
                "{} does not include /etc/sudoers.d (no `#includedir /etc/sudoers.d`), so {DROPIN} \
                 would have no effect; add the include line",
                config.main.display()
            ));
        }
        let rules = config.rules_for(&state.who);
        let ours = rules.iter().rposition(|r| r.file == dropin);
        for (index, rule) in rules.iter().enumerate() {
            if rule.no_authenticate {
                plan.problems.push(format!(
                    "{} `{}` lets core use sudo without a password; remove `!authenticate`",
                    rule.location(),
                    rule.text
                ));
            } else if rule.nopasswd && ours.is_some_and(|ours| index > ours) {
                plan.problems.push(format!(
                    "{} `{}` comes after {DROPIN} and gives core NOPASSWD again; remove it or \
                     move it before core-passwd",
                    rule.location(),
                    rule.text
                ));
            }
        }
        plan.actions.extend(write.map(super::Action::WriteFile));
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

/// Whether two sudoers texts hold the same rules, ignoring comments and spacing.
fn same_rules(a: &str, b: &str) -> bool {
    let normal = |text: &str| -> Vec<String> {
        sudoers::logical_lines(text)
            .map(|(_, line)| line.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
    normal(a) == normal(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guide_snippet_counts_as_the_same_rule() {
        assert!(same_rules("core\tALL=(ALL) \tALL\n", CONTENT));
        assert!(!same_rules("core ALL=(ALL) NOPASSWD: ALL\n", CONTENT));
    }
}
