//! `KEY=VALUE` files, the shape of `/etc/flatcar/update.conf`, `/etc/selinux/config` and
//! systemd's `EnvironmentFile=`, and the words of systemd's `Environment=` lines. One reader, so
//! every control agrees on what such a file says and on which line it says it.

/// One assignment: its 1-based line number, the key and the value without quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub line: usize,
    pub key: String,
    pub value: String,
}

/// The assignments of an env-style file, in file order. Blank lines and `#` or `;` comments are
/// skipped, an `export ` prefix is allowed, and one pair of surrounding quotes is removed from the
/// value, as systemd's `EnvironmentFile=` and the shell agree on. Lines that assign nothing are
/// ignored.
pub fn parse(text: &str) -> Vec<Assignment> {
    text.lines()
        .enumerate()
        .filter_map(|(index, line)| {
            let line = line.trim();
            if line.starts_with('#') || line.starts_with(';') {
                return None;
            }
            let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
            let (key, value) = line.split_once('=')?;
            let key = key.trim();
            let valid =
                !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            valid.then(|| Assignment {
                line: index + 1,
                key: key.to_owned(),
                value: unquote(value.trim()).to_owned(),
            })
        })
        .collect()
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|rest| rest.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

/// The words of a systemd setting such as `Environment="A=b c" D=e`: split on blanks, double
/// and single quotes group, a backslash escapes the next character.
pub fn words(value: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', _) => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
                in_word = true;
            }
            (c, Some(q)) if c == q => quote = None,
            (c, Some(_)) => current.push(c),
            ('"' | '\'', None) => {
                quote = Some(c);
                in_word = true;
            }
            (c, None) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (c, None) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(current);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_conf_and_selinux_config() {
        let found = parse(
            "# comment\nGROUP=stable\n\nREBOOT_STRATEGY=\"etcd-lock\"\n export LOCKSMITHD_ENDPOINT='https://a:2379'\nnot an assignment\nSELINUX = enforcing\n",
        );
        let pairs: Vec<(usize, &str, &str)> = found
            .iter()
            .map(|a| (a.line, a.key.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                (2, "GROUP", "stable"),
                (4, "REBOOT_STRATEGY", "etcd-lock"),
                (5, "LOCKSMITHD_ENDPOINT", "https://a:2379"),
                (7, "SELINUX", "enforcing"),
            ]
        );
    }

    #[test]
    fn systemd_environment_words() {
        assert_eq!(
            words(r#""A=b c" D=e 'F=g "h"' I=j\ k"#),
            ["A=b c", "D=e", "F=g \"h\"", "I=j k"]
        );
        assert!(words("   ").is_empty());
        assert_eq!(words(r#"A="""#), ["A="]);
    }
}
