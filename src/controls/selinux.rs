//! SELinux enforcing (or permissive), now and at every boot.
//!
//! Flatcar boots SELinux permissive; the guide points to switching it to enforcing. Two halves:
//!
//! - **Runtime**: `/sys/fs/selinux/enforce` takes `1` or `0` (what `setenforce` writes); a
//!   reboot resets it. No `/sys/fs/selinux` at all means SELinux is not active in this kernel:
//!   nothing can be switched now, and the control waits for a boot that has it.
//! - **Persistent**: `SELINUX=` in `/etc/selinux/config`. On older images that file is a link
//!   into read-only `/usr`; Flatcar's docs say to replace the link with a regular copy of its
//!   target, then edit. So: `lstat` first; a link is replaced (atomically, by rename) with a file
//!   holding its target's content with the one line changed; a regular file is edited in place
//!   atomically; every other line is kept.
//!
//! `enforcing=` and `selinux=0` on the kernel command line override the config file at every
//! boot. The agent does not edit kernel arguments for SELinux; such an override is reported as
//! the reason the persistent half cannot take effect (`failed`, with the fix).

use std::path::Path;

use super::{envfile, Action, Control, ControlError, FileState, FileWrite, Plan, Validation};
use crate::host::fs::{FileKind, FileSpec, Metadata, Owner};
use crate::host::kernel::{Cmdline, Kernel, CMDLINE};
use crate::host::Host;
use crate::policy::{self, SelinuxState};

const SELINUXFS: &str = "/sys/fs/selinux";
const ENFORCE: &str = "/sys/fs/selinux/enforce";
const CONFIG: &str = "/etc/selinux/config";

pub struct Selinux {
    policy: policy::Selinux,
}

impl Selinux {
    pub fn new(policy: policy::Selinux) -> Self {
        Selinux { policy }
    }

    /// The config file's word and the `enforce` value for the policy's mode.
    fn wanted(&self) -> (&'static str, &'static str) {
        match self.policy.state {
            SelinuxState::Permissive => ("permissive", "0"),
            _ => ("enforcing", "1"),
        }
    }
}

pub struct State {
    /// The config path itself, not followed: a link or a regular file.
    file: FileState,
    /// Where a link points, as written in it.
    link_target: Option<String>,
    /// Who owns a file the agent creates in place of a link.
    owner: Owner,
    /// Mode and owner of what the path names after following a link.
    target: Option<Metadata>,
    /// `None` for an image: no running kernel to look at.
    runtime: Option<Runtime>,
}

struct Runtime {
    /// `/sys/fs/selinux` exists. Without `enforce` in it, it is only the mount point (selinuxfs
    /// not mounted, as in some containers).
    selinuxfs: bool,
    /// `None`: SELinux is not active in this kernel (or not visible here).
    enforce: Option<String>,
    cmdline: Cmdline,
}

impl Control for Selinux {
    type State = State;

    const ID: &'static str = "selinux";
    const TITLE: &'static str = "SELinux mode";
    type Section = policy::Selinux;

    fn section(&self) -> &policy::Selinux {
        &self.policy
    }

    fn observe(&self, host: &Host) -> Result<State, ControlError> {
        let path = Path::new(CONFIG);
        let file = FileState::observe(host, path)?;
        let link_target = match file.meta {
            Some(meta) if meta.kind == FileKind::Symlink => host
                .fs
                .read_link(path)?
                .map(|target| target.display().to_string()),
            _ => None,
        };
        Ok(State {
            file,
            link_target,
            owner: host.file_owner(),
            target: host.fs.stat(path)?,
            runtime: host.kernel().map(observe_runtime).transpose()?,
        })
    }

