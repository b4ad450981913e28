//! Audit: etcd and locksmith use TLS. Read-only: this control never writes.
//!
//! The guide: "etcd and Locksmith should be secured and authenticated using TLS if you are using
//! these services." The agent cannot make up certificates, so it reports; each finding names the
//! file and line (or the unit file, for a setting that is missing) and the fix. Findings are
//! drift the agent must not fix by itself: the control is `failed`, and `check` and `apply` exit 1.
//!
//! - **locksmithd** reads `REBOOT_STRATEGY` from `/usr/share/flatcar/update.conf` then
//!   `/etc/flatcar/update.conf`, and `LOCKSMITHD_*` from its environment: the unit's
//!   `Environment=` and `EnvironmentFile=` (drop-ins included; Flatcar's unit loads the two
//!   update.conf files that way too). Values are taken in that order, the last one winning. With
//!   `REBOOT_STRATEGY=etcd-lock`, every `LOCKSMITHD_ENDPOINT` must be `https://` (unset means
//!   plain `http://127.0.0.1:2379`) and `LOCKSMITHD_ETCD_CAFILE`, `_CERTFILE` and `_KEYFILE` must
//!   all be set and readable.
//! - A file holding `LOCKSMITHD_ETCD_PASSWORD` or `DOWNLOAD_PASSWORD` must not be
//!   world-readable; in a unit's `Environment=` a password is shown to every user by
//!   `systemctl show` whatever the file's mode.
//! - An **etcd member** (`etcd-member.service` or `etcd.service`): client and peer URLs `https://`,
//!   server and peer certificate, key and CA files set and readable, `ETCD_CLIENT_CERT_AUTH=true`.
//!   Only the unit's environment is read; flags in `ExecStart=` are not.
//!
//! Units are read from their files (no D-Bus), so the audit works the same on an image. A unit
//! masked (a link to `/dev/null`, or an empty file) counts as absent. No locksmithd unit and no
//! `etcd-lock` strategy, no etcd unit, no exposed password: not applicable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::unit_file::{self, UnitFiles};
use super::{envfile, Control, ControlError, Disposition, Plan};
use crate::host::{Host, HostError};
use crate::policy;
use findings::{audit_etcd, file_finding, is_password, last_set, plain_urls};

const UPDATE_CONFS: [&str; 2] = ["/usr/share/flatcar/update.conf", "/etc/flatcar/update.conf"];
const LOCKSMITHD: &str = "locksmithd.service";
const ETCD_UNITS: [&str; 2] = ["etcd-member.service", "etcd.service"];
const LOCKSMITH_TLS_FILES: [&str; 3] = [
    "LOCKSMITHD_ETCD_CAFILE",
    "LOCKSMITHD_ETCD_CERTFILE",
    "LOCKSMITHD_ETCD_KEYFILE",
];
const PASSWORDS: [&str; 2] = ["LOCKSMITHD_ETCD_PASSWORD", "DOWNLOAD_PASSWORD"];
/// etcd's URL settings and what etcd uses when one is not set.
const ETCD_URLS: [(&str, &str); 4] = [
    ("ETCD_LISTEN_CLIENT_URLS", "http://localhost:2379"),
    ("ETCD_ADVERTISE_CLIENT_URLS", "http://localhost:2379"),
    ("ETCD_LISTEN_PEER_URLS", "http://localhost:2380"),
    ("ETCD_INITIAL_ADVERTISE_PEER_URLS", "http://localhost:2380"),
];
const ETCD_TLS_FILES: [&str; 6] = [
    "ETCD_CERT_FILE",
    "ETCD_KEY_FILE",
    "ETCD_TRUSTED_CA_FILE",
    "ETCD_PEER_CERT_FILE",
    "ETCD_PEER_KEY_FILE",
    "ETCD_PEER_TRUSTED_CA_FILE",
];

pub struct EtcdLocksmithTls {
    policy: policy::EtcdLocksmithTls,
}

impl EtcdLocksmithTls {
    pub fn new(policy: policy::EtcdLocksmithTls) -> Self {
        EtcdLocksmithTls { policy }
    }
}

/// One `KEY=VALUE` and where it was set.
#[derive(Debug, Clone)]
struct Setting {
    key: String,
    value: String,
    file: PathBuf,
    line: usize,
    /// Set by `Environment=` in a unit file (not an environment file).
    in_unit: bool,
}

