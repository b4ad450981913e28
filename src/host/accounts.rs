//! The account databases — passwd, group, shadow — read as NSS `files usrfiles` would answer:
//! `/etc` first, then Flatcar's read-only `/usr/share/baselayout`. One parser for all of them;
//! lines are bytes (a Latin-1 GECOS field must not break anything), fields split on `:`.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Path;

use super::fs::RootFs;
use super::{Host, HostError};

pub const PASSWD: &str = "/etc/passwd";
pub const BASELAYOUT_PASSWD: &str = "/usr/share/baselayout/passwd";
const PASSWD_FILES: [&str; 2] = [PASSWD, BASELAYOUT_PASSWD];
const GROUP_FILES: [&str; 2] = ["/etc/group", "/usr/share/baselayout/group"];
const SHADOW: &str = "/etc/shadow";

/// One line of a colon-separated database: where it stands in the file (without its newline)
/// and its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub span: Range<usize>,
    pub fields: Vec<&'a [u8]>,
}

impl Record<'_> {
    /// Field `index` as text (lossy), empty when missing.
    pub fn field(&self, index: usize) -> String {
        self.fields
            .get(index)
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .unwrap_or_default()
    }

    fn number(&self, index: usize) -> Option<u32> {
        std::str::from_utf8(self.fields.get(index)?)
            .ok()?
            .parse()
            .ok()
    }
}

/// Every non-empty, non-comment line of `bytes`, split on `:`.
pub fn records(bytes: &[u8]) -> impl Iterator<Item = Record<'_>> {
    let mut offset = 0;
    bytes
        .split_inclusive(|&b| b == b'\n')
        .filter_map(move |raw| {
            let start = offset;
            offset += raw.len();
            let line = raw.strip_suffix(b"\n").unwrap_or(raw);
            if line.is_empty() || line.starts_with(b"#") {
                return None;
            }
            Some(Record {
                span: start..start + line.len(),
                fields: line.split(|&b| b == b':').collect(),
            })
        })
}

/// The record whose first field is `name`.
pub fn find<'a>(bytes: &'a [u8], name: &str) -> Option<Record<'a>> {
    records(bytes).find(|r| r.fields.first() == Some(&name.as_bytes()))
}

/// Who a user is, for matching sudoers user lists and naming the operator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub uid: Option<u32>,
    pub gids: BTreeSet<u32>,
    pub groups: BTreeSet<String>,
}

impl Identity {
    /// `user`'s uid, primary group and every group that lists it, from the passwd and group
    /// contents given (in NSS order: the first passwd entry wins).
    pub fn resolve(user: &str, passwd: &[Vec<u8>], group: &[Vec<u8>]) -> Identity {
        let mut who = Identity {
            name: user.to_owned(),
            ..Identity::default()
        };
        for entry in passwd.iter().filter_map(|text| find(text, user)) {
            if who.uid.is_none() {
                who.uid = entry.number(2);
                who.gids.extend(entry.number(3));
            }
        }
        for record in group.iter().flat_map(|text| records(text)) {
            let gid = record.number(2);
            let member = record
                .fields
                .get(3)
                .is_some_and(|m| m.split(|&b| b == b',').any(|m| m == user.as_bytes()));
            if member || gid.is_some_and(|g| who.gids.contains(&g)) {
                who.groups.insert(record.field(0));
                who.gids.extend(gid);
            }
        }
        who
    }
}

/// The name of `uid` in the passwd contents given, first file first.
pub fn user_name(uid: u32, passwd: &[Vec<u8>]) -> Option<String> {
    passwd
        .iter()
        .flat_map(|text| records(text))
        .find(|r| r.number(2) == Some(uid))
        .map(|r| r.field(0))
}

