//! Who is running the agent, and from where: the lockout guard needs to know whether the run
//! belongs to an SSH login. logind answers (a run detached with setsid, tmux or nohup stays in its
//! login's session), asked only when the guard needs it; today's signals remain for hosts without
//! logind, and when no answer can be had the origin is unknown: the guard fails closed.

use std::cell::OnceCell;
use std::fs;
use std::net::SocketAddr;

use super::accounts::{self, Accounts};
use super::logind::{LoginLookup, Logind};

/// Where the agent's process sits in systemd's cgroup tree: a system service is no login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// A system unit (`/system.slice/flatcar-harden.service`, `/init.scope`): systemd started it.
    System(String),
    /// A login session's scope (`session-3.scope`): the session is logind's to describe.
    Session(String),
    /// The user's own systemd instance (`user@0.service`): the user's, in none of its sessions.
    UserManager(String),
    /// Anything else (the root cgroup of a container, an unreadable file): what it says.
    Unknown(String),
}

/// Whether the run belongs to an SSH login, with the reason (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// No SSH login: a system service, a local session, or no session at all.
    Local(String),
    /// An SSH login.
    Remote(String),
    /// Cannot be told (logind could not answer for a process that may be in a login): the guard
    /// treats it as remote.
    Unknown(String),
}

/// logind's answer: `None` while not asked, `Some(Err)` when it could not be asked.
type Answer = Option<Result<LoginLookup, String>>;

#[derive(Debug)]
pub struct Session {
    /// The user who ran `sudo flatcar-harden …`, if any.
    sudo_user: Option<String>,
    /// Why the run looks like SSH without asking logind (`SSH_CONNECTION`, an sshd ancestor, an
    /// `sshd@` unit in the cgroups of the agent or an ancestor).
    ssh_signal: Option<String>,
    placement: Placement,
    /// The agent's PID, then its ancestors' (PID 1 left out), nearest first.
    lineage: Vec<u32>,
    /// logind's answer, asked on first need.
    logind: OnceCell<Answer>,
    /// The running system's passwd and group files (`/etc`, then the baselayout), to name the
    /// user running the agent and its groups; empty for an image.
    accounts: Accounts,
    /// How this SSH login authenticated, asked on first need (sshd-config's guard).
    auth: OnceCell<Result<Vec<String>, String>>,
    /// This host's address of the SSH connection, found on first need (sshd-listen's guard).
    local: OnceCell<Result<(SocketAddr, String), String>>,
}

impl Session {
    /// What the environment and `/proc` say; logind is not asked yet. `accounts`: the running
    /// system's passwd and group files, read by the caller through the host's file layer.
    pub fn detect(accounts: Accounts) -> Session {
        let lineage = lineage();
        let placement = fs::read_to_string("/proc/self/cgroup")
            .map(|cgroups| placement(&cgroups))
            .unwrap_or_else(|e| Placement::Unknown(format!("/proc/self/cgroup unreadable: {e}")));
        Session {
            sudo_user: std::env::var("SUDO_USER").ok().filter(|u| !u.is_empty()),
            ssh_signal: ssh_signal(&lineage),
            placement,
            lineage,
            logind: OnceCell::new(),
            accounts,
            auth: OnceCell::new(),
            local: OnceCell::new(),
        }
    }

    /// Whether the run belongs to an SSH login. Asks logind the first time, unless the agent runs
    /// as a system service (the boot-time unit): that is no login, and no D-Bus call is made.
    /// Only for the live host: an image has no logins.
    pub fn origin(&self) -> Origin {
        judge(self.ssh_signal.as_deref(), &self.placement, self.answer())
    }

    /// The user whose access is at stake: the one behind sudo, else the one who logged in to the
    /// session (logind; `su -` hides the sudo user), else the one running the agent.
    pub fn operator(&self) -> Option<String> {
        self.sudo_user
            .clone()
            .or_else(|| {
                let lookup = self.answer()?.as_ref().ok()?;
                Some(lookup.session.as_ref()?.user.clone())
            })
            .or_else(|| accounts::user_name(nix::unistd::getuid().as_raw(), &self.accounts.passwd))
    }

    /// The groups of `user` (primary and supplementary), from the running system's files.
    pub fn groups_of(&self, user: &str) -> Vec<String> {
        self.accounts.identity(user).groups.into_iter().collect()
    }

    /// The user of this run's login session and how it authenticated (`publickey`, `password`,
    /// `keyboard-interactive/pam`, …): logind names the session's leader, and sshd's "Accepted"
    /// line of that process in the journal names the method. `Err` says why it cannot be told.
    pub fn ssh_auth_methods(&self) -> Result<Vec<String>, String> {
        self.auth
            .get_or_init(|| {
                let answer = self
                    .answer()
                    .ok_or_else(|| "logind was not asked (no login session)".to_owned())?;
                let lookup = answer.as_ref().map_err(Clone::clone)?;
                let session = lookup
                    .session
                    .as_ref()
                    .ok_or_else(|| "logind knows no session for this run".to_owned())?;
                if session.leader == 0 {
                    return Err(format!("{session} has no leader process"));
                }
                super::sshd::accepted_methods(session.leader, &session.user)
                    .map_err(|why| format!("{session}: {why}"))
            })
            .clone()
    }

