//! SMT (simultaneous multi-threading) off, now and at every boot.
//!
//! The guide: some Intel vulnerabilities "cannot be fully mitigated in software without disabling
//! Simultaneous Multi-Threading". Two halves:
//!
//! - **Runtime**: `/sys/devices/system/cpu/smt/control` takes `off`, which takes the sibling
//!   threads offline now (`smt/active` then reads 0). It does not survive a reboot. `forceoff`
//!   (booted with `nosmt=force`) and `notsupported` (no SMT in this CPU) already mean no SMT;
//!   `notimplemented` (or no `smt/` at all) means the kernel cannot control it: not applicable.
//! - **Persistent**: a kernel argument, which Flatcar takes from the OEM `grub.cfg` as one
//!   unconditional line `set linux_append="$linux_append nosmt"` (the form Ignition's
//!   `kernelArguments` writes and parses too). It takes effect at the next boot; until
//!   `/proc/cmdline` has it, the control is `pending-reboot`.
//!
//! `auto` is `mitigations=auto,nosmt`: the kernel turns SMT off at boot only where a known
//! vulnerability needs it. At runtime the agent makes the same decision from the kernel's own
//! verdicts, `/sys/devices/system/cpu/vulnerabilities/*`: a file saying "SMT vulnerable" turns
//! SMT off now, and the report names it; none leaves SMT on, and the report says so.

use std::path::Path;

use super::{Action, Control, ControlError, Disposition, FileWrite, Plan, Validation};
use crate::host::fs::{FileKind, FileSpec, Owner};
use crate::host::kernel::{Cmdline, Kernel, CMDLINE};
use crate::host::Host;
use crate::policy::{self, SmtState};

const CONTROL: &str = "/sys/devices/system/cpu/smt/control";
const ACTIVE: &str = "/sys/devices/system/cpu/smt/active";
const VULNERABILITIES: &str = "/sys/devices/system/cpu/vulnerabilities";
/// What the kernel writes into a vulnerability's file while SMT leaves the host exposed to it.
const SMT_VULNERABLE: &str = "SMT vulnerable";

pub struct Smt {
    policy: policy::Smt,
}

impl Smt {
    pub fn new(policy: policy::Smt) -> Self {
        Smt { policy }
    }
}

pub struct State {
    grub: Option<String>,
    /// Mode and owner of the existing grub.cfg, kept when it is edited.
    grub_meta: Option<(u32, Owner)>,
    /// The directory holding grub.cfg exists (the OEM partition is mounted).
    grub_dir: bool,
    /// `None` for an image: no running kernel to look at.
    runtime: Option<Runtime>,
}

struct Runtime {
    /// `smt/control`; `None` when the kernel has no `smt/` directory.
    control: Option<String>,
    active: Option<String>,
    /// Vulnerabilities whose file says "SMT vulnerable": name and text.
    vulnerable: Vec<(String, String)>,
    /// The kernel has a `vulnerabilities/` directory at all.
    vulnerabilities_listed: bool,
    cmdline: Cmdline,
}

impl Control for Smt {
    type State = State;

