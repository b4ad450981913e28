//! logind's D-Bus API (`org.freedesktop.login1`), the way `loginctl` uses it: which login session a
//! process belongs to and where that session came from. The lockout guard asks it, because a
//! process that detached from its SSH login (`setsid`, tmux, nohup) still belongs to that session.

use std::fmt;
use std::time::Duration;

use zbus::blocking::{connection, Connection};
use zbus::proxy::CacheProperties;
use zbus::zvariant::OwnedObjectPath;

use super::HostError;

/// How long logind may take to answer: past that the guard stops waiting and fails closed.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// logind's answer for a process outside every session (a system service, a user's manager).
const NO_SESSION_FOR_PID: &str = "org.freedesktop.login1.NoSessionForPID";

#[zbus::proxy(
    interface = "org.freedesktop.login1.Manager",
    default_service = "org.freedesktop.login1",
    default_path = "/org/freedesktop/login1",
    gen_async = false
)]
trait Manager {
    #[zbus(name = "GetSessionByPID")]
    fn get_session_by_pid(&self, pid: u32) -> zbus::Result<OwnedObjectPath>;
    #[zbus(name = "GetUserByPID")]
    fn get_user_by_pid(&self, pid: u32) -> zbus::Result<OwnedObjectPath>;
}

#[zbus::proxy(
    interface = "org.freedesktop.login1.Session",
    default_service = "org.freedesktop.login1",
    gen_async = false
)]
trait Session {
    #[zbus(property)]
    fn id(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn name(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn remote(&self) -> zbus::Result<bool>;
    #[zbus(property)]
    fn remote_host(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn service(&self) -> zbus::Result<String>;
    #[zbus(property, name = "Type")]
    fn kind(&self) -> zbus::Result<String>;
    #[zbus(property, name = "TTY")]
    fn tty(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn leader(&self) -> zbus::Result<u32>;
}

#[zbus::proxy(
    interface = "org.freedesktop.login1.User",
    default_service = "org.freedesktop.login1",
    gen_async = false
)]
trait User {
    #[zbus(property)]
    fn sessions(&self) -> zbus::Result<Vec<(String, OwnedObjectPath)>>;
}

/// One login session as logind describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSession {
    /// `Id`: `3`, `c1`, …
    pub id: String,
    /// `Name`: the user who logged in.
    pub user: String,
    /// `Remote`: the PAM service passed on a remote host (`PAM_RHOST`).
    pub remote: bool,
    /// `RemoteHost`: the address or name the login came from (empty when not remote).
    pub remote_host: String,
    /// `Service`: the PAM service that opened the session (`sshd`, `login`, `runuser-l`, …).
    pub service: String,
    /// `Type`: `tty`, `x11`, `wayland`, `unspecified`.
    pub kind: String,
    /// `TTY`: `tty1`, `ttyS0`, `pts/0` (may be empty).
    pub tty: String,
    /// `Leader`: the process that opened the session (for SSH, sshd's process of the
    /// connection, which holds its socket).
    pub leader: u32,
}

impl LoginSession {
    /// An SSH login: logind says it is remote, or sshd opened it (a remote session whose client
    /// address sshd did not pass on is still one).
    pub fn over_ssh(&self) -> bool {
        self.remote || self.service == "sshd"
    }
}

/// `logind session 3 (sshd, from 10.0.2.2, user root)`,
/// `logind session 5 (runuser-l, local, type unspecified, user root)`.
impl fmt::Display for LoginSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let service = if self.service.is_empty() {
            "no PAM service"
        } else {
            &self.service
        };
        write!(f, "logind session {} ({service}", self.id)?;
        match (self.remote, self.remote_host.is_empty()) {
            (true, false) => write!(f, ", from {}", self.remote_host)?,
            (true, true) => write!(f, ", remote")?,
            (false, _) => write!(f, ", local, type {}", self.kind)?,
        }
        if !self.tty.is_empty() {
            write!(f, ", on {}", self.tty)?;
        }
        write!(f, ", user {})", self.user)
    }
}

/// What logind knows about the agent's process.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LoginLookup {
    /// The session of the agent, or of its nearest ancestor that has one.
    pub session: Option<LoginSession>,
    /// Every session of the agent's user, asked only for a process of the user's own systemd
    /// instance (`user@UID.service`): that belongs to a user but to none of its sessions.
    pub user_sessions: Vec<LoginSession>,
}

/// A connection to logind over the system bus.
pub struct Logind {
    connection: Connection,
}

fn dbus(what: impl fmt::Display, error: zbus::Error) -> HostError {
    HostError::Refused(format!("logind: {what}: {error}"))
}

impl Logind {
    pub fn connect() -> Result<Logind, HostError> {
        connection::Builder::system()
            .map(|builder| builder.method_timeout(REPLY_TIMEOUT))
            .and_then(|builder| builder.build())
            .map(|connection| Logind { connection })
            .map_err(|e| HostError::Refused(format!("cannot reach the system bus: {e}")))
    }

    /// The session of the first of `lineage` (the agent, then its ancestors) that has one, and,
    /// when `user_manager` (the agent runs under its user's systemd), every session of its user.
    pub fn lookup(&self, lineage: &[u32], user_manager: bool) -> Result<LoginLookup, HostError> {
        let manager = ManagerProxy::builder(&self.connection)
            .cache_properties(CacheProperties::No)
            .build()
            .map_err(|e| dbus("manager proxy", e))?;
        let mut lookup = LoginLookup::default();
        for &pid in lineage {
            match manager.get_session_by_pid(pid) {
                Ok(path) => {
                    lookup.session = Some(self.session(path)?);
                    break;
                }
                Err(zbus::Error::MethodError(name, _, _))
                    if name.as_str() == NO_SESSION_FOR_PID => {}
                Err(e) => return Err(dbus(format_args!("GetSessionByPID({pid})"), e)),
            }
        }
        if let (None, true, Some(&pid)) = (&lookup.session, user_manager, lineage.first()) {
            let path = manager
                .get_user_by_pid(pid)
                .map_err(|e| dbus(format_args!("GetUserByPID({pid})"), e))?;
            let sessions = UserProxy::builder(&self.connection)
                .path(path)
                .and_then(|b| b.cache_properties(CacheProperties::No).build())
                .and_then(|user| user.sessions())
                .map_err(|e| dbus("user Sessions", e))?;
            for (_, path) in sessions {
                lookup.user_sessions.push(self.session(path)?);
            }
        }
        Ok(lookup)
    }

    fn session(&self, path: OwnedObjectPath) -> Result<LoginSession, HostError> {
        let shown = path.to_string();
        let session = SessionProxy::builder(&self.connection)
            .path(path)
            .and_then(|b| b.cache_properties(CacheProperties::No).build())
            .map_err(|e| dbus(&shown, e))?;
        let read = |what: &str, r: zbus::Result<String>| {
            r.map_err(|e| dbus(format_args!("{shown} {what}"), e))
        };
        Ok(LoginSession {
            id: read("Id", session.id())?,
            user: read("Name", session.name())?,
            remote: session
                .remote()
                .map_err(|e| dbus(format_args!("{shown} Remote"), e))?,
            remote_host: read("RemoteHost", session.remote_host())?,
            service: read("Service", session.service())?,
            kind: read("Type", session.kind())?,
            tty: read("TTY", session.tty())?,
            leader: session
                .leader()
                .map_err(|e| dbus(format_args!("{shown} Leader"), e))?,
        })
    }
}
