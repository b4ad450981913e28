//! The docker socket restricted to root.
//!
//! The guide: a drop-in `/etc/systemd/system/docker.socket.d/10-restrict.conf` with
//! `[Socket]` / `SocketGroup=root`. systemd reads it at the next `Reload`, but the socket that
//! already exists keeps its group until the socket unit is started again — and restarting
//! docker.socket stops docker.service and every container with it (`Requires=docker.socket`). So
//! the live `/run/docker.sock` is regrouped in place instead: the change holds now, and the
//! drop-in holds from the next time systemd creates the socket.

use std::path::Path;

use super::units::{UnitAction, ETC_UNITS};
use super::{Action, Control, ControlError, Disposition, FileWrite, Plan, Validation};
use crate::host::fs::{FileKind, FileSpec, Metadata};
use crate::host::Host;
use crate::policy::{self, DockerSocketState};

const UNIT: &str = "docker.socket";
const DROPIN_NAME: &str = "10-restrict.conf";
/// Byte for byte what the guide's Butane snippet writes.
const DROPIN_CONTENT: &str = "[Socket]\nSocketGroup=root\n";
const SOCKET_PATH: &str = "/run/docker.sock";
const ROOT_GROUP: &str = "root";

pub struct DockerSocket {
    policy: policy::DockerSocket,
}

impl DockerSocket {
    pub fn new(policy: policy::DockerSocket) -> Self {
        DockerSocket { policy }
    }
}

pub struct State {
    /// On the running host: systemd's view of docker.socket.
    live: Option<LiveState>,
}

pub struct LiveState {
    load_state: String,
    need_daemon_reload: bool,
    drop_in_paths: Vec<String>,
    socket_group: String,
    /// `/run/docker.sock` as it is now.
    socket: Option<Metadata>,
}

fn dropin_path() -> std::path::PathBuf {
    Path::new(ETC_UNITS)
        .join(format!("{UNIT}.d"))
        .join(DROPIN_NAME)
}

impl Control for DockerSocket {
    type State = State;

    fn id(&self) -> &'static str {
        "docker-socket"
    }

    fn title(&self) -> &'static str {
        "docker socket restricted to root"
    }

    fn unmanaged(&self) -> Option<String> {
        (self.policy.state == DockerSocketState::Unmanaged)
            .then(|| "left alone (policy: docker-socket.state = \"unmanaged\")".to_owned())
    }

    fn observe(&self, host: &Host) -> Result<State, ControlError> {
        if !host.is_live() {
            return Ok(State { live: None });
        }
        let status = host.systemd()?.socket_status(UNIT)?;
        Ok(State {
            live: Some(LiveState {
                load_state: status.unit.load_state,
                need_daemon_reload: status.unit.need_daemon_reload,
                drop_in_paths: status.unit.drop_in_paths,
                socket_group: status.socket_group,
                socket: host.fs.lstat(Path::new(SOCKET_PATH))?,
            }),
        })
    }

    fn plan(&self, host: &Host, state: &State) -> Result<Plan, ControlError> {
        if let Some(live) = &state.live {
            if live.load_state == "not-found" {
                return Ok(Plan::with(
                    Disposition::NotApplicable,
                    "there is no docker.socket on this host",
                ));
            }
        }
        let dropin = dropin_path();
        let spec = FileSpec {
            content: DROPIN_CONTENT.as_bytes().to_vec(),
            mode: 0o644,
            owner: host.file_owner(),
            parent_mode: 0o755,
        };
        let write = FileWrite::plan(host, &dropin, spec, Validation::None)?;
        let mut plan = Plan::managed("");
        let wrote = write.is_some();
        plan.actions.extend(write.map(Action::WriteFile));

        let Some(live) = &state.live else {
            plan.summary = if wrote {
                format!("image: write {}", dropin.display())
            } else {
                "image: docker.socket has SocketGroup=root from the next boot".to_owned()
            };
            plan.pending
                .push("takes effect at boot: /run/docker.sock is created with group root".into());
            return Ok(plan);
        };

        if wrote || live.need_daemon_reload {
            plan.actions.push(Action::Unit(UnitAction::Reload));
        } else if live.socket_group != ROOT_GROUP {
            plan.problems.push(format!(
                "systemd has SocketGroup={} for docker.socket although {} says root: a later \
                 drop-in overrides it ({}); remove SocketGroup= from it",
                live.socket_group,
                dropin.display(),
                live.drop_in_paths.join(", ")
            ));
        }
        match live.socket {
            Some(socket) if socket.kind == FileKind::Other && socket.gid != 0 => {
                plan.actions.push(Action::Unit(UnitAction::SocketGroup {
                    path: SOCKET_PATH.into(),
                    from: socket.gid,
                    to: 0,
                }));
            }
            _ => {}
        }
        plan.summary = match (&live.socket, plan.actions.is_empty()) {
            (Some(socket), true) => format!(
                "docker.socket has SocketGroup=root; {SOCKET_PATH} is {}:{} mode {:04o}",
                socket.uid, socket.gid, socket.mode
            ),
            (None, true) => "docker.socket has SocketGroup=root (no socket file yet)".to_owned(),
            (_, false) => format!(
                "docker.socket has SocketGroup={}: restrict it to root without restarting docker",
                live.socket_group
            ),
        };
        Ok(plan)
    }
}