    fn id(&self) -> &'static str {
        "smt"
    }

    fn title(&self) -> &'static str {
        "SMT disabled"
    }

    fn unmanaged(&self) -> Option<String> {
        (self.policy.state == SmtState::Unmanaged)
            .then(|| "left alone (policy: smt.state = \"unmanaged\")".to_owned())
    }

    fn observe(&self, host: &Host) -> Result<State, ControlError> {
        let path = &self.policy.grub_cfg.0;
        let dir = path.parent().unwrap_or(Path::new("/"));
        Ok(State {
            grub: host.fs.read_text(path)?,
            grub_meta: host.fs.stat(path)?.map(|m| {
                (
                    m.mode,
                    Owner {
                        uid: m.uid,
                        gid: m.gid,
                    },
                )
            }),
            grub_dir: host
                .fs
                .stat(dir)?
                .is_some_and(|m| m.kind == FileKind::Directory),
            runtime: host.kernel().map(observe_runtime).transpose()?,
        })
    }

    fn plan(&self, host: &Host, state: &State) -> Result<Plan, ControlError> {
        let mode = self.policy.state;
        let argument = argument(mode);
        let path = &self.policy.grub_cfg.0;
        let mut plan = Plan::managed(String::new());
        let mut summary = Vec::new();
        // Written after grub.cfg: if the kernel refuses it, the next boot still has the argument.
        let mut switch_off = None;

        // Runtime half first: a kernel that cannot control SMT makes the whole control moot.
        match &state.runtime {
            None => plan.pending.push(match mode {
                SmtState::Auto => format!(
                    "takes effect at boot: there is no running kernel under this root; at boot \
                     the kernel turns SMT off where a vulnerability needs it (`{argument}`)"
                ),
                _ => format!(
                    "takes effect at boot: there is no running kernel under this root; SMT goes \
                     off when the image boots with `{argument}`"
                ),
            }),
            Some(runtime) => {
                let control = runtime.control.as_deref().unwrap_or("notimplemented");
                let active = runtime.active.as_deref().unwrap_or("?");
                match control {
                    "notimplemented" => {
                        return Ok(Plan::with(
                            Disposition::NotApplicable,
                            format!(
                                "this kernel cannot control SMT ({CONTROL}: {})",
                                runtime.control.as_deref().unwrap_or("missing")
                            ),
                        ))
                    }
                    "forceoff" => summary.push(
                        "SMT is forced off (control forceoff: booted with nosmt=force; it \
                         cannot be turned on)"
                            .to_owned(),
                    ),
                    "notsupported" => summary
                        .push("this CPU has no SMT to turn off (control notsupported)".to_owned()),
                    "off" => summary.push(format!("SMT is off (control off, active {active})")),
                    "on" => {
                        let off_now = match mode {
                            SmtState::Auto if runtime.vulnerable.is_empty() => {
                                summary.push(if runtime.vulnerabilities_listed {
                                    format!(
                                        "SMT stays on (control on, active {active}): no file in \
                                         {VULNERABILITIES} says \"{SMT_VULNERABLE}\""
                                    )
                                } else {
                                    format!(
                                        "SMT stays on (control on, active {active}): this \
                                         kernel lists no vulnerabilities ({VULNERABILITIES} \
                                         is missing)"
                                    )
                                });
                                false
                            }
                            SmtState::Auto => {
                                let names: Vec<String> = runtime
                                    .vulnerable
                                    .iter()
                                    .map(|(name, text)| format!("{name} (\"{text}\")"))
                                    .collect();
                                summary.push(format!(
                                    "SMT is on (control on, active {active}) and {VULNERABILITIES} \
                                     says it must go: {}; turn it off now",
                                    names.join(", ")
                                ));
                                true
                            }
                            _ => {
                                summary.push(format!(
                                    "SMT is on (control on, active {active}): turn it off now"
                                ));
                                true
                            }
                        };
                        if off_now {
                            switch_off = Some(Action::WriteKernelSetting {
                                path: CONTROL.to_owned(),
                                value: "off".to_owned(),
                                before: control.to_owned(),
                            });
                        }
                    }
                    other => plan.problems.push(format!(
                        "{CONTROL} reads `{other}`, which this agent does not know; nothing \
                         written"
                    )),
                }
                if !takes_effect(mode, &runtime.cmdline.0) {
                    plan.pending.push(format!(
                        "the running kernel was booted without `{argument}` ({CMDLINE}); {} \
                         brings it at the next boot",
                        path.display()
                    ));
                }
            }
        }

        // Persistent half: the kernel argument in the OEM grub.cfg.
        let grub = state.grub.as_deref().unwrap_or("");
        let content = if takes_effect(mode, &linux_append(grub)) {
            summary.push(format!("`{argument}` in {}", path.display()));
            grub.to_owned()
        } else if !state.grub_dir {
            plan.problems.push(format!(
                "{} does not exist, so {} cannot be written: is the OEM partition mounted? \
                 (policy key smt.grub_cfg)",
                path.parent().unwrap_or(Path::new("/")).display(),
                path.display()
            ));
            grub.to_owned()
        } else {
            summary.push(format!(
                "add `{}` to {}",
                grub_line(argument),
                path.display()
            ));
            let edited = add_argument(grub, mode);
            let (mode_bits, owner) = state.grub_meta.unwrap_or((0o644, host.file_owner()));
            let spec = FileSpec {
                content: edited.clone().into_bytes(),
                mode: mode_bits,
                owner,
                parent_mode: 0o755,
            };
            plan.actions.extend(
                FileWrite::plan(host, path, spec, Validation::None)?.map(Action::WriteFile),
            );
            edited
        };
        if mode == SmtState::Auto {
            // A `nosmt` the agent did not write would keep SMT off everywhere: not what `auto` asks.
            for (line, words) in set_lines(&content) {
                if words.iter().any(|w| w == "nosmt" || w == "nosmt=force") {
                    plan.problems.push(format!(
                        "{}:{line} passes `nosmt`, which turns SMT off on every CPU, so \
                         smt.state = \"auto\" cannot take effect; remove it there, or use \
                         smt.state = \"off\"",
                        path.display()
                    ));
                }
            }
        }
        plan.actions.extend(switch_off);
        plan.summary = summary.join("; ");
        Ok(plan)
    }
}