    /// This host's address of the SSH connection the run belongs to: from the process holding
    /// it (logind's session leader, else the nearest sshd ancestor), else `SSH_CONNECTION`.
    /// `Err` says why it cannot be told; the sshd-listen guard then fails closed.
    pub fn local_address(&self) -> Result<(SocketAddr, String), String> {
        self.local
            .get_or_init(|| {
                let found = self.find_local_address();
                tracing::debug!("the SSH connection's local address: {found:?}");
                found
            })
            .clone()
    }

    fn find_local_address(&self) -> Result<(SocketAddr, String), String> {
        let mut tried = Vec::new();
        let leader = match self.answer() {
            Some(Ok(lookup)) => lookup.session.as_ref().map(|s| s.leader).filter(|&l| l > 0),
            Some(Err(why)) => {
                tried.push(format!("logind: {why}"));
                None
            }
            None => None,
        };
        let ancestor = self.lineage.iter().copied().find(|&pid| {
            stat(pid).is_some_and(|(comm, _)| comm == "sshd" || comm == "sshd-session")
        });
        for pid in leader.into_iter().chain(ancestor) {
            match local::of_process(pid) {
                Ok(found) => return Ok(found),
                Err(why) => tried.push(why),
            }
        }
        if let Some(address) = std::env::var("SSH_CONNECTION").ok().and_then(|conn| {
            let fields: Vec<&str> = conn.split_whitespace().collect();
            Some(SocketAddr::new(
                fields.get(2)?.parse().ok()?,
                fields.get(3)?.parse().ok()?,
            ))
        }) {
            return Ok((address, "SSH_CONNECTION".to_owned()));
        }
        if tried.is_empty() {
            tried.push("no login session, sshd ancestor or SSH_CONNECTION".to_owned());
        }
        Err(tried.join("; "))
    }

    fn answer(&self) -> Option<&Result<LoginLookup, String>> {
        self.logind
            .get_or_init(|| {
                if let Placement::System(_) = self.placement {
                    return None;
                }
                let user_manager = matches!(self.placement, Placement::UserManager(_));
                let answer = Logind::connect()
                    .and_then(|logind| logind.lookup(&self.lineage, user_manager))
                    .map_err(|e| e.to_string());
                tracing::debug!("logind on PIDs {:?}: {answer:?}", self.lineage);
                Some(answer)
            })
            .as_ref()
    }

    /// Unit tests: a session with these facts and logind's answer already in.
    #[cfg(test)]
    pub fn known(ssh_signal: Option<&str>, placement: Placement, logind: Answer) -> Session {
        Session {
            sudo_user: None,
            ssh_signal: ssh_signal.map(str::to_owned),
            placement,
            lineage: vec![std::process::id()],
            logind: OnceCell::from(logind),
            accounts: Accounts::default(),
            auth: OnceCell::new(),
            local: OnceCell::new(),
        }
    }

    /// Unit tests: a session with an operator, its groups and how it authenticated.
    #[cfg(test)]
    pub fn authenticated(user: &str, group: &str, auth: Result<Vec<String>, String>) -> Session {
        let mut session = Session::known(None, Placement::Unknown("test".into()), None);
        session.sudo_user = Some(user.to_owned());
        session.accounts = Accounts {
            passwd: vec![format!("{user}:x:1000:1000::/home/{user}:/bin/sh\n").into_bytes()],
            group: vec![format!("{group}:x:1000:\n").into_bytes()],
        };
        session.auth = OnceCell::from(auth);
        session
    }

    /// Unit tests: the SSH connection's local address already found (or not).
    #[cfg(test)]
    pub fn with_local_address(self, found: Result<&str, &str>) -> Session {
        let found = found
            .map(|a| (a.parse().expect("an address"), "test".to_owned()))
            .map_err(str::to_owned);
        Session {
            local: OnceCell::from(found),
            ..self
        }
    }
}

