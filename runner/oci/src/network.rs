//! The guest's network inside the container's network namespace.
//!
//! The guest's address is compiled into the image (`net(ipv4 = "10.0.2.15/24", gateway =
//! "10.0.2.2")`), so it cannot take over the container interface's address as urunc and
//! kata do with a tc redirect (that needs the guest to take its address from the runtime).
//! Instead the namespace routes to it: a tap holding the gateway's address, and a DNAT of
//! the image's TCP ports from every other interface to the guest. Podman's `-p 8080:80`
//! reaches the container's address on port 80, which the namespace forwards to the guest;
//! the guest's answers go back through its gateway, and conntrack undoes the translation.
//! The rules live in the namespace: they go with it.

use std::path::Path;
use std::process::{Command, Stdio};

use runner::pkg::NetworkNeeds;

use crate::Result;

/// The tap's name inside the namespace (one guest per namespace).
pub const TAP: &str = "uktap0";

/// Runs `program args` inside the network namespace at `netns` (with `nsenter`), failing
/// with its stderr.
fn run_in(netns: &Path, program: &str, args: &[&str]) -> Result<()> {
    let output = Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run nsenter: {err}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {} in {}: {}",
            args.join(" "),
            netns.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Makes the tap and the forwarding for `needs` in the namespace at `netns`.
pub fn set_up(netns: &Path, needs: &NetworkNeeds) -> Result<()> {
    let gateway = format!("{}/{}", needs.gateway, needs.prefix_len());
    run_in(netns, "ip", &["tuntap", "add", "dev", TAP, "mode", "tap"])?;
    run_in(netns, "ip", &["addr", "add", &gateway, "dev", TAP])?;
    run_in(netns, "ip", &["link", "set", TAP, "up"])?;
    run_in(netns, "ip", &["link", "set", "lo", "up"])?;
    run_in(netns, "sysctl", &["-q", "-w", "net.ipv4.ip_forward=1"])?;
    let guest = needs.guest_address();
    for port in &needs.tcp_ports {
        let port = port.to_string();
        let destination = format!("{guest}:{port}");
        for chain in ["PREROUTING", "OUTPUT"] {
            // To the namespace's own addresses only; OUTPUT: connections made inside the
            // namespace itself (to its address or loopback), e.g. a probe entered into it.
            let mut rule = vec!["-t", "nat", "-A", chain, "-p", "tcp", "--dport", &port];
            rule.extend(["-m", "addrtype", "--dst-type", "LOCAL"]);
            if chain == "PREROUTING" {
                rule.extend(["!", "-i", TAP]);
            }
            rule.extend(["-j", "DNAT", "--to-destination", &destination]);
            run_in(netns, "iptables", &rule)?;
        }
    }
    // Loopback connections need their source rewritten to leave through the tap.
    run_in(
        netns,
        "sysctl",
        &["-q", "-w", "net.ipv4.conf.all.route_localnet=1"],
    )?;
    run_in(
        netns,
        "iptables",
        &[
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-o",
            TAP,
            "-s",
            "127.0.0.0/8",
            "-j",
            "MASQUERADE",
        ],
    )?;
    Ok(())
}

/// Removes the tap (its rules go with the namespace); nothing to do when the namespace is
/// gone already.
pub fn tear_down(netns: &Path) {
    if netns.exists() {
        let _ = run_in(netns, "ip", &["link", "del", TAP]);
    }
}

/// A namespace of the runtime's own, `/run/netns/uk-<id>`, for a container whose
/// config.json asks for a new network namespace without naming one (ctr without CNI).
pub fn create_own(id: &str) -> Result<std::path::PathBuf> {
    let name = own_name(id);
    let output = Command::new("ip")
        .args(["netns", "add", &name])
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run ip: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "ip netns add {name}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(Path::new("/run/netns").join(name))
}

/// Deletes the runtime's own namespace of `id`.
pub fn delete_own(id: &str) {
    let _ = Command::new("ip")
        .args(["netns", "del", &own_name(id)])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// `uk-<id>`, cut to fit an interface-like name (containerd ids are 64 hex digits).
fn own_name(id: &str) -> String {
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(24)
        .collect();
    format!("uk-{id}")
}
