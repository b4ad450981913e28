//! sshd's settings, through one drop-in that sorts before every other file of
//! `/etc/ssh/sshd_config.d`: sshd keeps the first value it reads of a keyword, and Flatcar's
//! `/etc/ssh/sshd_config` is only `Include "/etc/ssh/sshd_config.d/*.conf"`.
//!
//! The drop-in is validated with the real sshd before it is renamed into place (`sshd -t` on the
//! whole configuration with the candidate read first) and judged afterwards by the values in force
//! (`sshd -T -C user=core,…`, so `Match` blocks count): a value set first by another file is
//! drift, named file:line by the reader. With socket activation every connection starts its own
//! `sshd -i`, so new connections get the new settings and nothing is restarted; a host running
//! `sshd.service` as a daemon has it reloaded. Offline (an image) the files alone are judged.

mod crypto;
mod drift;
mod guard;
mod reader;
#[cfg(test)]
mod tests;

use std::path::Path;

use self::crypto::{CryptoFacts, Edit};
use self::reader::ConfigFiles;
use super::units::UnitAction;
use super::{Action, Control, ControlError, Disposition, FileState, FileWrite, Plan, Validation};
use crate::host::fs::{FileSpec, Owner};
use crate::host::session::Session;
use crate::host::sshd::{Effective, SSHD_CONFIG};
use crate::host::Host;
use crate::policy::{self, PermitRootLogin, SshdCrypto};

/// `00-` sorts before Flatcar's `50-flatcar-sshd.conf` and Gentoo's `9999999gentoo*.conf`.
pub const DROPIN: &str = "/etc/ssh/sshd_config.d/00-flatcar-harden.conf";
/// As Flatcar's own drop-ins, and their directory.
const MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;
/// A daemon-mode sshd, on hosts that run one instead of the socket.
const DAEMON: &str = "sshd.service";
const SSHD: &str = "/usr/sbin/sshd";

pub struct SshdConfig {
    policy: policy::SshdConfig,
}

impl SshdConfig {
    pub fn new(policy: policy::SshdConfig) -> Self {
        SshdConfig { policy }
    }
}

pub struct State {
    dropin: FileState,
    owner: Owner,
    files: ConfigFiles,
    /// sshd is installed (on the running system, or in the image).
    installed: bool,
    live: Option<Live>,
}

/// What only the running system can tell.
pub struct Live {
    /// `sshd -T` on the configuration in force, or why it failed.
    effective: Result<Effective, String>,
    /// With `crypto = "modern"`: OpenSSH's defaults and known algorithms.
    crypto: Option<CryptoFacts>,
    /// `sshd.service` runs as a daemon.
    daemon_active: bool,
}

/// One managed keyword: its line in the drop-in, and what `sshd -T` shows once it is in force.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Setting {
    keyword: &'static str,
    value: String,
    /// `sshd -T` values (one per line); `None`: not judged by `sshd -T` (crypto offline).
    expected: Option<Vec<String>>,
    /// AllowUsers/AllowGroups: every line anywhere adds to the list.
    accumulates: bool,
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

/// The settings the policy asks for, in the drop-in's order, and a note on the crypto choice.
fn settings(
    policy: &policy::SshdConfig,
    crypto_facts: Option<&CryptoFacts>,
) -> (Vec<Setting>, Option<String>) {
    let mut out = Vec::new();
    let mut one = |keyword: &'static str, value: String| {
        out.push(Setting {
            keyword,
            expected: Some(vec![value.clone()]),
            value,
            accumulates: false,
        })
    };
    if let Some(permit) = policy.permit_root_login {
        one(
            "PermitRootLogin",
            match permit {
                PermitRootLogin::No => "no",
                PermitRootLogin::ProhibitPassword => "prohibit-password",
            }
            .to_owned(),
        );
    }
    let flags = [
        ("PasswordAuthentication", policy.password_authentication),
        (
            "KbdInteractiveAuthentication",
            policy.kbd_interactive_authentication,
        ),
    ];
    for (keyword, value) in flags {
        if let Some(value) = value {
            one(keyword, yes_no(value).to_owned());
        }
    }
    let numbers = [
        ("MaxAuthTries", policy.max_auth_tries.map(|n| n.0)),
        ("LoginGraceTime", policy.login_grace_time.map(|n| n.0)),
        (
            "ClientAliveInterval",
            policy.client_alive_interval.map(|n| n.0),
        ),
        (
            "ClientAliveCountMax",
            policy.client_alive_count_max.map(|n| n.0),
        ),
    ];
    for (keyword, value) in numbers {
        if let Some(value) = value {
            one(keyword, value.to_string());
        }
    }
    let forwarding = [
        ("X11Forwarding", policy.x11_forwarding),
        ("AllowTcpForwarding", policy.allow_tcp_forwarding),
        ("AllowAgentForwarding", policy.allow_agent_forwarding),
    ];
    for (keyword, value) in forwarding {
        if let Some(value) = value {
            one(keyword, yes_no(value).to_owned());
        }
    }
    for (keyword, names) in [
        ("AllowUsers", &policy.allow_users),
        ("AllowGroups", &policy.allow_groups),
    ] {
        if let Some(names) = names {
            let names: Vec<String> = names.iter().map(|n| n.0.clone()).collect();
            out.push(Setting {
                keyword,
                value: names.join(" "),
                expected: Some(names),
                accumulates: true,
            });
        }
    }
    let mut note = None;
    if policy.crypto == SshdCrypto::Modern {
        let (edits, why) = crypto::modern(crypto_facts);
        note = why;
        for edit in edits {
            out.push(crypto_setting(&edit, crypto_facts));
        }
    }
    (out, note)
}

