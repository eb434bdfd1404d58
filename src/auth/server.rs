//! The server's SPNEGO/NTLMSSP state machine (MS-NLMP 3.2.5, MS-SPNG 3.2.5).

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::der::Malformed;
use super::ntlm::{self, flags};
use super::ntlm_crypto::{self, Side};
use super::spnego::{self, ClientToken, NTLMSSP_OID, NegState};
use super::{AuthError, AuthFailure, Authenticated, CredentialSource, FailReason, ServerNames, Step};
use crate::types::FileTime;

/// SPNEGO context kept between legs.
struct Spnego {
    /// The client's MechTypeList, which both mechListMICs cover.
    mech_types: Vec<u8>,
    /// NTLMSSP was not the client's first choice, so the mechListMIC
    /// exchange is mandatory (RFC 4178 5, MS-SPNG 3.3.5.1).
    mic_required: bool,
}

/// What the AUTHENTICATE leg needs from the earlier ones.
struct Pending {
    /// `None` for a raw NTLMSSP client.
    spnego: Option<Spnego>,
    /// NEGOTIATE and CHALLENGE exactly as exchanged: the MIC covers them.
    negotiate: Vec<u8>,
    challenge: Vec<u8>,
}

enum State {
    /// Nothing received yet.
    Start,
    /// We selected NTLMSSP over the client's optimistic mechanism and wait
    /// for its NTLM NEGOTIATE in a NegTokenResp.
    AwaitNegotiate(Spnego),
    /// CHALLENGE sent; waiting for AUTHENTICATE.
    AwaitAuthenticate(Pending),
    /// Done or failed: no further tokens are accepted.
    Finished,
}

/// One authentication exchange (one SMB2 session setup). Not reusable.
pub struct NtlmServer {
    challenge: [u8; 8],
    now: FileTime,
    names: ServerNames,
    state: State,
}

fn fail(reason: FailReason) -> Step {
    Step::Fail(AuthFailure { reason, user: String::new(), domain: String::new() })
}

impl NtlmServer {
    /// Starts an exchange. `challenge` must be 8 fresh random bytes;
    /// `now` goes into the CHALLENGE's MsvAvTimestamp.
    pub fn new(challenge: [u8; 8], now: FileTime, names: ServerNames) -> Self {
        Self { challenge, now, names, state: State::Start }
    }

    /// Consumes the client's next SecurityBuffer. Any failure ends the
    /// exchange: later calls return `UnexpectedToken`.
    pub fn step(&mut self, token: &[u8], creds: &dyn CredentialSource) -> Step {
        let state = std::mem::replace(&mut self.state, State::Finished);
        let Ok(parsed) = spnego::parse_client(token) else {
            return fail(FailReason::Malformed);
        };
        match (state, parsed) {
            (State::Start, ClientToken::RawNtlm(neg)) => self.on_negotiate(neg, None, false),
            (State::Start, ClientToken::Init { mech_types_raw, mechs, mech_token }) => {
                self.on_init(mech_types_raw, &mechs, mech_token)
            }
            (State::AwaitNegotiate(ctx), ClientToken::Resp { response_token: Some(neg), .. }) => {
                self.on_negotiate(neg, Some(ctx), false)
            }
            (State::AwaitAuthenticate(p), ClientToken::RawNtlm(auth)) if p.spnego.is_none() => {
                on_authenticate(&self.challenge, auth, None, p, creds)
            }
            (State::AwaitAuthenticate(p), ClientToken::Resp { response_token: Some(auth), mech_list_mic })
                if p.spnego.is_some() =>
            {
                on_authenticate(&self.challenge, auth, mech_list_mic, p, creds)
            }
            _ => fail(FailReason::UnexpectedToken),
        }
    }

