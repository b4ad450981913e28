//! What sudo decides for one user, worked out as sudo works it out (sudoers(5), sudo 1.9):
//!
//! - For a request (target user, command) the LAST matching command of all user specifications
//!   decides: user list, host list, runas list and command must all match; a negated command that
//!   matches denies.
//! - An allowed command's own `NOPASSWD:`/`PASSWD:` tag decides whether a password is asked.
//!   Without a tag, the `authenticate` flag decides: `Defaults` entries are applied global, host,
//!   user and runas scoped in file order, then command scoped (`Defaults!cmnd`) in file order;
//!   the last one that matches wins. `authenticate=value` is invalid and ignored, as sudo does.
//!
//! A command spec without a runas list runs as `runas_default` (root unless a Defaults line sets
//! it).
//!
//! The verdict: the user has passwordless sudo when at least one request is allowed without a
//! password. Requests tried: every user of the account files plus "any other user",
//! times every command named anywhere plus "any other command" (which only `ALL` matches). Where
//! the host's name is unknown (an image without /etc/hostname), on every host named anywhere and
//! on "any other host": the image may boot under any name.

use std::collections::HashMap;

use super::grammar::{AliasKind, CmndSpec, Entry, Member, Runas, Scope};
use super::include::{Located, Sudoers};
use super::names::{is_alias_name, named_commands, named_hosts};
use super::Identity;

/// A target user sudo could be asked to run a command as.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Known(&'a Identity),
    /// A user no list names: only `ALL` matches it.
    Other,
}

/// A command sudo could be asked to run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Command {
    Named {
        path: String,
        args: String,
    },
    /// A command no list names: only `ALL` matches it.
    Other,
}

impl Command {
    pub fn shown(&self) -> String {
        match self {
            Command::Named { path, args } if args.is_empty() => path.clone(),
            Command::Named { path, args } => format!("{path} {args}"),
            Command::Other => "any command".to_owned(),
        }
    }
}

/// A request allowed without a password, and the line that makes it so.
#[derive(Debug, Clone)]
pub struct Grant {
    pub runas: String,
    pub command: Command,
    /// The user specification that allows the request.
    pub rule: Located,
    /// `Some`: a `Defaults` line turned authentication off (the rule has no tag).
    pub defaults: Option<Located>,
    /// The host name this holds on, when the real one is unknown.
    pub on: Option<String>,
}

impl Grant {
    /// The line to change: the `Defaults` line when it decided, else the rule.
    pub fn decided_by(&self) -> &Located {
        self.defaults.as_ref().unwrap_or(&self.rule)
    }
}

/// Everything this reader concludes for one user.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub grants: Vec<Grant>,
    /// Statements this reader could not read: the verdict cannot be trusted while any exist.
    pub unreadable: Vec<(Located, String)>,
    /// What `sudo -l -U user` lists: a matching rule with a `NOPASSWD:` command, and a
    /// `!authenticate` among the Defaults it shows (global, host and user ones that match, every
    /// runas and command scoped one).
    pub lists_nopasswd: bool,
    pub lists_no_authenticate: bool,
}

impl Verdict {
    pub fn passwordless(&self) -> bool {
        !self.grants.is_empty()
    }
}

struct Matcher<'a> {
    aliases: HashMap<(AliasKind, &'a str), &'a [Member]>,
    /// The target of a command spec without a runas list.
    runas_default: &'a str,
    /// `None`: a host no list names (only `ALL` matches it).
    hostname: Option<&'a str>,
}

