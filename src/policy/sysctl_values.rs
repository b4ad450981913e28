//! The values of `[sysctl]`: sysctl names and values, checked as they are read, since both end
//! up in a sysctl.d line and a `/proc/sys` path.

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use super::values::shown;
use crate::terminal;

/// A sysctl name in dotted form, as `sysctl -w` and sysctl.d take it (`kernel.kptr_restrict`):
/// segments of ASCII letters, digits, `_` and `-` joined by single dots. No `/` (the slash form
/// would let a name climb out of `/proc/sys`), no glob, no blank, no `=`: the name goes into a
/// sysctl.d line and a `/proc/sys` path as it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SysctlKey(pub String);

impl TryFrom<String> for SysctlKey {
    type Error = String;
    fn try_from(key: String) -> Result<Self, String> {
        let fix = "write it dotted, like \"kernel.kptr_restrict\" (letters, digits, `_` and `-` \
                   between single dots)";
        let problem = if key.is_empty() {
            Some("an empty name")
        } else if key.len() > 200 {
            Some("longer than 200 bytes")
        } else if key.contains('/') {
            Some("a `/` in it (the slash form is not taken)")
        } else if key.contains('=') {
            Some("an `=` in it (the value goes on the right of the key)")
        } else if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("a blank or control character in it")
        } else if key.contains("..") || key.starts_with('.') || key.ends_with('.') {
            Some("an empty segment (`..`, or a dot at either end)")
        } else if key.contains(['*', '?', '[']) {
            Some("a glob character in it (name each key)")
        } else if !key.contains('.') {
            Some(
                "a single word: sysctl names have a dot (`kernel.…`, `net.…`), and a dotted \
                 name must be quoted, or TOML reads its dots as tables",
            )
        } else if !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            Some("a character other than letters, digits, `_`, `-` and `.`")
        } else {
            None
        };
        match problem {
            Some(problem) => Err(format!(
                "`{}` is not a sysctl name: {problem}; {fix}",
                shown(&key)
            )),
            None => Ok(SysctlKey(key)),
        }
    }
}

impl From<SysctlKey> for String {
    fn from(key: SysctlKey) -> String {
        key.0
    }
}

/// `sysctl.exclude`: every name once.
pub fn sysctl_exclude<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SysctlKey>, D::Error> {
    let keys = Vec::<SysctlKey>::deserialize(d)?;
    for (i, key) in keys.iter().enumerate() {
        if keys[..i].contains(key) {
            return Err(D::Error::custom(format!(
                "`{}` is listed twice: list each key once",
                key.0
            )));
        }
    }
    Ok(keys)
}

/// A sysctl value: one line of printable text (`"2"`, `"4096 87380 6291456"`); a TOML integer is
/// taken as its decimal text. Blanks between numbers are kept as written; they are compared the
/// way the kernel prints them (whitespace-separated), so `"1  2"` and `"1\t2"` are one value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct SysctlValue(pub String);

impl SysctlValue {
    fn check(value: String) -> Result<SysctlValue, String> {
        if value.trim().is_empty() {
            return Err("an empty value: write the value the kernel takes, like \"1\"".into());
        }
        if value.len() > 1024 {
            return Err(
                "a value longer than 1024 bytes: no sysctl the agent sets takes one".into(),
            );
        }
        if let Some(c) = value.chars().find(|c| c.is_control()) {
            return Err(format!(
                "`{}` holds the control character {}: a sysctl.d value is one line of printable text",
                shown(&value),
                terminal::escape(&c.to_string())
            ));
        }
        if value.trim() != value {
            return Err(format!(
                "`{}` has blanks at either end, which systemd-sysctl strips: remove them",
                shown(&value)
            ));
        }
        Ok(SysctlValue(value))
    }
}

impl From<SysctlValue> for String {
    fn from(value: SysctlValue) -> String {
        value.0
    }
}

impl<'de> Deserialize<'de> for SysctlValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'v> serde::de::Visitor<'v> for Visitor {
            type Value = SysctlValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sysctl value such as \"1\" or 2")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SysctlValue, E> {
                SysctlValue::check(v.to_owned()).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<SysctlValue, E> {
                SysctlValue::check(v.to_string()).map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'v>>(self, _: A) -> Result<SysctlValue, A::Error> {
                Err(A::Error::custom(
                    "a table, not a value: a dotted sysctl name must be quoted, like \
                     `\"kernel.kptr_restrict\" = \"2\"` (unquoted, TOML reads its dots as tables)",
                ))
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_names_are_plain_dotted_names() {
        let ok = |k: &str| SysctlKey::try_from(k.to_owned()).is_ok();
        assert!(ok("kernel.kptr_restrict"));
        assert!(ok("net.ipv4.conf.all.accept_redirects"));
        assert!(ok("dev.tty.ldisc_autoload"));
        for bad in [
            "",
            "kernel",
            "kernel/kptr_restrict",
            "../../etc/passwd",
            "kernel..kptr_restrict",
            ".kernel.x",
            "kernel.x.",
            "kernel.kptr restrict",
            "kernel.kptr_restrict=1",
            "net.ipv4.conf.*.rp_filter",
            "kernel.x\n",
            "kernel.caf\u{e9}",
        ] {
            assert!(!ok(bad), "{bad:?} was accepted");
        }
    }

    #[test]
    fn sysctl_values_are_one_printable_line() {
        let ok = |v: &str| SysctlValue::check(v.to_owned()).is_ok();
        assert!(ok("2"));
        assert!(ok("4096 87380 6291456"));
        for bad in ["", " ", "1\n", "1\r", "a\u{1b}[2J", " 1", "1 "] {
            assert!(!ok(bad), "{bad:?} was accepted");
        }
    }
}
