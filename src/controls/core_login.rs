//! core: no login.
//!
//! The guide: "You can disable the core user by setting the login shell to /sbin/nologin." On
//! Flatcar, core is defined in the read-only `/usr/share/baselayout/passwd` and copied into
//! `/etc/passwd` at boot; the copy is the one to edit (as `usermod -s` does). Only core's shell
//! field changes; every other byte of the file stays as it was. The edit holds the shadow-utils
//! lock so it cannot race `useradd`, `passwd` and friends.

use std::path::Path;

use super::{
    execute, Action, Control, ControlError, Disposition, FileWrite, Outcome, Plan, Validation,
};
use crate::host::fs::{FileSpec, Owner};
use crate::host::session::Session;
use crate::host::Host;
use crate::policy::{self, CoreLoginState};

const PASSWD: &str = "/etc/passwd";
const BASELAYOUT_PASSWD: &str = "/usr/share/baselayout/passwd";
const NOLOGIN: &str = "/sbin/nologin";
/// Both spellings name the same program on Flatcar (`/sbin` links to `/usr/sbin`).
const NOLOGIN_SHELLS: [&str; 2] = ["/sbin/nologin", "/usr/sbin/nologin"];

pub struct CoreLogin {
    policy: policy::CoreLogin,
}

impl CoreLogin {
    pub fn new(policy: policy::CoreLogin) -> Self {
        CoreLogin { policy }
    }
}

pub struct State {
    passwd: Option<String>,
    /// core's line in the baselayout, for a host whose `/etc/passwd` lacks it.
    baselayout_line: Option<String>,
    /// Mode and owner of `/etc/passwd`, kept as they are.
    mode: u32,
    owner: Owner,
}

impl Control for CoreLogin {
    type State = State;

    fn id(&self) -> &'static str {
        "core-login"
    }

    fn title(&self) -> &'static str {
        "core cannot log in"
    }

    fn unmanaged(&self) -> Option<String> {
        (self.policy.state == CoreLoginState::Unmanaged)
            .then(|| "left alone (policy: core-login.state = \"unmanaged\")".to_owned())
    }

    fn observe(&self, host: &Host) -> Result<State, ControlError> {
        let meta = host.fs.stat(Path::new(PASSWD))?;
        let baselayout = host.fs.read_text(Path::new(BASELAYOUT_PASSWD))?;
        Ok(State {
            passwd: host.fs.read_text(Path::new(PASSWD))?,
            baselayout_line: baselayout
                .as_deref()
                .and_then(|text| text.lines().find(|l| l.starts_with("core:")))
                .map(str::to_owned),
            mode: meta.map_or(0o644, |m| m.mode),
            owner: meta.map_or(host.file_owner(), |m| Owner {
                uid: m.uid,
                gid: m.gid,
            }),
        })
    }

    fn plan(&self, host: &Host, state: &State) -> Result<Plan, ControlError> {
        let passwd = state.passwd.as_deref().unwrap_or("");
        let new_passwd = match find_core(passwd) {
            Some((start, line)) => {
                let fields: Vec<&str> = line.split(':').collect();
                if fields.len() != 7 {
                    return Err(ControlError::Failed(format!(
                        "{PASSWD}: core's line has {} fields, not 7: `{line}`; fix it with vipw",
                        fields.len()
                    )));
                }
                if NOLOGIN_SHELLS.contains(&fields[6]) {
                    return Ok(Plan::managed(format!(
                        "core's login shell is {}",
                        fields[6]
                    )));
                }
                let shell_at = start + line.len() - fields[6].len();
                format!(
                    "{}{NOLOGIN}{}",
                    &passwd[..shell_at],
                    &passwd[start + line.len()..]
                )
            }
            None => match &state.baselayout_line {
                Some(line) => {
                    let mut fields: Vec<&str> = line.split(':').collect();
                    if let Some(shell) = fields.get_mut(6) {
                        *shell = NOLOGIN;
                    }
                    let separator = if passwd.is_empty() || passwd.ends_with('\n') {
                        ""
                    } else {
                        "\n"
                    };
                    format!("{passwd}{separator}{}\n", fields.join(":"))
                }
                None => {
                    return Ok(Plan::with(
                        Disposition::NotApplicable,
                        "there is no user core",
                    ))
                }
            },
        };
        let spec = FileSpec {
            content: new_passwd.into_bytes(),
            mode: state.mode,
            owner: state.owner,
            parent_mode: 0o755,
        };
        let mut plan = Plan::managed(format!("core can log in; set its shell to {NOLOGIN}"));
        plan.actions.extend(
            FileWrite::plan(host, Path::new(PASSWD), spec, Validation::None)?
                .map(Action::WriteFile),
        );
        Ok(plan)
    }

    fn apply(&self, host: &Host, plan: &Plan) -> Result<Vec<Outcome>, ControlError> {
        let _lock = host.lock_passwd()?;
        execute(host, &plan.actions)
    }

    fn lockout_risk(&self, _session: &Session) -> Option<String> {
        Some(
            "core can no longer log in, over SSH or on the console; if core is how you reach \
             this host, this session is the last one"
                .to_owned(),
        )
    }
}

/// core's line in a passwd file: its byte offset and text (without the newline).
fn find_core(passwd: &str) -> Option<(usize, &str)> {
    let mut offset = 0;
    for line in passwd.split_inclusive('\n') {
        let text = line.strip_suffix('\n').unwrap_or(line);
        if text.starts_with("core:") {
            return Some((offset, text));
        }
        offset += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_core_and_only_core() {
        let text = "root:x:0:0:root:/root:/bin/bash\ncorey:x:501:501::/home/corey:/bin/bash\ncore:x:500:500:Flatcar Admin:/home/core:/bin/bash";
        let (start, line) = find_core(text).unwrap();
        assert_eq!(&text[start..start + 5], "core:");
        assert!(line.ends_with("/bin/bash"));
        assert!(!line.contains('\n'));
    }
}