/// Users with a usable password hash in a shadow file: not empty, not `*`, not `!`-locked.
pub fn password_users(shadow: &[u8]) -> Vec<String> {
    records(shadow)
        .filter(|r| {
            r.fields.get(1).is_some_and(|hash| {
                !hash.is_empty() && !hash.starts_with(b"*") && !hash.starts_with(b"!")
            })
        })
        .map(|r| r.field(0))
        .collect()
}

/// The passwd files' contents under `fs`, `/etc` first (missing files are left out).
pub fn passwd_files(fs: &RootFs) -> Result<Vec<Vec<u8>>, HostError> {
    read_all(fs, &PASSWD_FILES)
}

fn read_all(fs: &RootFs, files: &[&str]) -> Result<Vec<Vec<u8>>, HostError> {
    let mut contents = Vec::new();
    for file in files {
        contents.extend(fs.read(Path::new(file))?);
    }
    Ok(contents)
}

/// The passwd and group databases of a root, read once.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    pub passwd: Vec<Vec<u8>>,
    pub group: Vec<Vec<u8>>,
}

impl Accounts {
    /// `user`'s identity.
    pub fn identity(&self, user: &str) -> Identity {
        Identity::resolve(user, &self.passwd, &self.group)
    }

    /// Every user name in the passwd files.
    pub fn user_names(&self) -> BTreeSet<String> {
        self.passwd
            .iter()
            .flat_map(|text| records(text))
            .map(|r| r.field(0))
            .filter(|name| !name.is_empty())
            .collect()
    }
}

/// The passwd and group databases under `fs`.
pub fn read_accounts(fs: &RootFs) -> Result<Accounts, HostError> {
    Ok(Accounts {
        passwd: passwd_files(fs)?,
        group: read_all(fs, &GROUP_FILES)?,
    })
}

impl Host {
    /// This root's passwd and group databases.
    pub fn accounts(&self) -> Result<Accounts, HostError> {
        read_accounts(&self.fs)
    }

    /// Accounts that can log in on the console with a password. The lockout guard names them as
    /// the way in that remains when remote access goes.
    pub fn password_logins(&self) -> Result<Vec<String>, HostError> {
        let shadow = self.fs.read(Path::new(SHADOW))?.unwrap_or_default();
        Ok(password_users(&shadow))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_usable_password_hashes_count_as_console_logins() {
        let shadow = b"root:$6$salt$hash:19000::::::\ncore:*:19000::::::\nlocked:!$6$x$y:1::::::\nempty::1::::::\n";
        assert_eq!(password_users(shadow), vec!["root".to_owned()]);
    }

    #[test]
    fn identity_from_etc_then_baselayout_with_latin1_neighbours() {
        let etc = b"root:x:0:0:root:/root:/bin/bash\nj\xf6rg:x:1000:1000:J\xf6rg:/home/j:/bin/sh\n"
            .to_vec();
        let baselayout = b"core:x:500:500:Flatcar Admin:/home/core:/bin/bash\n".to_vec();
        let group =
            b"wheel:x:10:root,core\ndocker:x:233:core\ncore:x:500:\nother:x:7:j\xf6rg\n".to_vec();
        let core = Identity::resolve("core", &[etc.clone(), baselayout.clone()], &[group]);
        assert_eq!(core.uid, Some(500));
        assert_eq!(core.gids, [10, 233, 500].into());
        assert_eq!(
            core.groups,
            ["core", "docker", "wheel"].map(String::from).into()
        );
        assert_eq!(user_name(500, &[etc, baselayout]).as_deref(), Some("core"));
    }

    #[test]
    fn records_keep_their_byte_span() {
        let text = b"# comment\nroot:x:0:0::/root:/bin/sh\n\ncore:x:500:500::/home/core:/bin/bash";
        let core = find(text, "core").unwrap();
        assert_eq!(
            &text[core.span.clone()],
            b"core:x:500:500::/home/core:/bin/bash"
        );
        assert_eq!(core.fields.len(), 7);
        assert!(find(text, "cor").is_none());
    }
}
