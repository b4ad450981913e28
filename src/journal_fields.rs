//! Under systemd, every control's result is also a structured journal entry, so that
//! `journalctl MESSAGE_ID=…` or `journalctl FLATCAR_HARDEN_STATUS=would-change` lists what a fleet
//! of units found (docs/fleet.md). The protocol is tracing-journald's, through a dispatcher of its
//! own: only these entries go to it, the logs still go to stderr (which the journal keeps too).

use tracing::dispatcher::{self, Dispatch};
use tracing_subscriber::layer::SubscriberExt;

use crate::report::{ControlReport, Mode, Status};

/// A fixed `MESSAGE_ID` per status (generated once; documented in docs/fleet.md, never change).
pub fn message_id(status: Status) -> &'static str {
    match status {
        Status::Compliant => "af01143ec00049f38d5f51d8b92881c5",
        Status::Changed => "be359514b1d84eb5921488176221aafa",
        Status::WouldChange => "89ddb80137494b29831b449fd208f343",
        Status::PendingReboot => "8310269a0b94493680c5f5a5385d44af",
        Status::NotApplicable => "8f66589e61c54d449039f5a60982cac4",
        Status::Skipped => "5fb054973dc247448acceff320c9f500",
        Status::Failed => "8e11b5ed339d446ebf512958a86351de",
        Status::Held => "1c5c8ffbccd44e91a004ef407391def8",
    }
}

/// The journal of this run, when there is one to write to.
pub struct Journal {
    dispatch: Dispatch,
    run: String,
}

impl Journal {
    /// Some when the agent's output goes to the journal (`JOURNAL_STREAM`, set by systemd for a
    /// unit's stdout or stderr) and journald answers; a journald that does not is logged, not fatal.
    pub fn from_env() -> Option<Journal> {
        std::env::var_os("JOURNAL_STREAM")?;
        match tracing_journald::layer() {
            Ok(layer) => Some(Journal {
                // No prefix: the field names below are the journal's, as documented.
                dispatch: Dispatch::new(
                    tracing_subscriber::registry().with(layer.with_field_prefix(None)),
                ),
                run: run_id(),
            }),
            Err(error) => {
                tracing::warn!("JOURNAL_STREAM is set but journald cannot be reached: {error}; no structured entries");
                None
            }
        }
    }

    /// One entry for `control`: its id, status, this run's id, the mode, the summary and notes.
    pub fn record(&self, mode: Mode, control: &ControlReport) {
        let status = control.status;
        let mut text = format!("{}: {}: {}", control.id, status.as_str(), control.summary);
        for note in &control.notes {
            text.push_str("; ");
            text.push_str(note);
        }
        dispatcher::with_default(&self.dispatch, || {
            let fields = (
                message_id(status),
                control.id,
                status.as_str(),
                self.run.as_str(),
                mode.as_str(),
            );
            // The level is the journal's PRIORITY: failures as errors, drift as warnings.
            macro_rules! entry {
                ($level:expr) => {
                    tracing::event!(
                        $level,
                        message_id = fields.0,
                        flatcar_harden_control = fields.1,
                        flatcar_harden_status = fields.2,
                        flatcar_harden_run = fields.3,
                        flatcar_harden_mode = fields.4,
                        "{text}"
                    )
                };
            }
            match status {
                Status::Failed => entry!(tracing::Level::ERROR),
                Status::WouldChange | Status::PendingReboot => entry!(tracing::Level::WARN),
                _ => entry!(tracing::Level::INFO),
            }
        });
    }
}

/// A random 128-bit id for the run, as the journal writes ids (32 hex digits).
fn run_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|uuid| uuid.trim().replace('-', ""))
        .unwrap_or_else(|_| {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            format!("{:032x}", nanos ^ (u128::from(std::process::id()) << 96))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_has_its_own_well_formed_message_id() {
        let ids: std::collections::BTreeSet<_> =
            Status::ALL.iter().map(|s| message_id(*s)).collect();
        assert_eq!(ids.len(), Status::ALL.len());
        for id in ids {
            assert!(
                id.len() == 32
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
                "{id}"
            );
        }
    }

    #[test]
    fn a_run_id_is_32_hex_digits_and_new_each_time() {
        let (a, b) = (run_id(), run_id());
        assert_eq!(a.len(), 32, "{a}");
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, b);
    }
}
