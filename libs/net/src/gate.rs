//! The SYN gate: connection requests to a listener that has no room for them are dropped
//! before smoltcp sees them, as a full SYN backlog does. smoltcp would answer them with a
//! reset, which tells a client to give up; a dropped SYN is sent again by the client (after
//! 1 s, then 3 s, ...), and by then room may have been made.

use alloc::vec::Vec;

use smoltcp::wire::{EthernetFrame, EthernetProtocol, IpProtocol, Ipv4Packet, TcpPacket};

/// The ports whose listeners take no connection request now, and how many requests each
/// has had dropped.
#[derive(Debug, Default)]
pub(crate) struct SynGate {
    ports: Vec<Port>,
}

#[derive(Debug)]
struct Port {
    port: u16,
    closed: bool,
    dropped: u64,
}

impl SynGate {
    /// Opens or closes `port` to new connection requests.
    pub(crate) fn set_closed(&mut self, port: u16, closed: bool) {
        match self.ports.iter_mut().find(|entry| entry.port == port) {
            Some(entry) => entry.closed = closed,
            None if closed => self.ports.push(Port {
                port,
                closed,
                dropped: 0,
            }),
            None => {}
        }
    }

    /// Forgets `port` (its listener is gone), counts included.
    pub(crate) fn remove(&mut self, port: u16) {
        self.ports.retain(|entry| entry.port != port);
    }

    /// Connection requests to `port` dropped so far.
    pub(crate) fn dropped(&self, port: u16) -> u64 {
        self.ports
            .iter()
            .find(|entry| entry.port == port)
            .map_or(0, |entry| entry.dropped)
    }

    /// Whether the stack should see `frame` (an Ethernet frame): `false` for a TCP SYN
    /// (without ACK) to a closed port, which is then counted.
    pub(crate) fn admits(&mut self, frame: &[u8]) -> bool {
        if !self.ports.iter().any(|entry| entry.closed) {
            return true;
        }
        let Some(port) = syn_destination(frame) else {
            return true;
        };
        match self
            .ports
            .iter_mut()
            .find(|entry| entry.port == port && entry.closed)
        {
            Some(entry) => {
                entry.dropped += 1;
                false
            }
            None => true,
        }
    }
}

/// The destination port of a TCP connection request (SYN without ACK) over IPv4 in an
/// Ethernet frame; `None` for any other frame.
fn syn_destination(frame: &[u8]) -> Option<u16> {
    let ethernet = EthernetFrame::new_checked(frame).ok()?;
    if ethernet.ethertype() != EthernetProtocol::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(ethernet.payload()).ok()?;
    // A fragment's payload is not a TCP header (and smoltcp reassembles none here).
    if ip.next_header() != IpProtocol::Tcp || ip.frag_offset() != 0 {
        return None;
    }
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    (tcp.syn() && !tcp.ack()).then(|| tcp.dst_port())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{
        EthernetAddress, EthernetRepr, IpAddress, Ipv4Address, Ipv4Repr, TcpControl, TcpRepr,
        TcpSeqNumber,
    };

    /// An Ethernet frame holding a TCP segment to `port` with `control` (and an ACK if
    /// `ack`).
    fn segment(port: u16, control: TcpControl, ack: bool) -> Vec<u8> {
        let (source, destination) = (
            Ipv4Address::new(198, 18, 0, 1),
            Ipv4Address::new(10, 0, 2, 15),
        );
        let tcp = TcpRepr {
            src_port: 20000,
            dst_port: port,
            control,
            seq_number: TcpSeqNumber(7),
            ack_number: ack.then_some(TcpSeqNumber(9)),
            window_len: 64240,
            window_scale: None,
            max_seg_size: Some(1460),
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        };
        let ip = Ipv4Repr {
            src_addr: source,
            dst_addr: destination,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let ethernet = EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            ethertype: EthernetProtocol::Ipv4,
        };
        let mut frame = vec![0; ethernet.buffer_len() + ip.buffer_len() + tcp.buffer_len()];
        let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
        ethernet.emit(&mut eth);
        let mut packet = Ipv4Packet::new_unchecked(eth.payload_mut());
        let checksums = ChecksumCapabilities::default();
        ip.emit(&mut packet, &checksums);
        tcp.emit(
            &mut TcpPacket::new_unchecked(packet.payload_mut()),
            &IpAddress::Ipv4(source),
            &IpAddress::Ipv4(destination),
            &checksums,
        );
        frame
    }

    #[test]
    fn only_syns_to_a_closed_port_are_dropped_and_counted() {
        let mut gate = SynGate::default();
        let syn = segment(80, TcpControl::Syn, false);
        assert!(gate.admits(&syn), "no port is closed yet");
        gate.set_closed(80, true);
        assert!(!gate.admits(&syn));
        assert!(!gate.admits(&syn));
        assert_eq!(gate.dropped(80), 2);
        // The handshake's last ACK, data, a SYN-ACK, a reset and other ports pass.
        for frame in [
            segment(80, TcpControl::None, true),
            segment(80, TcpControl::Psh, true),
            segment(80, TcpControl::Syn, true),
            segment(80, TcpControl::Rst, false),
            segment(8080, TcpControl::Syn, false),
        ] {
            assert!(gate.admits(&frame));
        }
        assert_eq!(gate.dropped(80), 2);
        gate.set_closed(80, false);
        assert!(gate.admits(&syn), "open again");
        assert_eq!(gate.dropped(80), 2, "the count survives reopening");
        gate.remove(80);
        assert_eq!(gate.dropped(80), 0);
    }

    #[test]
    fn frames_that_are_not_tcp_over_ipv4_pass() {
        let mut gate = SynGate::default();
        gate.set_closed(80, true);
        let mut arp = segment(80, TcpControl::Syn, false);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(gate.admits(&arp));
        assert!(gate.admits(&[0; 10]), "a runt frame");
        let syn = segment(80, TcpControl::Syn, false);
        assert!(gate.admits(&syn[..14 + 20 + 8]), "a TCP header cut short");
    }
}
