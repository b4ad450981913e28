//! Text bound for a terminal: every control character written out, so a value taken from a host
//! file or a policy can neither forge a line nor send an escape sequence; long text cut.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every control character written out: `\n`, `\r`, `\t`, `\x1b` for the rest of C0
/// and DEL, `\u{9b}` for C1 (which holds the one-byte CSI), and the bidirectional overrides that
/// make a terminal show text in another order than it is. Printable text, backslashes included,
/// is kept as it is, so escaping twice changes nothing.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) && c.is_ascii() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// C0, DEL and C1 (Unicode's `Cc`), and the bidirectional embeddings, overrides and isolates.
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` cut to its first `max` characters, saying so when it was.
pub fn cut(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some((end, _)) => Cow::Owned(format!(
            "{}… (cut: {} characters in all)",
            &text[..end],
            text.chars().count()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_written_out_and_printable_text_is_kept() {
        assert_eq!(escape("plain /etc/x ü \\n"), "plain /etc/x ü \\n");
        assert_eq!(
            escape("a\nb\r\tc\u{1b}[31m\u{7f}\u{0}"),
            "a\\nb\\r\\tc\\x1b[31m\\x7f\\x00"
        );
        assert_eq!(
            escape("\u{9b}2J \u{202e}gpj.exe"),
            "\\u{9b}2J \\u{202e}gpj.exe"
        );
        let once = escape("x\ny\u{85}").into_owned();
        assert_eq!(escape(&once), once, "escaping twice changes nothing");
    }

    #[test]
    fn long_text_is_cut_and_says_so() {
        assert_eq!(cut("short", 10), "short");
        let long = "é".repeat(1000);
        let shown = cut(&long, 10);
        assert!(shown.starts_with(&"é".repeat(10)), "{shown}");
        assert!(shown.ends_with("(cut: 1000 characters in all)"), "{shown}");
    }
}
