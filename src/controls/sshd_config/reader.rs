//! A small reader of sshd_config as sshd reads it: lines in order, `Include` globs expanded in
//! place (sorted, as glob(3) in the C locale), relative paths under `/etc/ssh`, and what follows a
//! `Match` counted as conditional. It names the file and line that set a keyword first, which is
//! the value sshd keeps. Values are judged by `sshd -T` on a live host; this reader serves drift
//! naming and the offline plan.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::host::{Host, HostError};

/// sshd's own limit on nested includes.
const MAX_DEPTH: usize = 16;

/// One directive: the keyword (lowercase), its arguments, where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub key: String,
    pub args: Vec<String>,
    pub file: PathBuf,
    pub line: usize,
    /// Inside a `Match` block: applies only to the connections it matches.
    pub conditional: bool,
}

impl Directive {
    pub fn location(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

/// Every file the configuration may include, read in observe: path -> content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigFiles {
    pub files: BTreeMap<PathBuf, String>,
}

impl ConfigFiles {
    /// Reads `main` and, recursively, every file its `Include` patterns match.
    pub fn gather(host: &Host, main: &Path) -> Result<ConfigFiles, HostError> {
        let mut files = ConfigFiles::default();
        files.read(host, main, 0)?;
        Ok(files)
    }

    fn read(&mut self, host: &Host, path: &Path, depth: usize) -> Result<(), HostError> {
        if depth > MAX_DEPTH || self.files.contains_key(path) {
            return Ok(());
        }
        let Some(text) = host.fs.read_text_lossy(path)? else {
            return Ok(());
        };
        self.files.insert(path.to_path_buf(), text.clone());
        for (_, words) in lines(&text) {
            if !words[0].eq_ignore_ascii_case("include") {
                continue;
            }
            for pattern in &words[1..] {
                let pattern = absolute(pattern);
                let (Some(dir), Some(name)) = (pattern.parent(), pattern.file_name()) else {
                    continue;
                };
                let name = name.to_string_lossy();
                for entry in host.fs.list_dir(dir)? {
                    let entry = entry.to_string_lossy();
                    if glob(&name, &entry) {
                        let file = dir.join(entry.as_ref());
                        if host
                            .fs
                            .stat(&file)?
                            .is_some_and(|m| m.kind == crate::host::fs::FileKind::Regular)
                        {
                            self.read(host, &file, depth + 1)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The directives in the order sshd reads them, with `overlay` (a path and its content) in
    /// place of, or added to, the files read.
    pub fn directives(&self, main: &Path, overlay: Option<(&Path, &str)>) -> Vec<Directive> {
        let mut out = Vec::new();
        self.walk(main, overlay, false, 0, &mut out);
        out
    }

    fn content<'a>(&'a self, path: &Path, overlay: Option<(&Path, &'a str)>) -> Option<&'a str> {
        match overlay {
            Some((at, text)) if at == path => Some(text),
            _ => self.files.get(path).map(String::as_str),
        }
    }

    fn walk(
        &self,
        path: &Path,
        overlay: Option<(&Path, &str)>,
        mut conditional: bool,
        depth: usize,
        out: &mut Vec<Directive>,
    ) {
        let Some(text) = self.content(path, overlay).filter(|_| depth <= MAX_DEPTH) else {
            return;
        };
        for (line, words) in lines(text) {
            let key = words[0].to_ascii_lowercase();
            match key.as_str() {
                "match" => conditional = true,
                "include" => {
                    for pattern in &words[1..] {
                        for file in self.expand(&absolute(pattern), overlay) {
                            self.walk(&file, overlay, conditional, depth + 1, out);
                        }
                    }
                }
                _ => out.push(Directive {
                    key,
                    args: words[1..].to_vec(),
                    file: path.to_path_buf(),
                    line,
                    conditional,
                }),
            }
        }
    }

    /// The files a pattern names, sorted by name (bytes), hidden names only if asked for.
    fn expand(&self, pattern: &Path, overlay: Option<(&Path, &str)>) -> Vec<PathBuf> {
        let (Some(dir), Some(name)) = (pattern.parent(), pattern.file_name()) else {
            return Vec::new();
        };
        let name = name.to_string_lossy();
        let mut found: Vec<PathBuf> = self
            .files
            .keys()
            .map(PathBuf::as_path)
            .chain(overlay.map(|(at, _)| at))
            .filter(|p| p.parent() == Some(dir))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| glob(&name, &n.to_string_lossy()))
            })
            .map(Path::to_path_buf)
            .collect();
        found.sort_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
        found.dedup();
        found
    }
}

/// Relative include paths are under `/etc/ssh`, as sshd takes them.
fn absolute(pattern: &str) -> PathBuf {
    if pattern.starts_with('/') {
        PathBuf::from(pattern)
    } else {
        Path::new("/etc/ssh").join(pattern)
    }
}

/// Each line with a keyword: its number and words (the keyword, then the arguments, quotes
/// removed). `Keyword=value` and `Keyword = value` are one keyword and its value.
fn lines(text: &str) -> impl Iterator<Item = (usize, Vec<String>)> + '_ {
    text.lines().enumerate().filter_map(|(i, line)| {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let end = line
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(line.len());
        let (keyword, rest) = line.split_at(end);
        let rest = rest.trim_start();
        let rest = rest.strip_prefix('=').unwrap_or(rest);
        let mut words = vec![keyword.to_owned()];
        words.extend(split_args(rest));
        Some((i + 1, words))
    })
}

fn split_args(text: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    args.push(std::mem::take(&mut current));
                    any = false;
                }
            }
            c => {
                current.push(c);
                any = true;
            }
        }
    }
    if any {
        args.push(current);
    }
    args
}

/// glob(3) on one name: `*`, `?` and `[…]`; a leading `.` only matched by a leading `.`.
pub fn glob(pattern: &str, name: &str) -> bool {
    if name.starts_with('.') && !pattern.starts_with('.') {
        return false;
    }
    matches(pattern.as_bytes(), name.as_bytes())
}

fn matches(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| matches(rest, &name[i..])),
        Some((b'?', rest)) => !name.is_empty() && matches(rest, &name[1..]),
        Some((b'[', rest)) => {
            let Some(close) = rest.iter().skip(1).position(|&b| b == b']') else {
                return name.first() == Some(&b'[') && matches(rest, &name[1..]);
            };
            let (set, rest) = (&rest[..close + 1], &rest[close + 2..]);
            let (negate, set) = match set.split_first() {
                Some((b'!' | b'^', set)) => (true, set),
                _ => (false, set),
            };
            let Some(&c) = name.first() else {
                return false;
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == b'-' {
                    hit |= set[i] <= c && c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == c;
                    i += 1;
                }
            }
            hit != negate && matches(rest, &name[1..])
        }
        Some((&b, rest)) => name.first() == Some(&b) && matches(rest, &name[1..]),
    }
}
