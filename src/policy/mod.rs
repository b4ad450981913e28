//! The policy: what the operator wants of each control, where it comes from and how it is
//! checked. Laid out like zincati's `config/`: schema, loading and merging, diagnostics.

mod diagnose;
mod load;
mod schema;
mod sshd_values;
mod strict;
mod sysctl_values;
mod values;

use crate::host::HostError;

pub use diagnose::did_you_mean;
pub use load::{check_file, effective_toml, load, to_toml, Loaded};
pub use schema::*;
// The schema's value types, by the names controls and their tests use.
pub use sshd_values::ListenAddress;
#[cfg(test)]
pub use sshd_values::{AccountName, SshdSeconds};
#[allow(unused_imports)]
pub use sysctl_values::{SysctlKey, SysctlValue};
pub use values::ModuleName;
#[cfg(test)]
pub use values::{AbsolutePath, SudoersMode};

pub const VENDOR_POLICY: &str = "/usr/share/flatcar-harden/policy.toml";
pub const ADMIN_POLICY: &str = "/etc/flatcar-harden/policy.toml";
pub const DROPIN_DIR: &str = "/etc/flatcar-harden/policy.d";

/// The largest policy file read; a policy is a few hundred bytes.
pub const MAX_POLICY_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("policy {path} is not a regular file; name a policy file (or /dev/null for none)")]
    NotAFile { path: String },
    #[error(
        "policy {path} is larger than {} bytes; a policy is a few hundred bytes",
        MAX_POLICY_BYTES
    )]
    TooLarge { path: String },
    #[error(
        "policy drop-in {path} has a name that is not UTF-8: rename it (policy files are named \
         in UTF-8) or remove it"
    )]
    DropinName { path: String },
    #[error("{0}")]
    Host(#[from] HostError),
    /// `snippet`: the source line and a caret under the column, printed below the message.
    #[error("policy {path}, line {line}, column {column}: {message}")]
    Invalid {
        path: String,
        line: usize,
        column: usize,
        message: String,
        snippet: Vec<String>,
    },
}

impl PolicyError {
    /// Lines to print under the message: the source line and a caret, when there is one.
    pub fn snippet(&self) -> &[String] {
        match self {
            PolicyError::Invalid { snippet, .. } => snippet,
            _ => &[],
        }
    }
}
