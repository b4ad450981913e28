//! A sudoers reader that reads the way sudo 1.9 does, in files of one concern: [`lexer`] (tokens,
//! escapes, quotes, comments, continuation lines), [`grammar`] (aliases, scoped `Defaults`, user
//! specifications with tags), [`include`] (which files, in which order) and [`eval`] (what sudo
//! decides for one user). The reader is pure — paths and bytes in, a verdict out; reading the host
//! happens once, in [`include::gather`].

mod eval;
mod grammar;
mod include;
mod lexer;
mod names;

use std::collections::BTreeSet;
use std::path::Path;

use crate::host::{Host, HostError};

pub use eval::{judge, Verdict};
pub use grammar::Entry;
pub use include::{gather, load, main_file, FileSet, Located, Overlaid, Sudoers};

/// Who a user is, for matching sudoers user lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub uid: Option<u32>,
    pub gids: BTreeSet<u32>,
    pub groups: BTreeSet<String>,
}

/// Whether two sudoers texts hold the same statements, token for token (comments, spacing and
/// line breaks aside).
pub fn same_statements(a: &[u8], b: &[u8]) -> bool {
    let bodies = |bytes| {
        lexer::statements(bytes)
            .into_iter()
            .map(|s| s.body)
            .collect::<Vec<_>>()
    };
    bodies(a) == bodies(b)
}

/// The text with its include lines blanked (line numbers kept), for `visudo -c -f -` to check
/// one file's syntax without following includes on the machine it runs on.
pub fn without_includes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        let trimmed = line.trim_ascii_start();
        let include = ["#include", "@include"].iter().any(|k| {
            trimmed.starts_with(k.as_bytes())
                && matches!(
                    trimmed[k.len()..]
                        .strip_prefix(b"dir")
                        .unwrap_or(&trimmed[k.len()..])
                        .first(),
                    Some(b' ' | b'\t')
                )
        });
        if include {
            out.extend(line.iter().filter(|&&b| b == b'\n'));
        } else {
            out.extend_from_slice(line);
        }
    }
    out
}

/// passwd and group are bytes: a Latin-1 GECOS field must not make a control fail.
fn read_lossy(host: &Host, path: &str) -> Result<String, HostError> {
    let bytes = host.fs.read(Path::new(path))?.unwrap_or_default();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Every user name in the passwd databases (`/etc` and Flatcar's `/usr/share/baselayout`): the
/// users sudo could be asked to run a command as.
pub fn user_names(host: &Host) -> Result<BTreeSet<String>, HostError> {
    let mut names = BTreeSet::new();
    for passwd in ["/etc/passwd", "/usr/share/baselayout/passwd"] {
        let text = read_lossy(host, passwd)?;
        let users = text.lines().filter_map(|l| l.split(':').next());
        names.extend(users.filter(|n| !n.is_empty()).map(str::to_owned));
    }
    Ok(names)
}

/// core's identity from the passwd and group databases (`/etc` and Flatcar's `/usr/share/baselayout`).
pub fn identity(host: &Host, user: &str) -> Result<Identity, HostError> {
    let mut who = Identity {
        name: user.to_owned(),
        uid: None,
        gids: BTreeSet::new(),
        groups: BTreeSet::new(),
    };
    for passwd in ["/etc/passwd", "/usr/share/baselayout/passwd"] {
        let text = read_lossy(host, passwd)?;
        if let Some(fields) = text
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 4 && f[0] == user)
        {
            who.uid = who.uid.or(fields[2].parse().ok());
            if let Ok(gid) = fields[3].parse() {
                who.gids.insert(gid);
            }
        }
    }
    for group in ["/etc/group", "/usr/share/baselayout/group"] {
        let text = read_lossy(host, group)?;
        for fields in text.lines().map(|l| l.split(':').collect::<Vec<_>>()) {
            if fields.len() < 4 {
                continue;
            }
            let gid: Option<u32> = fields[2].parse().ok();
            let member = fields[3].split(',').any(|m| m == user);
            let primary = gid.is_some_and(|g| who.gids.contains(&g));
            if member || primary {
                who.groups.insert(fields[0].to_owned());
                who.gids.extend(gid);
            }
        }
    }
    Ok(who)
}

#[cfg(test)]
mod tests;
