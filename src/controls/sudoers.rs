//! Just enough of sudoers(5) to tell what sudo will do for one user: which files it reads and in
//! what order (`sudo.conf`, `#includedir`, `@include`), which user specifications match the user
//! (names, `%group`, `#uid`, `ALL`, `User_Alias`, negation), and which of them let it run commands
//! without a password. sudo applies the last matching rule, so order is what matters.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::host::{Host, HostError};

/// The files sudo reads, in order, and what each holds.
pub struct Config {
    pub main: PathBuf,
    /// `(path, content)` in the order sudo parses them.
    pub files: Vec<(PathBuf, String)>,
    /// Directories pulled in with `#includedir` / `@includedir`.
    pub include_dirs: Vec<PathBuf>,
}

/// A user specification or `Defaults` line, with where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub file: PathBuf,
    pub line: usize,
    pub text: String,
    pub nopasswd: bool,
    /// `Defaults … !authenticate`: no password for anything.
    pub no_authenticate: bool,
}

impl Rule {
    pub fn location(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

/// Who a user is, for matching sudoers user lists.
pub struct Identity {
    pub name: String,
    pub uid: Option<u32>,
    pub gids: BTreeSet<u32>,
    pub groups: BTreeSet<String>,
}

const DEFAULT_SUDOERS: &str = "/etc/sudoers";
const MAX_INCLUDE_DEPTH: usize = 8;

impl Config {
    /// Reads the configuration as sudo would. `overlay` stands in for one file's content, to ask
    /// "what if this file were in place?" without writing it.
    pub fn read(host: &Host, overlay: Option<(&Path, &str)>) -> Result<Config, HostError> {
        let main = sudoers_file(host)?;
        let mut config = Config {
            main: main.clone(),
            files: Vec::new(),
            include_dirs: Vec::new(),
        };
        config.include(host, &main, overlay, 0)?;
        Ok(config)
    }

    fn include(
        &mut self,
        host: &Host,
        path: &Path,
        overlay: Option<(&Path, &str)>,
        depth: usize,
    ) -> Result<(), HostError> {
        if depth > MAX_INCLUDE_DEPTH {
            return Ok(());
        }
        let content = match overlay {
            Some((over, text)) if over == path => Some(text.to_owned()),
            _ => host.fs.read_text_lossy(path)?,
        };
        let Some(content) = content else {
            return Ok(());
        };
        let base = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        let directives: Vec<(bool, PathBuf)> = logical_lines(&content)
            .filter_map(|(_, line)| include_directive(&line))
            .map(|(is_dir, target)| (is_dir, base.join(target)))
            .collect();
        self.files.push((path.to_path_buf(), content));
        for (is_dir, target) in directives {
            if is_dir {
                self.include_dirs.push(target.clone());
                let mut names = host.fs.list_dir(&target)?;
                // The overlay may be a file that does not exist yet.
                if let Some((over, _)) = overlay {
                    if over.parent() == Some(target.as_path()) {
                        if let Some(name) = over.file_name() {
                            names.push(name.to_os_string());
                        }
                    }
                }
                names.sort();
                names.dedup();
                for name in names.iter().filter(|n| read_by_sudo(&n.to_string_lossy())) {
                    self.include(host, &target.join(name), overlay, depth + 1)?;
                }
            } else {
                self.include(host, &target, overlay, depth + 1)?;
            }
        }
        Ok(())
    }

    /// Whether sudo reads `path` (directly or through an include directory).
    pub fn reads(&self, path: &Path) -> bool {
        self.files.iter().any(|(p, _)| p == path)
    }

    /// The rules that apply to `who`, in sudo's order.
    pub fn rules_for(&self, who: &Identity) -> Vec<Rule> {
        let mut aliases: HashMap<String, Vec<String>> = HashMap::new();
        let mut rules = Vec::new();
        for (file, content) in &self.files {
            for (line_no, line) in logical_lines(content) {
                if include_directive(&line).is_some() {
                    continue;
                }
                let words: Vec<&str> = line.split_whitespace().collect();
                let Some(first) = words.first() else { continue };
                if *first == "User_Alias" {
                    for def in line["User_Alias".len()..].split(':') {
                        if let Some((name, members)) = def.split_once('=') {
                            aliases.insert(name.trim().to_owned(), split_list(members));
                        }
                    }
                    continue;
                }
                if first.ends_with("_Alias") {
                    continue;
                }
                if let Some(scope) = first.strip_prefix("Defaults") {
                    let applies = match scope.chars().next() {
                        None => true,
                        Some(':') => user_matches(&split_list(&scope[1..]), who, &aliases),
                        Some(_) => false, // host (@), runas (>) or command (!) scoped
                    };
                    if applies && line.contains("!authenticate") {
                        rules.push(Rule {
                            file: file.clone(),
                            line: line_no,
                            text: line.clone(),
                            nopasswd: true,
                            no_authenticate: true,
                        });
                    }
                    continue;
                }
                let Some((left, right)) = line.split_once('=') else {
                    continue;
                };
                // "core, %wheel ALL" -> users "core,%wheel", hosts "ALL"
                let compact = left.replace(", ", ",").replace(" ,", ",");
                let Some(users) = compact.split_whitespace().next() else {
                    continue;
                };
                if user_matches(&split_list(users), who, &aliases) {
                    rules.push(Rule {
                        file: file.clone(),
                        line: line_no,
                        text: line.clone(),
                        nopasswd: grants_nopasswd(right),
                        no_authenticate: false,
                    });
                }
            }
        }
        rules
    }
}

/// The sudoers file sudo.conf names (Flatcar: `/usr/share/baselayout/sudoers`), else /etc/sudoers.
fn sudoers_file(host: &Host) -> Result<PathBuf, HostError> {
    let conf = host
        .fs
        .read_text_lossy(Path::new("/etc/sudo.conf"))?
        .unwrap_or_default();
    let named = conf
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("Plugin") && l.contains("sudoers.so"))
        .flat_map(|l| l.split_whitespace())
        .find_map(|word| word.strip_prefix("sudoers_file="))
        .map(PathBuf::from);
    Ok(named.unwrap_or_else(|| PathBuf::from(DEFAULT_SUDOERS)))
}

/// sudo skips files in an include directory whose name contains a dot or ends in `~`.
pub fn read_by_sudo(name: &str) -> bool {
    !name.contains('.') && !name.ends_with('~')
}

/// Lines with continuations joined and comments removed, numbered by their first physical line.
pub fn logical_lines(text: &str) -> impl Iterator<Item = (usize, String)> + '_ {
    let mut pending: Option<(usize, String)> = None;
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let (start, mut joined) = pending.take().unwrap_or((index + 1, String::new()));
        if let Some(stripped) = raw.strip_suffix('\\') {
            joined.push_str(stripped);
            joined.push(' ');
            pending = Some((start, joined));
            continue;
        }
        joined.push_str(raw);
        let line = strip_comment(&joined).trim().to_owned();
        if !line.is_empty() {
            out.push((start, line));
        }
    }
    if let Some((start, joined)) = pending {
        out.push((start, strip_comment(&joined).trim().to_owned()));
    }
    out.into_iter()
}

