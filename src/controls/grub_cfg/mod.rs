//! The OEM `grub.cfg` as a carrier of kernel arguments: Flatcar's GRUB sources it, and an
//! unconditional `set linux_append="$linux_append ARG"` line (the form Ignition's
//! `kernelArguments` writes and parses too) reaches the kernel command line at the next boot.
//! Every kernel-argument control (smt, kernel-lockdown, console-autologin) reads and edits it
//! through this one module: the text editing here, the file as observed and written in `file.rs`.

mod file;

pub use file::GrubCfg;

/// The line the agent writes: unconditional, appending to what earlier lines set.
pub fn grub_line(argument: &str) -> String {
    format!("set linux_append=\"$linux_append {argument}\"")
}

/// Lines of a grub.cfg (with their newline) and whether each is unconditional: outside any
/// `if`/`for`/`while`/`until` block and any `{ … }` body (`menuentry`, `function`), and not a
/// one-line `if …; then …; fi` itself.
fn top_level(grub: &str) -> Vec<(&str, bool)> {
    let mut depth: usize = 0;
    grub.split_inclusive('\n')
        .map(|line| {
            let mut top = depth == 0;
            for token in line
                .split(|c: char| c == ';' || c.is_whitespace())
                .filter(|t| !t.is_empty())
                .take_while(|t| !t.starts_with('#'))
            {
                match token {
                    "if" | "for" | "while" | "until" | "{" => {
                        depth += 1;
                        top = false;
                    }
                    "fi" | "done" | "}" => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            (line, top)
        })
        .collect()
}

/// Where the value of a `set linux_append=VALUE` command starts and ends in `line` (inside its
/// quotes, if quoted), for a line that is that command (at any depth).
fn value_span(line: &str) -> Option<(usize, usize)> {
    let rest = line.trim_start().strip_prefix("set")?;
    let rest = rest
        .strip_prefix(char::is_whitespace)?
        .trim_start()
        .strip_prefix("linux_append=")?;
    let at = line.len() - rest.len();
    let body = line[at..].trim_end_matches(['\n', '\r']);
    // A quoted value runs to its closing quote; an unquoted one is one word.
    Some(match body.chars().next() {
        Some(quote @ ('"' | '\'')) => {
            let inner = &body[1..];
            (at + 1, at + 1 + inner.find(quote).unwrap_or(inner.len()))
        }
        _ => (
            at,
            at + body.find(char::is_whitespace).unwrap_or(body.len()),
        ),
    })
}

/// The unconditional `set linux_append=…` lines: line number and the words of the value.
pub fn set_lines(grub: &str) -> Vec<(usize, Vec<String>)> {
    top_level(grub)
        .into_iter()
        .enumerate()
        .filter(|(_, (_, top))| *top)
        .filter_map(|(index, (line, _))| {
            let (start, end) = value_span(line)?;
            Some((
                index + 1,
                line[start..end]
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect(),
            ))
        })
        .collect()
}

/// The kernel arguments the unconditional `set linux_append=` lines leave, in order: a line that
/// mentions `$linux_append` extends what came before, any other replaces it.
pub fn linux_append(grub: &str) -> Vec<String> {
    let mut args: Vec<String> = Vec::new();
    for (_, words) in set_lines(grub) {
        let mut next = Vec::new();
        for word in words {
            if is_self(&word) {
                next.extend(args.iter().cloned());
            } else {
                next.push(word);
            }
        }
        args = next;
    }
    args
}

/// grub.cfg with `set linux_append="$linux_append ARGUMENT"` as its last line, every other line
/// kept byte for byte. A copy of the same line that no longer counts (a later line replaced
/// `linux_append`) is moved rather than duplicated; the agent's own lines for the arguments in
/// `superseded` (an earlier policy's choice) go.
pub fn add_argument(grub: &str, argument: &str, superseded: &[&str]) -> String {
    let ours = grub_line(argument);
    let old: Vec<String> = superseded.iter().map(|a| grub_line(a)).collect();
    let mut out = String::with_capacity(grub.len() + ours.len() + 1);
    for (line, top) in top_level(grub) {
        let text = line.trim();
        let replaced = top && (text == ours || old.iter().any(|o| o == text));
        if !replaced {
            out.push_str(line);
        }
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&ours);
    out.push('\n');
    out
}

/// Whether a word only refers back to what earlier lines set.
fn is_self(word: &str) -> bool {
    word == "$linux_append" || word == "${linux_append}"
}

/// grub.cfg without the arguments `unwanted` picks, taken out of every `set linux_append=` line
/// (conditional ones too: wherever it is, GRUB may pass it). Every other word, line and byte is
/// kept; an unconditional line left with nothing but `$linux_append` does nothing and goes (one
/// in a block stays, as GRUB's parser wants a command in every `then`), while a line that
/// replaced `linux_append` keeps doing so (`set linux_append="flatcar.autologin"` becomes
/// `set linux_append=""`). Other commands naming such an argument are not edited: see
/// [`mentions`].
pub fn remove_argument(grub: &str, unwanted: impl Fn(&str) -> bool) -> String {
    let mut out = String::with_capacity(grub.len());
    for (line, top) in top_level(grub) {
        let Some((start, end)) = value_span(line) else {
            out.push_str(line);
            continue;
        };
        let words: Vec<&str> = line[start..end].split_whitespace().collect();
        if !words.iter().any(|w| unwanted(w)) {
            out.push_str(line);
            continue;
        }
        let kept: Vec<&str> = words.into_iter().filter(|w| !unwanted(w)).collect();
        if top && kept.len() == 1 && is_self(kept[0]) {
            continue;
        }
        out.push_str(&line[..start]);
        out.push_str(&kept.join(" "));
        out.push_str(&line[end..]);
    }
    out
}

/// Numbers of the lines that still name an argument `unwanted` picks, outside comments: what
/// [`remove_argument`] could not take out (a one-line `if …; then set …; fi`, another variable).
pub fn mentions(grub: &str, unwanted: impl Fn(&str) -> bool) -> Vec<usize> {
    grub.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.split('#').next().unwrap_or("");
            code.split(|c: char| c.is_whitespace() || matches!(c, ';' | '"' | '\''))
                .any(|word| unwanted(word.strip_prefix("linux_append=").unwrap_or(word)))
        })
        .map(|(index, _)| index + 1)
        .collect()
}

#[cfg(test)]
mod tests;
