//! Drift from the effective configuration: the file and line that set a managed keyword before
//! the drop-in (or add to its list), from the reader; and what `sshd -T` shows against what the
//! settings should give.

use std::path::Path;

use super::reader::Directive;
use super::{normalized, Setting, DROPIN};
use crate::controls::Plan;
use crate::host::sshd::{Effective, CONNECTION_SPEC, SSHD_CONFIG};

/// Problems for every managed keyword whose first value (with the drop-in in place) comes from
/// another file, or that another file adds to; returns the keywords named that way.
pub(super) fn winners(
    plan: &mut Plan,
    settings: &[Setting],
    directives: &[Directive],
) -> Vec<String> {
    let dropin = Path::new(DROPIN);
    let mut named = Vec::new();
    if !settings.is_empty() && !directives.iter().any(|d| d.file == dropin) {
        plan.problems.push(format!(
            "sshd does not read {DROPIN}: {SSHD_CONFIG} has no `Include` of \
             /etc/ssh/sshd_config.d/*.conf; add `Include \"/etc/ssh/sshd_config.d/*.conf\"` as \
             its first line"
        ));
        return settings.iter().map(|s| s.keyword.to_owned()).collect();
    }
    for setting in settings {
        let key = setting.keyword.to_ascii_lowercase();
        let same = directives.iter().filter(|d| d.key == key);
        for directive in same {
            if directive.file == dropin {
                if !setting.accumulates {
                    break;
                }
                continue;
            }
            if directive.conditional {
                plan.notes.push(format!(
                    "{}: `{} {}` inside a Match block applies to the connections it matches \
                     (`sshd -T -C {CONNECTION_SPEC}` is what is judged)",
                    directive.location(),
                    setting.keyword,
                    directive.args.join(" ")
                ));
                continue;
            }
            plan.problems.push(if setting.accumulates {
                format!(
                    "{}: `{} {}` adds to the drop-in's list, so sshd lets more in than the \
                     policy's `{}`; remove that line",
                    directive.location(),
                    setting.keyword,
                    directive.args.join(" "),
                    setting.value
                )
            } else {
                format!(
                    "{}: `{} {}` is read before {DROPIN}, and sshd keeps the first value: the \
                     policy's `{}` is not in force; remove that line (or rename the file to \
                     sort after {DROPIN})",
                    directive.location(),
                    setting.keyword,
                    directive.args.join(" "),
                    setting.value
                )
            });
            named.push(key.clone());
            if !setting.accumulates {
                break;
            }
        }
    }
    named
}

/// Compares `sshd -T` with what the settings should give; a keyword already named by
/// [`winners`] is not reported twice.
pub(super) fn judge_effective(
    plan: &mut Plan,
    settings: &[Setting],
    effective: &Result<Effective, String>,
    named: &[String],
) {
    let effective = match effective {
        Ok(effective) => effective,
        Err(error) => {
            plan.problems
                .push(format!("{error}: the settings in force cannot be told"));
            return;
        }
    };
    for setting in settings {
        let key = setting.keyword.to_ascii_lowercase();
        let Some(expected) = &setting.expected else {
            continue;
        };
        let found: Vec<String> = effective
            .get(&key)
            .map(|values| values.iter().map(|v| normalized(&key, v)).collect())
            .unwrap_or_default();
        if &found != expected && !named.contains(&key) {
            plan.problems.push(format!(
                "`sshd -T -C {CONNECTION_SPEC}` shows `{key} {}` where the policy wants `{}`: \
                 something sshd reads (a Match block, a file the reader could not follow) wins \
                 over {DROPIN}",
                found.join(" "),
                expected.join(" ")
            ));
        }
    }
}