/// `#` starts a comment, except in `#include`/`#includedir` and `#uid`.
fn strip_comment(line: &str) -> &str {
    let trimmed = line.trim_start();
    if trimmed.starts_with("#include") {
        return line;
    }
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && !bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            return &line[..i];
        }
    }
    line
}

/// `(is_directory, path)` for `#include`, `@include`, `#includedir`, `@includedir`.
fn include_directive(line: &str) -> Option<(bool, String)> {
    let mut words = line.split_whitespace();
    let keyword = words.next()?;
    let target = words.next()?.trim_matches('"').to_owned();
    match keyword {
        "#includedir" | "@includedir" => Some((true, target)),
        "#include" | "@include" => Some((false, target)),
        _ => None,
    }
}

fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(|item| item.trim().to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

/// sudoers user-list matching: the last item that matches decides, `!` negates.
fn user_matches(items: &[String], who: &Identity, aliases: &HashMap<String, Vec<String>>) -> bool {
    let mut matched = false;
    for item in items {
        let (negated, item) = match item.strip_prefix('!') {
            Some(rest) => (true, rest.trim()),
            None => (false, item.as_str()),
        };
        let hit = match item {
            "ALL" => true,
            _ if item.starts_with("%#") => item[2..]
                .parse::<u32>()
                .is_ok_and(|gid| who.gids.contains(&gid)),
            _ if item.starts_with('%') => who.groups.contains(item.trim_start_matches(['%', ':'])),
            _ if item.starts_with('#') => item[1..].parse::<u32>().ok() == who.uid,
            _ => {
                item == who.name
                    || aliases
                        .get(item)
                        .is_some_and(|members| user_matches(members, who, aliases))
            }
        };
        if hit {
            matched = !negated;
        }
    }
    matched
}

/// Whether a rule's command part lets the user run something without a password. Tags carry
/// over from one command to the next, so the last `PASSWD:`/`NOPASSWD:` seen decides.
fn grants_nopasswd(commands: &str) -> bool {
    let mut nopasswd = false;
    let mut any = false;
    for word in commands.split(|c: char| c.is_whitespace() || c == ',') {
        match word {
            "NOPASSWD:" => {
                nopasswd = true;
                any = true;
            }
            "PASSWD:" => nopasswd = false,
            _ => {}
        }
    }
    any && nopasswd
}

/// core's identity from the passwd and group databases (`/etc` and Flatcar's `/usr/share/baselayout`).
pub fn identity(host: &Host, user: &str) -> Result<Identity, HostError> {
    let mut who = Identity {
        name: user.to_owned(),
        uid: None,
        gids: BTreeSet::new(),
        groups: BTreeSet::new(),
    };
    for passwd in ["/etc/passwd", "/usr/share/baselayout/passwd"] {
        let text = host
            .fs
            .read_text_lossy(Path::new(passwd))?
            .unwrap_or_default();
        if let Some(fields) = text
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 4 && f[0] == user)
        {
            who.uid = who.uid.or(fields[2].parse().ok());
            if let Ok(gid) = fields[3].parse() {
                who.gids.insert(gid);
            }
        }
    }
    for group in ["/etc/group", "/usr/share/baselayout/group"] {
        let text = host
            .fs
            .read_text_lossy(Path::new(group))?
            .unwrap_or_default();
        for fields in text.lines().map(|l| l.split(':').collect::<Vec<_>>()) {
            if fields.len() < 4 {
                continue;
            }
            let gid: Option<u32> = fields[2].parse().ok();
            let member = fields[3].split(',').any(|m| m == user);
            let primary = gid.is_some_and(|g| who.gids.contains(&g));
            if member || primary {
                who.groups.insert(fields[0].to_owned());
                who.gids.extend(gid);
            }
        }
    }
    Ok(who)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core() -> Identity {
        Identity {
            name: "core".into(),
            uid: Some(500),
            gids: [500, 10, 233].into(),
            groups: ["core", "wheel", "docker"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }

    fn rules(files: &[(&str, &str)]) -> Vec<Rule> {
        Config {
            main: PathBuf::from(files[0].0),
            files: files
                .iter()
                .map(|(p, c)| (PathBuf::from(p), c.to_string()))
                .collect(),
            include_dirs: vec![],
        }
        .rules_for(&core())
    }

    #[test]
    fn flatcar_baselayout_gives_core_nopasswd_last() {
        let baselayout = "Defaults env_keep += \"LESSCHARSET\"\nroot ALL=(ALL) ALL\n%wheel ALL=(ALL) ALL\n%sudo ALL=(ALL) NOPASSWD: ALL\ncore ALL=(ALL) NOPASSWD: ALL\n#includedir /etc/sudoers.d\n";
        let found = rules(&[("/usr/share/baselayout/sudoers", baselayout)]);
        assert_eq!(found.len(), 2, "{found:?}"); // %wheel and core; not root, not %sudo
        assert!(found.last().unwrap().nopasswd);
        assert_eq!(found.last().unwrap().line, 5);
    }

    #[test]
    fn matching_forms() {
        let text = "#500 ALL=(ALL) NOPASSWD: ALL\n%#233 ALL = ALL\nUser_Alias ADMINS = bob, core\nADMINS ALL=(ALL) NOPASSWD:/bin/ls, PASSWD: ALL\nALL, !core ALL=NOPASSWD: ALL\nDefaults:%wheel !authenticate\n";
        let found = rules(&[("/x", text)]);
        let lines: Vec<usize> = found.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![1, 2, 4, 6]);
        assert!(found[0].nopasswd);
        assert!(!found[1].nopasswd);
        assert!(
            !found[2].nopasswd,
            "PASSWD: after NOPASSWD: wins for the last command"
        );
        assert!(found[3].no_authenticate);
    }

    #[test]
    fn continuation_and_comments() {
        let lines: Vec<(usize, String)> =
            logical_lines("# c\ncore ALL=(ALL) \\\n  NOPASSWD: ALL # trailing\n#includedir /d\n")
                .collect();
        assert_eq!(lines[0], (2, "core ALL=(ALL)    NOPASSWD: ALL".to_string()));
        assert_eq!(lines[1].1, "#includedir /d");
    }

    #[test]
    fn sudo_skips_dotted_and_backup_names() {
        assert!(read_by_sudo("core-passwd"));
        assert!(!read_by_sudo("core-passwd.bak"));
        assert!(!read_by_sudo("core-passwd~"));
    }
}
