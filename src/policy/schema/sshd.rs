//! The `[sshd-config]` and `[sshd-listen]` sections of the policy.

use serde::{Deserialize, Serialize};

use super::super::sshd_values::{self, AccountName, ListenAddress, SshdCount, SshdSeconds};

/// `[sshd-config]`: sshd settings in one drop-in that sorts before every other file of
/// `/etc/ssh/sshd_config.d` (sshd keeps the first value it reads). Unset keys are not managed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshdConfig {
    pub state: SshdConfigState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permit_root_login: Option<PermitRootLogin>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_authentication: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kbd_interactive_authentication: Option<bool>,
    /// `AllowUsers`: only these users may log in over SSH.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "sshd_values::account_list"
    )]
    pub allow_users: Option<Vec<AccountName>>,
    /// `AllowGroups`: only members of these groups may log in over SSH.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "sshd_values::account_list"
    )]
    pub allow_groups: Option<Vec<AccountName>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_auth_tries: Option<SshdCount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_grace_time: Option<SshdSeconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_alive_interval: Option<SshdSeconds>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_alive_count_max: Option<SshdCount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x11_forwarding: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_tcp_forwarding: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_agent_forwarding: Option<bool>,
    pub crypto: SshdCrypto,
}

/// `[sshd-listen]`: the addresses sshd.socket listens on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshdListen {
    pub state: SshdListenState,
    /// `IP:port` each (`[v6]:port` for IPv6), every address once; required when enforced.
    #[serde(
        deserialize_with = "sshd_values::listen_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub listen: Vec<ListenAddress>,
    /// Allow addresses the host does not have (yet): the socket binds them with `FreeBind=yes`.
    pub allow_absent_address: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SshdConfigState {
    #[default]
    Unmanaged,
    /// The drop-in holds the keys set here, and sshd's effective configuration shows them.
    Enforced,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PermitRootLogin {
    No,
    /// Root only with a key (or another method that is not a password).
    ProhibitPassword,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SshdCrypto {
    /// Algorithms as the host has them.
    #[default]
    Unmanaged,
    /// Post-quantum key exchange first, weak algorithms removed, as `+`/`-`/`^` edits of
    /// OpenSSH's defaults (docs/policy.md lists them).
    Modern,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SshdListenState {
    /// Leave sshd.socket's addresses as they are.
    #[default]
    Unmanaged,
    /// A drop-in replaces every `ListenStream=` with the policy's `listen`.
    Enforced,
}