fn observe_runtime(kernel: &Kernel) -> Result<Runtime, ControlError> {
    let mut vulnerable = Vec::new();
    for name in kernel.list(VULNERABILITIES)? {
        if let Some(text) = kernel.read(&format!("{VULNERABILITIES}/{name}"))? {
            if text.contains(SMT_VULNERABLE) {
                vulnerable.push((name, text));
            }
        }
    }
    Ok(Runtime {
        control: kernel.read(CONTROL)?,
        active: kernel.read(ACTIVE)?,
        vulnerable,
        vulnerabilities_listed: kernel.has_dir(VULNERABILITIES)?,
        cmdline: kernel.cmdline()?,
    })
}

/// The kernel argument a mode asks for.
fn argument(mode: SmtState) -> &'static str {
    match mode {
        SmtState::Auto => "mitigations=auto,nosmt",
        _ => "nosmt",
    }
}

/// Whether kernel arguments (in order) give what the policy asks for. `nosmt=force` is `nosmt`
/// that cannot be undone at runtime; for `mitigations=` the last one counts, as in the kernel.
fn takes_effect(mode: SmtState, args: &[String]) -> bool {
    match mode {
        SmtState::Auto => {
            args.iter()
                .rev()
                .find_map(|a| a.strip_prefix("mitigations="))
                == Some("auto,nosmt")
        }
        _ => args.iter().any(|a| a == "nosmt" || a == "nosmt=force"),
    }
}

