//! sshd.socket listening only on the policy's addresses (a management address, not every one).
//!
//! A drop-in `/etc/systemd/system/sshd.socket.d/90-listen.conf` clears the unit's `ListenStream=`
//! and sets the policy's, with `FreeBind=yes` when the policy allows addresses the host does not
//! have yet. On the running host it takes effect through PID 1's D-Bus API: `Reload`, then a
//! restart of sshd.socket alone. Open sessions live in their own `sshd@….service` units (the socket
//! is `Accept=yes`) and survive the restart. What counts is systemd's view: the socket's `Listen`
//! property must be the policy's list; a later file that changes it is drift, named. In an image
//! (`--root`) only the drop-in is written, and it holds from the next boot.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use super::unit_file::{Assignment, UnitFiles};
use super::units::{UnitAction, ETC_UNITS};
use super::{Action, Control, ControlError, Disposition, FileState, FileWrite, Plan, Validation};
use crate::host::fs::{FileSpec, Owner};
use crate::host::session::Session;
use crate::host::systemd::SocketListen;
use crate::host::Host;
use crate::policy::{self, ListenAddress, SshdListenState};

const UNIT: &str = "sshd.socket";
/// After Flatcar's own drop-ins with a digit name, so its `ListenStream=` are the last.
const DROPIN_NAME: &str = "90-listen.conf";

pub struct SshdListen {
    policy: policy::SshdListen,
}

impl SshdListen {
    pub fn new(policy: policy::SshdListen) -> Self {
        SshdListen { policy }
    }
}

pub struct State {
    dropin: FileState,
    owner: Owner,
    /// sshd.socket's unit file and drop-ins under the root, to tell which `ListenStream=` win.
    files: UnitFiles,
    live: Option<Live>,
}

pub struct Live {
    socket: SocketListen,
    /// Every address on the host's interfaces.
    addresses: Vec<IpAddr>,
}

fn dropin_path() -> PathBuf {
    Path::new(ETC_UNITS)
        .join(format!("{UNIT}.d"))
        .join(DROPIN_NAME)
}

impl Control for SshdListen {
    type State = State;

    const ID: &'static str = "sshd-listen";
    const TITLE: &'static str = "sshd.socket listens only on the policy's addresses";
    type Section = policy::SshdListen;

    fn section(&self) -> &policy::SshdListen {
        &self.policy
    }

    fn observe(&self, host: &Host) -> Result<State, ControlError> {
        let dropin = FileState::observe(host, &dropin_path())?;
        let files = UnitFiles::read(host, UNIT)?;
        let live = match host.is_live() {
            true => Some(Live {
                socket: host.systemd()?.socket_listen(UNIT)?,
                addresses: crate::host::net::addresses()?,
            }),
            false => None,
        };
        Ok(State {
            dropin,
            owner: host.file_owner(),
            files,
            live,
        })
    }

    fn plan(&self, state: &State) -> Result<Plan, ControlError> {
        Ok(plan(&self.policy, state))
    }

    fn lockout_risk(&self, session: &Session) -> Option<String> {
        if self.policy.state != SshdListenState::Enforced {
            return None;
        }
        let listed = self.policy.listen.iter().map(|a| a.to_string());
        let listed = listed.collect::<Vec<_>>().join(", ");
        match session.local_address() {
            Ok((address, _)) if covers(&self.policy.listen, address) => None,
            Ok((address, how)) => Some(format!(
                "sshd.socket stops listening on {address}, the address this SSH session came in \
                 on ({how}): the policy lists only {listed}, so you cannot come back this way"
            )),
            Err(why) => Some(format!(
                "sshd.socket will listen only on {listed}, and the address this SSH session came \
                 in on cannot be told ({why}), so you may not get back in"
            )),
        }
    }
}

/// Whether a socket listening on `listen` accepts a connection to `address`: the same address
/// and port, or a wildcard address (`0.0.0.0`, `[::]`, which takes IPv4 too) with that port.
fn covers(listen: &[ListenAddress], address: SocketAddr) -> bool {
    listen.iter().any(|ListenAddress(l)| {
        l.port() == address.port()
            && (l.ip() == address.ip()
                || l.ip().is_unspecified() && (l.is_ipv6() || address.is_ipv4()))
    })
}

/// The drop-in for the policy: the unit's addresses reset, then the policy's in its order.
fn dropin_content(policy: &policy::SshdListen) -> String {
    let mut text = String::from(
        "# flatcar-harden sshd-listen: sshd.socket listens only on these addresses.\n\
         [Socket]\nListenStream=\n",
    );
    for address in &policy.listen {
        text.push_str(&format!("ListenStream={address}\n"));
    }
    if policy.allow_absent_address {
        // Binding an address the host does not have (yet) fails without it.
        text.push_str("FreeBind=yes\n");
    }
    text
}

/// A `ListenStream=` value as systemd loads it: a port alone listens on every address (`[::]`,
/// IPv4 included). Anything else (a path, `vsock:`) stays as written and matches no policy.
fn listen_value(value: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = value.parse::<u16>() {
        return Ok(SocketAddr::new(
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            port,
        ));
    }
    value.parse().map_err(|_| value.to_owned())
}

/// The addresses the unit's files give the socket, each with the assignment that set it: a
/// `ListenStream=` with no value drops what came before.
fn from_files(files: &UnitFiles) -> Vec<(Result<SocketAddr, String>, Assignment)> {
    let mut list = Vec::new();
    for assignment in files.assignments("Socket", "ListenStream") {
        if assignment.value.is_empty() {
            list.clear();
        } else {
            list.push((listen_value(&assignment.value), assignment));
        }
    }
    list
}

