//! The host boundary: everything the controls read or change goes through here, so the controls
//! read like the hardening guide and the same code serves a running host (`--root /`) and an image
//! being built (`--root /mnt/image`).

pub mod accounts;
pub mod audit;
pub mod command;
pub mod fs;
pub mod kernel;
pub mod kmod;
pub mod locks;
pub mod logind;
pub mod net;
pub mod session;
pub mod sshd;
pub mod sudo;
pub mod systemd;

use std::cell::{OnceCell, RefCell};
use std::fmt::Display;
use std::path::{Path, PathBuf};

use fs::{Owner, RootFs};
use kernel::Kernel;
use session::Session;
use systemd::Systemd;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("{0}")]
    Refused(String),
}

impl HostError {
    pub fn io(op: &'static str, path: impl Display, source: impl Into<std::io::Error>) -> Self {
        HostError::Io {
            op,
            path: path.to_string(),
            source: source.into(),
        }
    }
}

/// The machine a run works on.
pub struct Host {
    pub fs: RootFs,
    /// The root is the running system: runtime state (loaded modules, sysfs, systemd) is this
    /// host's and can be changed now. Otherwise it is an image and only files are written.
    live: bool,
    owner: Owner,
    pub session: Session,
    /// sysfs and `/proc` of the running kernel: `/` on a live run, none for an image.
    kernel: Option<Kernel>,
    /// Connected on first use: a run whose controls need no systemd never connects.
    systemd: OnceCell<Result<Systemd, String>>,
    /// `apply --no-validate`: write sudoers files even where there is no visudo to check them.
    pub skip_sudoers_validation: bool,
    /// The change journal of an apply; `None` for runs that keep none (check, dry run, revert).
    pub journal: RefCell<Option<crate::journal::Recorder>>,
}

impl Host {
    pub fn open(root: &Path) -> Result<Host, HostError> {
        let canonical = std::fs::canonicalize(root)
            .map_err(|e| HostError::io("open root directory", root.display(), e))?;
        let fs = RootFs::open(&canonical)?;
        let live = canonical == Path::new("/");
        // The user running the agent is named from the running system's passwd (the agent
        // makes no NSS lookup: a static glibc cannot load the host's NSS modules reliably).
        let accounts = match live {
            true => accounts::read_accounts(&fs).unwrap_or_default(),
            false => accounts::Accounts::default(),
        };
        let euid = nix::unistd::geteuid();
        let owner = if euid.is_root() {
            Owner { uid: 0, gid: 0 }
        } else {
            // Unprivileged runs can only write into a root of their own (a test tree, a demo); the
            // files then belong to the invoking user, and owner checks compare against that user.
            Owner {
                uid: euid.as_raw(),
                gid: nix::unistd::getegid().as_raw(),
            }
        };
        Ok(Host {
            fs,
            live,
            owner,
            session: Session::detect(accounts),
            kernel: if live {
                Some(Kernel::open(Path::new("/"))?)
            } else {
                None
            },
            systemd: OnceCell::new(),
            skip_sudoers_validation: false,
            journal: RefCell::new(None),
        })
    }

    pub fn is_live(&self) -> bool {
        self.live
    }

    /// The running kernel (sysfs, `/proc/cmdline`); `None` for an image, which has none.
    pub fn kernel(&self) -> Option<&Kernel> {
        self.kernel.as_ref()
    }

    /// Unit tests: a host whose running kernel is a fake `/sys` and `/proc` tree under
    /// `kernel_root`; everything else stays as for an image (nothing else runtime is touched).
    #[cfg(test)]
    pub fn with_kernel(mut self, kernel_root: &Path) -> Host {
        self.kernel = Some(Kernel::open(kernel_root).expect("open the fake kernel tree"));
        self
    }

    pub fn root(&self) -> &Path {
        self.fs.root()
    }

    /// Owner of every file the agent writes: root, or the invoking user on an unprivileged run.
    pub fn file_owner(&self) -> Owner {
        self.owner
    }

    /// PID 1 of the running system. Only for a live root: an image has no running systemd.
    pub fn systemd(&self) -> Result<&Systemd, HostError> {
        if !self.live {
            return Err(HostError::Refused(
                "systemd is only reachable on the running system (--root /)".into(),
            ));
        }
        self.systemd
            .get_or_init(|| {
                let connected = Systemd::connect().map_err(|e| e.to_string());
                if let Ok(systemd) = &connected {
                    tracing::debug!("talking to systemd over {}", systemd.via);
                }
                connected
            })
            .as_ref()
            .map_err(|e| HostError::Refused(e.clone()))
    }

    /// Where a host-side program (visudo) lives: inside the root on a live host, on the build
    /// machine's PATH for an image (the image's binaries are not ours to run).
    pub fn program(&self, name: &str) -> Option<PathBuf> {
        if self.live {
            return system_program(name);
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(["/usr/sbin", "/sbin"].iter().map(PathBuf::from))
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    }
}

/// Where a program of the running system lives: the system's own directories, never PATH.
pub fn system_program(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|candidate| candidate.is_file())
}

/// One line to the kernel log (`<PRIORITY>text`), where a generator's messages go this early in
/// the boot; on stderr too when the kernel log cannot be written (a test, a container).
pub fn kmsg(line: &str) {
    use std::io::Write as _;
    let written = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/kmsg")
        .and_then(|mut kmsg| kmsg.write_all(line.as_bytes()));
    if written.is_err() {
        eprintln!("{line}");
    }
}