/// The line the agent writes: unconditional, appending to what earlier lines set.
fn grub_line(argument: &str) -> String {
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
fn set_lines(grub: &str) -> Vec<(usize, Vec<String>)> {
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
fn linux_append(grub: &str) -> Vec<String> {
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

/// grub.cfg with the policy's line as its last line: every other line kept byte for byte. A copy
/// of the same line that no longer counts (a later line replaced `linux_append`) is moved rather
/// than duplicated; for `auto`, the agent's own `nosmt` line (from an earlier `off` policy) goes.
fn add_argument(grub: &str, mode: SmtState) -> String {
    let ours = grub_line(argument(mode));
    let nosmt = grub_line("nosmt");
    let mut out = String::with_capacity(grub.len() + ours.len() + 1);
    for (line, top) in top_level(grub) {
        let text = line.trim();
        let replaced = top && (text == ours || (mode == SmtState::Auto && text == nosmt));
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
    use crate::controls::testkit::{self, text};
    use crate::controls::Step;
    use crate::policy::{AbsolutePath, Policy};
    use crate::report::{ControlReport, Mode, Status};
    use std::fs;
    use std::path::PathBuf;

    const QEMU_GRUB: &str = "# Set kernel arguments for this platform here.\nset oem_id=\"qemu\"\n";

    /// A root with an OEM grub.cfg and, beside it, a fake running kernel.
    struct Machine(testkit::Machine);

    impl Machine {
        fn new(grub: Option<&str>) -> Machine {
            let m = testkit::Machine::new(
                "BOOT_IMAGE=/flatcar/vmlinuz-a mount.usr=/dev/mapper/usr console=ttyS0\n",
            );
            fs::create_dir_all(m.root.join("oem")).unwrap();
            if let Some(grub) = grub {
                m.root_file("/oem/grub.cfg", grub);
            }
            Machine(m)
        }

        fn smt(self, control: &str, active: &str) -> Machine {
            self.0.kernel_file(CONTROL, &format!("{control}\n"));
            self.0.kernel_file(ACTIVE, &format!("{active}\n"));
            self
        }

        fn vulnerability(self, name: &str, text: &str) -> Machine {
            self.0
                .kernel_file(&format!("{VULNERABILITIES}/{name}"), &format!("{text}\n"));
            self
        }

        fn cmdline(self, text: &str) -> Machine {
            self.0.kernel_file("/proc/cmdline", text);
            self
        }

        fn grub(&self) -> String {
            self.0.read_root("/oem/grub.cfg")
        }

        fn control(&self) -> String {
            self.0.read_kernel(CONTROL)
        }
    }

    impl std::ops::Deref for Machine {
        type Target = testkit::Machine;
        fn deref(&self) -> &testkit::Machine {
            &self.0
        }
    }

    fn policy(state: SmtState) -> Policy {
        let mut policy = Policy::default();
        policy.smt.state = state;
        policy
    }

    fn run(host: &Host, state: SmtState, mode: Mode) -> ControlReport {
        let policy = policy(state);
        testkit::run(host, &policy, Box::new(Smt::new(policy.smt.clone())), mode)
    }

    #[test]
    fn off_turns_smt_off_now_and_adds_nosmt_once() {
        let m = Machine::new(Some(QEMU_GRUB)).smt("on", "1");
        let check = run(&m.live(), SmtState::Off, Mode::Check);
        assert_eq!(check.status, Status::WouldChange, "{}", text(&check));
        let kinds: Vec<&str> = check.changes.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, ["write-file", "write-sysfs"]);
        assert_eq!(check.changes[1].target.as_deref(), Some(CONTROL));
        assert_eq!(check.changes[1].detail, "on -> off");
        assert_eq!(m.control(), "on\n", "check writes nothing");
        assert_eq!(m.grub(), QEMU_GRUB);

        let apply = run(&m.live(), SmtState::Off, Mode::Apply);
        // The running kernel was booted without nosmt: the rest comes with the next boot.
        assert_eq!(apply.status, Status::PendingReboot, "{}", text(&apply));
        assert!(
            text(&apply).contains("booted without `nosmt`"),
            "{}",
            text(&apply)
        );
        assert_eq!(m.control(), "off");
        assert_eq!(
            m.grub(),
            format!("{QEMU_GRUB}set linux_append=\"$linux_append nosmt\"\n")
        );

        let again = run(&m.live(), SmtState::Off, Mode::Apply);
        assert_eq!(again.status, Status::PendingReboot);
        assert!(again.changes.is_empty());
        assert_eq!(m.grub().matches("nosmt").count(), 1, "no duplicate line");

        // After the reboot the kernel has the argument: compliant.
        let booted = m
            .smt("off", "0")
            .cmdline("BOOT_IMAGE=/flatcar/vmlinuz-a nosmt\n");
        let after = run(&booted.live(), SmtState::Off, Mode::Check);
        assert_eq!(after.status, Status::Compliant, "{}", text(&after));
        assert!(
            after.summary.contains("SMT is off (control off, active 0)"),
            "{}",
            after.summary
        );
    }

    #[test]
    fn control_on_with_no_sibling_active_is_still_switched_off() {
        // Siblings offline by hand (active 0) can come back while control is `on`.
        let m = Machine::new(Some(QEMU_GRUB))
            .smt("on", "0")
            .cmdline("nosmt\n");
        let report = run(&m.live(), SmtState::Off, Mode::Check);
        assert_eq!(report.status, Status::WouldChange, "{}", text(&report));
        assert!(
            report.summary.contains("control on, active 0"),
            "{}",
            report.summary
        );
        assert!(report.changes.iter().any(|c| c.kind == "write-sysfs"));
    }

    #[test]
    fn forceoff_and_notsupported_are_compliant_and_say_why() {
        for (control, why) in [("forceoff", "forced off"), ("notsupported", "has no SMT")] {
            let m = Machine::new(Some(&format!(
                "{QEMU_GRUB}set linux_append=\"$linux_append nosmt\"\n"
            )))
            .smt(control, "0")
            .cmdline("nosmt=force\n");
            let report = run(&m.live(), SmtState::Off, Mode::Apply);
            assert_eq!(
                report.status,
                Status::Compliant,
                "{control}: {}",
                text(&report)
            );
            assert!(report.summary.contains(why), "{}", report.summary);
            assert!(report.changes.is_empty());
            assert_eq!(m.control(), format!("{control}\n"), "never written");
        }
    }

    #[test]
    fn notimplemented_or_no_smt_directory_is_not_applicable() {
        for m in [
            Machine::new(Some(QEMU_GRUB)).smt("notimplemented", "0"),
            Machine::new(Some(QEMU_GRUB)),
        ] {
            let report = run(&m.live(), SmtState::Off, Mode::Apply);
            assert_eq!(report.status, Status::NotApplicable, "{}", text(&report));
            assert_eq!(m.grub(), QEMU_GRUB, "nothing written");
        }
    }

    #[test]
    fn a_refused_write_fails_naming_the_file_and_value() {
        let m = Machine::new(Some(QEMU_GRUB)).smt("on", "1");
        let host = m.live();
        let smt = Smt::new(policy(SmtState::Off).smt);
        let plan = smt.assess(&host).unwrap();
        // Between plan and apply the attribute stops taking writes (here: it is a directory).
        let control = m.kernel.join("sys/devices/system/cpu/smt/control");
        fs::remove_file(&control).unwrap();
        fs::create_dir(&control).unwrap();
        let error = Step::apply(&smt, &host, &plan).unwrap_err().to_string();
        assert!(
            error.contains(CONTROL) && error.contains("cannot write `off`"),
            "{error}"
        );
    }

    #[test]
    fn auto_turns_smt_off_only_for_a_vulnerability_that_needs_it() {
        let m = Machine::new(Some(QEMU_GRUB))
            .smt("on", "1")
            .vulnerability("meltdown", "Not affected")
            .vulnerability("mds", "Mitigation: Clear CPU buffers; SMT vulnerable")
            .vulnerability("l1tf", "Mitigation: PTE Inversion");
        let report = run(&m.live(), SmtState::Auto, Mode::Apply);
        assert_eq!(report.status, Status::PendingReboot, "{}", text(&report));
        assert!(report.summary.contains("mds"), "{}", report.summary);
        assert!(!report.summary.contains("l1tf"), "{}", report.summary);
        assert_eq!(m.control(), "off");
        assert_eq!(
            m.grub(),
            format!("{QEMU_GRUB}set linux_append=\"$linux_append mitigations=auto,nosmt\"\n")
        );

        let safe = Machine::new(Some(QEMU_GRUB))
            .smt("on", "1")
            .vulnerability("mds", "Not affected")
            .vulnerability("l1tf", "Not affected")
            .cmdline("mitigations=auto,nosmt\n");
        let report = run(&safe.live(), SmtState::Auto, Mode::Apply);
        assert_eq!(report.status, Status::Changed, "{}", text(&report));
        assert!(
            report.summary.contains("SMT stays on") && report.summary.contains("SMT vulnerable"),
            "{}",
            report.summary
        );
        assert_eq!(safe.control(), "on\n", "SMT left on");

        // No vulnerabilities directory at all: left on, and the report says why.
        let old = Machine::new(Some(QEMU_GRUB)).smt("on", "1");
        let report = run(&old.live(), SmtState::Auto, Mode::Check);
        assert!(
            report.summary.contains("lists no vulnerabilities"),
            "{}",
            report.summary
        );
        assert_eq!(report.changes.len(), 1, "only the grub.cfg line");
    }

    #[test]
    fn offline_writes_grub_cfg_and_waits_for_boot() {
        let m = Machine::new(None);
        let report = run(&m.offline(), SmtState::Off, Mode::Apply);
        assert_eq!(report.status, Status::PendingReboot, "{}", text(&report));
        assert!(text(&report).contains("takes effect at boot"));
        assert_eq!(m.grub(), "set linux_append=\"$linux_append nosmt\"\n");
        let again = run(&m.offline(), SmtState::Off, Mode::Apply);
        assert_eq!(again.status, Status::PendingReboot);
        assert!(again.changes.is_empty());
    }

    #[test]
    fn missing_oem_directory_is_reported_not_created() {
        let m = Machine::new(None);
        fs::remove_dir(m.root.join("oem")).unwrap();
        let report = run(&m.offline(), SmtState::Off, Mode::Apply);
        assert_eq!(report.status, Status::Failed, "{}", text(&report));
        assert!(
            text(&report).contains("OEM partition mounted"),
            "{}",
            text(&report)
        );
        assert!(!m.root.join("oem").exists());

        // Older images mount the OEM partition at /usr/share/oem: the policy names the file.
        fs::create_dir_all(m.root.join("usr/share/oem")).unwrap();
        let mut custom = policy(SmtState::Off);
        custom.smt.grub_cfg = AbsolutePath(PathBuf::from("/usr/share/oem/grub.cfg"));
        let report = testkit::run(
            &m.offline(),
            &custom,
            Box::new(Smt::new(custom.smt.clone())),
            Mode::Apply,
        );
        assert_eq!(report.status, Status::PendingReboot);
        assert!(m.root.join("usr/share/oem/grub.cfg").is_file());
    }

    #[test]
    fn grub_cfg_lines_are_kept_and_never_duplicated() {
        // Already there, in Ignition's form: nothing to add.
        let grub = "set oem_id=\"qemu\"\nset linux_append=\"$linux_append nosmt\"\n";
        assert!(takes_effect(SmtState::Off, &linux_append(grub)));
        // Inside a conditional block it does not count.
        let grub = "if [ \"$grub_platform\" = efi ]; then\n  set linux_append=\"$linux_append nosmt\"\nfi\n";
        assert!(!takes_effect(SmtState::Off, &linux_append(grub)));
        let edited = add_argument(grub, SmtState::Off);
        assert!(edited.starts_with(grub), "{edited}");
        assert!(takes_effect(SmtState::Off, &linux_append(&edited)));
        // A later line that replaces linux_append loses the earlier argument: move, never copy.
        let grub =
            "set linux_append=\"$linux_append nosmt\"\nset linux_append=\"flatcar.autologin\"\n";
        assert!(!takes_effect(SmtState::Off, &linux_append(grub)));
        let edited = add_argument(grub, SmtState::Off);
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
        let grub = format!("{QEMU_GRUB}set linux_append=\"$linux_append nosmt\" # for SMT\n");
        assert!(takes_effect(SmtState::Off, &linux_append(&grub)));
        // No trailing newline: the other lines are kept byte for byte.
        assert_eq!(
            add_argument("set oem_id=\"qemu\"", SmtState::Off),
            "set oem_id=\"qemu\"\nset linux_append=\"$linux_append nosmt\"\n"
        );
        // From off to auto, the agent's own nosmt line is replaced; mitigations=off later wins.
        let edited = add_argument("set linux_append=\"$linux_append nosmt\"\n", SmtState::Auto);
        assert_eq!(
            edited,
            "set linux_append=\"$linux_append mitigations=auto,nosmt\"\n"
        );
        assert!(!takes_effect(
            SmtState::Auto,
            &linux_append(&format!(
                "{edited}set linux_append=\"$linux_append mitigations=off\"\n"
            ))
        ));
    }

    #[test]
    fn auto_reports_a_foreign_nosmt_that_defeats_it() {
        let m = Machine::new(Some(
            "set linux_append=\"$linux_append nosmt console=ttyS0\"\n",
        ));
        let report = run(&m.offline(), SmtState::Auto, Mode::Check);
        assert_eq!(report.status, Status::Failed, "{}", text(&report));
        assert!(
            text(&report).contains("/oem/grub.cfg:1 passes `nosmt`"),
            "{}",
            text(&report)
        );
    }
}
