//! selinux: the AVC denials a permissive boot logged — each access enforcing would have
//! refused — read from audit records and summarised for the report.

/// One denied access, as the kernel's AVC record names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The permissions, as in the record's braces (`{ read write }` -> `read write`).
    pub permission: String,
    pub comm: String,
    pub scontext: String,
    pub tcontext: String,
    pub tclass: String,
}

impl Denial {
    /// `ls` (system_u:system_r:container_t:s0) denied `read` on dir system_u:object_r:etc_t:s0
    pub fn describe(&self) -> String {
        format!(
            "`{}` ({}) denied `{}` on {} {}",
            self.comm, self.scontext, self.permission, self.tclass, self.tcontext
        )
    }
}

/// The denial in one audit record line, if it is an AVC denial made in permissive mode
/// (`permissive=1`: logged, allowed, and refused once enforcing). Lines from the audit log
/// (`type=AVC msg=audit(…): avc:  denied …`), the journal's audit transport (`avc:  denied …`)
/// and the kernel log (`audit: type=1400 audit(…): avc:  denied …`) all read alike.
pub fn parse(line: &str) -> Option<Denial> {
    let (_, rest) = line.split_once("avc:")?;
    let rest = rest.trim_start().strip_prefix("denied")?;
    let (_, rest) = rest.split_once('{')?;
    let (permission, fields) = rest.split_once('}')?;
    let field = |name: &str| {
        fields.split_whitespace().find_map(|word| {
            word.strip_prefix(name)
                .and_then(|w| w.strip_prefix('='))
                .map(|v| v.trim_matches('"').to_owned())
        })
    };
    if field("permissive").as_deref() != Some("1") {
        return None;
    }
    Some(Denial {
        permission: permission.split_whitespace().collect::<Vec<_>>().join(" "),
        comm: field("comm").unwrap_or_else(|| "?".to_owned()),
        scontext: field("scontext")?,
        tcontext: field("tcontext")?,
        tclass: field("tclass")?,
    })
}

/// The distinct denials among `lines`, in the order first seen (the same record may come from
/// the audit log and the journal both).
pub fn distinct(lines: &[String]) -> Vec<Denial> {
    let mut found: Vec<Denial> = Vec::new();
    for denial in lines.iter().filter_map(|line| parse(line)) {
        if !found.contains(&denial) {
            found.push(denial);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUDIT_LOG: &str = "type=AVC msg=audit(1764500000.123:42): avc:  denied  { setcurrent } \
                             for  pid=811 comm=\"bash\" scontext=system_u:system_r:fh_vm_t \
                             tcontext=system_u:system_r:fh_vm_t tclass=process permissive=1";
    const JOURNAL: &str = "avc:  denied  { read write } for  pid=1 comm=\"cilium-agent\" \
                           path=\"/sys/fs/bpf\" dev=\"bpf\" ino=1 \
                           scontext=system_u:system_r:container_t:s0:c1,c2 \
                           tcontext=system_u:object_r:bpf_t:s0 tclass=dir permissive=1";
    const KERNEL: &str = "audit: type=1400 audit(1764500001.5:43): avc:  denied  { setcurrent } \
                          for  pid=811 comm=\"bash\" scontext=system_u:system_r:fh_vm_t \
                          tcontext=system_u:system_r:fh_vm_t tclass=process permissive=1";

    #[test]
    fn denials_are_read_from_every_kind_of_audit_line() {
        let denial = parse(AUDIT_LOG).unwrap();
        assert_eq!(
            denial,
            Denial {
                permission: "setcurrent".into(),
                comm: "bash".into(),
                scontext: "system_u:system_r:fh_vm_t".into(),
                tcontext: "system_u:system_r:fh_vm_t".into(),
                tclass: "process".into(),
            }
        );
        assert_eq!(parse(KERNEL), Some(denial));
        let journal = parse(JOURNAL).unwrap();
        assert_eq!(journal.permission, "read write");
        assert_eq!(journal.comm, "cilium-agent");
        assert_eq!(journal.tclass, "dir");
        assert_eq!(
            journal.describe(),
            "`cilium-agent` (system_u:system_r:container_t:s0:c1,c2) denied `read write` on dir \
             system_u:object_r:bpf_t:s0"
        );
    }

    #[test]
    fn only_denials_made_in_permissive_mode_count() {
        // Enforcing already refused it: switching changes nothing for it.
        assert_eq!(
            parse(&AUDIT_LOG.replace("permissive=1", "permissive=0")),
            None
        );
        assert_eq!(parse(&AUDIT_LOG.replace("denied", "granted")), None);
        assert_eq!(parse("type=SYSCALL msg=audit(1.2:3): arch=c000003e"), None);
        assert_eq!(
            parse("SELinux:  Permission getrlimit in class process not defined in policy."),
            None
        );
    }

    #[test]
    fn the_same_denial_from_two_sources_counts_once() {
        let lines = [AUDIT_LOG, JOURNAL, KERNEL, "noise"].map(str::to_owned);
        let found = distinct(&lines);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].permission, "setcurrent");
        assert_eq!(found[1].comm, "cilium-agent");
    }
}