fn wanted(policy: &policy::SshdListen) -> Vec<Result<SocketAddr, String>> {
    policy.listen.iter().map(|a| Ok(a.0)).collect()
}

fn shown(list: &[Result<SocketAddr, String>]) -> String {
    let items: Vec<String> = list
        .iter()
        .map(|a| match a {
            Ok(address) => address.to_string(),
            Err(raw) => raw.clone(),
        })
        .collect();
    if items.is_empty() {
        "nothing".to_owned()
    } else {
        items.join(", ")
    }
}

fn plan(policy: &policy::SshdListen, state: &State) -> Plan {
    if policy.listen.is_empty() {
        let mut plan = Plan::managed("sshd-listen is enforced with no addresses");
        plan.problems.push(
            "sshd-listen.state = \"enforced\" needs `listen = [\"IP:port\", …]`: the addresses \
             sshd.socket is to listen on"
                .to_owned(),
        );
        return plan;
    }
    if let Some(live) = &state.live {
        if live.socket.unit.load_state == "not-found" {
            return Plan::with(
                Disposition::NotApplicable,
                "there is no sshd.socket on this host",
            );
        }
    }
    let mut plan = Plan::managed("");
    let want = wanted(policy);

    // Addresses the host does not have: sshd.socket would fail to bind them (and with FreeBind
    // it listens where nothing can reach it). Refused before anything is written.
    match &state.live {
        Some(live) if !policy.allow_absent_address => {
            for ListenAddress(address) in &policy.listen {
                let ip = address.ip();
                if !ip.is_unspecified() && !live.addresses.contains(&ip) {
                    let have: Vec<String> =
                        live.addresses.iter().map(ToString::to_string).collect();
                    plan.problems.push(format!(
                        "{address}: this host has no address {ip} (it has {}), so sshd.socket \
                         could not listen there; fix the address, or set allow_absent_address = \
                         true if it comes later (FreeBind=yes)",
                        have.join(", ")
                    ));
                }
            }
            if !plan.problems.is_empty() {
                plan.summary = "not written: an address is not on this host".to_owned();
                return plan;
            }
        }
        Some(_) => {}
        None => plan.notes.push(
            "in an image the addresses are not checked against the host's: the image has none"
                .to_owned(),
        ),
    }

    let dropin = dropin_path();
    let content = dropin_content(policy);
    let spec = FileSpec {
        content: content.clone().into_bytes(),
        mode: 0o644,
        owner: state.owner,
        parent_mode: 0o755,
    };
    let write = FileWrite::plan(&state.dropin, spec, Validation::None);
    let wrote = write.is_some();
    plan.actions.extend(write.map(Action::WriteFile));

    // What systemd will read once the drop-in is in place: a later ListenStream= changes the list.
    let after = state.files.with_dropin(&dropin, &content);
    let from_files = from_files(&after);
    let in_files: Vec<Result<SocketAddr, String>> =
        from_files.iter().map(|(a, _)| a.clone()).collect();
    let drift = in_files != want;
    if drift {
        let later: Vec<String> = after
            .assignments("Socket", "ListenStream")
            .iter()
            .filter(|a| a.file != dropin)
            .filter(|a| {
                after.dropins.iter().position(|(p, _)| *p == a.file)
                    > after.dropins.iter().position(|(p, _)| *p == dropin)
            })
            .map(|a| format!("{} `ListenStream={}`", a.at(), a.value))
            .collect();
        plan.problems.push(format!(
            "{} comes after {} and changes sshd.socket's addresses to {}; remove ListenStream= \
             there",
            later.join(", "),
            dropin.display(),
            shown(&in_files)
        ));
    }

    let Some(live) = &state.live else {
        plan.summary = match wrote {
            true => format!("image: write {}", dropin.display()),
            false => format!(
                "image: sshd.socket listens on {} from the next boot",
                shown(&want)
            ),
        };
        plan.pending.push(format!(
            "takes effect at boot: sshd.socket listens on {}",
            shown(&want)
        ));
        return plan;
    };

    let loaded: Vec<Result<SocketAddr, String>> = live
        .socket
        .listen
        .iter()
        .map(|(kind, address)| match kind.as_str() {
            "Stream" => listen_value(address),
            _ => Err(format!("{kind} {address}")),
        })
        .collect();
    let masked = live.socket.unit.load_state == "masked";
    let reload = wrote || live.socket.unit.need_daemon_reload;
    if reload {
        plan.actions.push(Action::Unit(UnitAction::Reload));
    }
    let active = live.socket.unit.active_state == "active";
    if !drift && (reload || loaded != want) && active {
        plan.actions
            .push(Action::Unit(UnitAction::Restart(UNIT.into())));
    }
    if !reload && !drift && !masked && loaded != want {
        plan.problems.push(format!(
            "systemd has sshd.socket listening on {} although its files say {}: a file outside \
             the unit directories overrides them (drop-ins in force: {})",
            shown(&loaded),
            shown(&want),
            live.socket.unit.drop_in_paths.join(", ")
        ));
    }
    plan.summary = if masked {
        format!(
            "sshd.socket is masked; once unmasked it listens on {}",
            shown(&want)
        )
    } else if plan.actions.is_empty() {
        format!("sshd.socket listens on {}", shown(&loaded))
    } else {
        format!(
            "sshd.socket listens on {}: listen on {} only, restarting the socket alone (open \
             sessions stay)",
            shown(&loaded),
            shown(&want)
        )
    };
    if !active && !masked {
        plan.notes.push(format!(
            "sshd.socket is {}: the addresses hold once it is started",
            live.socket.unit.active_state
        ));
    }
    plan
}

#[cfg(test)]
mod tests;