    fn plan(&self, state: &State) -> Result<Plan, ControlError> {
        let (word, bit) = self.wanted();
        let mut plan = Plan::managed(String::new());
        let mut summary = Vec::new();

        // Persistent half first: it is what the next boot reads.
        // The content, read through a link (inside the root).
        match state.file.content.as_ref().or(state.file.linked.as_ref()) {
            None => plan.problems.push(match &state.link_target {
                Some(target) => format!(
                    "{CONFIG} is a link to {target}, which does not exist: the SELinux policy \
                     type (SELINUXTYPE) is unknown, so nothing is written; restore the file"
                ),
                None => format!(
                    "{CONFIG} does not exist: the SELinux policy type (SELINUXTYPE) is unknown, \
                     so nothing is written; restore the file"
                ),
            }),
            Some(bytes) => {
                // libselinux reads the first SELINUX= line.
                let current = envfile::parse(&String::from_utf8_lossy(bytes))
                    .into_iter()
                    .find(|a| a.key == "SELINUX");
                match &current {
                    Some(found) if found.value.eq_ignore_ascii_case(word) => {
                        summary.push(format!("SELINUX={} in {CONFIG}", found.value))
                    }
                    _ => {
                        let now = current.as_ref().map_or("no SELINUX= line".to_owned(), |a| {
                            format!("SELINUX={}", a.value)
                        });
                        summary.push(match &state.link_target {
                            Some(target) => format!(
                                "{now} in {CONFIG} (a link to {target}): replace the link with \
                                 a regular file saying SELINUX={word}"
                            ),
                            None => format!("{now} in {CONFIG}: set SELINUX={word}"),
                        });
                        let regular = state.file.meta.is_some_and(|m| m.kind == FileKind::Regular);
                        let (mode, owner) = match (regular, state.target) {
                            // A regular file keeps its mode and owner; a link's replacement is a
                            // new file of the agent's, with the mode its target had.
                            (true, Some(m)) => (
                                m.mode,
                                Owner {
                                    uid: m.uid,
                                    gid: m.gid,
                                },
                            ),
                            (_, target) => (target.map_or(0o644, |m| m.mode & 0o777), state.owner),
                        };
                        let spec = FileSpec {
                            content: set_mode_line(bytes, current.map(|a| a.line), word),
                            mode,
                            owner,
                            parent_mode: 0o755,
                        };
                        plan.actions.extend(
                            FileWrite::plan(&state.file, spec, Validation::None)
                                .map(Action::WriteFile),
                        );
                    }
                }
            }
        }

        // Runtime half, and what on the kernel command line overrides the file.
        match &state.runtime {
            None => plan.pending.push(format!(
                "takes effect at boot: there is no running kernel under this root; SELinux \
                 starts {word} from {CONFIG}"
            )),
            Some(runtime) => {
                if runtime.cmdline.value("selinux") == Some("0") {
                    plan.problems.push(format!(
                        "the kernel command line ({CMDLINE}) has selinux=0: SELinux is off at \
                         every boot whatever {CONFIG} says; remove selinux=0 from the kernel \
                         arguments (the OEM grub.cfg)"
                    ));
                }
                if let Some(value) = runtime.cmdline.value("enforcing").filter(|v| *v != bit) {
                    plan.problems.push(format!(
                        "the kernel command line ({CMDLINE}) has enforcing={value}, which \
                         overrides SELINUX={word} in {CONFIG} at every boot; remove it from the \
                         kernel arguments (the OEM grub.cfg)"
                    ));
                }
                match runtime.enforce.as_deref() {
                    None => {
                        let why = if runtime.selinuxfs {
                            format!("selinuxfs is not mounted at {SELINUXFS}")
                        } else {
                            format!("no {SELINUXFS}")
                        };
                        summary.insert(0, format!("SELinux is not active in this kernel ({why})"));
                        plan.pending.push(format!(
                            "SELinux is not active in the running kernel ({why}): nothing to \
                             switch now; {CONFIG} takes effect when the kernel boots with SELinux"
                        ));
                    }
                    Some(now) if now == bit => {
                        summary.insert(0, format!("{word} now ({ENFORCE}: {now})"))
                    }
                    Some(now) => {
                        let mode = if now == "1" {
                            "enforcing"
                        } else {
                            "permissive"
                        };
                        summary.insert(
                            0,
                            format!("{mode} now ({ENFORCE}: {now}): switch to {word}"),
                        );
                        plan.actions.push(Action::WriteKernelSetting {
                            path: ENFORCE.to_owned(),
                            value: bit.to_owned(),
                            before: now.to_owned(),
                        });
                    }
                }
            }
        }
        plan.summary = summary.join("; ");
        Ok(plan)
    }
}

fn observe_runtime(kernel: &Kernel) -> Result<Runtime, ControlError> {
    Ok(Runtime {
        selinuxfs: kernel.has_dir(SELINUXFS)?,
        enforce: kernel.read(ENFORCE)?,
        cmdline: kernel.cmdline()?,
    })
}

