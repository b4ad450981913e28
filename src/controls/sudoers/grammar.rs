//! sudoers(5) statements from tokens: aliases, `Defaults` with their scope, and user
//! specifications with host lists, runas lists, tags (carried over from one command to the next
//! within a list, as sudo does) and commands. A statement this reader cannot read is kept as
//! `Unreadable`, so the verdict can fail closed rather than guess.

use super::lexer::Token;

/// One item of a list: a user, host, runas user or command, maybe negated. For a command,
/// `args` is `None` for "any arguments" and `Some("")` for `""` (no arguments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub negated: bool,
    pub name: String,
    pub args: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AliasKind {
    User,
    Runas,
    Host,
    Cmnd,
}

/// Who a `Defaults` line binds to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Global,
    /// `Defaults:users`
    User(Vec<Member>),
    /// `Defaults>runas`
    Runas(Vec<Member>),
    /// `Defaults@hosts`
    Host(Vec<Member>),
    /// `Defaults!commands`
    Cmnd(Vec<Member>),
}

/// One `name`, `!name`, `name=value`, `name+=value` of a `Defaults` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub name: String,
    /// An odd number of `!` in front.
    pub negated: bool,
    pub value: Option<String>,
}

/// `(users:groups)`; a list left out is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Runas {
    pub users: Option<Vec<Member>>,
    pub groups: Option<Vec<Member>>,
}

/// One command of a privilege, with the runas list and `NOPASSWD`/`PASSWD` tag in force for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmndSpec {
    /// `None`: no runas list given (sudo then allows only the default target, root).
    pub runas: Option<Runas>,
    /// `Some(true)` NOPASSWD, `Some(false)` PASSWD, `None` neither (the `authenticate` default).
    pub nopasswd: Option<bool>,
    pub cmnd: Member,
}

/// `hosts = cmnd, cmnd …`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Privilege {
    pub hosts: Vec<Member>,
    pub cmnds: Vec<CmndSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Alias {
        kind: AliasKind,
        name: String,
        members: Vec<Member>,
    },
    Defaults {
        scope: Scope,
        settings: Vec<Setting>,
    },
    Rule {
        users: Vec<Member>,
        privileges: Vec<Privilege>,
    },
    Unreadable(String),
}

const TAGS: [&str; 16] = [
    "NOPASSWD",
    "PASSWD",
    "SETENV",
    "NOSETENV",
    "EXEC",
    "NOEXEC",
    "LOG_INPUT",
    "NOLOG_INPUT",
    "LOG_OUTPUT",
    "NOLOG_OUTPUT",
    "MAIL",
    "NOMAIL",
    "FOLLOW",
    "NOFOLLOW",
    "INTERCEPT",
    "NOINTERCEPT",
];
const DIGESTS: [&str; 4] = ["sha224", "sha256", "sha384", "sha512"];
const OPTIONS: [&str; 8] = [
    "ROLE",
    "TYPE",
    "CWD",
    "CHROOT",
    "NOTBEFORE",
    "NOTAFTER",
    "TIMEOUT",
    "APPARMOR_PROFILE",
];

/// Reads one statement's tokens (an alias line may define several aliases).
pub fn parse(tokens: &[Token]) -> Vec<Entry> {
    let mut cursor = Cursor { tokens, at: 0 };
    let parsed = match tokens.first().and_then(Token::word) {
        Some("User_Alias") => cursor.aliases(AliasKind::User),
        Some("Runas_Alias") => cursor.aliases(AliasKind::Runas),
        Some("Host_Alias") => cursor.aliases(AliasKind::Host),
        Some("Cmnd_Alias") | Some("Cmd_Alias") => cursor.aliases(AliasKind::Cmnd),
        Some(word) if word.starts_with("Defaults") => cursor.defaults(),
        _ => cursor.rule(),
    };
    match parsed {
        Ok(entries) if cursor.at == tokens.len() => entries,
        Ok(_) => vec![Entry::Unreadable(format!(
            "unexpected {:?}",
            tokens[cursor.at]
        ))],
        Err(reason) => vec![Entry::Unreadable(reason)],
    }
}

