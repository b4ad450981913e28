//! The values of `[sshd-config]` and `[sshd-listen]`, checked as they are read: account names,
//! counts and seconds that end up in an sshd_config line, and the addresses sshd.socket listens on.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use super::values::{bounded_u32, shown};

/// An address sshd.socket listens on: `IP:port`, `[IPv6]:port`, the port 1 to 65535. Written
/// back in the form systemd's `Listen` property shows (`10.0.0.5:22`, `[fd00::5]:22`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ListenAddress(pub SocketAddr);

impl TryFrom<String> for ListenAddress {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let fix = "write IP:port (\"10.0.0.5:22\", \"[fd00::5]:22\"), the port 1 to 65535";
        let address: SocketAddr = text.parse().map_err(|_| {
            let why = if text.parse::<std::net::Ipv6Addr>().is_ok() {
                "has no port (an IPv6 address is written in brackets before its port)"
            } else if text.parse::<IpAddr>().is_ok() {
                "has no port"
            } else if text.parse::<u16>().is_ok() {
                "is a port alone (sshd.socket's default, every address)"
            } else {
                "is not an IP address and port"
            };
            format!("`{}` {why}: {fix}", shown(&text))
        })?;
        if address.port() == 0 {
            return Err(format!("`{}`: port 0 is no port; {fix}", shown(&text)));
        }
        if let SocketAddr::V6(v6) = address {
            if v6.scope_id() != 0 || v6.flowinfo() != 0 {
                return Err(format!(
                    "`{}`: an IPv6 scope or flow label is not supported; name a global or \
                     unique local address",
                    shown(&text)
                ));
            }
        }
        Ok(ListenAddress(address))
    }
}

impl From<ListenAddress> for String {
    fn from(address: ListenAddress) -> String {
        address.0.to_string()
    }
}

impl fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// `sshd-listen.listen`: every address once. Emptiness is refused for every list alike.
pub fn listen_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ListenAddress>, D::Error> {
    let addresses = Vec::<ListenAddress>::deserialize(d)?;
    for (i, address) in addresses.iter().enumerate() {
        if addresses[..i].contains(address) {
            return Err(D::Error::custom(format!(
                "`{address}` is listed twice: list each address once"
            )));
        }
    }
    Ok(addresses)
}

/// A user or group name as shadow-utils accepts it (`[a-z_][a-z0-9_-]*[$]?`, at most 32
/// bytes): nothing in it can end an sshd directive or start another (no whitespace, `#`, quote,
/// comma, wildcard or newline), and sshd's `user@host` patterns are not accepted either.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountName(pub String);

impl TryFrom<String> for AccountName {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        let body = name.strip_suffix('$').unwrap_or(&name);
        let valid = !body.is_empty()
            && name.len() <= 32
            && body.bytes().enumerate().all(|(i, b)| {
                b.is_ascii_lowercase() || b == b'_' || (i > 0 && (b.is_ascii_digit() || b == b'-'))
            });
        if valid {
            return Ok(AccountName(name));
        }
        let why = if name.is_empty() {
            "an empty name"
        } else if name.chars().any(char::is_whitespace) {
            "it holds whitespace, which would end the sshd directive"
        } else if name.contains('#') {
            "it holds `#`, which starts an sshd comment"
        } else if name.contains(['"', '\'']) {
            "it holds a quote, which sshd reads as quoting"
        } else if name.contains(['*', '?', '!', ',', '@']) {
            "it holds a pattern character (`*`, `?`, `!`, `,`, `@`); name each account"
        } else if name.len() > 32 {
            "it is longer than 32 bytes"
        } else {
            "use lowercase letters, digits, `_` and `-`, starting with a letter or `_`"
        };
        Err(format!(
            "`{}` is not a user or group name: {why}",
            shown(&name)
        ))
    }
}

impl From<AccountName> for String {
    fn from(name: AccountName) -> String {
        name.0
    }
}

/// `sshd-config.allow_users` / `allow_groups`: every name once (emptiness: strict.rs).
pub fn account_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<AccountName>>, D::Error> {
    let names = Vec::<AccountName>::deserialize(d)?;
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(D::Error::custom(format!(
                "`{}` is listed twice: list each name once",
                name.0
            )));
        }
    }
    Ok(Some(names))
}

/// A count for sshd (`max_auth_tries`, `client_alive_count_max`): 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SshdCount(pub u32);

impl<'de> Deserialize<'de> for SshdCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        bounded_u32(d, 1..=100, |count| {
            format!("{count}: a count between 1 and 100")
        })
        .map(SshdCount)
    }
}

/// Seconds for sshd (`login_grace_time`, `client_alive_interval`): 1 to 86400 (0 would mean
/// "no limit" to sshd; leave the key out for that).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SshdSeconds(pub u32);

impl<'de> Deserialize<'de> for SshdSeconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        bounded_u32(d, 1..=86400, |seconds| {
            format!(
                "{seconds} seconds: between 1 and 86400 (leave the key out to keep sshd's default)"
            )
        })
        .map(SshdSeconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_are_ip_and_port() {
        let ok = |a: &str| ListenAddress::try_from(a.to_owned()).map(String::from);
        assert_eq!(ok("10.0.0.5:22").unwrap(), "10.0.0.5:22");
        assert_eq!(ok("[fd00::5]:2222").unwrap(), "[fd00::5]:2222");
        assert_eq!(ok("[FD00:0::5]:22").unwrap(), "[fd00::5]:22");
        for (bad, why) in [
            ("10.0.0.5", "has no port"),
            ("22", "is a port alone"),
            ("10.0.0.5:0", "port 0"),
            ("10.0.0.5:65536", "not an IP address and port"),
            ("fd00::5:22", "in brackets"),
            ("eth0:22", "not an IP address and port"),
            ("[fe80::1%2]:22", "scope"),
            (" 10.0.0.5:22", "not an IP address and port"),
        ] {
            let err = ok(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }
}