/// The config with its `SELINUX=` line (1-based `line`, the first one: libselinux reads the
/// first) saying `word`, or such a line appended; every other byte kept.
/// The config's bytes with line `line` (1-based) replaced by `SELINUX=word`, or that line
/// appended; every other byte is kept (a comment in Latin-1 stays as it was).
fn set_mode_line(bytes: &[u8], line: Option<usize>, word: &str) -> Vec<u8> {
    let new_line = format!("SELINUX={word}");
    let Some(line) = line else {
        let mut out = bytes.to_vec();
        if !out.is_empty() && !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        out.extend_from_slice(new_line.as_bytes());
        out.push(b'\n');
        return out;
    };
    bytes
        .split_inclusive(|&b| b == b'\n')
        .enumerate()
        .flat_map(|(index, old)| {
            if index + 1 == line {
                let ending: &[u8] = if old.ends_with(b"\n") { b"\n" } else { b"" };
                [new_line.as_bytes(), ending].concat()
            } else {
                old.to_vec()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controls::testkit::{self, text};
    use crate::policy::Policy;
    use crate::report::{ControlReport, Mode, Status};
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    const FLATCAR_CONFIG: &str = "# This file controls the state of SELinux on the system.\n\
                                  SELINUX=permissive\n\
                                  SELINUXTYPE=mcs\n";

    struct Machine(testkit::Machine);

    impl Machine {
        /// An older image: `/etc/selinux/config` links into `/usr`.
        fn linked() -> Machine {
            let m = Machine::bare();
            m.root_file("/usr/lib/selinux/config", FLATCAR_CONFIG);
            std::os::unix::fs::symlink(
                "../../usr/lib/selinux/config",
                m.root.join("etc/selinux/config"),
            )
            .unwrap();
            m
        }

        /// A newer image: a regular file.
        fn regular(content: &str) -> Machine {
            let m = Machine::bare();
            m.root_file("/etc/selinux/config", content);
            m
        }

        fn bare() -> Machine {
            let m = testkit::Machine::new("BOOT_IMAGE=/flatcar/vmlinuz-a console=ttyS0\n");
            fs::create_dir_all(m.root.join("etc/selinux")).unwrap();
            Machine(m)
        }

        fn enforce(self, value: &str) -> Machine {
            self.0.kernel_file("/sys/fs/selinux/enforce", value);
            self
        }

        fn cmdline(self, text: &str) -> Machine {
            self.0.kernel_file("/proc/cmdline", text);
            self
        }

        fn config(&self) -> String {
            self.read_root("/etc/selinux/config")
        }

        fn is_link(&self) -> bool {
            fs::symlink_metadata(self.root.join("etc/selinux/config"))
                .unwrap()
                .file_type()
                .is_symlink()
        }

        fn enforcing(&self) -> String {
            self.read_kernel("/sys/fs/selinux/enforce")
        }
    }

    impl std::ops::Deref for Machine {
        type Target = testkit::Machine;
        fn deref(&self) -> &testkit::Machine {
            &self.0
        }
    }

    fn run(host: &Host, state: SelinuxState, mode: Mode) -> ControlReport {
        let mut policy = Policy::default();
        policy.selinux.state = state;
        testkit::run(
            host,
            &policy,
            Box::new(Selinux::new(policy.selinux.clone())),
            mode,
        )
    }

    #[test]
    fn enforcing_now_and_the_link_becomes_a_regular_file() {
        let m = Machine::linked().enforce("0");
        let dry = run(&m.with_kernel(), SelinuxState::Enforcing, Mode::DryRun);
        assert_eq!(dry.status, Status::WouldChange, "{}", text(&dry));
        let kinds: Vec<&str> = dry.changes.iter().map(|c| c.kind).collect();
        assert_eq!(kinds, ["write-file", "write-sysfs"]);
        assert!(
            dry.changes[0].detail.contains("replace symlink"),
            "{:?}",
            dry.changes
        );
        let diff = dry.changes[0].diff.as_deref().unwrap();
        // The diff is against the link's target: the one line that changes.
        assert!(
            diff.contains("-SELINUX=permissive\n+SELINUX=enforcing\n"),
            "{diff}"
        );
        assert!(diff.starts_with("--- /etc/selinux/config\n"), "{diff}");
        assert_eq!(dry.changes[1].detail, "0 -> 1");
        assert!(m.is_link() && m.enforcing() == "0", "dry-run wrote");

        let apply = run(&m.with_kernel(), SelinuxState::Enforcing, Mode::Apply);
        assert_eq!(apply.status, Status::Changed, "{}", text(&apply));
        assert_eq!(m.enforcing(), "1");
        assert!(!m.is_link(), "the link is replaced by a regular file");
        assert_eq!(
            m.config(),
            FLATCAR_CONFIG.replace("SELINUX=permissive", "SELINUX=enforcing")
        );
        assert_eq!(
            fs::read_to_string(m.root.join("usr/lib/selinux/config")).unwrap(),
            FLATCAR_CONFIG,
            "never written through the link"
        );

        let again = run(&m.with_kernel(), SelinuxState::Enforcing, Mode::Apply);
        assert_eq!(again.status, Status::Compliant, "{}", text(&again));
        assert!(again.changes.is_empty());
    }

    #[test]
    fn a_link_that_already_says_the_mode_is_left_alone() {
        let m = Machine::linked().enforce("0");
        let report = run(&m.with_kernel(), SelinuxState::Permissive, Mode::Apply);
        assert_eq!(report.status, Status::Compliant, "{}", text(&report));
        assert!(m.is_link());
    }

    #[test]
    fn a_regular_file_is_edited_in_place_keeping_every_other_line_and_its_mode() {
        let content = "# local\nSELINUXTYPE=mcs\nSELINUX=enforcing # was\nSELINUX=disabled\n";
        let m = Machine::regular(content).enforce("1\n");
        let path = m.root.join("etc/selinux/config");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let report = run(&m.with_kernel(), SelinuxState::Permissive, Mode::Apply);
        assert_eq!(report.status, Status::Changed, "{}", text(&report));
        assert_eq!(m.enforcing(), "0");
        assert_eq!(
            m.config(),
            "# local\nSELINUXTYPE=mcs\nSELINUX=permissive\nSELINUX=disabled\n",
            "only the first SELINUX= line (the one libselinux reads) changes"
        );
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o640
        );

        // A comment in Latin-1 stays byte for byte.
        let m = Machine::regular("").enforce("1\n");
        fs::write(
            m.root.join("etc/selinux/config"),
            b"# gr\xfcn\nSELINUX=permissive\n",
        )
        .unwrap();
        run(&m.with_kernel(), SelinuxState::Enforcing, Mode::Apply);
        assert_eq!(
            fs::read(m.root.join("etc/selinux/config")).unwrap(),
            b"# gr\xfcn\nSELINUX=enforcing\n"
        );

        // No SELINUX= line at all: one is added at the end.
        let m = Machine::regular("SELINUXTYPE=mcs").enforce("1");
        run(&m.with_kernel(), SelinuxState::Enforcing, Mode::Apply);
        assert_eq!(m.config(), "SELINUXTYPE=mcs\nSELINUX=enforcing\n");
    }

    #[test]
    fn no_selinuxfs_means_the_file_waits_for_a_boot() {
        let m = Machine::linked();
        let report = run(&m.with_kernel(), SelinuxState::Enforcing, Mode::Apply);
        assert_eq!(report.status, Status::PendingReboot, "{}", text(&report));
        assert!(text(&report).contains("not active"), "{}", text(&report));
        assert!(report.changes.iter().all(|c| c.kind == "write-file"));
        assert!(m.config().contains("SELINUX=enforcing\n"));
        let again = run(&m.with_kernel(), SelinuxState::Enforcing, Mode::Check);
        assert_eq!(again.status, Status::PendingReboot);

        // Only the mount point, selinuxfs not mounted: the same.
        fs::create_dir_all(m.kernel.join("sys/fs/selinux")).unwrap();
        let report = run(&m.with_kernel(), SelinuxState::Enforcing, Mode::Check);
        assert_eq!(report.status, Status::PendingReboot, "{}", text(&report));
        assert!(report.summary.contains("not mounted"), "{}", report.summary);
    }

    #[test]
    fn kernel_arguments_that_override_the_file_are_reported() {
        for (cmdline, reason) in [
            ("console=ttyS0 enforcing=0\n", "has enforcing=0"),
            ("selinux=0 console=ttyS0\n", "has selinux=0"),
        ] {
            let m = Machine::regular(FLATCAR_CONFIG)
                .enforce("0")
                .cmdline(cmdline);
            let report = run(&m.with_kernel(), SelinuxState::Enforcing, Mode::Apply);
            assert_eq!(report.status, Status::Failed, "{}", text(&report));
            assert!(text(&report).contains(reason), "{}", text(&report));
            // What can be done is done: the file and the running mode.
            assert!(m.config().contains("SELINUX=enforcing\n"));
            assert_eq!(m.enforcing(), "1");
        }
        // enforcing=0 agrees with permissive.
        let m = Machine::regular(FLATCAR_CONFIG)
            .enforce("0")
            .cmdline("enforcing=0\n");
        let report = run(&m.with_kernel(), SelinuxState::Permissive, Mode::Check);
        assert_eq!(report.status, Status::Compliant, "{}", text(&report));
    }

    #[test]
    fn offline_writes_the_file_and_waits_for_boot() {
        let m = Machine::linked();
        let host = Host::open(&m.root).unwrap();
        let report = run(&host, SelinuxState::Enforcing, Mode::Apply);
        assert_eq!(report.status, Status::PendingReboot, "{}", text(&report));
        assert!(text(&report).contains("takes effect at boot"));
        assert!(!m.is_link());
        assert!(m.config().contains("SELINUX=enforcing\n"));
        assert!(!m.kernel.join("sys").exists(), "no runtime write offline");
    }

    #[test]
    fn a_missing_config_is_reported_not_invented() {
        let m = Machine::bare().enforce("0");
        std::os::unix::fs::symlink("/usr/lib/selinux/config", m.root.join("etc/selinux/config"))
            .unwrap();
        let report = run(&m.with_kernel(), SelinuxState::Enforcing, Mode::Check);
        assert_eq!(report.status, Status::Failed, "{}", text(&report));
        assert!(
            text(&report).contains("does not exist"),
            "{}",
            text(&report)
        );
        assert!(m.is_link());
    }
}
