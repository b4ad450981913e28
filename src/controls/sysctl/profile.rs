//! The `container-host` profile: every key, its value and why (docs/policy.md shows the same
//! table), the keys no profile touches on a container host, and what counts as turning
//! forwarding off.

/// One setting of a profile.
pub struct Setting {
    pub key: &'static str,
    pub value: &'static str,
    /// One line for the docs and the file the agent writes.
    pub why: &'static str,
}

const fn set(key: &'static str, value: &'static str, why: &'static str) -> Setting {
    Setting { key, value, why }
}

/// `profile = "container-host"`. Flatcar's own `/usr/lib/sysctl.d/60-baselayout.conf` sets
/// `kptr_restrict = 1` and `protected_regular`/`protected_fifos` = 0; this profile overrides
/// those three (its file sorts later), and leaves the forwarding and `rp_filter` lines alone.
pub const CONTAINER_HOST: &[Setting] = &[
    set(
        "kernel.kptr_restrict",
        "2",
        "kernel pointers hidden from root too (Flatcar: 1, unprivileged users only)",
    ),
    set(
        "kernel.dmesg_restrict",
        "1",
        "only CAP_SYSLOG reads the kernel log (addresses, hardware, other tenants' events)",
    ),
    set(
        "kernel.unprivileged_bpf_disabled",
        "2",
        "no bpf() for unprivileged users; 2, not the one-way 1, so that revert can undo it",
    ),
    set(
        "net.core.bpf_jit_harden",
        "2",
        "constant blinding for every JIT-compiled BPF program (JIT spraying)",
    ),
    set(
        "kernel.perf_event_paranoid",
        "3",
        "no perf events for unprivileged users (upstream kernels treat 3 as 2)",
    ),
    set(
        "dev.tty.ldisc_autoload",
        "0",
        "no line discipline module loaded on an unprivileged TIOCSETD",
    ),
    set(
        "fs.protected_hardlinks",
        "1",
        "no hard link to a file the user cannot read and write",
    ),
    set(
        "fs.protected_symlinks",
        "1",
        "no following another user's symlink in a sticky world-writable directory",
    ),
    set(
        "fs.protected_fifos",
        "1",
        "no O_CREAT open of another user's FIFO in a sticky world-writable directory (Flatcar: 0; \
         Debian and Ubuntu ship 1)",
    ),
    set(
        "fs.protected_regular",
        "2",
        "no O_CREAT open of another user's file in a sticky world- or group-writable directory \
         (Flatcar: 0; Debian and Ubuntu ship 2)",
    ),
    set(
        "fs.suid_dumpable",
        "0",
        "no core dump of a setuid program (its memory holds what its caller may not read)",
    ),
    set(
        "net.ipv4.conf.all.accept_redirects",
        "0",
        "ICMP redirects cannot rewrite the routing table",
    ),
    set(
        "net.ipv4.conf.default.accept_redirects",
        "0",
        "the same for interfaces created later (veth, bridges)",
    ),
    set(
        "net.ipv4.conf.all.secure_redirects",
        "0",
        "not even redirects from the listed gateways",
    ),
    set(
        "net.ipv4.conf.default.secure_redirects",
        "0",
        "the same for interfaces created later",
    ),
    set(
        "net.ipv6.conf.all.accept_redirects",
        "0",
        "ICMPv6 redirects cannot rewrite the routing table",
    ),
    set(
        "net.ipv6.conf.default.accept_redirects",
        "0",
        "the same for interfaces created later",
    ),
    set(
        "net.ipv4.conf.all.send_redirects",
        "0",
        "a forwarding host sends no redirects (only a router should)",
    ),
    set(
        "net.ipv4.conf.default.send_redirects",
        "0",
        "the same for interfaces created later",
    ),
    set(
        "net.ipv4.conf.all.accept_source_route",
        "0",
        "source-routed packets dropped (the sender must not choose the path)",
    ),
    set(
        "net.ipv4.conf.default.accept_source_route",
        "0",
        "the same for interfaces created later",
    ),
    set(
        "net.ipv6.conf.all.accept_source_route",
        "0",
        "IPv6 source routing (routing header) dropped",
    ),
    set(
        "net.ipv6.conf.default.accept_source_route",
        "0",
        "the same for interfaces created later",
    ),
    set(
        "net.ipv4.conf.all.log_martians",
        "1",
        "packets with impossible source addresses are logged (rate-limited)",
    ),
    set(
        "net.ipv4.conf.default.log_martians",
        "1",
        "the same for interfaces created later",
    ),
];

/// What a profile never sets, because a container host needs it as the runtime set it: IP
/// forwarding (container NAT), reverse-path filtering (Flatcar sets 0 for Cilium), bridge
/// netfilter (kube-proxy, Docker's iptables) and user namespaces (rootless containers, sandboxes).
/// A name here is a prefix when it ends in `.`.
pub const NEVER: &[&str] = &[
    "net.ipv4.ip_forward",
    "net.ipv4.conf.",
    "net.ipv6.conf.",
    "net.bridge.",
    "user.max_user_namespaces",
    "kernel.unprivileged_userns_clone",
];

/// Whether a profile may not set `key`: for the `net.ipv*.conf.` prefixes only their forwarding
/// and rp_filter keys (a profile does set their redirect keys).
pub fn never(key: &str) -> bool {
    NEVER.iter().any(|never| match never.strip_suffix('.') {
        Some(prefix) if prefix.starts_with("net.ipv") => {
            key.starts_with(never) && (key.ends_with(".forwarding") || key.ends_with(".rp_filter"))
        }
        Some(_) => key.starts_with(never),
        None => key == *never,
    })
}

/// Whether `key = value` turns IPv4 or IPv6 forwarding off (on some or all interfaces).
pub fn forwarding_off(key: &str, value: &str) -> bool {
    let forwarding = key == "net.ipv4.ip_forward"
        || ((key.starts_with("net.ipv4.conf.") || key.starts_with("net.ipv6.conf."))
            && key.ends_with(".forwarding"));
    forwarding && value.trim() == "0"
}

/// Settings the kernel will not take back once set, until the next boot: revert cannot undo them.
pub fn one_way(key: &str, value: &str) -> bool {
    matches!(
        (key, value.trim()),
        ("kernel.kexec_load_disabled", "1")
            | ("kernel.unprivileged_bpf_disabled", "1")
            | ("kernel.modules_disabled", "1")
    )
}

/// Files and units whose presence means a container runtime is installed: Flatcar ships docker
/// and containerd in `/usr`; a sysext or a distro package puts them in the same places.
pub const CONTAINER_RUNTIMES: &[&str] = &[
    "/usr/lib/systemd/system/docker.service",
    "/usr/lib/systemd/system/docker.socket",
    "/usr/lib/systemd/system/containerd.service",
    "/etc/systemd/system/docker.service",
    "/etc/systemd/system/containerd.service",
    "/usr/bin/docker",
    "/usr/bin/dockerd",
    "/usr/bin/containerd",
    "/usr/bin/podman",
    "/usr/bin/crio",
    "/usr/local/bin/containerd",
    "/usr/local/bin/k3s",
];
