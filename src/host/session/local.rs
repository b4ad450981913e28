//! The address an SSH session came in on (this host's side of its TCP connection), for the
//! sshd-listen guard: a listen list without it cuts the operator's way back in. Two readings of
//! the process that holds the connection (logind's session leader, or an sshd ancestor): the unit
//! systemd named for the connection (`sshd@3-10.0.2.15:22-10.0.2.2:51234.service`, for
//! `Accept=yes` sockets, in the process's cgroup), else the TCP socket among its open files,
//! looked up in `/proc/net/tcp` and `tcp6`.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// This host's address of the connection `pid` serves, with how it was found; `Err` says why
/// it could not be told.
pub fn of_process(pid: u32) -> Result<(SocketAddr, String), String> {
    let unit = super::sshd_unit(pid).map_err(|e| format!("/proc/{pid}/cgroup: {e}"))?;
    if let Some((address, unit)) = unit.and_then(|u| Some((from_unit_name(&u)?, u))) {
        return Ok((address, format!("process {pid} runs in {unit}")));
    }
    let inodes = socket_inodes(pid)?;
    let mut found = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = fs::read_to_string(table).map_err(|e| format!("{table}: {e}"))?;
        found.extend(established(&text, &inodes));
    }
    found.dedup();
    match found.as_slice() {
        [address] => Ok((
            *address,
            format!("process {pid} holds a TCP connection to {address}"),
        )),
        [] => Err(format!("process {pid} holds no established TCP connection")),
        many => Err(format!(
            "process {pid} holds TCP connections to several local addresses ({})",
            many.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The local address in the name systemd gives the service of an `Accept=yes` socket's
/// connection: `sshd@NR-LOCAL:PORT-REMOTE:PORT.service` (IPv6 addresses unbracketed, since unit
/// names have no brackets).
pub fn from_unit_name(unit: &str) -> Option<SocketAddr> {
    let instance = unit.strip_prefix("sshd@")?.strip_suffix(".service")?;
    let (number, rest) = instance.split_once('-')?;
    number.parse::<u64>().ok()?;
    let (local, _remote) = rest.split_once('-')?;
    let (ip, port) = local.rsplit_once(':')?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    Some(SocketAddr::new(ip.parse().ok()?, port.parse().ok()?))
}

/// The inodes of the sockets among `pid`'s open files (`socket:[INODE]` links in `fd/`).
fn socket_inodes(pid: u32) -> Result<Vec<u64>, String> {
    let dir = format!("/proc/{pid}/fd");
    let entries = fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))?;
    Ok(entries
        .filter_map(|entry| fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect())
}

/// The local addresses of established connections (`st` 01) in a `/proc/net/tcp{,6}` table
/// whose inode is one of `inodes`.
pub fn established(table: &str, inodes: &[u64]) -> Vec<SocketAddr> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
            if *state != "01" || !inodes.contains(&inode.parse().ok()?) {
                return None;
            }
            proc_address(local)
        })
        .collect()
}

/// `0F02000A:0016` (IPv4) or 32 hex digits and a port (IPv6): the address as the kernel prints
/// it, each 32-bit word in the host's byte order. An IPv4-mapped IPv6 address reads as IPv4.
fn proc_address(text: &str) -> Option<SocketAddr> {
    let (address, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Option<Vec<[u8; 4]>> = (0..address.len() / 8)
        .map(|i| {
            let word = u32::from_str_radix(address.get(i * 8..i * 8 + 8)?, 16).ok()?;
            Some(word.to_ne_bytes())
        })
        .collect();
    let bytes: Vec<u8> = words?.concat();
    let ip = match bytes.len() {
        4 => IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])),
        16 => {
            let v6 = Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_address_is_read_from_systemds_instance_name() {
        let at = |unit: &str| from_unit_name(unit).map(|a| a.to_string());
        assert_eq!(
            at("sshd@3-10.0.2.15:22-10.0.2.2:51234.service").as_deref(),
            Some("10.0.2.15:22")
        );
        assert_eq!(
            at("sshd@12-fd00::5:2222-fd00::1:40000.service").as_deref(),
            Some("[fd00::5]:2222")
        );
        assert_eq!(at("sshd@.service"), None);
        assert_eq!(at("sshd@3-1234-0.service"), None, "a unix socket: PID-UID");
        assert_eq!(at("session-3.scope"), None);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn established_connections_of_the_process_are_found_in_the_tcp_tables() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 100 1 0 100 0 0 10 0\n\
   1: 0F02000A:0016 0202000A:C822 01 00000000:00000000 02:000A7D1B 00000000     0        0 4242 2 0 20 4 30 10 -1\n\
   2: 0100007F:0016 0100007F:C823 01 00000000:00000000 02:000A7D1B 00000000     0        0 4343 2 0 20 4 30 10 -1\n";
        assert_eq!(
            established(tcp, &[4242, 100]),
            ["10.0.2.15:22".parse::<SocketAddr>().unwrap()]
        );
        let tcp6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0000000000000000FFFF00000F02000A:0016 0000000000000000FFFF00000202000A:C822 01 00000000:00000000 00:00000000 00000000     0        0 77 1 0 100 0 0 10 0\n\
   1: 000000FD000000000000000005000000:0016 000000FD000000000000000001000000:C822 01 00000000:00000000 00:00000000 00000000     0        0 78 1 0 100 0 0 10 0\n";
        assert_eq!(
            established(tcp6, &[77, 78]),
            [
                "10.0.2.15:22".parse::<SocketAddr>().unwrap(),
                "[fd00::5]:22".parse().unwrap()
            ]
        );
    }
}
