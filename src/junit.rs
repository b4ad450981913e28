//! `--format junit`: a run as one JUnit `<testsuite>`, one `<testcase>` per control, for image
//! pipelines that publish test results (docs/fleet.md).
//!
//! `failed`, and for `check` also `would-change`, are failures (the notes, or else the summary,
//! as the message); `skipped` and `not-applicable` are skipped; everything else passed. Written
//! by hand: five entities and the characters XML 1.0 cannot hold do not need an XML crate.

use std::fmt::Write as _;
use std::time::Duration;

use crate::report::{ControlReport, Mode, Report, Status};

enum Verdict {
    Passed,
    Failure,
    Skipped,
}

fn verdict(mode: Mode, status: Status) -> Verdict {
    match status {
        Status::Failed => Verdict::Failure,
        Status::WouldChange if mode == Mode::Check => Verdict::Failure,
        // Reverted after an unconfirmed change and waiting for the operator: not as the policy says.
        Status::Held => Verdict::Failure,
        Status::Skipped | Status::NotApplicable => Verdict::Skipped,
        _ => Verdict::Passed,
    }
}

/// Text for XML content and attribute values: the five entities; tab, newline and carriage
/// return as character references (an attribute would otherwise fold them into spaces); any
/// other character XML 1.0 forbids (C0 controls, U+FFFE, U+FFFF) as the text `\u{..}`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// What a failure or skip says: the summary, then the notes.
fn message(control: &ControlReport) -> String {
    std::iter::once(control.summary.as_str())
        .chain(control.notes.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The details a person reads under a failure: summary, changes, notes, one per line.
fn details(control: &ControlReport) -> String {
    let mut lines = vec![control.summary.clone()];
    for change in &control.changes {
        let what = change.path.as_deref().or(change.target.as_deref());
        lines.push(format!(
            "{} {} ({})",
            change.kind,
            what.unwrap_or_default(),
            change.detail
        ));
    }
    lines.extend(control.notes.iter().map(|note| format!("note: {note}")));
    lines.join("\n")
}

/// The whole document for `report`; `elapsed` is the run's wall-clock time.
pub fn render(report: &Report, elapsed: Duration, hostname: &str) -> String {
    let mode = report.mode;
    let count = |wanted: fn(&Verdict) -> bool| {
        report
            .controls
            .iter()
            .filter(|c| wanted(&verdict(mode, c.status)))
            .count()
    };
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuite name=\"flatcar-harden {}\" tests=\"{}\" failures=\"{}\" errors=\"0\" \
         skipped=\"{}\" time=\"{:.3}\" hostname=\"{}\">",
        mode.as_str(),
        report.controls.len(),
        count(|v| matches!(v, Verdict::Failure)),
        count(|v| matches!(v, Verdict::Skipped)),
        elapsed.as_secs_f64(),
        escape(hostname)
    );
    out.push_str("  <properties>\n");
    let mut property = |name: &str, value: &str| {
        let _ = writeln!(
            out,
            "    <property name=\"{name}\" value=\"{}\"/>",
            escape(value)
        );
    };
    property("version", env!("CARGO_PKG_VERSION"));
    property("root", &report.root);
    property("policy-sources", &report.policy_sources.join(", "));
    out.push_str("  </properties>\n");
    for control in &report.controls {
        let _ = write!(
            out,
            "  <testcase classname=\"flatcar-harden\" name=\"{}\" time=\"{:.3}\"",
            escape(control.id),
            control.duration_ms as f64 / 1000.0
        );
        match verdict(mode, control.status) {
            Verdict::Passed => {
                let _ = writeln!(
                    out,
                    ">\n    <system-out>{}</system-out>\n  </testcase>",
                    escape(&format!(
                        "{}: {}",
                        control.status.as_str(),
                        details(control)
                    ))
                );
            }
            Verdict::Failure => {
                let _ = writeln!(
                    out,
                    ">\n    <failure message=\"{}\" type=\"{}\">{}</failure>\n  </testcase>",
                    escape(&message(control)),
                    control.status.as_str(),
                    escape(&details(control))
                );
            }
            Verdict::Skipped => {
                let _ = writeln!(
                    out,
                    ">\n    <skipped message=\"{}\"/>\n  </testcase>",
                    escape(&format!(
                        "{}: {}",
                        control.status.as_str(),
                        message(control)
                    ))
                );
            }
        }
    }
    out.push_str("</testsuite>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Change;

    fn control(id: &'static str, status: Status, note: &str) -> ControlReport {
        ControlReport {
            id,
            title: "t",
            status,
            summary: format!("summary of {id}"),
            changes: vec![Change {
                kind: "write-file",
                path: Some("/etc/a<b>&\"c\"".into()),
                target: None,
                diff: None,
                detail: "create".into(),
            }],
            notes: if note.is_empty() {
                Vec::new()
            } else {
                vec![note.into()]
            },
            duration_ms: 12,
        }
    }

    fn report(mode: Mode) -> Report {
        let mut report = Report::new(mode, "/".into(), vec!["built-in default".into()]);
        report.push(control(
            "sshd-socket",
            Status::WouldChange,
            "refused: over \u{1b}SSH\r\n",
        ));
        report.push(control("docker-socket", Status::Compliant, ""));
        report.push(control(
            "core-sudo",
            Status::Failed,
            "it's <broken> & \u{0}odd",
        ));
        report.push(control("smt", Status::Skipped, ""));
        report.push(control("selinux", Status::NotApplicable, ""));
        report.push(control("usb-storage", Status::PendingReboot, "reboot"));
        report
    }

    fn parse(xml: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("not well-formed: {e}\n{xml}"))
    }

    #[test]
    fn check_is_one_suite_with_a_testcase_per_control_and_the_right_counts() {
        let xml = render(&report(Mode::Check), Duration::from_millis(1500), "node-1");
        let doc = parse(&xml);
        let suite = doc.root_element();
        assert_eq!(suite.tag_name().name(), "testsuite");
        assert_eq!(suite.attribute("tests"), Some("6"));
        assert_eq!(suite.attribute("failures"), Some("2"));
        assert_eq!(suite.attribute("skipped"), Some("2"));
        assert_eq!(suite.attribute("time"), Some("1.500"));
        let cases: Vec<_> = suite
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        let names: Vec<_> = cases.iter().map(|c| c.attribute("name").unwrap()).collect();
        assert_eq!(
            names,
            [
                "sshd-socket",
                "docker-socket",
                "core-sudo",
                "smt",
                "selinux",
                "usb-storage"
            ]
        );
        assert!(cases
            .iter()
            .all(|c| c.attribute("classname") == Some("flatcar-harden")));
        let child = |i: usize, tag: &str| cases[i].children().find(|n| n.has_tag_name(tag));
        // The note comes back as it was, control characters aside.
        let failure = child(0, "failure").unwrap();
        assert_eq!(
            failure.attribute("message"),
            Some("summary of sshd-socket; refused: over \\u{1b}SSH\r\n")
        );
        assert_eq!(failure.attribute("type"), Some("would-change"));
        assert!(failure
            .text()
            .unwrap()
            .contains("write-file /etc/a<b>&\"c\" (create)"));
        assert_eq!(
            child(2, "failure").unwrap().attribute("message"),
            Some("summary of core-sudo; it's <broken> & \\u{0}odd")
        );
        assert!(child(3, "skipped").is_some() && child(4, "skipped").is_some());
        assert!(child(1, "failure").is_none() && child(5, "failure").is_none());
    }

    #[test]
    fn would_change_is_a_failure_for_check_only() {
        let doc_xml = render(&report(Mode::DryRun), Duration::ZERO, "h");
        let doc = parse(&doc_xml);
        assert_eq!(doc.root_element().attribute("failures"), Some("1"));
        assert_eq!(
            doc.root_element().attribute("name"),
            Some("flatcar-harden dry-run")
        );
    }

    #[test]
    fn every_character_xml_forbids_is_replaced_and_the_rest_comes_back_as_it_was() {
        let all: String = (0u32..0x80)
            .filter_map(char::from_u32)
            .chain(['\u{fffe}', '\u{ffff}', 'é'])
            .collect();
        let xml = format!("<a b=\"{0}\">{0}</a>", escape(&all));
        let doc = parse(&xml);
        let expected: String = all
            .chars()
            .map(|c| match c {
                '\t' | '\n' | '\r' => c.to_string(),
                c if (c as u32) < 0x20 || c > '\u{fffd}' => format!("\\u{{{:x}}}", c as u32),
                c => c.to_string(),
            })
            .collect();
        let root = doc.root_element();
        assert_eq!(root.attribute("b"), Some(expected.as_str()));
        // Content keeps \r only as a reference; the parser hands it back the same.
        assert_eq!(root.text(), Some(expected.as_str()));
    }
}