/// The verdict from the facts. An SSH signal from logind or from the fallbacks wins over
/// everything; a system service is no login; in a login (or maybe in one) logind decides, and
/// when it cannot, the origin is unknown.
fn judge(
    ssh_signal: Option<&str>,
    placement: &Placement,
    logind: Option<&Result<LoginLookup, String>>,
) -> Origin {
    let lookup = logind.and_then(|answer| answer.as_ref().ok());
    if let Some(session) = lookup
        .and_then(|lookup| lookup.session.as_ref())
        .filter(|session| session.over_ssh())
    {
        return Origin::Remote(session.to_string());
    }
    if let Some(signal) = ssh_signal {
        return Origin::Remote(signal.to_owned());
    }
    let place = match placement {
        Placement::System(unit) => {
            return Origin::Local(format!("system service {unit}, not a login session"));
        }
        Placement::Session(scope) => format!("runs in {scope}"),
        Placement::UserManager(unit) => format!("runs under {unit}"),
        Placement::Unknown(what) => format!("is in no known place ({what})"),
    };
    let lookup = match logind {
        None => return Origin::Unknown(format!("logind was not asked; the agent {place}")),
        Some(Err(why)) => {
            return Origin::Unknown(format!(
                "logind could not be asked ({why}); the agent {place}, so it may belong to an \
                 SSH login"
            ))
        }
        Some(Ok(lookup)) => lookup,
    };
    if let Some(session) = &lookup.session {
        return Origin::Local(session.to_string());
    }
    match placement {
        Placement::Session(scope) => Origin::Unknown(format!(
            "the agent runs in {scope}, but logind knows no session for it or its parents"
        )),
        Placement::UserManager(unit) => {
            let sessions = &lookup.user_sessions;
            if let Some(ssh) = sessions.iter().find(|s| s.over_ssh()) {
                Origin::Remote(format!(
                    "the agent runs under {unit}, outside any session, and its user has an SSH \
                     login: {ssh}"
                ))
            } else if sessions.is_empty() {
                Origin::Unknown(format!(
                    "the agent runs under {unit}, outside any session, and its user has no \
                     session logind knows of: where it was started from cannot be told"
                ))
            } else {
                let local: Vec<String> = sessions.iter().map(ToString::to_string).collect();
                Origin::Local(format!(
                    "the agent runs under {unit}, and its user's sessions are all local: {}",
                    local.join(", ")
                ))
            }
        }
        Placement::System(_) | Placement::Unknown(_) => Origin::Local(format!(
            "logind knows no session for the agent or its parents; the agent {place}"
        )),
    }
}

/// Where `/proc/PID/cgroup` puts a process: the systemd hierarchy's line (`1:name=systemd:/…`)
/// on a legacy or hybrid host, which systemd manages first there, else the unified one's (`0::/…`).
fn placement(cgroups: &str) -> Placement {
    let path = cgroups
        .lines()
        .find_map(|line| line.split_once(":name=systemd:").map(|(_, path)| path))
        .or_else(|| cgroups.lines().find_map(|line| line.strip_prefix("0::")));
    let Some(path) = path else {
        return Placement::Unknown("no systemd cgroup in /proc/self/cgroup".into());
    };
    let units: Vec<&str> = path.split('/').filter(|unit| !unit.is_empty()).collect();
    if let Some(scope) = units
        .iter()
        .find(|unit| unit.starts_with("session-") && unit.ends_with(".scope"))
    {
        return Placement::Session((*scope).to_owned());
    }
    if let Some(manager) = units
        .iter()
        .find(|unit| unit.starts_with("user@") && unit.ends_with(".service"))
    {
        return Placement::UserManager((*manager).to_owned());
    }
    match units.as_slice() {
        ["init.scope"] => Placement::System("init.scope".into()),
        ["system.slice", rest @ ..] => match rest.iter().find(|unit| !unit.ends_with(".slice")) {
            Some(unit) => Placement::System((*unit).to_owned()),
            None => Placement::Unknown(format!("cgroup {path}")),
        },
        _ => Placement::Unknown(format!("cgroup {path}")),
    }
}

/// The agent's PID and its ancestors', nearest first, up to (not including) PID 1.
fn lineage() -> Vec<u32> {
    let mut pids = vec![std::process::id()];
    while pids.len() < 64 {
        match parent(*pids.last().expect("starts with one")) {
            Some(ppid) if ppid > 1 => pids.push(ppid),
            _ => break,
        }
    }
    pids
}

/// The command name and parent of `pid`, from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(String, u32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself contain spaces or parentheses.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let ppid = stat[close + 1..].split_whitespace().nth(1)?.parse().ok()?;
    Some((stat[open + 1..close].to_owned(), ppid))
}

fn parent(pid: u32) -> Option<u32> {
    stat(pid).map(|(_, ppid)| ppid)
}

/// The signals that need no logind. `SSH_CONNECTION` is the obvious one, but `sudo` resets the
/// environment, so also look for sshd among the ancestors (`sshd`, or `sshd-session` on OpenSSH ≥
/// 9.8) and for a per-connection `sshd@….service` unit in their cgroups.
fn ssh_signal(lineage: &[u32]) -> Option<String> {
    if let Ok(conn) = std::env::var("SSH_CONNECTION") {
        if !conn.is_empty() {
            return Some(format!("SSH_CONNECTION={conn}"));
        }
    }
    lineage.iter().find_map(|&pid| {
        let (comm, _) = stat(pid)?;
        if comm == "sshd" || comm == "sshd-session" {
            return Some(format!("process {pid} ({comm}) is an ancestor"));
        }
        let unit = sshd_unit(pid).ok()??;
        Some(format!("process {pid} runs in {unit}"))
    })
}

/// The per-connection `sshd@….service` unit in `pid`'s cgroups (socket activation with
/// `Accept=yes`), if it runs in one; `Err` when `/proc/PID/cgroup` cannot be read.
pub fn sshd_unit(pid: u32) -> std::io::Result<Option<String>> {
    let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    Ok(cgroup
        .split(['/', '\n'])
        .find(|part| part.starts_with("sshd@") && part.ends_with(".service"))
        .map(str::to_owned))
}

mod local;
#[cfg(test)]
mod tests;
