//! Transient timers through PID 1 (`systemd-run --on-calendar`), for `apply --confirm-within`.

use zbus::zvariant::Value;

use super::{dbus, Systemd};
use crate::host::HostError;

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