/// Judges `who` against `sudoers`. `targets` are the users sudo could run a command as;
/// `hostname` is this host's name, `None` when unknown.
pub fn judge(
    sudoers: &Sudoers,
    who: &Identity,
    targets: &[Identity],
    hostname: Option<&str>,
) -> Verdict {
    let mut matcher = Matcher {
        aliases: HashMap::new(),
        runas_default: "root",
        hostname,
    };
    let mut verdict = Verdict::default();
    for located in &sudoers.entries {
        match &located.entry {
            Entry::Alias {
                kind,
                name,
                members,
            } => {
                matcher.aliases.insert((*kind, name), members);
            }
            Entry::Unreadable(reason) => verdict.unreadable.push((located.clone(), reason.clone())),
            _ => {}
        }
    }
    let commands = named_commands(sudoers);
    let mut requests: Vec<(Target, &str)> = targets
        .iter()
        .map(|t| (Target::Known(t), t.name.as_str()))
        .collect();
    requests.push((Target::Other, "any other user"));
    let names = named_hosts(sudoers);
    let hosts: Vec<Option<&str>> = match hostname {
        Some(known) => vec![Some(known)],
        None => names
            .iter()
            .map(|h| Some(h.as_str()))
            .chain([None])
            .collect(),
    };
    for host in hosts {
        matcher.hostname = host;
        matcher.runas_default = matcher.runas_default(sudoers, who);
        // Worth saying only where some list names a host: otherwise every host is the same.
        let on = (hostname.is_none() && !names.is_empty())
            .then(|| host.map_or("any other host".to_owned(), |h| format!("host {h}")));
        for (target, runas) in &requests {
            for command in &commands {
                if let Some(grant) = matcher.passwordless(sudoers, who, *target, command) {
                    verdict.grants.push(Grant {
                        runas: (*runas).to_owned(),
                        command: command.clone(),
                        on: on.clone(),
                        ..grant
                    });
                }
            }
        }
    }
    matcher.hostname = hostname;
    matcher.listed(sudoers, who, &mut verdict);
    verdict
}

