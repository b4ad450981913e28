//! core: no login.
//!
//! The guide: "You can disable the core user by setting the login shell to /sbin/nologin." On
//! Flatcar, core is defined in the read-only `/usr/share/baselayout/passwd` and copied into
//! `/etc/passwd` at boot; the copy is the one to edit (as `usermod -s` does). Only core's shell
//! field changes; every other byte of the file stays as it was. The edit holds the shadow-utils
//! lock so it cannot race `useradd`, `passwd` and friends.

use std::path::Path;

use super::{
    execute, Action, Control, ControlError, Disposition, FileState, FileWrite, Outcome, Plan,
    Validation,
};
use crate::host::accounts::{self, BASELAYOUT_PASSWD, PASSWD};
use crate::host::fs::{FileSpec, Owner};
use crate::host::session::Session;
use crate::host::Host;
use crate::policy;

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
    passwd: FileState,
    /// core's line in the baselayout, for a host whose `/etc/passwd` lacks it.
    baselayout_line: Option<Vec<u8>>,
    /// Who owns a `/etc/passwd` the agent creates.
    owner: Owner,
}

impl Control for CoreLogin {
    type State = State;

    const ID: &'static str = "core-login";
    const TITLE: &'static str = "core cannot log in";
    type Section = policy::CoreLogin;

    fn section(&self) -> &policy::CoreLogin {
        &self.policy
    }

    fn observe(&self, host: &Host) -> Result<State, ControlError> {
        let baselayout = host.fs.read(Path::new(BASELAYOUT_PASSWD))?;
        Ok(State {
            passwd: FileState::observe(host, Path::new(PASSWD))?,
            baselayout_line: baselayout
                .as_deref()
                .and_then(|text| accounts::find(text, "core").map(|r| text[r.span].to_vec())),
            owner: host.file_owner(),
        })
    }

    fn plan(&self, state: &State) -> Result<Plan, ControlError> {
        let passwd = state.passwd.content.as_deref().unwrap_or_default();
        // Only core's shell field changes; every other byte stays as it was.
        let new_passwd = match accounts::find(passwd, "core") {
            Some(core) => {
                if core.fields.len() != 7 {
                    return Err(ControlError::Failed(format!(
                        "{PASSWD}: core's line has {} fields, not 7: `{}`; fix it with vipw",
                        core.fields.len(),
                        String::from_utf8_lossy(&passwd[core.span.clone()])
                    )));
                }
                let shell = core.field(6);
                if NOLOGIN_SHELLS.contains(&shell.as_str()) {
                    return Ok(Plan::managed(format!("core's login shell is {shell}")));
                }
                let shell_at = core.span.end - core.fields[6].len();
                [
                    &passwd[..shell_at],
                    NOLOGIN.as_bytes(),
                    &passwd[core.span.end..],
                ]
                .concat()
            }
            None => match &state.baselayout_line {
                Some(line) => {
                    let mut fields: Vec<&[u8]> = line.split(|&b| b == b':').collect();
                    if let Some(shell) = fields.get_mut(6) {
                        *shell = NOLOGIN.as_bytes();
                    }
                    let mut text = passwd.to_vec();
                    if !text.is_empty() && !text.ends_with(b"\n") {
                        text.push(b'\n');
                    }
                    text.extend(fields.join(&b':'));
                    text.push(b'\n');
                    text
                }
                None => {
                    return Ok(Plan::with(
                        Disposition::NotApplicable,
                        "there is no user core",
                    ))
                }
            },
        };
        // A new /etc/passwd gets the usual mode; an existing one keeps its own.
        let (mode, owner) = state.passwd.mode_owner().unwrap_or((0o644, state.owner));
        let spec = FileSpec {
            content: new_passwd,
            mode,
            owner,
            parent_mode: 0o755,
        };
        let mut plan = Plan::managed(format!("core can log in; set its shell to {NOLOGIN}"));
        plan.actions
            .extend(FileWrite::plan(&state.passwd, spec, Validation::None).map(Action::WriteFile));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fs::{FileKind, Metadata};

    fn passwd(content: &[u8]) -> State {
        State {
            passwd: FileState {
                path: PASSWD.into(),
                meta: Some(Metadata {
                    kind: FileKind::Regular,
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                }),
                content: Some(content.to_vec()),
                linked: None,
            },
            baselayout_line: None,
            owner: Owner { uid: 0, gid: 0 },
        }
    }

    fn control() -> CoreLogin {
        CoreLogin::new(policy::CoreLogin {
            state: policy::CoreLoginState::Nologin,
        })
    }

    #[test]
    fn only_cores_shell_changes_and_latin1_bytes_elsewhere_stay() {
        let before = b"root:x:0:0:root:/root:/bin/bash\nj\xf6rg:x:1000:1000:J\xf6rg:/home/j:/bin/sh\ncore:x:500:500:Flatcar Admin:/home/core:/bin/bash\ncorey:x:501:501::/home/corey:/bin/bash\n";
        let plan = control().plan(&passwd(before)).unwrap();
        let Some(Action::WriteFile(write)) = plan.actions.first() else {
            panic!("{plan:?}");
        };
        let expected: &[u8] = b"root:x:0:0:root:/root:/bin/bash\nj\xf6rg:x:1000:1000:J\xf6rg:/home/j:/bin/sh\ncore:x:500:500:Flatcar Admin:/home/core:/sbin/nologin\ncorey:x:501:501::/home/corey:/bin/bash\n";
        assert_eq!(write.spec.content, expected);
        assert_eq!(write.spec.mode, 0o644);
    }

    #[test]
    fn nologin_already_is_compliant_with_nothing_to_do() {
        let plan = control()
            .plan(&passwd(b"core:x:500:500::/home/core:/usr/sbin/nologin\n"))
            .unwrap();
        assert!(plan.actions.is_empty());
        assert_eq!(plan.summary, "core's login shell is /usr/sbin/nologin");
    }
}
