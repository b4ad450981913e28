//! `crypto = "modern"`: edits of OpenSSH's own defaults (`-` removes, `^` puts first), never
//! absolute lists, so a newer OpenSSH's additions still arrive (flatcar/Flatcar#1921: Flatcar's
//! absolute lists kept post-quantum key exchange out until it dropped them). sshd keeps only the
//! first line of each keyword, so each keyword gets one edit. Names to put first are only those
//! this OpenSSH knows (`ssh -Q`): sshd refuses a configuration naming an unknown algorithm in a
//! `^`/`+` list. Everything removed is refused by FIPS 140 anyway (SHA-1, MD5, 64-bit tags, small
//! DH groups, DSA, CBC); every FIPS-approved algorithm stays, and on a FIPS host (the kernel's
//! `fips_enabled`) nothing outside the validated module (the hybrid KEMs) is put first.

/// Post-quantum hybrid key exchange, preferred first.
pub const PQ_KEX: [&str; 3] = [
    "mlkem768x25519-sha256",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
];
/// SHA-1 and 2048-bit groups.
pub const WEAK_KEX: [&str; 4] = [
    "diffie-hellman-group1-sha1",
    "diffie-hellman-group14-sha1",
    "diffie-hellman-group-exchange-sha1",
    "diffie-hellman-group14-sha256",
];
/// 3DES and CBC modes.
pub const WEAK_CIPHERS: [&str; 4] = ["3des-cbc", "aes128-cbc", "aes192-cbc", "aes256-cbc"];
/// SHA-1, MD5, truncated and 64-bit tags.
pub const WEAK_MACS: [&str; 10] = [
    "hmac-sha1",
    "hmac-sha1-96",
    "hmac-md5",
    "hmac-md5-96",
    "umac-64@openssh.com",
    "hmac-sha1-etm@openssh.com",
    "hmac-sha1-96-etm@openssh.com",
    "hmac-md5-etm@openssh.com",
    "hmac-md5-96-etm@openssh.com",
    "umac-64-etm@openssh.com",
];
/// SHA-1 signatures (`ssh-rsa`, which Flatcar's 50-flatcar-sshd.conf adds back) and DSA.
pub const WEAK_KEYS: [&str; 4] = [
    "ssh-rsa",
    "ssh-rsa-cert-v01@openssh.com",
    "ssh-dss",
    "ssh-dss-cert-v01@openssh.com",
];

/// What the crypto plan is decided from: OpenSSH's defaults and what it knows (live only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CryptoFacts {
    /// `sshd -T` on an empty configuration: OpenSSH's defaults.
    pub defaults: crate::host::sshd::Effective,
    /// `ssh -Q kex`.
    pub known_kex: Vec<String>,
    /// `/proc/sys/crypto/fips_enabled` is 1.
    pub fips: bool,
}

/// One keyword's edit: `KexAlgorithms -a,b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub keyword: &'static str,
    /// `-` or `^`.
    pub op: char,
    pub names: Vec<String>,
}

impl Edit {
    pub fn line(&self) -> String {
        format!("{} {}{}", self.keyword, self.op, self.names.join(","))
    }

    /// The `sshd -T` keyword.
    pub fn effective_key(&self) -> String {
        self.keyword.to_ascii_lowercase()
    }

    /// The list that results from this edit of `defaults`, as sshd computes it.
    pub fn applied(&self, defaults: &[String]) -> Vec<String> {
        match self.op {
            '^' => {
                let mut list: Vec<String> = Vec::new();
                for name in self.names.iter().chain(defaults) {
                    if !list.contains(name) {
                        list.push(name.clone());
                    }
                }
                list
            }
            _ => defaults
                .iter()
                .filter(|d| !self.names.contains(d))
                .cloned()
                .collect(),
        }
    }
}

fn removal(keyword: &'static str, names: &[&str]) -> Edit {
    Edit {
        keyword,
        op: '-',
        names: names.iter().map(|n| (*n).to_owned()).collect(),
    }
}

/// The edits, and a note when the key exchange cannot be made post-quantum first. `facts`:
/// `None` offline, where no sshd is run: then the removals only, which sshd accepts whatever it
/// knows, relying on OpenSSH ≥ 9.0 putting post-quantum key exchange first by default.
pub fn modern(facts: Option<&CryptoFacts>) -> (Vec<Edit>, Option<String>) {
    let mut note = None;
    let kex = match facts {
        None => removal("KexAlgorithms", &WEAK_KEX),
        Some(facts) => {
            let leads_pq = facts
                .defaults
                .get("kexalgorithms")
                .and_then(|values| values.first())
                .and_then(|list| list.split(',').next())
                .is_some_and(|first| PQ_KEX.contains(&first));
            let known: Vec<String> = PQ_KEX
                .iter()
                .filter(|pq| facts.known_kex.iter().any(|k| k == *pq))
                .map(|pq| (*pq).to_owned())
                .collect();
            if leads_pq || facts.fips || known.is_empty() {
                if !leads_pq {
                    note = Some(if facts.fips {
                        "FIPS mode: no post-quantum hybrid key exchange is put first (none is \
                         computed inside the validated module)"
                            .to_owned()
                    } else {
                        "this OpenSSH knows no post-quantum key exchange (`ssh -Q kex`): update \
                         it to get one"
                            .to_owned()
                    });
                }
                removal("KexAlgorithms", &WEAK_KEX)
            } else {
                note = Some(format!(
                    "this OpenSSH does not put post-quantum key exchange first by default: `^` \
                     puts {} first, and its weak key exchanges stay offered (one line per \
                     keyword: update OpenSSH to drop them too)",
                    known.join(", ")
                ));
                Edit {
                    keyword: "KexAlgorithms",
                    op: '^',
                    names: known,
                }
            }
        }
    };
    let edits = vec![
        kex,
        removal("Ciphers", &WEAK_CIPHERS),
        removal("MACs", &WEAK_MACS),
        removal("HostKeyAlgorithms", &WEAK_KEYS),
        removal("PubkeyAcceptedAlgorithms", &WEAK_KEYS),
    ];
    (edits, note)
}
