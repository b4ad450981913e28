//! Policy errors an operator can act on: the file, line and column, the full key (from
//! `serde_path_to_error`), what is allowed and a guess at what was meant, and the source line,
//! escaped and cut to a window around the column.

use serde_path_to_error::{Path as KeyPath, Segment};

use super::strict::Refusal;
use super::PolicyError;
use crate::terminal;

/// The longest message printed; a value quoted by serde can be as long as the file.
const MESSAGE_MAX: usize = 400;
/// Characters of the source line shown before and after the column.
const BEFORE: usize = 60;
const AFTER: usize = 60;

/// The error of one policy file. `refusal` is what the strict layer refused, if it was that.
pub fn invalid(
    path: &str,
    text: &str,
    error: &toml::de::Error,
    key: &KeyPath,
    refusal: Option<Refusal>,
) -> PolicyError {
    let offset = error.span().map_or(0, |span| span.start);
    let (line, column) = line_column(text.as_bytes(), offset);
    let key = key_path(key);
    let message = match refusal {
        Some(refusal) => explain(&key, refusal),
        None => {
            let message = error.message().trim().replace('\n', ": ");
            if key.is_empty() {
                message
            } else {
                format!("`{key}`: {message}")
            }
        }
    };
    PolicyError::Invalid {
        path: path.to_owned(),
        line,
        column,
        message: terminal::cut(&terminal::escape(&message), MESSAGE_MAX).into_owned(),
        snippet: snippet(text, line, column),
    }
}

/// A file that is not UTF-8: where the first bad byte is.
pub fn not_utf8(path: &str, bytes: &[u8], valid_up_to: usize) -> PolicyError {
    let (line, column) = line_column(bytes, valid_up_to);
    PolicyError::Invalid {
        path: path.to_owned(),
        line,
        column,
        message: "the file is not UTF-8 text (TOML must be UTF-8)".into(),
        snippet: Vec::new(),
    }
}

/// `usb-storage.modules[1]`; empty at the top.
fn key_path(path: &KeyPath) -> String {
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&terminal::cut(&terminal::escape(key), 60));
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    out
}

fn explain(key: &str, refusal: Refusal) -> String {
    let name = key.rsplit('.').next().unwrap_or(key);
    match refusal {
        Refusal::UnknownKey {
            key: unknown,
            allowed,
        } => format!(
            "unknown key `{key}`{}{}",
            did_you_mean(&unknown, &to_strings(allowed)),
            allowed_list(allowed)
        ),
        Refusal::UnknownValue { value, allowed } => format!(
            "`{}` is not a value of `{key}`{}{}",
            terminal::cut(&value, 60),
            did_you_mean(&value, &to_strings(allowed)),
            allowed_list(allowed)
        ),
        Refusal::NotATable { found, keys } => format!(
            "`{key}` must be a table, not {found}: write `[{key}]` on a line of its own, then \
             one `key = value` line per setting{}",
            allowed_list(keys).replace("allowed:", "keys:")
        ),
        Refusal::NotAWord { found, allowed } => format!(
            "`{key}` takes a quoted string, not {found}: write it like `{name} = \"{}\"`{}",
            allowed.first().copied().unwrap_or(""),
            allowed_list(allowed)
        ),
        Refusal::ControlCharacter(c) => format!(
            "`{key}` holds the control character {}: policy values are printable text; \
             remove it",
            terminal::escape(&c.to_string())
        ),
        Refusal::EmptyList => format!(
            "`{key}` is an empty list: name at least one item (to leave the control alone, \
             set its `state = \"unmanaged\"` instead)"
        ),
    }
}

fn to_strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

pub fn did_you_mean(word: &str, candidates: &[String]) -> String {
    // No name is this long; comparing a megabyte against each name would only take time.
    if word.len() > 100 {
        return String::new();
    }
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| format!(", did you mean `{c}`?"))
        .unwrap_or_default()
}

fn allowed_list(allowed: &[&str]) -> String {
    if allowed.is_empty() {
        " (this table takes no keys)".into()
    } else {
        let list: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
        format!(" (allowed: {})", list.join(", "))
    }
}

/// Line and column (in characters), both from 1, of byte `offset`.
pub fn line_column(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// The source line under the message and a caret under the column: escaped, and cut to a window
/// around the column when it is long (a one-line file can be megabytes).
fn snippet(text: &str, line: usize, column: usize) -> Vec<String> {
    let Some(source) = text.lines().nth(line.saturating_sub(1)) else {
        return Vec::new();
    };
    let at = column.saturating_sub(1);
    let chars = source.chars().count();
    let start = at.saturating_sub(BEFORE);
    let end = chars.min(at + AFTER);
    let window: String = source.chars().skip(start).take(end - start).collect();
    let split = window
        .char_indices()
        .nth(at - start)
        .map_or(window.len(), |(i, _)| i);
    let lead = if start > 0 { "…" } else { "" };
    let tail = if end < chars { "…" } else { "" };
    let before = terminal::escape(&window[..split]);
    let after = terminal::escape(&window[split..]);
    let mut out = vec![
        format!("  {line:>4} | {lead}{before}{after}{tail}"),
        format!(
            "       | {}^",
            " ".repeat(lead.chars().count() + before.chars().count())
        ),
    ];
    if start > 0 || end < chars {
        out.push(format!(
            "       (line {line} cut: it is {chars} characters long; characters {}–{end} shown)",
            start + 1
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_line_is_shown_around_the_column() {
        let text = format!("x = \"{}\" y", "a".repeat(100_000));
        let lines = snippet(&text, 1, 100_006);
        let shown: usize = lines.iter().map(|l| l.len()).sum();
        assert!(shown < 500, "{lines:?}");
        assert!(lines[0].ends_with("\" y"), "{}", lines[0]);
        let caret = lines[1].find('^').unwrap();
        assert_eq!(
            lines[0].chars().nth(caret),
            Some('"'),
            "the caret points at the column"
        );
        assert!(lines[2].contains("cut"), "{lines:?}");
    }

    #[test]
    fn control_characters_in_the_source_line_are_escaped_and_the_caret_follows() {
        let lines = snippet("a\u{1b}[2J = 1", 1, 3);
        assert_eq!(lines[0], "     1 | a\\x1b[2J = 1");
        let caret = lines[1].find('^').unwrap();
        assert_eq!(lines[0].chars().nth(caret), Some('['));
        assert_eq!(lines.len(), 2, "nothing was cut");
    }
}
