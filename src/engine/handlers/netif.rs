//! FSCTL_QUERY_NETWORK_INTERFACE_INFO (MS-SMB2 3.3.5.15.11): the addresses
//! a multichannel client may open further channels to. A server listening
//! on one address names that one; one listening on the unspecified address
//! names the host's interfaces (not loopback, unless that is all there is).

use std::net::IpAddr;

use crate::engine::context::Ctx;
use crate::engine::status::Result;
use crate::wire::NtStatus;
use crate::wire::create::FileId;
use crate::wire::netif::{self, NetworkInterface};

/// LinkSpeed when the system does not say: 1 Gbit/s, Samba's default.
const LINK_SPEED: u64 = 1_000_000_000;

/// The FSCTL's output.
pub fn query(ctx: &Ctx<'_>, file_id: FileId) -> Result<Vec<u8>> {
    if !ctx.server.config.server.multichannel {
        // 3.3.5.15.11: IsMultiChannelCapable FALSE.
        return Err(NtStatus::NOT_SUPPORTED.into());
    }
    if file_id != FileId::ANY {
        // 3.3.5.15.11 (smbtorture smb2.ioctl.bug14788.NETWORK_INTERFACE).
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let list = interfaces(ctx.server.config.server.listen.ip());
    let mut out = Vec::with_capacity(list.len() * netif::ENTRY_LEN);
    netif::encode(&list, &mut out);
    Ok(out)
}

/// The addresses behind `listen`, with their interface indexes.
fn interfaces(listen: IpAddr) -> Vec<NetworkInterface> {
    let host = if_addrs::get_if_addrs().unwrap_or_default();
    let nic = |i: &if_addrs::Interface| NetworkInterface {
        if_index: i.index.unwrap_or(0),
        capability: 0,
        link_speed: LINK_SPEED,
        addr: i.ip(),
    };
    if !listen.is_unspecified() {
        let found = host.iter().find(|i| i.ip() == listen).map(nic);
        return vec![found.unwrap_or(NetworkInterface {
            if_index: 0,
            capability: 0,
            link_speed: LINK_SPEED,
            addr: listen,
        })];
    }
    // 0.0.0.0 takes IPv4 only; [::] both (a dual-stack socket).
    let fits = |a: &IpAddr| listen.is_ipv6() || a.is_ipv4();
    let outside: Vec<NetworkInterface> = host.iter().filter(|i| !i.is_loopback() && fits(&i.ip())).map(nic).collect();
    if !outside.is_empty() {
        return outside;
    }
    host.iter().filter(|i| fits(&i.ip())).map(nic).collect()
}
