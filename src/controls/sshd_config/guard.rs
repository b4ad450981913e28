//! The lockout guard of sshd-config: what the settings take away from the operator's own next
//! SSH login (the engine refuses it over SSH without `allow_remote_lockout`).

use crate::host::session::Session;
use crate::policy::{self, PermitRootLogin};

/// What the settings take away from the operator's next SSH login, if anything. Fails closed:
/// what cannot be told counts as lost.
pub(super) fn lockout(policy: &policy::SshdConfig, session: &Session) -> Option<String> {
    let operator = session.operator();
    let who = operator.clone().unwrap_or_else(|| "(unknown)".to_owned());
    let mut lost = Vec::new();
    if operator.is_none() {
        lost.push("the user of this session cannot be told".to_owned());
    }
    if let Some(users) = &policy.allow_users {
        if !users.iter().any(|u| Some(&u.0) == operator.as_ref()) {
            lost.push(format!(
                "AllowUsers {} leaves out {who} (you)",
                users
                    .iter()
                    .map(|u| u.0.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
    }
    if let Some(groups) = &policy.allow_groups {
        let mine = operator
            .as_deref()
            .map(|u| session.groups_of(u))
            .unwrap_or_default();
        if !groups.iter().any(|g| mine.contains(&g.0)) {
            lost.push(format!(
                "AllowGroups {} has none of {who}'s groups ({})",
                groups
                    .iter()
                    .map(|g| g.0.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                mine.join(", ")
            ));
        }
    }
    let is_root = operator.as_deref() == Some("root");
    if is_root && policy.permit_root_login == Some(PermitRootLogin::No) {
        lost.push("PermitRootLogin no: root (you) can no longer log in over SSH".to_owned());
    }
    let password_off = policy.password_authentication == Some(false);
    let kbd_off = policy.kbd_interactive_authentication == Some(false);
    let prohibit = is_root && policy.permit_root_login == Some(PermitRootLogin::ProhibitPassword);
    if password_off || kbd_off || prohibit {
        match session.ssh_auth_methods() {
            Ok(methods) => {
                let used = |m: &str| methods.iter().any(|x| x.starts_with(m));
                if password_off && used("password") {
                    lost.push(
                        "PasswordAuthentication no: this session logged in with a password".into(),
                    );
                }
                if kbd_off && used("keyboard-interactive") {
                    lost.push(
                        "KbdInteractiveAuthentication no: this session logged in with \
                         keyboard-interactive (a password through PAM)"
                            .into(),
                    );
                }
                if prohibit && (used("password") || used("keyboard-interactive")) {
                    lost.push(
                        "PermitRootLogin prohibit-password: root (you) logged in with a password"
                            .into(),
                    );
                }
            }
            Err(why) => lost.push(format!(
                "how this session authenticated cannot be told ({why}), so a password login \
                 may be what is turned off"
            )),
        }
        tracing::debug!(
            "sshd-config guard: {who} authenticated with {:?}",
            session.ssh_auth_methods()
        );
    }
    (!lost.is_empty()).then(|| {
        format!(
            "sshd's new settings would refuse {who}'s next SSH login: {}",
            lost.join("; ")
        )
    })
}
