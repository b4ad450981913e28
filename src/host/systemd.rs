//! systemd's D-Bus API, the way `systemctl` uses it: `org.freedesktop.systemd1.Manager` methods
//! through a zbus proxy, and `Unit`/`Socket` properties with `GetAll` on the unit's object path.
//!
//! The agent talks to PID 1 over the system bus. PID 1 also serves this API to root on its private
//! socket `/run/systemd/private` (peer-to-peer, usable before dbus-daemon runs), and that is what
//! `systemctl` uses — but PID 1 stamps its replies there with the sender `org.freedesktop.systemd1`,
//! a well-known name where the D-Bus specification wants a unique one, and zbus 5 aborts on such a
//! reply (`Invalid field reconstruction: InvalidName(..)` in its executor thread: the call never
//! returns). Until zbus accepts it, the bus is the only way, and `flatcar-harden.service` is
//! ordered after `dbus.service`.
//!
//! Proxies never cache properties: every read must see systemd's state at that moment. Reads are
//! one `GetAll` per unit on the unit's object path, computed from its name as `systemctl show`
//! does: PID 1 loads a unit on the first access to its path (`manager_load_unit_from_dbus_path`),
//! so no `LoadUnit` round trip is needed, and a compliant run costs one call per unit.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use zbus::blocking::Connection;
use zbus::proxy::CacheProperties;
use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

use super::HostError;

/// How long a start or stop job may take before the agent stops waiting.
const JOB_TIMEOUT: Duration = Duration::from_secs(60);

/// One change `EnableUnitFiles` reports: type (`symlink`, `unlink`), file, destination.
type UnitFileChange = (String, String, String);

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1",
    gen_async = false
)]
trait Manager {
    fn get_unit_file_state(&self, file: &str) -> zbus::Result<String>;
    fn mask_unit_files(
        &self,
        files: &[&str],
        runtime: bool,
        force: bool,
    ) -> zbus::Result<Vec<(String, String, String)>>;
    fn unmask_unit_files(
        &self,
        files: &[&str],
        runtime: bool,
    ) -> zbus::Result<Vec<(String, String, String)>>;
    fn enable_unit_files(
        &self,
        files: &[&str],
        runtime: bool,
        force: bool,
    ) -> zbus::Result<(bool, Vec<UnitFileChange>)>;
    fn disable_unit_files(
        &self,
        files: &[&str],
        runtime: bool,
    ) -> zbus::Result<Vec<(String, String, String)>>;
    fn kill_unit(&self, name: &str, whom: &str, signal: i32) -> zbus::Result<()>;
    fn reload(&self) -> zbus::Result<()>;
    fn start_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn stop_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn reload_or_try_restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn restart_unit(&self, name: &str, mode: &str) -> zbus::Result<OwnedObjectPath>;
    fn start_transient_unit(
        &self,
        name: &str,
        mode: &str,
        properties: &[(&str, Value<'_>)],
        aux: &[(&str, &[(&str, Value<'_>)])],
    ) -> zbus::Result<OwnedObjectPath>;
}

#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Unit",
    default_service = "org.freedesktop.systemd1",
    gen_async = false
)]
trait Unit {
    #[zbus(property)]
    fn active_state(&self) -> zbus::Result<String>;
    #[zbus(property)]
    fn active_enter_timestamp_monotonic(&self) -> zbus::Result<u64>;
}

const SERVICE: &str = "org.freedesktop.systemd1";
const UNIT_INTERFACE: &str = "org.freedesktop.systemd1.Unit";
/// `GetAll` with an empty interface name returns the properties of every interface of the object
/// (sd-bus reads "" as "all"): for a socket unit, `Unit` and `Socket` in one call.
const EVERY_INTERFACE: &str = "";

/// The object path of a unit, as sd-bus encodes it (`sd_bus_path_encode`): every byte that is not
/// an ASCII letter or digit, and a leading digit, becomes `_` and two hex digits, so
/// `docker.socket` is `/org/freedesktop/systemd1/unit/docker_2esocket`.
fn unit_path(name: &str) -> String {
    let mut path = String::from("/org/freedesktop/systemd1/unit/");
    if name.is_empty() {
        path.push('_');
    }
    for (i, byte) in name.bytes().enumerate() {
        if byte.is_ascii_alphabetic() || (byte.is_ascii_digit() && i > 0) {
            path.push(char::from(byte));
        } else {
            let _ = write!(path, "_{byte:02x}");
        }
    }
    path
}

/// What systemd says about one unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitStatus {
    /// `loaded`, `not-found`, `masked`, …
    pub load_state: String,
    /// `active`, `inactive`, `failed`, …
    pub active_state: String,
    /// `enabled`, `static`, `masked`, `masked-runtime`, … (empty when there is no unit file)
    pub unit_file_state: String,
    pub need_daemon_reload: bool,
    pub drop_in_paths: Vec<String>,
}

/// What systemd says about one socket unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketStatus {
    pub unit: UnitStatus,
    /// The `SocketGroup=` systemd has loaded (empty when none is set).
    pub socket_group: String,
}

/// What systemd says about the addresses of a socket unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketListen {
    pub unit: UnitStatus,
    /// `Listen`: `(type, address)` of every socket the unit has loaded, in order: `("Stream",
    /// "10.0.0.5:22")`, `("Stream", "[::]:22")`. Empty for a unit that is not found or masked.
    pub listen: Vec<(String, String)>,
    /// `FreeBind`: the socket may bind an address the host does not have.
    pub free_bind: bool,
}

/// The properties `GetAll` returned, taken out one by one with their expected types.
struct Properties {
    unit: String,
    values: HashMap<String, OwnedValue>,
}

impl Properties {
    fn take<T>(&mut self, key: &str) -> Result<T, HostError>
    where
        T: TryFrom<OwnedValue, Error = zbus::zvariant::Error>,
    {
        let value = self.values.remove(key).ok_or_else(|| {
            HostError::Refused(format!("systemd: {} has no property {key}", self.unit))
        })?;
        T::try_from(value).map_err(|e| dbus(format_args!("{} {key}", self.unit), e.into()))
    }