    /// The client's NegTokenInit (RFC 4178 3.2).
    fn on_init(&mut self, mech_types: &[u8], mechs: &[&[u8]], mech_token: Option<&[u8]>) -> Step {
        if !mechs.contains(&NTLMSSP_OID) {
            return fail(FailReason::NoCommonMechanism);
        }
        let first = mechs.first() == Some(&NTLMSSP_OID);
        let ctx = Spnego { mech_types: mech_types.to_vec(), mic_required: !first };
        match mech_token.filter(|_| first) {
            Some(neg) => self.on_negotiate(neg, Some(ctx), true),
            None => {
                // Select NTLMSSP and ask for its first token.
                self.state = State::AwaitNegotiate(ctx);
                Step::Continue(spnego::resp(NegState::AcceptIncomplete, true, None, None))
            }
        }
    }

    /// NTLM NEGOTIATE → CHALLENGE (MS-NLMP 3.2.5.1.1). `first_reply` adds
    /// supportedMech, which only the target's first reply carries.
    fn on_negotiate(&mut self, neg: &[u8], spnego: Option<Spnego>, first_reply: bool) -> Step {
        let Ok(client_flags) = ntlm::parse_negotiate(neg) else {
            return fail(FailReason::Malformed);
        };
        // We speak Unicode only, and sign mechListMIC with extended session
        // security only (every client of the last twenty years offers both).
        if client_flags & flags::UNICODE == 0 || client_flags & flags::EXTENDED_SESSIONSECURITY == 0 {
            return fail(FailReason::Unsupported);
        }
        let cflags = ntlm::challenge_flags(client_flags);
        let challenge = ntlm::build_challenge(cflags, &self.challenge, &self.names, self.now);
        let token = match &spnego {
            Some(_) => spnego::resp(NegState::AcceptIncomplete, first_reply, Some(&challenge), None),
            None => challenge.clone(),
        };
        self.state = State::AwaitAuthenticate(Pending { spnego, negotiate: neg.to_vec(), challenge });
        Step::Continue(token)
    }
}

/// AUTHENTICATE → Done or Fail.
fn on_authenticate(
    server_challenge: &[u8; 8],
    msg: &[u8],
    mech_list_mic: Option<&[u8]>,
    p: Pending,
    creds: &dyn CredentialSource,
) -> Step {
    let Ok(auth) = ntlm::parse_authenticate(msg) else {
        return fail(FailReason::Malformed);
    };
    match check(server_challenge, msg, &auth, mech_list_mic, &p, creds) {
        Ok((credential, session_key, token)) => Step::Done(Box::new(Authenticated {
            token,
            credential,
            session_key,
            client_user: auth.user,
            client_domain: auth.domain,
            workstation: auth.workstation,
        })),
        Err(reason) => Step::Fail(AuthFailure { reason, user: auth.user, domain: auth.domain }),
    }
}

/// What a successful check yields: the account, ExportedSessionKey and
/// the final token.
type Success = (super::Credential, Zeroizing<[u8; 16]>, Vec<u8>);

