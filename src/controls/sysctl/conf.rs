//! sysctl.d as systemd-sysctl reads it at boot: which files, in which order, and which line of
//! which file sets a key last.
//!
//! systemd-sysctl takes `*.conf` from these directories, merged by file name (a name in an
//! earlier directory masks the same name in a later one; a link to `/dev/null` masks it), sorted
//! by name; a later assignment of the same key replaces an earlier one. `/etc/sysctl.conf` is not
//! read, except through a link such as Debian's `/etc/sysctl.d/99-sysctl.conf`. A key with a glob
//! (`net.ipv4.conf.*.rp_filter`) never beats an explicit assignment of a key it matches, in
//! whichever file; a `-key` line without `=` replaces an assignment and sets nothing.

/// In the order systemd-sysctl ranks them for one name (`/lib` on split-/usr systems).
pub const DIRS: &[&str] = &[
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
];

/// One sysctl.d file that takes part: its path and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfFile {
    pub path: String,
    pub text: String,
}

#[cfg(test)]
impl ConfFile {
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// One assignment line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    pub path: &'a str,
    pub number: usize,
    /// Slash form, as under `/proc/sys` (`kernel/kptr_restrict`).
    pub key: String,
    /// `None` for a `-key` line without `=`.
    pub value: Option<String>,
    pub glob: bool,
}

/// The files that take part, in the order systemd-sysctl reads them: one per name (the first
/// directory of [`DIRS`] that has it), sorted by name. `found` is each directory's files as
/// observed (path, content; `None` for a mask, a link to `/dev/null` or an empty file).
pub fn order(found: Vec<(String, Option<String>)>) -> Vec<ConfFile> {
    let mut by_name: Vec<(String, usize, String, Option<String>)> = found
        .into_iter()
        .map(|(path, text)| {
            let name = path.rsplit('/').next().unwrap_or(&path).to_owned();
            let rank = DIRS
                .iter()
                .position(|dir| path.starts_with(&format!("{dir}/")))
                .unwrap_or(DIRS.len());
            (name, rank, path, text)
        })
        .collect();
    by_name.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    by_name.dedup_by(|later, first| later.0 == first.0);
    by_name
        .into_iter()
        .filter_map(|(_, _, path, text)| Some(ConfFile { path, text: text? }))
        .collect()
}

/// The assignments of a file, as systemd-sysctl parses them.
pub fn lines(file: &ConfFile) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    for (index, raw) in file.text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((key, value)) => (key.trim(), Some(value.trim().to_owned())),
            None => (line, None),
        };
        let (key, ignore_failure) = match key.strip_prefix('-') {
            Some(key) => (key.trim(), true),
            None => (key, false),
        };
        // A line without `=` only means something as `-key` (an exclusion); systemd-sysctl
        // skips any other as a syntax error.
        if key.is_empty() || (value.is_none() && !ignore_failure) {
            continue;
        }
        let key = normalize(key);
        out.push(Line {
            path: &file.path,
            number: index + 1,
            glob: key.contains(['*', '?', '[']),
            key,
            value,
        });
    }
    out
}

/// systemd's `sysctl_normalize`: if the first separator is a dot, dots and slashes swap.
pub fn normalize(key: &str) -> String {
    let key = key.trim_start_matches('/');
    match key.find(['.', '/']) {
        Some(i) if key.as_bytes()[i] == b'.' => key
            .chars()
            .map(|c| match c {
                '.' => '/',
                '/' => '.',
                c => c,
            })
            .collect(),
        _ => key.to_owned(),
    }
}

/// The explicit line that sets `key` (slash form) at boot: the last one in file order.
pub fn winner<'a>(files: &'a [ConfFile], key: &str) -> Option<Line<'a>> {
    let mut last: Option<Line<'a>> = None;
    for file in files {
        for line in lines(file) {
            if !line.glob && line.key == key {
                // An assignment of the value already in force keeps the earlier line.
                let same = matches!((&last, &line.value), (Some(l), Some(v)) if l.value.as_deref() == Some(v));
                if !same {
                    last = Some(line);
                }
            }
        }
    }
    last
}

/// Glob lines that match `key` (slash form), in file order.
pub fn globs<'a>(files: &'a [ConfFile], key: &str) -> Vec<Line<'a>> {
    files
        .iter()
        .flat_map(lines)
        .filter(|line| line.glob && line.value.is_some() && matches(&line.key, key))
        .collect()
}

/// glob(7) as systemd-sysctl expands a pattern over `/proc/sys`: per path component, `*` and `?`
/// never cross a `/`; `[…]` is taken as one character of the set.
pub fn matches(pattern: &str, key: &str) -> bool {
    let pattern: Vec<&str> = pattern.split('/').collect();
    let key: Vec<&str> = key.split('/').collect();
    pattern.len() == key.len()
        && pattern
            .iter()
            .zip(&key)
            .all(|(p, k)| component(p.as_bytes(), k.as_bytes()))
}

fn component(p: &[u8], k: &[u8]) -> bool {
    match p.split_first() {
        None => k.is_empty(),
        Some((b'*', rest)) => (0..=k.len()).any(|i| component(rest, &k[i..])),
        Some((b'?', rest)) => !k.is_empty() && component(rest, &k[1..]),
        Some((b'[', rest)) => match (rest.iter().position(|&b| b == b']'), k.split_first()) {
            (Some(end), Some((c, k_rest))) => {
                let set = &rest[..end];
                let (negated, set) = match set.split_first() {
                    Some((b'!' | b'^', set)) => (true, set),
                    _ => (false, set),
                };
                set.contains(c) != negated && component(&rest[end + 1..], k_rest)
            }
            _ => false,
        },
        Some((c, rest)) => k.first() == Some(c) && component(rest, &k[1..]),
    }
}