    fn unit_status(&mut self) -> Result<UnitStatus, HostError> {
        Ok(UnitStatus {
            load_state: self.take("LoadState")?,
            active_state: self.take("ActiveState")?,
            unit_file_state: self.take("UnitFileState")?,
            need_daemon_reload: self.take("NeedDaemonReload")?,
            drop_in_paths: self.take("DropInPaths")?,
        })
    }
}

/// A connection to PID 1.
pub struct Systemd {
    connection: Connection,
    /// How the connection was made, for messages.
    pub via: &'static str,
}

fn dbus(what: impl std::fmt::Display, error: zbus::Error) -> HostError {
    HostError::Refused(format!("systemd: {what}: {error}"))
}

impl Systemd {
    /// The system bus; an error names what failed and what to do.
    pub fn connect() -> Result<Systemd, HostError> {
        match Connection::system() {
            Ok(connection) => Ok(Systemd {
                connection,
                via: "the system bus",
            }),
            Err(error) => Err(HostError::Refused(format!(
                "cannot reach systemd over the system bus: {error}. Is this a running system \
                 with systemd as PID 1 and dbus running? To work on an image, pass --root DIR"
            ))),
        }
    }

    fn manager(&self) -> Result<ManagerProxy<'_>, HostError> {
        ManagerProxy::builder(&self.connection)
            .cache_properties(CacheProperties::No)
            .build()
            .map_err(|e| dbus("manager proxy", e))
    }

    /// `org.freedesktop.DBus.Properties.GetAll(interface)` on a unit: one round trip, read now.
    fn get_all(&self, name: &str, interface: &str) -> Result<Properties, HostError> {
        let values = self
            .connection
            .call_method(
                Some(SERVICE),
                unit_path(name).as_str(),
                Some("org.freedesktop.DBus.Properties"),
                "GetAll",
                &(interface,),
            )
            .and_then(|reply| reply.body().deserialize())
            .map_err(|e| dbus(format_args!("GetAll({name})"), e))?;
        Ok(Properties {
            unit: name.to_owned(),
            values,
        })
    }

    pub fn unit_status(&self, name: &str) -> Result<UnitStatus, HostError> {
        self.get_all(name, UNIT_INTERFACE)?.unit_status()
    }

    /// A socket unit's status and `SocketGroup=` in one call. A unit that is not found has no
    /// socket settings: its group is empty.
    pub fn socket_status(&self, name: &str) -> Result<SocketStatus, HostError> {
        let mut properties = self.get_all(name, EVERY_INTERFACE)?;
        let unit = properties.unit_status()?;
        let socket_group = if unit.load_state == "not-found" {
            String::new()
        } else {
            properties.take("SocketGroup")?
        };
        Ok(SocketStatus { unit, socket_group })
    }