/// Every check of MS-NLMP 3.3.5.2 we apply, in order.
fn check(
    server_challenge: &[u8; 8],
    msg: &[u8],
    auth: &ntlm::Authenticate<'_>,
    mech_list_mic: Option<&[u8]>,
    p: &Pending,
    creds: &dyn CredentialSource,
) -> Result<Success, FailReason> {
    if auth.flags & flags::UNICODE == 0 {
        return Err(FailReason::Unsupported);
    }
    if auth.flags & flags::ANONYMOUS != 0 || (auth.user.is_empty() && auth.nt_response.is_empty()) {
        return Err(FailReason::Anonymous);
    }
    // NTLMv1 responses are exactly 24 bytes; an empty NT response means LM only.
    if auth.nt_response.len() <= 24 {
        return Err(FailReason::NtlmV1Refused);
    }
    let temp = auth.nt_response.get(16..).ok_or(FailReason::Malformed)?;
    let blob = ntlm::parse_blob(temp).map_err(|Malformed| FailReason::Malformed)?;
    let mic_present = ntlm::mic_present(blob.av_pairs).map_err(|Malformed| FailReason::Malformed)?;

    let credential = match creds.lookup(&auth.domain, &auth.user) {
        Ok(Some(c)) => c,
        Ok(None) => return Err(FailReason::UnknownUser),
        Err(AuthError::LockedOut) => return Err(FailReason::LockedOut),
        Err(AuthError::Disabled) => return Err(FailReason::Disabled),
        Err(AuthError::Store(_)) => return Err(FailReason::StoreError),
    };
    let keys = verify_response(server_challenge, &credential.nt_hash, auth).ok_or(FailReason::BadPassword)?;
    let exported = ntlm_crypto::exported_session_key(auth.flags, &keys.session_base_key, auth.encrypted_session_key)
        .ok_or(FailReason::Malformed)?;

    if mic_present {
        check_message_mic(msg, auth, &exported, &p.negotiate, &p.challenge)?;
    }
    let token = match &p.spnego {
        None => Vec::new(),
        Some(ctx) => final_token(ctx, mech_list_mic, mic_present, &exported, auth.flags)?,
    };
    Ok((credential, exported, token))
}

/// NTLMv2 with the domain exactly as sent; then, like Samba, the
/// uppercased domain and no domain, which some clients hash instead.
fn verify_response(
    server_challenge: &[u8; 8],
    nt_hash: &[u8; 16],
    auth: &ntlm::Authenticate<'_>,
) -> Option<ntlm_crypto::V2Keys> {
    let upper = auth.domain.to_uppercase();
    let mut domains = vec![auth.domain.as_str()];
    if upper != auth.domain {
        domains.push(&upper);
    }
    if !auth.domain.is_empty() {
        domains.push("");
    }
    domains.into_iter().find_map(|d| {
        let key = ntlm_crypto::ntowfv2(nt_hash, &auth.user, d);
        ntlm_crypto::verify_v2(&key, server_challenge, auth.nt_response)
    })
}

/// MS-NLMP 3.3.5.2: the MIC over NEGOTIATE ‖ CHALLENGE ‖ AUTHENTICATE (MIC zeroed).
fn check_message_mic(
    msg: &[u8],
    auth: &ntlm::Authenticate<'_>,
    exported: &[u8; 16],
    negotiate: &[u8],
    challenge: &[u8],
) -> Result<(), FailReason> {
    if !auth.has_mic_field {
        return Err(FailReason::Malformed);
    }
    let range = ntlm::MIC_OFFSET..ntlm::MIC_OFFSET + 16;
    let mut zeroed = msg.to_vec();
    zeroed[range.clone()].fill(0);
    let want = ntlm_crypto::message_mic(exported, negotiate, challenge, &zeroed);
    if bool::from(want.ct_eq(&msg[range])) { Ok(()) } else { Err(FailReason::MicMismatch) }
}

/// Verifies the client's mechListMIC (MS-SPNG 3.2.5.1) when sent or due and
/// builds the accept-completed token with ours.
fn final_token(
    ctx: &Spnego,
    client_mic: Option<&[u8]>,
    ntlm_mic: bool,
    exported: &[u8; 16],
    negotiated: u32,
) -> Result<Vec<u8>, FailReason> {
    let ours = match client_mic {
        Some(got) => {
            let want = ntlm_crypto::gss_mic(exported, negotiated, Side::Client, 0, &ctx.mech_types);
            if !bool::from(want.ct_eq(got)) {
                return Err(FailReason::MicMismatch);
            }
            Some(ntlm_crypto::gss_mic(exported, negotiated, Side::Server, 0, &ctx.mech_types))
        }
        // A client whose NTLM carried a MIC must protect the mechanism list too.
        None if ctx.mic_required || ntlm_mic => return Err(FailReason::MicMismatch),
        None => None,
    };
    Ok(spnego::resp(NegState::AcceptCompleted, false, None, ours.as_ref().map(|m| &m[..])))
}
