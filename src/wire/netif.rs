//! FSCTL_QUERY_NETWORK_INTERFACE_INFO output (MS-SMB2 2.2.32.5): one
//! NETWORK_INTERFACE_INFO entry per address the server can be reached at.

use std::net::IpAddr;

use super::PutLe;

/// The interface supports receive-side scaling (2.2.32.5 Capability).
pub const RSS_CAPABLE: u32 = 0x1;

/// Size of one entry: Next, IfIndex, Capability, Reserved, LinkSpeed and
/// the 128-byte SockAddr_Storage.
pub const ENTRY_LEN: usize = 24 + SOCKADDR_STORAGE_LEN;
const SOCKADDR_STORAGE_LEN: usize = 128;
/// SockAddr_Storage.Family (2.2.32.5.1): InterNetwork, InterNetworkV6.
const AF_INET: u16 = 0x0002;
const AF_INET6: u16 = 0x0017;

/// One network interface address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInterface {
    /// IfIndex.
    pub if_index: u32,
    /// Capability ([`RSS_CAPABLE`], RDMA_CAPABLE).
    pub capability: u32,
    /// LinkSpeed in bits per second.
    pub link_speed: u64,
    /// The address (port 0).
    pub addr: IpAddr,
}

/// Encodes the entries, each pointing at the next (Next 0 on the last).
pub fn encode(list: &[NetworkInterface], out: &mut Vec<u8>) {
    for (i, nic) in list.iter().enumerate() {
        let start = out.len();
        let next = if i + 1 < list.len() { ENTRY_LEN as u32 } else { 0 };
        out.put_u32(next);
        out.put_u32(nic.if_index);
        out.put_u32(nic.capability);
        out.put_u32(0);
        out.put_u64(nic.link_speed);
        match nic.addr {
            IpAddr::V4(a) => {
                // SOCKADDR_IN (2.2.32.5.1.1): Family, Port, IPv4Address
                // (network order), Reserved.
                out.put_u16(AF_INET);
                out.put_u16(0);
                out.extend_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                // SOCKADDR_IN6 (2.2.32.5.1.2): Family, Port, FlowInfo,
                // IPv6Address, ScopeId.
                out.put_u16(AF_INET6);
                out.put_u16(0);
                out.put_u32(0);
                out.extend_from_slice(&a.octets());
                out.put_u32(0);
            }
        }
        let used = out.len() - start;
        out.put_zeros(ENTRY_LEN - used);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_entries_chain_and_pad_to_152_bytes() {
        let list = [
            NetworkInterface {
                if_index: 2,
                capability: 0,
                link_speed: 1_000_000_000,
                addr: "192.0.2.7".parse().unwrap(),
            },
            NetworkInterface {
                if_index: 3,
                capability: RSS_CAPABLE,
                link_speed: 10,
                addr: "2001:db8::1".parse().unwrap(),
            },
        ];
        let mut out = Vec::new();
        encode(&list, &mut out);
        assert_eq!(out.len(), 2 * 152);
        assert_eq!(&out[0..4], &152u32.to_le_bytes());
        assert_eq!(&out[4..8], &2u32.to_le_bytes());
        assert_eq!(&out[16..24], &1_000_000_000u64.to_le_bytes());
        assert_eq!(&out[24..32], &[2, 0, 0, 0, 192, 0, 2, 7]);
        assert_eq!(&out[152..156], &[0, 0, 0, 0]);
        assert_eq!(&out[152 + 8..152 + 12], &1u32.to_le_bytes());
        assert_eq!(&out[176..180], &[0x17, 0, 0, 0]);
        assert_eq!(&out[184..186], &[0x20, 0x01]);
    }
}