    /// A socket unit's status and `Listen` addresses in one call. A unit that is not found or
    /// is masked has no socket settings loaded: no addresses.
    pub fn socket_listen(&self, name: &str) -> Result<SocketListen, HostError> {
        let mut properties = self.get_all(name, EVERY_INTERFACE)?;
        let unit = properties.unit_status()?;
        if matches!(unit.load_state.as_str(), "not-found" | "masked") {
            return Ok(SocketListen {
                unit,
                listen: Vec::new(),
                free_bind: false,
            });
        }
        Ok(SocketListen {
            listen: properties.take("Listen")?,
            free_bind: properties.take("FreeBind")?,
            unit,
        })
    }

    /// `systemctl try-restart NAME`: a running unit is stopped and started again, waiting until
    /// it is active anew (its `ActiveEnterTimestampMonotonic` moved); a unit that does not run is
    /// left as it is.
    pub fn try_restart(&self, name: &str) -> Result<(), HostError> {
        let unit = self.unit_proxy(name)?;
        let state = unit
            .active_state()
            .map_err(|e| dbus(format_args!("{name} ActiveState"), e))?;
        if !matches!(state.as_str(), "active" | "reloading") {
            return Ok(());
        }
        let entered = unit
            .active_enter_timestamp_monotonic()
            .map_err(|e| dbus(format_args!("{name} ActiveEnterTimestampMonotonic"), e))?;
        self.manager()?
            .restart_unit(name, "replace")
            .map_err(|e| dbus(format_args!("RestartUnit({name})"), e))?;
        self.wait_for(name, &["active"], "restart", Some(entered))
    }

