//! NTLM cryptography (MS-NLMP 3.3.2, 3.4): NT hash, NTLMv2 response
//! verification, session keys, the AUTHENTICATE MIC, and the GSS MIC used
//! for SPNEGO's mechListMIC.

use hmac::{Hmac, Mac};
use md4::{Digest, Md4};
use md5::Md5;
use rc4::{KeyInit, Rc4, StreamCipher, consts::U16};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::ntlm::flags;
use crate::types::upcase;

type HmacMd5 = Hmac<Md5>;

pub(crate) fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut m = <HmacMd5 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

fn utf16(s: &str) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(s.encode_utf16().flat_map(u16::to_le_bytes).collect())
}

/// The NT hash (NTOWFv1, MS-NLMP 3.3.1): MD4 of the UTF-16LE password.
/// The accounts store keeps it (encrypted); NTLMv2 is verified from it.
pub fn nt_hash(password: &str) -> Zeroizing<[u8; 16]> {
    let pw = utf16(password);
    let mut out = Zeroizing::new([0u8; 16]);
    out.copy_from_slice(&Md4::digest(&*pw));
    out
}

/// NTOWFv2 (MS-NLMP 3.3.2): HMAC_MD5(NT hash, UNICODE(Uppercase(User) ‖ UserDom)).
/// Uppercase is Windows' RtlUpcaseUnicodeString, the server's one case rule
/// ([`upcase`]: per character, "ß" stays).
pub(crate) fn ntowfv2(nt_hash: &[u8; 16], user: &str, domain: &str) -> Zeroizing<[u8; 16]> {
    let who = utf16(&(upcase(user) + domain));
    Zeroizing::new(hmac_md5(nt_hash, &[&who]))
}

/// Result of a successful NTLMv2 check.
pub(crate) struct V2Keys {
    /// SessionBaseKey = HMAC_MD5(ResponseKeyNT, NTProofStr); for NTLMv2 it
    /// is also the KeyExchangeKey (MS-NLMP 3.4.5.1).
    pub session_base_key: Zeroizing<[u8; 16]>,
}

/// Checks an NTLMv2 NtChallengeResponse (`proof ‖ temp`) against the
/// response key; constant-time comparison of NTProofStr.
pub(crate) fn verify_v2(response_key: &[u8; 16], server_challenge: &[u8; 8], nt_response: &[u8]) -> Option<V2Keys> {
    let (proof, temp) = nt_response.split_at_checked(16)?;
    let want = hmac_md5(response_key, &[server_challenge, temp]);
    if !bool::from(want.ct_eq(proof)) {
        return None;
    }
    Some(V2Keys { session_base_key: Zeroizing::new(hmac_md5(response_key, &[proof])) })
}

pub(crate) fn rc4_16(key: &[u8; 16], data: &mut [u8]) {
    let mut c = Rc4::<U16>::new(key.into());
    c.apply_keystream(data);
}

/// ExportedSessionKey (MS-NLMP 3.2.5.1.2, server side 3.3.5.2): with
/// KEY_EXCH the client's random key, RC4-encrypted under KeyExchangeKey;
/// otherwise KeyExchangeKey itself. `None` if KEY_EXCH is set but the
/// encrypted key is not 16 bytes.
pub(crate) fn exported_session_key(
    negotiated: u32,
    key_exchange_key: &[u8; 16],
    encrypted: &[u8],
) -> Option<Zeroizing<[u8; 16]>> {
    let mut k = Zeroizing::new(*key_exchange_key);
    if negotiated & flags::KEY_EXCH != 0 {
        k.copy_from_slice(encrypted.get(..16).filter(|_| encrypted.len() == 16)?);
        rc4_16(key_exchange_key, &mut *k);
    }
    Some(k)
}

/// The AUTHENTICATE MIC (MS-NLMP 3.1.5.1.2): HMAC_MD5 over the three
/// messages, the AUTHENTICATE one with its MIC field zeroed.
pub(crate) fn message_mic(exported: &[u8; 16], negotiate: &[u8], challenge: &[u8], auth_zeroed: &[u8]) -> [u8; 16] {
    hmac_md5(exported, &[negotiate, challenge, auth_zeroed])
}

/// Which side of the NTLM session-security keys (MS-NLMP 3.4.5.2, 3.4.5.3).
#[derive(Clone, Copy)]
pub(crate) enum Side {
    Client,
    Server,
}

const SIGN_C2S: &[u8] = b"session key to client-to-server signing key magic constant\0";
const SIGN_S2C: &[u8] = b"session key to server-to-client signing key magic constant\0";
const SEAL_C2S: &[u8] = b"session key to client-to-server sealing key magic constant\0";
const SEAL_S2C: &[u8] = b"session key to server-to-client sealing key magic constant\0";

fn md5(parts: &[&[u8]]) -> Zeroizing<[u8; 16]> {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    Zeroizing::new(h.finalize().into())
}

