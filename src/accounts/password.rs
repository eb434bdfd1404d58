//! Passwords: the policy check, generation, the Argon2id hash used for
//! administrative logins, and the NT hash that NTLM needs.
//!
//! NTLMv2 proves knowledge of NTOWFv2 = HMAC_MD5(MD4(UNICODE(password)), ...)
//! (MS-NLMP 3.3.2), so an Argon2 hash alone cannot verify an SMB logon: the
//! NT hash is stored too, sealed under a master-key-derived key.

use argon2::{PasswordHasher, PasswordVerifier};
use md4::{Digest, Md4};
use rand::Rng;
use zeroize::Zeroizing;

use super::AccountsError;
use crate::config::AccountsConfig;

/// Longest accepted password (characters); Windows accepts up to 256.
pub const PASSWORD_MAX: usize = 256;
/// Length of generated passwords: about 118 bits from a 60-symbol alphabet.
const GENERATED_LEN: usize = 20;
/// No 0/O, 1/l/I: generated passwords are read off a screen and typed.
const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_.!+#";

/// Argon2id cost of administrative password hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashCost {
    /// The argon2 crate's defaults (OWASP: 19 MiB, t=2, p=1).
    Standard,
    /// Smallest legal cost. Only for tests and benchmarks that create
    /// thousands of users; never for a real store.
    InsecureFast,
}

impl HashCost {
    fn argon2(self) -> Result<argon2::Argon2<'static>, AccountsError> {
        let params = match self {
            HashCost::Standard => argon2::Params::default(),
            HashCost::InsecureFast => argon2::Params::new(argon2::Params::MIN_M_COST, 1, 1, None)
                .map_err(|e| AccountsError::Invalid(format!("argon2 parameters: {e}")))?,
        };
        Ok(argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params))
    }
}

/// Checks `password` against the configured policy. The message says what
/// to change but never repeats the password.
pub fn check_policy(cfg: &AccountsConfig, user: &str, password: &str) -> Result<(), AccountsError> {
    let weak = |m: String| Err(AccountsError::WeakPassword(m));
    let len = password.chars().count();
    if len < cfg.password_min_length {
        return weak(format!("it must have at least {} characters", cfg.password_min_length));
    }
    if len > PASSWORD_MAX {
        return weak(format!("it must have at most {PASSWORD_MAX} characters"));
    }
    if password.chars().any(char::is_control) {
        return weak("it must not contain control characters".into());
    }
    let classes = char_classes(password);
    if classes < cfg.password_min_classes {
        return weak(format!(
            "it must mix at least {} of: lowercase, uppercase, digits, other characters",
            cfg.password_min_classes
        ));
    }
    // Windows' complexity rule: the account name must not appear in the
    // password when the name is longer than two characters.
    let user = user.to_lowercase();
    if user.chars().count() > 2 && password.to_lowercase().contains(&user) {
        return weak("it must not contain the user name".into());
    }
    Ok(())
}

fn char_classes(p: &str) -> usize {
    let lower = p.chars().any(char::is_lowercase);
    let upper = p.chars().any(char::is_uppercase);
    let digit = p.chars().any(char::is_numeric);
    let other = p.chars().any(|c| !c.is_lowercase() && !c.is_uppercase() && !c.is_numeric());
    [lower, upper, digit, other].into_iter().filter(|b| *b).count()
}

/// A random password from the OS CSPRNG that passes any policy this
/// server can be configured with (all four classes, 20 characters).
pub fn generate() -> Zeroizing<String> {
    let mut rng = rand::rngs::OsRng;
    loop {
        let p: Zeroizing<String> = Zeroizing::new(
            (0..GENERATED_LEN).map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())])).collect(),
        );
        if char_classes(&p) == 4 {
            return p;
        }
    }
}

/// The Argon2id PHC string for `password` ("$argon2id$v=19$m=...").
pub fn hash_admin(cost: HashCost, password: &str) -> Result<String, AccountsError> {
    let salt = argon2::password_hash::SaltString::generate(&mut rand::rngs::OsRng);
    let h = cost
        .argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| AccountsError::Invalid(format!("cannot hash password: {e}")))?;
    Ok(h.to_string())
}

/// Verifies `password` against a PHC string made by [`hash_admin`]; the
/// parameters come from the string, so old hashes keep verifying.
pub fn verify_admin(phc: &str, password: &str) -> bool {
    let Ok(a) = HashCost::Standard.argon2() else {
        return false;
    };
    let Ok(h) = argon2::PasswordHash::new(phc) else {
        return false;
    };
    a.verify_password(password.as_bytes(), &h).is_ok()
}

/// NT hash: MD4 of the UTF-16LE password (MS-NLMP 3.3.1, NTOWFv1).
pub fn nt_hash(password: &str) -> Zeroizing<[u8; 16]> {
    let mut md = Md4::new();
    for u in password.encode_utf16() {
        md.update(u.to_le_bytes());
    }
    let mut out = Zeroizing::new([0u8; 16]);
    out.copy_from_slice(&md.finalize());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> AccountsConfig {
        AccountsConfig::default()
    }

    #[test]
    fn policy_length_classes_and_name() {
        let c = cfg();
        assert!(check_policy(&c, "alice", "Short1!").is_err());
        assert!(check_policy(&c, "alice", "alllowercaseletters").is_err());
        assert!(check_policy(&c, "alice", "lowerUPPER12").is_ok());
        assert!(check_policy(&c, "alice", "xxAlice2024!!").is_err(), "contains user name");
        assert!(check_policy(&c, "al", "xxal2024!!Q").is_ok(), "2-char names are not checked");
        assert!(check_policy(&c, "alice", &"aA1!".repeat(65)).is_err(), "too long");
        assert!(check_policy(&c, "alice", "tab\tTab123!").is_err());
        // Kana count as "other", so a Japanese passphrase can qualify.
        assert!(check_policy(&c, "alice", "さくらさくら2024").is_err(), "2 classes");
        assert!(check_policy(&c, "alice", "さくらSakura2024").is_ok());
        let mut strict = cfg();
        strict.password_min_classes = 4;
        assert!(check_policy(&strict, "alice", "lowerUPPER12").is_err());
        assert!(check_policy(&strict, "alice", "lowerUPPER12!").is_ok());
    }

    #[test]
    fn errors_never_echo_the_password() {
        let e = check_policy(&cfg(), "alice", "zzSecretzz").unwrap_err().to_string();
        assert!(!e.contains("zzSecretzz"), "{e}");
    }

    #[test]
    fn generated_passwords_pass_strict_policy() {
        let mut strict = cfg();
        strict.password_min_classes = 4;
        strict.password_min_length = 20;
        for _ in 0..50 {
            let p = generate();
            check_policy(&strict, "admin", &p).unwrap();
        }
        assert_ne!(*generate(), *generate());
    }

    /// MS-NLMP 4.2.1 test vector: Password "Password" -> NTOWFv1.
    #[test]
    fn nt_hash_matches_ms_nlmp_vector() {
        assert_eq!(hex::encode(*nt_hash("Password")), "a4f49c406510bdcab6824ee7c30fd852");
    }

    #[test]
    fn argon2_round_trip() {
        let h = hash_admin(HashCost::InsecureFast, "Passw0rd!").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_admin(&h, "Passw0rd!"));
        assert!(!verify_admin(&h, "Passw0rd?"));
        assert!(!verify_admin("garbage", "Passw0rd!"));
    }
}
