//! sudoers(5) tokens: a file's bytes cut into statements (one per logical line, continuation lines
//! joined, comments dropped), each a list of words and punctuation, with backslash escapes and
//! double-quoted strings resolved as sudo's lexer does. Bytes that are not UTF-8 never fail.

/// One token of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A name, path, value or tag word; escapes and quotes already resolved.
    Word {
        text: String,
        quoted: bool,
    },
    Comma,
    Colon,
    Equals,
    Open,
    Close,
    /// `!` in front of an item (negation) or after `Defaults` (command scope).
    Bang,
}

impl Token {
    pub fn word(&self) -> Option<&str> {
        match self {
            Token::Word { text, .. } => Some(text),
            _ => None,
        }
    }
}

/// A statement: its first physical line, its text (for messages) and its tokens, or an include
/// directive, which sudo reads as its own kind of line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub line: usize,
    pub text: String,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Tokens(Vec<Token>),
    /// `#include`/`@include` (`dir: false`) or `#includedir`/`@includedir` (`dir: true`).
    Include {
        dir: bool,
        path: String,
    },
}

/// Cuts a sudoers file into statements. Content that is not UTF-8 is read lossily: sudo reads
/// bytes, and a stray Latin-1 byte in a comment must not hide the rules around it.
pub fn statements(bytes: &[u8]) -> Vec<Statement> {
    let text = String::from_utf8_lossy(bytes);
    let chars: Vec<char> = text.chars().collect();
    let mut lexer = Lexer {
        chars: &chars,
        at: 0,
        line: 1,
    };
    let mut out = Vec::new();
    while lexer.at < chars.len() {
        if let Some(statement) = lexer.statement() {
            out.push(statement);
        }
    }
    out
}

const INCLUDES: [(&str, bool); 4] = [
    ("#includedir", true),
    ("@includedir", true),
    ("#include", false),
    ("@include", false),
];

struct Lexer<'a> {
    chars: &'a [char],
    at: usize,
    line: usize,
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.at + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.at += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn skip_blanks(&mut self) {
        while let Some(c) = self.peek(0) {
            if c == ' ' || c == '\t' {
                self.bump();
            } else if c == '\\' && self.peek(1) == Some('\n') {
                // A continuation line is only blank space between tokens.
                self.bump();
                self.bump();
            } else {
                break;
            }
        }
    }

    /// The rest of the physical line, consumed with its newline.
    fn rest_of_line(&mut self) -> String {
        let mut rest = String::new();
        while let Some(c) = self.bump() {
            if c == '\n' {
                break;
            }
            rest.push(c);
        }
        rest
    }

    fn starts_with(&self, word: &str) -> bool {
        word.chars()
            .enumerate()
            .all(|(i, c)| self.peek(i) == Some(c))
    }

    /// One statement, or `None` for a blank or comment-only line.
    fn statement(&mut self) -> Option<Statement> {
        self.skip_blanks();
        let line = self.line;
        let start = self.at;
        for (keyword, dir) in INCLUDES {
            let after = self.peek(keyword.chars().count());
            if self.starts_with(keyword) && matches!(after, Some(' ' | '\t')) {
                self.at += keyword.chars().count();
                let rest = self.rest_of_line();
                let rest = rest.strip_suffix('\r').unwrap_or(&rest);
                let path = include_path(rest.trim());
                let text = format!("{keyword} {}", rest.trim());
                return Some(Statement {
                    line,
                    text,
                    body: Body::Include { dir, path },
                });
            }
        }
        let mut tokens = Vec::new();
        let mut end = start;
        loop {
            end = end.max(self.at);
            self.skip_blanks();
            let Some(c) = self.peek(0) else { break };
            match c {
                '\n' => {
                    self.bump();
                    break;
                }
                // CRLF line ends: sudo takes `\r\n` for a newline (a lone `\r` is no blank).
                '\r' if self.peek(1) == Some('\n') => {
                    self.bump();
                }
                // A comment runs to the end of the physical line; a trailing backslash in it
                // continues nothing (sudo's lexer eats the comment first).
                '#' if !self.peek(1).is_some_and(|d| d.is_ascii_digit()) => {
                    self.rest_of_line();
                    break;
                }
                ',' | ':' | '=' | '(' | ')' | '!' => {
                    self.bump();
                    tokens.push(match c {
                        ',' => Token::Comma,
                        ':' => Token::Colon,
                        '=' => Token::Equals,
                        '(' => Token::Open,
                        ')' => Token::Close,
                        _ => Token::Bang,
                    });
                }
                _ => tokens.push(self.word()),
            }
        }
        if tokens.is_empty() {
            return None;
        }
        // For messages: the statement without its comment, on one line, blanks collapsed.
        let text: String = self.chars[start..end].iter().collect();
        let text = text.replace("\\\n", " ");
        Some(Statement {
            line,
            text: text.split_whitespace().collect::<Vec<_>>().join(" "),
            body: Body::Tokens(tokens),
        })
    }

    /// A word: plain characters, `\x` (x taken literally) and `"…"` strings, run together.
    fn word(&mut self) -> Token {
        let mut text = String::new();
        let mut quoted = false;
        while let Some(c) = self.peek(0) {
            match c {
                // `Defaults:users`: the scope sigil belongs to the keyword (`Defaults !x` is
                // global, `Defaults!cmnd` is command-scoped: the space is what tells them apart).
                ':' if text == "Defaults" && !quoted => {
                    self.bump();
                    text.push(':');
                    break;
                }
                ' ' | '\t' | '\n' | ',' | ':' | '=' | '(' | ')' => break,
                '\r' if self.peek(1) == Some('\n') => break,
                // `!` only negates at the start of an item.
                '!' if text.is_empty() && !quoted => break,
                '\\' => match self.peek(1) {
                    Some('\n') | None => break,
                    Some(next) => {
                        self.bump();
                        self.bump();
                        text.push(next);
                    }
                },
                '"' => {
                    quoted = true;
                    self.bump();
                    while let Some(inner) = self.peek(0) {
                        if inner == '\n' {
                            break;
                        }
                        self.bump();
                        match inner {
                            '"' => break,
                            '\\' if self.peek(0).is_some_and(|n| n != '\n') => {
                                text.push(self.bump().unwrap_or('\\'));
                            }
                            _ => text.push(inner),
                        }
                    }
                }
                _ => {
                    self.bump();
                    text.push(c);
                }
            }
        }
        if text.is_empty() && !quoted {
            // A lone character no rule above consumed (a stray backslash): keep it as a word so
            // the statement is seen, and judged unreadable, rather than looping.
            text.extend(self.bump());
        }
        Token::Word { text, quoted }
    }
}

