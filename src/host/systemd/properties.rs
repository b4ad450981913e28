//! What the agent reads from PID 1: unit object paths, and units' and sockets' properties as
//! `GetAll` returns them.

use std::collections::HashMap;
use std::fmt::Write as _;

use zbus::zvariant::OwnedValue;

use super::dbus;
use crate::host::HostError;

/// The object path of a unit, as sd-bus encodes it (`sd_bus_path_encode`): every byte that is not
/// an ASCII letter or digit, and a leading digit, becomes `_` and two hex digits, so
/// `docker.socket` is `/org/freedesktop/systemd1/unit/docker_2esocket`.
pub(super) fn unit_path(name: &str) -> String {
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
pub(super) struct Properties {
    pub(super) unit: String,
    pub(super) values: HashMap<String, OwnedValue>,
}

impl Properties {
    pub(super) fn take<T>(&mut self, key: &str) -> Result<T, HostError>
    where
        T: TryFrom<OwnedValue, Error = zbus::zvariant::Error>,
    {
        let value = self.values.remove(key).ok_or_else(|| {
            HostError::Refused(format!("systemd: {} has no property {key}", self.unit))
        })?;
        T::try_from(value).map_err(|e| dbus(format_args!("{} {key}", self.unit), e.into()))
    }

    pub(super) fn unit_status(&mut self) -> Result<UnitStatus, HostError> {
        Ok(UnitStatus {
            load_state: self.take("LoadState")?,
            active_state: self.take("ActiveState")?,
            unit_file_state: self.take("UnitFileState")?,
            need_daemon_reload: self.take("NeedDaemonReload")?,
            drop_in_paths: self.take("DropInPaths")?,
        })
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
