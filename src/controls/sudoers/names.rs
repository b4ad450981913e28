//! What a configuration names: the commands and host names a verdict has to try (anything no
//! list names is matched only by `ALL`, so one stand-in covers all of them).

use std::collections::BTreeSet;

use super::eval::Command;
use super::grammar::{AliasKind, Entry, Member, Scope};
use super::include::Sudoers;

/// Every command a list names (with its arguments), and "any other command".
pub fn named_commands(sudoers: &Sudoers) -> Vec<Command> {
    let mut found = BTreeSet::new();
    let mut add = |member: &Member| {
        if member.name.starts_with('/') || member.name == "sudoedit" {
            found.insert(Command::Named {
                path: member.name.clone(),
                args: member.args.clone().unwrap_or_default(),
            });
        }
    };
    for located in &sudoers.entries {
        match &located.entry {
            Entry::Alias {
                kind: AliasKind::Cmnd,
                members,
                ..
            }
            | Entry::Defaults {
                scope: Scope::Cmnd(members),
                ..
            } => members.iter().for_each(&mut add),
            Entry::Rule { privileges, .. } => privileges
                .iter()
                .flat_map(|p| &p.cmnds)
                .for_each(|spec| add(&spec.cmnd)),
            _ => {}
        }
    }
    found.insert(Command::Other);
    found.into_iter().collect()
}

/// Every host name a host list, `Host_Alias` or `Defaults@` names.
pub fn named_hosts(sudoers: &Sudoers) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut add = |members: &[Member]| {
        for m in members {
            if !m.name.starts_with('+') && m.name != "ALL" && !is_alias_name(&m.name) {
                names.insert(m.name.clone());
            }
        }
    };
    for located in &sudoers.entries {
        match &located.entry {
            Entry::Alias {
                kind: AliasKind::Host,
                members,
                ..
            }
            | Entry::Defaults {
                scope: Scope::Host(members),
                ..
            } => add(members),
            Entry::Rule { privileges, .. } => privileges.iter().for_each(|p| add(&p.hosts)),
            _ => {}
        }
    }
    names
}

/// sudo's lexer reads an upper-case word as an alias name, never as a user, host or command.
pub fn is_alias_name(name: &str) -> bool {
    name != "ALL"
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}