/// The path of an include line: a quoted string (with `\"` escapes) or a word with `\ ` escapes.
fn include_path(rest: &str) -> String {
    let mut path = String::new();
    let mut chars = rest.chars().peekable();
    if chars.peek() == Some(&'"') {
        chars.next();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => path.extend(chars.next()),
                _ => path.push(c),
            }
        }
        return path;
    }
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => break,
            '\\' => path.extend(chars.next()),
            _ => path.push(c),
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<Token> {
        match &statements(text.as_bytes())[0].body {
            Body::Tokens(tokens) => tokens.clone(),
            other => panic!("{other:?}"),
        }
    }

    fn w(text: &str) -> Token {
        Token::Word {
            text: text.into(),
            quoted: false,
        }
    }

    #[test]
    fn tags_without_a_space_are_split_at_the_colon() {
        assert_eq!(
            words("core ALL=NOPASSWD:ALL"),
            vec![
                w("core"),
                w("ALL"),
                Token::Equals,
                w("NOPASSWD"),
                Token::Colon,
                w("ALL")
            ]
        );
    }

    #[test]
    fn escapes_and_quotes_make_one_name() {
        let tokens = words("c\\ore \"co\"re%#233 ALL");
        assert_eq!(tokens[0], w("core"));
        assert_eq!(
            tokens[1],
            Token::Word {
                text: "core%#233".into(),
                quoted: true
            }
        );
    }

    #[test]
    fn continuation_joins_but_a_comment_continues_nothing() {
        let found = statements(b"# c \\\ncore ALL=(ALL) \\\n  NOPASSWD: ALL # trailing\n");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].line, 2);
        assert_eq!(found[0].text, "core ALL=(ALL) NOPASSWD: ALL");
    }

    #[test]
    fn uid_is_not_a_comment_and_includes_are_directives() {
        let found = statements(
            b"#500 ALL=ALL\n#includedir /etc/sudoers.d\n@include \"a b\"\n#include_not\n",
        );
        assert_eq!(found.len(), 3, "{found:?}");
        assert_eq!(
            found[1].body,
            Body::Include {
                dir: true,
                path: "/etc/sudoers.d".into()
            }
        );
        assert_eq!(
            found[2].body,
            Body::Include {
                dir: false,
                path: "a b".into()
            }
        );
    }

    #[test]
    fn crlf_ends_a_line_but_a_lone_cr_or_form_feed_is_no_blank() {
        assert_eq!(
            words("core ALL=ALL\r\n"),
            vec![w("core"), w("ALL"), Token::Equals, w("ALL")]
        );
        assert_eq!(words("core\x0cALL=ALL")[0], w("core\x0cALL"));
        assert_eq!(words("core\rALL=ALL")[0], w("core\rALL"));
    }

    #[test]
    fn bytes_that_are_not_utf8_do_not_hide_rules() {
        let found = statements(b"# caf\xe9\ncore ALL=(ALL) NOPASSWD: ALL\n");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].line, 2);
    }
}
