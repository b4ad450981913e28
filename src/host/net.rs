//! The host's network addresses, as `getifaddrs(3)` (what `ip address` shows) lists them: the
//! sshd-listen control refuses an address the host does not have.

use std::net::IpAddr;

use super::HostError;

/// Every IPv4 and IPv6 address on the host's interfaces, in the order the kernel lists them.
pub fn addresses() -> Result<Vec<IpAddr>, HostError> {
    let interfaces = nix::ifaddrs::getifaddrs()
        .map_err(|e| HostError::Refused(format!("cannot list the host's addresses: {e}")))?;
    let mut found = Vec::new();
    for interface in interfaces {
        let Some(address) = interface.address else {
            continue;
        };
        let ip = if let Some(v4) = address.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = address.as_sockaddr_in6() {
            IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        if !found.contains(&ip) {
            found.push(ip);
        }
    }
    Ok(found)
}
