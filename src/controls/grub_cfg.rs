//! The OEM `grub.cfg` as a carrier of kernel arguments: Flatcar's GRUB sources it, and an
//! unconditional `set linux_append="$linux_append ARG"` line (the form Ignition's
//! `kernelArguments` writes and parses too) reaches the kernel command line at the next boot.
//! Every kernel-argument control reads and edits it through this one module.

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

/// The unconditional `set linux_append=…` lines: line number and the words of the value.
pub fn set_lines(grub: &str) -> Vec<(usize, Vec<String>)> {
    top_level(grub)
        .into_iter()
        .enumerate()
        .filter(|(_, (_, top))| *top)
        .filter_map(|(index, (line, _))| {
            let value = line.trim().strip_prefix("set")?;
            let value = value
                .strip_prefix(char::is_whitespace)?
                .trim_start()
                .strip_prefix("linux_append=")?;
            // A quoted value runs to its closing quote; an unquoted one is one word.
            let value = match value.chars().next() {
                Some(quote @ ('"' | '\'')) => value[1..].split(quote).next().unwrap_or(""),
                _ => value.split_whitespace().next().unwrap_or(""),
            };
            Some((
                index + 1,
                value.split_whitespace().map(str::to_owned).collect(),
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
            if word == "$linux_append" || word == "${linux_append}" {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn has(args: &[String]) -> bool {
        args.iter().any(|a| a == "nosmt")
    }

    #[test]
    fn grub_cfg_lines_are_kept_and_never_duplicated() {
        // Already there, in Ignition's form: nothing to add.
        let grub = "set oem_id=\"qemu\"\nset linux_append=\"$linux_append nosmt\"\n";
        assert!(has(&linux_append(grub)));
        // Inside a conditional block it does not count.
        let grub = "if [ \"$grub_platform\" = efi ]; then\n  set linux_append=\"$linux_append nosmt\"\nfi\n";
        assert!(!has(&linux_append(grub)));
        let edited = add_argument(grub, "nosmt", &[]);
        assert!(edited.starts_with(grub), "{edited}");
        assert!(has(&linux_append(&edited)));
        // A later line that replaces linux_append loses the earlier argument: move, never copy.
        let grub =
            "set linux_append=\"$linux_append nosmt\"\nset linux_append=\"flatcar.autologin\"\n";
        assert!(!has(&linux_append(grub)));
        let edited = add_argument(grub, "nosmt", &[]);
        assert_eq!(
            edited,
            "set linux_append=\"flatcar.autologin\"\nset linux_append=\"$linux_append nosmt\"\n"
        );
        assert_eq!(
            linux_append(&edited),
            ["flatcar.autologin", "nosmt"],
            "the earlier argument is kept"
        );
        // Comments do not open blocks ("for this platform").
        let grub = "set oem_id=\"qemu\"\nset linux_append=\"$linux_append nosmt\" # for SMT\n";
        assert!(has(&linux_append(grub)));
        // No trailing newline: the other lines are kept byte for byte.
        assert_eq!(
            add_argument("set oem_id=\"qemu\"", "nosmt", &[]),
            "set oem_id=\"qemu\"\nset linux_append=\"$linux_append nosmt\"\n"
        );
        // From off to auto, the agent's own nosmt line is replaced; mitigations=off later wins.
        let edited = add_argument(
            "set linux_append=\"$linux_append nosmt\"\n",
            "mitigations=auto,nosmt",
            &["nosmt"],
        );
        assert_eq!(
            edited,
            "set linux_append=\"$linux_append mitigations=auto,nosmt\"\n"
        );
        assert_eq!(
            linux_append(&format!(
                "{edited}set linux_append=\"$linux_append mitigations=off\"\n"
            )),
            ["mitigations=auto,nosmt", "mitigations=off"]
        );
    }
}
