//! The audit's findings: etcd's URLs and TLS files, passwords in readable files, and the small
//! readers of environment values they need.

use super::{Setting, State, Unit, ETCD_TLS_FILES, ETCD_URLS, PASSWORDS};

pub(super) fn audit_etcd(unit: &Unit, state: &State, findings: &mut Vec<String>) {
    let why = format!("{}: {}", unit.file.display(), unit.name);
    for (key, default) in ETCD_URLS {
        match last_set(&unit.env, key) {
            None => findings.push(format!(
                "{why} does not set {key}: etcd then uses {default}, plain HTTP; set it to \
                 https:// URLs"
            )),
            Some(setting) => {
                for url in plain_urls(&setting.value) {
                    findings.push(format!("{}: {key} {url} is not https://", setting.at()));
                }
            }
        }
    }
    for key in ETCD_TLS_FILES {
        findings.extend(file_finding(&unit.env, key, &why, state));
    }
    match last_set(&unit.env, "ETCD_CLIENT_CERT_AUTH") {
        None => findings.push(format!(
            "{why} does not set ETCD_CLIENT_CERT_AUTH=true: clients are not asked for a \
             certificate"
        )),
        Some(setting) if !is_true(&setting.value) => findings.push(format!(
            "{}: ETCD_CLIENT_CERT_AUTH={}: clients are not asked for a certificate; set it to \
             true",
            setting.at(),
            setting.value
        )),
        Some(_) => {}
    }
}

/// A finding for a TLS file setting that is missing, or names a file that cannot be read.
pub(super) fn file_finding(env: &[Setting], key: &str, why: &str, state: &State) -> Option<String> {
    let Some(setting) = last_set(env, key) else {
        return Some(format!("{why}, but {key} is not set"));
    };
    match state.files.get(&setting.value) {
        Some(Ok(true)) => None,
        Some(Ok(false)) | None => Some(format!(
            "{}: {key}={}: no such file",
            setting.at(),
            setting.value
        )),
        Some(Err(error)) => Some(format!(
            "{}: {key}={}: cannot be read: {error}",
            setting.at(),
            setting.value
        )),
    }
}

/// The last non-empty value of `key` (an empty assignment unsets it, as for systemd).
pub(super) fn last_set<'a>(env: &'a [Setting], key: &str) -> Option<&'a Setting> {
    env.iter()
        .rev()
        .find(|s| s.key == key)
        .filter(|s| !s.value.is_empty())
}

pub(super) fn is_password(setting: &Setting) -> bool {
    PASSWORDS.contains(&setting.key.as_str()) && !setting.value.is_empty()
}

/// URLs in a comma-separated list that do not use TLS (`https://`, or `unixs://` for etcd).
pub(super) fn plain_urls(list: &str) -> Vec<&str> {
    list.split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .filter(|url| {
            let lower = url.to_ascii_lowercase();
            !(lower.starts_with("https://") || lower.starts_with("unixs://"))
        })
        .collect()
}

/// etcd reads booleans with Go's `strconv.ParseBool`.
pub(super) fn is_true(value: &str) -> bool {
    matches!(value, "1" | "t" | "T" | "true" | "TRUE" | "True")
}