impl Matcher<'_> {
    /// sudo's list matching: the last item that matches decides (`!` denies); an alias is its
    /// members' answer, flipped when negated. `None`: nothing in the list matches.
    fn list(
        &self,
        kind: AliasKind,
        items: &[Member],
        leaf: &dyn Fn(&Member) -> bool,
    ) -> Option<bool> {
        for item in items.iter().rev() {
            let answer = if is_alias_name(&item.name) {
                self.aliases
                    .get(&(kind, item.name.as_str()))
                    .and_then(|members| self.list(kind, members, leaf))
            } else if item.name == "ALL" || leaf(item) {
                Some(true)
            } else {
                None
            };
            if let Some(allowed) = answer {
                return Some(allowed != item.negated);
            }
        }
        None
    }

    fn user(&self, kind: AliasKind, items: &[Member], who: &Identity) -> bool {
        self.list(kind, items, &|m| user_is(&m.name, who)) == Some(true)
    }

    fn target(&self, kind: AliasKind, items: &[Member], target: Target) -> bool {
        match target {
            Target::Known(who) => self.user(kind, items, who),
            Target::Other => self.list(kind, items, &|_| false) == Some(true),
        }
    }

    fn host(&self, items: &[Member]) -> bool {
        let leaf = |m: &Member| match self.hostname {
            None => false,
            Some(host) if m.name.contains('.') => m.name == host,
            Some(host) => host.split('.').next() == Some(m.name.as_str()),
        };
        self.list(AliasKind::Host, items, &leaf) == Some(true)
    }

    fn runas(&self, runas: Option<&Runas>, target: Target) -> bool {
        match runas.and_then(|r| r.users.as_deref()) {
            Some(users) => self.target(AliasKind::Runas, users, target),
            // No runas list: the default target. `(:group)` alone: only the invoking user.
            None if runas.is_some_and(|r| r.groups.is_some()) => false,
            None => matches!(target, Target::Known(who) if who.name == self.runas_default),
        }
    }

    fn command(&self, items: &[Member], command: &Command) -> Option<bool> {
        let leaf = |m: &Member| match command {
            Command::Named { path, args } => {
                m.name == *path && m.args.as_ref().map_or(true, |a| a == args)
            }
            Command::Other => false,
        };
        self.list(AliasKind::Cmnd, items, &leaf)
    }

    /// `Some(grant)` when sudo lets `who` run `command` as `target` without a password.
    fn passwordless(
        &self,
        sudoers: &Sudoers,
        who: &Identity,
        target: Target,
        command: &Command,
    ) -> Option<Grant> {
        let mut last: Option<(&CmndSpec, bool, &Located)> = None;
        for located in &sudoers.entries {
            let Entry::Rule { users, privileges } = &located.entry else {
                continue;
            };
            if !self.user(AliasKind::User, users, who) {
                continue;
            }
            for privilege in privileges.iter().filter(|p| self.host(&p.hosts)) {
                for spec in &privilege.cmnds {
                    if !self.runas(spec.runas.as_ref(), target) {
                        continue;
                    }
                    if let Some(allowed) = self.command(std::slice::from_ref(&spec.cmnd), command) {
                        last = Some((spec, allowed, located));
                    }
                }
            }
        }
        let (spec, true, rule) = last? else {
            return None;
        };
        let grant = |defaults| Grant {
            runas: String::new(),
            command: Command::Other,
            rule: rule.clone(),
            defaults,
            on: None,
        };
        match spec.nopasswd {
            Some(true) => Some(grant(None)),
            Some(false) => None,
            None => {
                let (authenticate, set_by) = self.authenticate(sudoers, who, target, command);
                (!authenticate).then(|| grant(set_by.cloned()))
            }
        }
    }

    /// The `authenticate` flag for this request, and the `Defaults` line that set it last.
    fn authenticate<'s>(
        &self,
        sudoers: &'s Sudoers,
        who: &Identity,
        target: Target,
        command: &Command,
    ) -> (bool, Option<&'s Located>) {
        let mut value = (true, None);
        for command_pass in [false, true] {
            for located in &sudoers.entries {
                let Entry::Defaults { scope, settings } = &located.entry else {
                    continue;
                };
                let applies = match scope {
                    Scope::Cmnd(items) => {
                        command_pass && self.command(items, command) == Some(true)
                    }
                    _ if command_pass => false,
                    Scope::Global => true,
                    Scope::Host(items) => self.host(items),
                    Scope::User(items) => self.user(AliasKind::User, items, who),
                    Scope::Runas(items) => self.target(AliasKind::Runas, items, target),
                };
                if !applies {
                    continue;
                }
                for setting in settings {
                    if setting.name == "authenticate" && setting.value.is_none() {
                        value = (!setting.negated, Some(located));
                    }
                }
            }
        }
        value
    }

    /// `runas_default` as the global, host and user Defaults leave it (sudo reads it before the
    /// other settings, last one wins).
    fn runas_default<'s>(&self, sudoers: &'s Sudoers, who: &Identity) -> &'s str {
        let mut value = "root";
        for located in &sudoers.entries {
            let Entry::Defaults { scope, settings } = &located.entry else {
                continue;
            };
            let applies = match scope {
                Scope::Global => true,
                Scope::Host(items) => self.host(items),
                Scope::User(items) => self.user(AliasKind::User, items, who),
                Scope::Runas(_) | Scope::Cmnd(_) => false,
            };
            for setting in settings.iter().filter(|_| applies) {
                if let ("runas_default", Some(user)) = (setting.name.as_str(), &setting.value) {
                    value = user;
                }
            }
        }
        value
    }

    /// What `sudo -l -U who` would show, for the cross-check with sudo itself.
    fn listed(&self, sudoers: &Sudoers, who: &Identity, verdict: &mut Verdict) {
        for located in &sudoers.entries {
            match &located.entry {
                Entry::Rule { users, privileges } if self.user(AliasKind::User, users, who) => {
                    let nopasswd = privileges
                        .iter()
                        .filter(|p| self.host(&p.hosts))
                        .flat_map(|p| &p.cmnds)
                        .any(|spec| spec.nopasswd == Some(true));
                    verdict.lists_nopasswd |= nopasswd;
                }
                Entry::Defaults { scope, settings } => {
                    let shown = match scope {
                        Scope::Global | Scope::Runas(_) | Scope::Cmnd(_) => true,
                        Scope::Host(items) => self.host(items),
                        Scope::User(items) => self.user(AliasKind::User, items, who),
                    };
                    let off = settings
                        .iter()
                        .any(|s| s.name == "authenticate" && s.value.is_none() && s.negated);
                    verdict.lists_no_authenticate |= shown && off;
                }
                _ => {}
            }
        }
    }
}

/// sudoers user matching for one item that is not `ALL` or an alias.
fn user_is(item: &str, who: &Identity) -> bool {
    if let Some(gid) = item.strip_prefix("%#") {
        return gid.parse::<u32>().is_ok_and(|gid| who.gids.contains(&gid));
    }
    if item.starts_with("%:") || item.starts_with('+') {
        return false; // non-Unix groups and netgroups: not on Flatcar
    }
    if let Some(group) = item.strip_prefix('%') {
        return who.groups.contains(group);
    }
    if let Some(uid) = item.strip_prefix('#') {
        return uid.parse::<u32>().ok() == who.uid;
    }
    item == who.name
}
