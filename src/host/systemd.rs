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

use std::time::{Duration, Instant};

use zbus::blocking::Connection;
use zbus::proxy::CacheProperties;
use zbus::zvariant::{OwnedObjectPath, Value};

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

mod properties;
mod timer;
use properties::{unit_path, Properties};
pub use properties::{SocketListen, SocketStatus, UnitStatus};
pub use timer::TransientTimer;