impl Setting {
    fn at(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

/// A unit as systemd would load it: its file, and the environment its files give it.
struct Unit {
    name: &'static str,
    file: PathBuf,
    env: Vec<Setting>,
}

pub struct State {
    /// update.conf first, then locksmithd's own environment: the order values win in.
    locksmith_env: Vec<Setting>,
    locksmithd: Option<Unit>,
    etcd: Vec<Unit>,
    /// Per file named by a setting that must be readable: `Ok(true)` readable, `Ok(false)`
    /// missing, `Err` why it cannot be read.
    files: BTreeMap<String, Result<bool, String>>,
    /// Permission bits of the files that hold a password.
    modes: BTreeMap<PathBuf, u32>,
}

impl Control for EtcdLocksmithTls {
    type State = State;

    const ID: &'static str = "etcd-locksmith-tls";
    const TITLE: &'static str = "etcd and locksmith use TLS";
    type Section = policy::EtcdLocksmithTls;

    fn section(&self) -> &policy::EtcdLocksmithTls {
        &self.policy
    }

    fn observe(&self, host: &Host) -> Result<State, ControlError> {
        let mut locksmith_env = Vec::new();
        for path in UPDATE_CONFS {
            locksmith_env.extend(env_file(host, Path::new(path))?.unwrap_or_default());
        }
        let locksmithd = load_unit(host, LOCKSMITHD)?;
        if let Some(unit) = &locksmithd {
            locksmith_env.extend(unit.env.iter().cloned());
        }
        let mut etcd = Vec::new();
        for name in ETCD_UNITS {
            etcd.extend(load_unit(host, name)?);
        }

        let mut files = BTreeMap::new();
        let mut modes = BTreeMap::new();
        let named = LOCKSMITH_TLS_FILES
            .iter()
            .filter_map(|key| last_set(&locksmith_env, key))
            .chain(etcd.iter().flat_map(|unit| {
                ETCD_TLS_FILES
                    .iter()
                    .filter_map(|key| last_set(&unit.env, key))
            }));
        for setting in named {
            let readable = match host.fs.read(Path::new(&setting.value)) {
                Ok(found) => Ok(found.is_some()),
                Err(e) => Err(e.to_string()),
            };
            files.insert(setting.value.clone(), readable);
        }
        for setting in locksmith_env.iter().filter(|s| is_password(s)) {
            if let Some(meta) = host.fs.stat(&setting.file)? {
                modes.insert(setting.file.clone(), meta.mode);
            }
        }
        Ok(State {
            locksmith_env,
            locksmithd,
            etcd,
            files,
            modes,
        })
    }

    fn plan(&self, state: &State) -> Result<Plan, ControlError> {
        let mut findings = Vec::new();
        let mut audited = Vec::new();

        // locksmithd: the strategy decides whether it talks to etcd at all.
        let strategy = last_set(&state.locksmith_env, "REBOOT_STRATEGY");
        let etcd_lock = strategy.is_some_and(|s| s.value == "etcd-lock");
        match strategy {
            Some(s) if etcd_lock => {
                audited.push(format!(
                    "locksmithd (REBOOT_STRATEGY=etcd-lock, {})",
                    s.at()
                ));
                let why = format!("{}: REBOOT_STRATEGY=etcd-lock", s.at());
                self.audit_locksmith(state, &why, &mut findings);
            }
            Some(s) if state.locksmithd.is_some() => audited.push(format!(
                "locksmithd does not use etcd (REBOOT_STRATEGY={}, {})",
                s.value,
                s.at()
            )),
            None if state.locksmithd.is_some() => audited
                .push("locksmithd does not use etcd (REBOOT_STRATEGY not set: reboot)".to_owned()),
            _ => {}
        }

        // Passwords, wherever locksmithd or update_engine read them from.
        for setting in state.locksmith_env.iter().filter(|s| is_password(s)) {
            let mode = state.modes.get(&setting.file).copied().unwrap_or(0);
            let exposed = if mode & 0o004 != 0 {
                Some(format!(
                    "{}: {} is in a world-readable file (mode {:04o}); make it readable by \
                     root only: chmod 0600 {}",
                    setting.at(),
                    setting.key,
                    mode,
                    setting.file.display()
                ))
            } else if setting.in_unit {
                Some(format!(
                    "{}: {} is set with Environment=, which `systemctl show` shows to every \
                     user; move it to an EnvironmentFile= with mode 0600",
                    setting.at(),
                    setting.key
                ))
            } else {
                None
            };
            findings.extend(exposed);
        }

        for unit in &state.etcd {
            audited.push(format!("{} ({})", unit.name, unit.file.display()));
            audit_etcd(unit, state, &mut findings);
        }

        // update.conf is read twice (directly, and as locksmithd's EnvironmentFile=).
        let mut seen = std::collections::BTreeSet::new();
        findings.retain(|f| seen.insert(f.clone()));

        if audited.is_empty() && findings.is_empty() {
            let strategy = strategy.map_or("REBOOT_STRATEGY not set".to_owned(), |s| {
                format!("REBOOT_STRATEGY={}, {}", s.value, s.at())
            });
            return Ok(Plan::with(
                Disposition::NotApplicable,
                format!(
                    "no etcd unit, no locksmithd unit, and locksmith does not use etcd \
                     ({strategy})"
                ),
            ));
        }
        let what = if audited.is_empty() {
            "update.conf".to_owned()
        } else {
            audited.join("; ")
        };
        let mut plan = Plan::managed(match findings.len() {
            0 => format!("{what}: TLS throughout, no exposed password"),
            1 => format!("{what}: 1 finding"),
            n => format!("{what}: {n} findings"),
        });
        plan.problems = findings;
        Ok(plan)
    }
}

impl EtcdLocksmithTls {
    fn audit_locksmith(&self, state: &State, why: &str, findings: &mut Vec<String>) {
        let env = &state.locksmith_env;
        match last_set(env, "LOCKSMITHD_ENDPOINT") {
            None => findings.push(format!(
                "{why}, but LOCKSMITHD_ENDPOINT is not set: locksmithd talks to etcd over plain \
                 http://127.0.0.1:2379; set LOCKSMITHD_ENDPOINT to https:// URLs"
            )),
            Some(endpoint) => {
                for url in plain_urls(&endpoint.value) {
                    findings.push(format!(
                        "{}: LOCKSMITHD_ENDPOINT {url} is not https://: locksmithd would talk to \
                         etcd in the clear",
                        endpoint.at()
                    ));
                }
            }
        }
        for key in LOCKSMITH_TLS_FILES {
            findings.extend(file_finding(env, key, why, state));
        }
    }
}

/// An environment file's settings; `None` if it does not exist.
fn env_file(host: &Host, path: &Path) -> Result<Option<Vec<Setting>>, HostError> {
    Ok(host.fs.read_text(path)?.map(|text| {
        envfile::parse(&text)
            .into_iter()
            .map(|a| Setting {
                key: a.key,
                value: a.value,
                file: path.to_path_buf(),
                line: a.line,
                in_unit: false,
            })
            .collect()
    }))
}

/// A unit as systemd would load it, with the environment its files give it. `None` if there
/// is no such unit or it is masked.
fn load_unit(host: &Host, name: &'static str) -> Result<Option<Unit>, HostError> {
    let Some(files) = UnitFiles::load(host, name)? else {
        return Ok(None);
    };
    let file = files
        .sources()
        .next()
        .map(|(p, _)| p.clone())
        .unwrap_or_default();
    let sources: Vec<(PathBuf, String)> = files.sources().cloned().collect();

    // systemd: Environment= in order, then every EnvironmentFile= in order (their values win);
    // an empty assignment resets the list.
    let mut environment = Vec::new();
    let mut environment_files: Vec<(PathBuf, bool)> = Vec::new();
    for (path, text) in &sources {
        for (line, key, value) in unit_file::settings(text, "Service") {
            match key.as_str() {
                "Environment" if value.is_empty() => environment.clear(),
                "Environment" => {
                    for word in envfile::words(&value) {
                        if let Some((key, value)) = word.split_once('=') {
                            environment.push(Setting {
                                key: key.to_owned(),
                                value: value.to_owned(),
                                file: path.clone(),
                                line,
                                in_unit: true,
                            });
                        }
                    }
                }
                "EnvironmentFile" if value.is_empty() => environment_files.clear(),
                "EnvironmentFile" => {
                    for word in envfile::words(&value) {
                        let (optional, file) = match word.strip_prefix('-') {
                            Some(rest) => (true, rest.to_owned()),
                            None => (false, word),
                        };
                        environment_files.push((PathBuf::from(file), optional));
                    }
                }
                _ => {}
            }
        }
    }
    let mut env = environment;
    for (path, _optional) in environment_files {
        // A missing file that is not optional keeps the unit from starting at all: no exposure.
        env.extend(env_file(host, &path)?.unwrap_or_default());
    }
    Ok(Some(Unit { name, file, env }))
}

mod findings;
#[cfg(test)]
mod tests;