struct Cursor<'a> {
    tokens: &'a [Token],
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn peek_word(&self) -> Option<&str> {
        self.peek().and_then(Token::word)
    }

    fn eat(&mut self, token: &Token) -> bool {
        let hit = self.peek() == Some(token);
        if hit {
            self.at += 1;
        }
        hit
    }

    fn expect(&mut self, token: &Token) -> Result<(), String> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(format!("expected {token:?}, found {:?}", self.peek()))
        }
    }

    fn word(&mut self) -> Result<String, String> {
        let word = self
            .peek_word()
            .ok_or_else(|| format!("expected a name, found {:?}", self.peek()))?
            .to_owned();
        self.at += 1;
        Ok(word)
    }

    /// `Kind_Alias NAME = list : NAME = list …`
    fn aliases(&mut self, kind: AliasKind) -> Result<Vec<Entry>, String> {
        self.at += 1;
        let mut defined = Vec::new();
        loop {
            let name = self.word()?;
            self.expect(&Token::Equals)?;
            let members = if kind == AliasKind::Cmnd {
                self.list(Self::command)?
            } else {
                self.list(Self::member)?
            };
            defined.push(Entry::Alias {
                kind,
                name,
                members,
            });
            if !self.eat(&Token::Colon) {
                return Ok(defined);
            }
        }
    }

    fn defaults(&mut self) -> Result<Vec<Entry>, String> {
        let keyword = self.word()?;
        let sigil = &keyword["Defaults".len()..];
        let mut scope_char = sigil.chars().next();
        if scope_char.is_some_and(|c| !":!>@".contains(c)) {
            return Err(format!("unknown keyword {keyword}"));
        }
        let mut list = Vec::new();
        if let Some(c) = scope_char {
            // The first item may stick to the sigil (`Defaults>root`) or follow after blanks.
            let first = &sigil[c.len_utf8()..];
            if first.is_empty() {
                list = self.list(Self::member)?;
            } else {
                let negated = first.starts_with('!');
                list.push(Member {
                    negated,
                    name: first.trim_start_matches('!').to_owned(),
                    args: None,
                });
                if self.eat(&Token::Comma) {
                    list.extend(self.list(Self::member)?);
                }
            }
        }
        let scope = match scope_char.take() {
            None => Scope::Global,
            Some(':') => Scope::User(list),
            Some('>') => Scope::Runas(list),
            Some('@') => Scope::Host(list),
            Some(_) => Scope::Cmnd(list),
        };
        let settings = self.list(Self::setting)?;
        Ok(vec![Entry::Defaults { scope, settings }])
    }

    fn setting(&mut self, negated: bool) -> Result<Setting, String> {
        let mut name = self.word()?;
        // `name += value`: the `+`/`-` may stand alone or stick to the name.
        if matches!(self.peek_word(), Some("+" | "-"))
            && self.tokens.get(self.at + 1) == Some(&Token::Equals)
        {
            self.at += 1;
        } else if self.peek() == Some(&Token::Equals) {
            name = name.trim_end_matches(['+', '-']).to_owned();
        }
        let value = if self.eat(&Token::Equals) {
            // A value runs to the next comma: `secure_path=/usr/sbin:/usr/bin` holds colons.
            let mut value = self.word()?;
            while let (Some(Token::Colon | Token::Equals), Some(Token::Word { text, .. })) =
                (self.peek(), self.tokens.get(self.at + 1))
            {
                value.push(if self.peek() == Some(&Token::Colon) {
                    ':'
                } else {
                    '='
                });
                value.push_str(text);
                self.at += 2;
            }
            Some(value)
        } else {
            None
        };
        Ok(Setting {
            name,
            negated,
            value,
        })
    }

    /// `item, item, …` where each item may be negated with `!`.
    fn list<T>(
        &mut self,
        item: fn(&mut Self, bool) -> Result<T, String>,
    ) -> Result<Vec<T>, String> {
        let mut items = Vec::new();
        loop {
            let mut negated = false;
            while self.eat(&Token::Bang) {
                negated = !negated;
            }
            items.push(item(self, negated)?);
            if !self.eat(&Token::Comma) {
                return Ok(items);
            }
        }
    }

    fn member(&mut self, negated: bool) -> Result<Member, String> {
        let mut name = self.word()?;
        // `%:nonunix_group`
        if name == "%" && self.eat(&Token::Colon) {
            name = format!("%:{}", self.word()?);
        }
        Ok(Member {
            negated,
            name,
            args: None,
        })
    }

    /// A command: `ALL`, an alias, or a path with optional arguments (words up to `,`/`:`),
    /// maybe behind a digest (`sha224:HEX /path`, taken as matching: it cannot be checked here).
    fn command(&mut self, negated: bool) -> Result<Member, String> {
        let mut name = self.word()?;
        if DIGESTS.contains(&name.as_str()) && self.eat(&Token::Colon) {
            self.word()?;
            name = self.word()?;
        }
        let mut args: Option<Vec<String>> = None;
        if name.starts_with('/') || name == "sudoedit" {
            while let Some(Token::Word { text, .. }) = self.peek() {
                args.get_or_insert_with(Vec::new).push(text.clone());
                self.at += 1;
            }
        }
        Ok(Member {
            negated,
            name,
            args: args.map(|a| a.join(" ")),
        })
    }

    /// `users hosts = cmndspecs : hosts = cmndspecs …`
    fn rule(&mut self) -> Result<Vec<Entry>, String> {
        let users = self.list(Self::member)?;
        let mut privileges = Vec::new();
        loop {
            let hosts = self.list(Self::member)?;
            self.expect(&Token::Equals)?;
            privileges.push(Privilege {
                hosts,
                cmnds: self.cmnd_specs()?,
            });
            if !self.eat(&Token::Colon) {
                break;
            }
        }
        Ok(vec![Entry::Rule { users, privileges }])
    }

    /// Runas list and tags carry over from one command to the next until given again.
    fn cmnd_specs(&mut self) -> Result<Vec<CmndSpec>, String> {
        let mut specs: Vec<CmndSpec> = Vec::new();
        loop {
            let mut runas = specs.last().and_then(|s| s.runas.clone());
            let mut nopasswd = specs.last().and_then(|s| s.nopasswd);
            if self.eat(&Token::Open) {
                runas = Some(self.runas()?);
            }
            while self.peek_word().is_some_and(|w| OPTIONS.contains(&w)) {
                if self.tokens.get(self.at + 1) != Some(&Token::Equals) {
                    break;
                }
                self.at += 2;
                self.word()?;
            }
            while let Some(tag) = self.peek_word().filter(|w| TAGS.contains(w)) {
                if self.tokens.get(self.at + 1) != Some(&Token::Colon) {
                    break;
                }
                match tag {
                    "NOPASSWD" => nopasswd = Some(true),
                    "PASSWD" => nopasswd = Some(false),
                    _ => {}
                }
                self.at += 2;
            }
            let mut negated = false;
            while self.eat(&Token::Bang) {
                negated = !negated;
            }
            let cmnd = self.command(negated)?;
            specs.push(CmndSpec {
                runas,
                nopasswd,
                cmnd,
            });
            if !self.eat(&Token::Comma) {
                return Ok(specs);
            }
        }
    }

    /// Inside `( … )`: `users`, `users:groups`, `:groups`, or nothing.
    fn runas(&mut self) -> Result<Runas, String> {
        let mut runas = Runas::default();
        if !matches!(self.peek(), Some(Token::Colon | Token::Close)) {
            runas.users = Some(self.list(Self::member)?);
        }
        if self.eat(&Token::Colon) && self.peek() != Some(&Token::Close) {
            runas.groups = Some(self.list(Self::member)?);
        }
        self.expect(&Token::Close)?;
        Ok(runas)
    }
}
