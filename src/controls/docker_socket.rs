//! The docker socket restricted to root.
//!
//! The guide: a drop-in `/etc/systemd/system/docker.socket.d/10-restrict.conf` with
//! `[Socket]` / `SocketGroup=root`. systemd reads it at the next `Reload`, but the socket that
//! already exists keeps its group until the socket unit is started again — and restarting
//! docker.socket stops docker.service and every container with it (`Requires=docker.socket`). So
//! the live `/run/docker.sock` is regrouped in place instead: the change holds now, and the
//! drop-in holds from the next time systemd creates the socket.

use std::path::Path;

use super::unit_file::UnitFiles;
use super::units::{UnitAction, ETC_UNITS};
use super::{Action, Control, ControlError, Disposition, FileState, FileWrite, Plan, Validation};
use crate::host::fs::{FileKind, FileSpec, Metadata, Owner};
use crate::host::Host;
use crate::policy;

pub const UNIT: &str = "docker.socket";
pub const DROPIN_NAME: &str = "10-restrict.conf";
/// Byte for byte what the guide's Butane snippet writes.
pub const DROPIN_CONTENT: &str = "[Socket]\nSocketGroup=root\n";
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
    /// The agent's drop-in as it is now.
    dropin: FileState,
    /// Who the agent's files belong to.
    owner: Owner,
    /// docker.socket's unit file and drop-ins under the root, to tell which `SocketGroup=` wins.
    files: UnitFiles,
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

    const ID: &'static str = "docker-socket";
    const TITLE: &'static str = "docker socket restricted to root";
    type Section = policy::DockerSocket;

    fn section(&self) -> &policy::DockerSocket {
        &self.policy
    }

    fn observe(&self, host: &Host) -> Result<State, ControlError> {
        let dropin = FileState::observe(host, &dropin_path())?;
        let owner = host.file_owner();
        let files = UnitFiles::read(host, UNIT)?;
        if !host.is_live() {
            return Ok(State {
                dropin,
                owner,
                files,
                live: None,
            });
        }
        let status = host.systemd()?.socket_status(UNIT)?;
        Ok(State {
            dropin,
            owner,
            files,
            live: Some(LiveState {
                load_state: status.unit.load_state,
                need_daemon_reload: status.unit.need_daemon_reload,
                drop_in_paths: status.unit.drop_in_paths,
                socket_group: status.socket_group,
                socket: host.fs.lstat(Path::new(SOCKET_PATH))?,
            }),
        })
    }

    fn plan(&self, state: &State) -> Result<Plan, ControlError> {
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
            owner: state.owner,
            parent_mode: 0o755,
        };
        let write = FileWrite::plan(&state.dropin, spec, Validation::None);
        let mut plan = Plan::managed("");
        let wrote = write.is_some();
        plan.actions.extend(write.map(Action::WriteFile));
        // What systemd will read once the drop-in is in place: a later `SocketGroup=` wins.
        let after = state.files.with_dropin(&dropin, DROPIN_CONTENT);
        let winner = after
            .last("Socket", "SocketGroup")
            .filter(|w| w.value != ROOT_GROUP);
        if let Some(winner) = &winner {
            plan.problems.push(format!(
                "{} `SocketGroup={}` comes after {} and wins, so docker.socket keeps group {}; \
                 remove SocketGroup= there",
                winner.at(),
                winner.value,
                dropin.display(),
                if winner.value.is_empty() {
                    "its default (root)"
                } else {
                    &winner.value
                }
            ));
        }

        let Some(live) = &state.live else {
            plan.summary = if wrote {
                format!("image: write {}", dropin.display())
            } else if winner.is_some() {
                "image: docker.socket keeps a group other than root at the next boot".to_owned()
            } else {
                "image: docker.socket has SocketGroup=root from the next boot".to_owned()
            };
            plan.pending
                .push("takes effect at boot: /run/docker.sock is created with group root".into());
            return Ok(plan);
        };

        if wrote || live.need_daemon_reload {
            plan.actions.push(Action::Unit(UnitAction::Reload));
        } else if live.socket_group != ROOT_GROUP && winner.is_none() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controls::testkit::{self, text};
    use crate::policy::Policy;
    use crate::report::{Mode, Status};

    const UNIT_FILE: &str = "[Socket]\nListenStream=/run/docker.sock\nSocketMode=0660\n\
                             SocketUser=root\nSocketGroup=docker\n";

    fn run(m: &testkit::Machine, mode: Mode) -> crate::report::ControlReport {
        let policy = Policy::default();
        let step = Box::new(DockerSocket::new(policy.docker_socket.clone()));
        testkit::run(&m.offline(), &policy, step, mode)
    }

    #[test]
    fn an_image_with_a_later_dropin_that_sets_docker_again_is_not_compliant() {
        let m = testkit::Machine::new("");
        m.root_file("/usr/lib/systemd/system/docker.socket", UNIT_FILE);
        m.root_file(
            "/usr/lib/systemd/system/docker.socket.d/20-mine.conf",
            "[Socket]\nSocketGroup=docker\n",
        );
        let report = run(&m, Mode::Apply);
        assert_eq!(report.status, Status::Failed, "{}", text(&report));
        assert!(
            text(&report).contains("docker.socket.d/20-mine.conf:2 `SocketGroup=docker`"),
            "{}",
            text(&report)
        );
        let check = run(&m, Mode::Check);
        assert_eq!(check.status, Status::Failed, "{}", text(&check));
        assert!(check.changes.is_empty(), "the drop-in is written once");
    }

    #[test]
    fn an_image_whose_dropins_leave_root_waits_for_boot() {
        let m = testkit::Machine::new("");
        m.root_file("/usr/lib/systemd/system/docker.socket", UNIT_FILE);
        m.root_file(
            "/etc/systemd/system/docker.socket.d/05-mode.conf",
            "[Socket]\nSocketMode=0660\n",
        );
        assert_eq!(run(&m, Mode::Apply).status, Status::PendingReboot);
        assert_eq!(
            m.read_root("/etc/systemd/system/docker.socket.d/10-restrict.conf"),
            DROPIN_CONTENT
        );
        let check = run(&m, Mode::Check);
        assert_eq!(check.status, Status::PendingReboot, "{}", text(&check));
        assert!(check.changes.is_empty());
    }
}