fn crypto_setting(edit: &Edit, facts: Option<&CryptoFacts>) -> Setting {
    let key = edit.effective_key();
    let expected = facts
        .and_then(|facts| facts.defaults.get(&key))
        .and_then(|values| values.first())
        .map(|defaults| {
            let defaults: Vec<String> = defaults.split(',').map(str::to_owned).collect();
            vec![edit.applied(&defaults).join(",")]
        });
    let line = edit.line();
    Setting {
        keyword: edit.keyword,
        value: line[edit.keyword.len() + 1..].to_owned(),
        expected,
        accumulates: false,
    }
}

/// The drop-in's text.
fn content(settings: &[Setting]) -> String {
    let mut text = String::from(
        "# Written by flatcar-harden from its policy ([sshd-config]); edits here are put back by\n\
         # the next apply. sshd keeps the first value it reads: this file sorts first.\n",
    );
    for setting in settings {
        text.push_str(&format!("{} {}\n", setting.keyword, setting.value));
    }
    text
}

/// How `sshd -T` spells a value the drop-in spells otherwise.
fn normalized(key: &str, value: &str) -> String {
    match (key, value) {
        ("permitrootlogin", "without-password") => "prohibit-password".to_owned(),
        _ => value.to_owned(),
    }
}

impl Control for SshdConfig {
    type State = State;

    const ID: &'static str = "sshd-config";
    const TITLE: &'static str = "sshd settings in a validated drop-in";
    type Section = policy::SshdConfig;

    fn section(&self) -> &policy::SshdConfig {
        &self.policy
    }

    fn observe(&self, host: &Host) -> Result<State, ControlError> {
        let dropin = FileState::observe(host, Path::new(DROPIN))?;
        let files = ConfigFiles::gather(host, Path::new(SSHD_CONFIG))?;
        let (installed, live) = if host.is_live() {
            let installed = host.has_sshd();
            let live = installed
                .then(|| observe_live(host, &self.policy))
                .transpose()?;
            (installed, live)
        } else {
            (host.fs.lstat(Path::new(SSHD))?.is_some(), None)
        };
        Ok(State {
            dropin,
            owner: host.file_owner(),
            files,
            installed,
            live,
        })
    }

    fn plan(&self, state: &State) -> Result<Plan, ControlError> {
        if !state.installed {
            return Ok(Plan::with(
                Disposition::NotApplicable,
                "sshd is not installed",
            ));
        }
        let live = state.live.as_ref();
        let (settings, crypto_note) = settings(&self.policy, live.and_then(|l| l.crypto.as_ref()));
        let text = content(&settings);
        let spec = FileSpec {
            content: text.clone().into_bytes(),
            mode: MODE,
            owner: state.owner,
            parent_mode: DIR_MODE,
        };
        let write = FileWrite::plan(&state.dropin, spec, Validation::Sshd);
        let mut plan = Plan::managed("");
        plan.notes.extend(crypto_note);
        let directives = state
            .files
            .directives(Path::new(SSHD_CONFIG), Some((Path::new(DROPIN), &text)));
        let named = drift::winners(&mut plan, &settings, &directives);
        if let (None, Some(live)) = (&write, live) {
            drift::judge_effective(&mut plan, &settings, &live.effective, &named);
        }
        let keywords: Vec<&str> = settings.iter().map(|s| s.keyword).collect();
        plan.summary = match &write {
            None if keywords.is_empty() => format!("{DROPIN} is in place, with no setting"),
            None => format!("{DROPIN} sets {}", keywords.join(", ")),
            Some(_) => format!("write {DROPIN}: {}", keywords.join(", ")),
        };
        if let Some(write) = write {
            plan.actions.push(Action::WriteFile(write));
            match live {
                Some(live) if live.daemon_active => {
                    plan.actions
                        .push(Action::Unit(UnitAction::ReloadUnit(DAEMON.into())));
                    plan.notes.push(format!(
                        "{DAEMON} runs as a daemon: it is reloaded (SIGHUP), new connections get \
                         the new settings and open sessions stay"
                    ));
                }
                Some(_) => plan.notes.push(
                    "takes effect for each new SSH connection without restarting anything: \
                     sshd.socket starts a new `sshd -i` per connection, open sessions stay as \
                     they are"
                        .to_owned(),
                ),
                None => {}
            }
        }
        if live.is_none() {
            plan.pending.push(format!(
                "image: {DROPIN} is judged from the files only; `sshd -t` and `sshd -T` run on \
                 the live host (the next live apply or check); in force from the first \
                 connection after boot"
            ));
        }
        Ok(plan)
    }

    fn lockout_risk(&self, session: &Session) -> Option<String> {
        guard::lockout(&self.policy, session)
    }
}

fn observe_live(host: &Host, policy: &policy::SshdConfig) -> Result<Live, ControlError> {
    let crypto = if policy.crypto == SshdCrypto::Modern {
        let fips = host
            .kernel()
            .map(|k| k.read("/proc/sys/crypto/fips_enabled"))
            .transpose()?
            .flatten()
            .is_some_and(|v| v.trim() == "1");
        Some(CryptoFacts {
            defaults: host.sshd_effective(Some(""))?,
            known_kex: host.ssh_query("kex")?,
            fips,
        })
    } else {
        None
    };
    let daemon = host.systemd()?.unit_status(DAEMON)?;
    Ok(Live {
        effective: host.sshd_effective(None).map_err(|e| e.to_string()),
        crypto,
        daemon_active: crate::journal::record::is_active(&daemon.active_state)
            && daemon.load_state == "loaded",
    })
}