    fn unit_proxy(&self, name: &str) -> Result<UnitProxy<'_>, HostError> {
        UnitProxy::builder(&self.connection)
            .path(unit_path(name))
            .and_then(|b| b.cache_properties(CacheProperties::No).build())
            .map_err(|e| dbus(format_args!("unit {name}"), e))
    }

    /// `systemctl mask NAME`: `/etc/systemd/system/NAME -> /dev/null`.
    pub fn mask(&self, name: &str) -> Result<(), HostError> {
        self.manager()?
            .mask_unit_files(&[name], false, true)
            .map(drop)
            .map_err(|e| dbus(format_args!("MaskUnitFiles({name})"), e))
    }

    pub fn unmask(&self, name: &str) -> Result<(), HostError> {
        self.manager()?
            .unmask_unit_files(&[name], false)
            .map(drop)
            .map_err(|e| dbus(format_args!("UnmaskUnitFiles({name})"), e))
    }

    /// `systemctl enable NAME`: the links its `[Install]` section asks for, in `/etc`.
    pub fn enable(&self, name: &str) -> Result<(), HostError> {
        self.manager()?
            .enable_unit_files(&[name], false, false)
            .map(drop)
            .map_err(|e| dbus(format_args!("EnableUnitFiles({name})"), e))
    }

    /// `systemctl disable NAME`: the links of its `[Install]` section removed from `/etc`.
    pub fn disable(&self, name: &str) -> Result<(), HostError> {
        self.manager()?
            .disable_unit_files(&[name], false)
            .map(drop)
            .map_err(|e| dbus(format_args!("DisableUnitFiles({name})"), e))
    }

    /// `systemctl daemon-reload`; the reply comes once the reload is done.
    pub fn reload(&self) -> Result<(), HostError> {
        self.manager()?.reload().map_err(|e| dbus("Reload", e))
    }

    /// `systemctl stop NAME`, waiting for the unit to reach `inactive`. A unit that refuses
    /// manual stops (`RefuseManualStop=yes`, as auditd.service has: it must outlive what it
    /// audits) is asked to exit instead: SIGTERM to its main process through `KillUnit`, as
    /// `systemctl kill` does and as auditd documents for stopping it.
    pub fn stop(&self, name: &str) -> Result<(), HostError> {
        let manager = self.manager()?;
        match manager.stop_unit(name, "replace") {
            Ok(_) => {}
            Err(zbus::Error::MethodError(error, _, _))
                if error.as_str() == "org.freedesktop.systemd1.OperationRefused" =>
            {
                manager
                    .kill_unit(name, "main", libc_sigterm())
                    .map_err(|e| dbus(format_args!("KillUnit({name}, main, SIGTERM)"), e))?;
            }
            Err(e) => return Err(dbus(format_args!("StopUnit({name})"), e)),
        }
        self.wait_for(name, &["inactive", "failed"], "stop", None)
    }

    /// `systemctl start NAME`, waiting for the unit to reach `active`.
    pub fn start(&self, name: &str) -> Result<(), HostError> {
        self.manager()?
            .start_unit(name, "replace")
            .map_err(|e| dbus(format_args!("StartUnit({name})"), e))?;
        self.wait_for(name, &["active"], "start", None)
    }

    /// `systemctl try-reload-or-restart NAME`: a running daemon reads its configuration again
    /// (sshd on SIGHUP); a unit that is not running is left alone. Waits for `active` again.
    pub fn reload_unit(&self, name: &str) -> Result<(), HostError> {
        self.manager()?
            .reload_or_try_restart_unit(name, "replace")
            .map_err(|e| dbus(format_args!("ReloadOrTryRestartUnit({name})"), e))?;
        self.wait_for(name, &["active", "inactive"], "reload", None)
    }

    /// Polls the unit's `ActiveState` until it is one of `done` (the job finished) or the
    /// timeout passes; a start that ends in `failed` is reported as the job's failure.
    /// With `entered_after` (a restart), `active` counts only once the unit entered it anew.
    fn wait_for(
        &self,
        name: &str,
        done: &[&str],
        job: &str,
        entered_after: Option<u64>,
    ) -> Result<(), HostError> {
        let unit = self.unit_proxy(name)?;
        let started = Instant::now();
        loop {
            let state = unit
                .active_state()
                .map_err(|e| dbus(format_args!("{name} ActiveState"), e))?;
            let anew = match entered_after {
                None => true,
                Some(before) => {
                    unit.active_enter_timestamp_monotonic().map_err(|e| {
                        dbus(format_args!("{name} ActiveEnterTimestampMonotonic"), e)
                    })? > before
                }
            };
            if done.contains(&state.as_str()) && anew {
                return Ok(());
            }
            if state == "failed" {
                return Err(HostError::Refused(format!(
                    "systemd: {job} job for {name} failed (see journalctl -u {name})"
                )));
            }
            if started.elapsed() > JOB_TIMEOUT {
                return Err(HostError::Refused(format!(
                    "systemd: {job} job for {name} did not finish within {}s (ActiveState {state})",
                    JOB_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// SIGTERM's number, for `KillUnit`.
fn libc_sigterm() -> i32 {
    nix::sys::signal::Signal::SIGTERM as i32
}

/// A transient timer owned by PID 1 (`systemd-run --on-calendar`): it outlives the session that
/// started it, and is gone once it fired or was stopped. Used by `apply --confirm-within`.
pub struct TransientTimer<'a> {
    /// `NAME.timer`; its service is `NAME.service`.
    pub name: &'a str,
    pub description: &'a str,
    /// A calendar spec in UTC (`2026-11-30 10:48:48 UTC`).
    pub on_calendar: &'a str,
    /// The command its service runs (`argv[0]` an absolute path).
    pub argv: &'a [String],
}

impl Systemd {
    /// `StartTransientUnit(NAME.timer, "fail", …)` with `NAME.service` (oneshot, running `argv`)
    /// as its auxiliary unit; the reply comes once systemd queued the timer's start job.
    pub fn start_transient_timer(&self, timer: &TransientTimer<'_>) -> Result<(), HostError> {
        let service = format!("{}.service", timer.name);
        let calendar = vec![("OnCalendar".to_owned(), timer.on_calendar.to_owned())];
        let exec = vec![(timer.argv[0].clone(), timer.argv.to_vec(), false)];
        let timer_properties = [
            ("Description", Value::from(timer.description)),
            ("TimersCalendar", Value::from(calendar)),
            ("AccuracyUSec", Value::U64(1_000_000)),
            ("RemainAfterElapse", Value::Bool(false)),
        ];
        let service_properties = [
            ("Description", Value::from(timer.description)),
            ("Type", Value::from("oneshot")),
            ("ExecStart", Value::from(exec)),
        ];
        let name = format!("{}.timer", timer.name);
        self.manager()?
            .start_transient_unit(
                &name,
                "fail",
                &timer_properties,
                &[(service.as_str(), &service_properties[..])],
            )
            .map(drop)
            .map_err(|e| dbus(format_args!("StartTransientUnit({name})"), e))
    }
}

#[cfg(test)]
mod tests {
    use super::unit_path;

    #[test]
    fn unit_paths_are_encoded_as_sd_bus_does() {
        // The paths `busctl tree org.freedesktop.systemd1` lists for these units.
        for (name, path) in [
            ("sshd.socket", "sshd_2esocket"),
            ("docker.socket", "docker_2esocket"),
            ("sshd@.service", "sshd_40_2eservice"),
            ("systemd-logind.service", "systemd_2dlogind_2eservice"),
            ("1.mount", "_31_2emount"),
            ("a1b", "a1b"),
            ("", "_"),
        ] {
            assert_eq!(
                unit_path(name),
                format!("/org/freedesktop/systemd1/unit/{path}")
            );
        }
    }
}
