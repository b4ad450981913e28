//! auditd: the agent's rule set, and reading audit rules — a rules.d file's lines and
//! `auditctl -l`'s listing — for the two things that matter: are ours loaded, and is a rule
//! loaded (or written) that throws every record away.

/// Where the agent writes its rules: after Flatcar's `00-clear` (augenrules hoists its `-D`
/// anyway) and before `99-default`. augenrules merges `rules.d/*.rules` in name order.
pub const RULES_FILE: &str = "/etc/audit/rules.d/50-flatcar-harden.rules";
pub const RULES_DIR: &str = "/etc/audit/rules.d";

/// The rule set, each rule with its `-k` key; docs/policy.md explains it rule by rule.
/// Watches (`-w`) take paths that may not exist yet (`/etc/sudoers` on Flatcar): the kernel
/// watches the name in its parent directory, which does exist. Syscall rules are for the
/// native 64-bit ABI (`arch=b64`): Flatcar has no 32-bit userland.
pub const RULES: &str = "\
## flatcar-harden: audit rules ([auditd] in the policy; docs/policy.md).
## Written by flatcar-harden; a change here is drift it reports and puts back.

# Identity: accounts, groups and their passwords.
-w /etc/passwd -p wa -k fh-identity
-w /etc/group -p wa -k fh-identity
-w /etc/shadow -p wa -k fh-identity
-w /etc/gshadow -p wa -k fh-identity

# Privilege: who may run what as root.
-w /etc/sudoers -p wa -k fh-sudoers
-w /etc/sudoers.d -p wa -k fh-sudoers

# Remote access: the SSH daemon's configuration.
-w /etc/ssh/sshd_config -p wa -k fh-sshd
-w /etc/ssh/sshd_config.d -p wa -k fh-sshd

# Kernel modules: loading and unloading, and the tool that does it.
-a always,exit -F arch=b64 -S init_module,finit_module,delete_module -k fh-modules
-w /usr/bin/kmod -p x -k fh-modules

# Time: the clock set, and the time zone.
-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k fh-time
-w /etc/localtime -p wa -k fh-time

# The agent: its policy and its journal.
-w /etc/flatcar-harden -p wa -k fh-agent
-w /var/lib/flatcar-harden -p wa -k fh-agent
";

/// Each key of the rule set with how many rules carry it.
pub fn keys() -> Vec<(String, usize)> {
    let mut keys: Vec<(String, usize)> = Vec::new();
    for key in RULES.lines().filter_map(rule_key) {
        match keys.iter_mut().find(|(k, _)| *k == key) {
            Some((_, count)) => *count += 1,
            None => keys.push((key, 1)),
        }
    }
    keys
}

/// The key of a rule as written (`-k KEY`) or as `auditctl -l` lists it (`-k KEY` for a
/// watch, `-F key=KEY` for a syscall rule).
fn rule_key(line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.first().map_or(true, |w| w.starts_with('#')) {
        return None;
    }
    words.iter().enumerate().find_map(|(i, word)| match *word {
        "-k" => words.get(i + 1).map(|k| (*k).to_owned()),
        _ => word.strip_prefix("key=").map(str::to_owned),
    })
}

/// Whether a rule line drops every record: `-a exclude,always` (either order, `-a` or `-A`)
/// with no field, or only a `msgtype` field that every type passes (`msgtype>0`,
/// `msgtype>=0`, `msgtype>=1`, `msgtype!=0`). Flatcar's `99-default.rules` ends with one.
pub fn excludes_everything(line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some(("-a" | "-A", list)) = words.first().zip(words.get(1)).map(|(a, b)| (*a, *b)) else {
        return false;
    };
    if !matches!(list, "exclude,always" | "always,exclude") {
        return false;
    }
    let mut rest = words[2..].iter();
    while let Some(word) = rest.next() {
        let field = match *word {
            "-F" => rest.next().copied().unwrap_or(""),
            _ => return false,
        };
        if !matches!(
            field,
            "msgtype>0" | "msgtype>=0" | "msgtype>=1" | "msgtype!=0"
        ) {
            return false;
        }
    }
    true
}

/// The file with every rule that drops all records turned into a comment saying why; `None`
/// when it has none.
pub fn neutralised(text: &str) -> Option<String> {
    if !text.lines().any(excludes_everything) {
        return None;
    }
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches('\n');
        if excludes_everything(bare) {
            out.push_str(&format!(
                "# flatcar-harden: off, it kept every audit record out: {bare}"
            ));
            out.push_str(&line[bare.len()..]);
        } else {
            out.push_str(line);
        }
    }
    Some(out)
}

/// What is wrong with the loaded rules (`auditctl -l`): the keys of ours that are missing or
/// short of rules, and each rule that drops every record. Empty: in force.
pub fn loaded_problems(listing: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (key, want) in keys() {
        let have = listing
            .lines()
            .filter(|l| rule_key(l).as_deref() == Some(key.as_str()))
            .count();
        if have < want {
            problems.push(format!("{have} of {want} rules with key {key}"));
        }
    }
    for line in listing.lines().filter(|l| excludes_everything(l)) {
        problems.push(format!("`{}` drops every record", line.trim()));
    }
    problems
}