/// SIGNKEY (3.4.5.2, extended session security).
pub(crate) fn sign_key(exported: &[u8; 16], side: Side) -> Zeroizing<[u8; 16]> {
    md5(&[
        exported,
        match side {
            Side::Client => SIGN_C2S,
            Side::Server => SIGN_S2C,
        },
    ])
}

/// SEALKEY (3.4.5.3, extended session security): the session key is cut to
/// 56 or 40 bits unless NEGOTIATE_128, then hashed with the magic constant.
pub(crate) fn seal_key(exported: &[u8; 16], negotiated: u32, side: Side) -> Zeroizing<[u8; 16]> {
    let n = if negotiated & flags::N128 != 0 {
        16
    } else if negotiated & flags::N56 != 0 {
        7
    } else {
        5
    };
    md5(&[
        &exported[..n],
        match side {
            Side::Client => SEAL_C2S,
            Side::Server => SEAL_S2C,
        },
    ])
}

/// GSS_GetMIC with extended session security (MS-NLMP 3.4.4.2) for the
/// first message of a fresh sealing handle — which both mechListMICs are:
/// `01000000 ‖ checksum ‖ seq`, the checksum RC4-encrypted under KEY_EXCH.
pub(crate) fn gss_mic(exported: &[u8; 16], negotiated: u32, side: Side, seq: u32, msg: &[u8]) -> [u8; 16] {
    let sk = sign_key(exported, side);
    let mut checksum = [0u8; 8];
    checksum.copy_from_slice(&hmac_md5(&*sk, &[&seq.to_le_bytes(), msg])[..8]);
    if negotiated & flags::KEY_EXCH != 0 {
        rc4_16(&seal_key(exported, negotiated, side), &mut checksum);
    }
    let mut sig = [0u8; 16];
    sig[..4].copy_from_slice(&1u32.to_le_bytes());
    sig[4..12].copy_from_slice(&checksum);
    sig[12..].copy_from_slice(&seq.to_le_bytes());
    sig
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::hex_bytes;

    fn h16(s: &str) -> [u8; 16] {
        hex_bytes(s).try_into().unwrap()
    }

    #[test]
    fn nt_hash_known_values() {
        assert_eq!(hex::encode(*nt_hash("password")), "8846f7eaee8fb117ad06bdd830b7586c");
        assert_eq!(hex::encode(*nt_hash("Password")), "a4f49c406510bdcab6824ee7c30fd852");
    }

    /// MS-NLMP 4.2.4.1.1 and 4.2.4.2.2: User/Domain/Password, server
    /// challenge 0123456789abcdef, client challenge aa…, time 0.
    #[test]
    fn ms_nlmp_4_2_4_ntlmv2_vectors() {
        let key = ntowfv2(&nt_hash("Password"), "User", "Domain");
        assert_eq!(hex::encode(*key), "0c868a403bfd7a93a3001ef22ef02e3f");
        let nt = hex_bytes(
            "68cd0ab851e51c96aabc927bebef6a1c 0101000000000000 0000000000000000
             aaaaaaaaaaaaaaaa 00000000 02000c0044006f006d00610069006e00
             01000c00530065007200760065007200 00000000 00000000",
        );
        let chal = hex_bytes("0123456789abcdef").try_into().unwrap();
        let keys = verify_v2(&key, &chal, &nt).expect("proof verifies");
        assert_eq!(hex::encode(*keys.session_base_key), "8de40ccadbc14a82f15cb0ad0de95ca3");
        let mut bad = nt.clone();
        bad[40] ^= 1;
        assert!(verify_v2(&key, &chal, &bad).is_none());
        // 4.2.4.2.3: EncryptedSessionKey decrypts to RandomSessionKey 55…55.
        let exported = exported_session_key(
            flags::KEY_EXCH,
            &keys.session_base_key,
            &hex_bytes("c5dad2544fc9799094ce1ce90bc9d03e"),
        )
        .unwrap();
        assert_eq!(*exported, [0x55; 16]);
        assert!(exported_session_key(flags::KEY_EXCH, &keys.session_base_key, &[0; 15]).is_none());
    }

    /// MS-NLMP 4.2.4.4 session-security keys for RandomSessionKey 55…55.
    #[test]
    fn ms_nlmp_session_security_keys() {
        let k = [0x55; 16];
        let f = flags::N128 | flags::KEY_EXCH;
        assert_eq!(*sign_key(&k, Side::Client), h16("4788dc861b4782f35d43fd98fe1a2d39"));
        assert_eq!(*seal_key(&k, f, Side::Client), h16("59f600973cc4960a25480a7c196e4c58"));
    }

    #[test]
    fn upcase_is_per_character() {
        assert_eq!(upcase("alice"), "ALICE");
        assert_eq!(upcase("straße"), "STRAßE");
        assert_eq!(upcase("やまだ"), "やまだ");
        assert_eq!(upcase("ａｂｃ"), "ＡＢＣ");
    }
}
