//! Validation and case folding of organization, user, group and share names.
//!
//! Every name is stored twice: as given (NFC) for display, and as a folded
//! key (NFC + Unicode lowercase) that the unique indexes and lookups use, so
//! `Alice`, `ALICE` and `alice` are one user, like on Windows.

use unicode_normalization::UnicodeNormalization;

use super::AccountsError;

/// Longest organization name: a NetBIOS domain name is at most 15 characters
/// (MS-NLMP uses it as the NTLM domain; Windows truncates longer ones).
pub const ORG_NAME_MAX: usize = 15;
/// Longest user or group name (characters).
pub const USER_NAME_MAX: usize = 64;
/// Longest share name (characters). MS-SRVS 2.2.4.23 (SHARE_INFO_2) names
/// are NUL-terminated strings; Windows limits them to 80 characters.
pub const SHARE_NAME_MAX: usize = 80;

/// Domain names that clients send on their own (Samba/smbclient default
/// "WORKGROUP", Windows "MicrosoftAccount" for cloud accounts, "BUILTIN"):
/// an organization with such a name would capture logons meant for others.
const RESERVED_ORG: &[&str] = &["WORKGROUP", "BUILTIN", "MICROSOFTACCOUNT", "NT_AUTHORITY"];
/// Shares the server itself provides (IPC$ for srvsvc, MS-SRVS 1.3).
const RESERVED_SHARE: &[&str] = &["ipc$", "admin$", "print$"];

/// Characters Windows refuses in account names ("User Account Names" in the
/// Windows SAM rules) plus `@`, which we use for `user@org`.
const USER_FORBIDDEN: &[char] = &['"', '/', '\\', '[', ']', ':', ';', '|', '=', ',', '+', '*', '?', '<', '>', '@', '%'];
/// Characters Windows refuses in share names.
const SHARE_FORBIDDEN: &[char] =
    &['"', '/', '\\', '[', ']', ':', '|', '<', '>', '+', '=', ';', ',', '*', '?', '$', '%'];

/// The comparison key of a user, group or share name.
pub fn fold(name: &str) -> String {
    name.nfc().collect::<String>().to_lowercase()
}

/// The comparison key of an organization name (ASCII only, see [`org_name`]).
pub fn fold_org(name: &str) -> String {
    name.to_ascii_uppercase()
}

fn invalid(msg: String) -> AccountsError {
    AccountsError::Invalid(msg)
}

/// Checks an organization name: 1 to 15 ASCII letters, digits, `-` or `_`,
/// starting with a letter or digit. It is the NTLM domain users type.
pub fn org_name(name: &str) -> Result<String, AccountsError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if name.is_empty() || name.len() > ORG_NAME_MAX {
        return Err(invalid(format!(
            "organization name {name:?} must be 1 to {ORG_NAME_MAX} characters (it is the NTLM domain)"
        )));
    }
    if !name.chars().all(ok_char) || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(invalid(format!(
            "organization name {name:?} may only use ASCII letters, digits, '-' and '_', \
             and must start with a letter or digit"
        )));
    }
    if RESERVED_ORG.contains(&fold_org(name).as_str()) {
        return Err(invalid(format!(
            "organization name {name:?} is reserved (clients send it as a default domain); choose another"
        )));
    }
    Ok(name.to_string())
}

fn common(kind: &str, name: &str, max: usize, forbidden: &[char]) -> Result<String, AccountsError> {
    let name: String = name.nfc().collect();
    let len = name.chars().count();
    if len == 0 || len > max {
        return Err(invalid(format!("{kind} name {name:?} must be 1 to {max} characters")));
    }
    if let Some(c) = name.chars().find(|c| c.is_control() || forbidden.contains(c)) {
        return Err(invalid(format!(
            "{kind} name {name:?} contains {c:?}, which is not allowed (forbidden: {})",
            forbidden.iter().collect::<String>()
        )));
    }
    if name.starts_with(' ') || name.ends_with(' ') || name.ends_with('.') || name == "." {
        return Err(invalid(format!("{kind} name {name:?} must not start or end with a space or end with a dot")));
    }
    Ok(name)
}

/// Checks a user name and returns it in NFC. Japanese and other non-ASCII
/// names are allowed; `\`, `@` and the other separators are not.
pub fn user_name(name: &str) -> Result<String, AccountsError> {
    common("user", name, USER_NAME_MAX, USER_FORBIDDEN)
}

/// Checks a group name (same rules as user names).
pub fn group_name(name: &str) -> Result<String, AccountsError> {
    common("group", name, USER_NAME_MAX, USER_FORBIDDEN)
}

/// Checks a share name: what clients put after `\\server\`.
pub fn share_name(name: &str) -> Result<String, AccountsError> {
    let name = common("share", name, SHARE_NAME_MAX, SHARE_FORBIDDEN)?;
    if RESERVED_SHARE.contains(&fold(&name).as_str()) {
        return Err(invalid(format!("share name {name:?} is reserved by the server")));
    }
    Ok(name)
}

/// Checks a UPN suffix (`acme.example`, `経理.example` is not allowed: DNS
/// names as clients send them, ASCII) and returns it lower-cased, the way
/// logons compare it.
pub fn upn_suffix(s: &str) -> Result<String, AccountsError> {
    let s = s.trim().to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if s.len() > 253 || !s.contains('.') || !s.split('.').all(label_ok) {
        return Err(invalid(format!("{s:?} is not a DNS domain name like acme.example")));
    }
    Ok(s)
}

/// Splits `ORG\user` or `user@org` into (org, user); plain `user` gives no org.
pub fn split_qualified(spec: &str) -> (Option<&str>, &str) {
    if let Some((org, user)) = spec.split_once('\\') {
        return (Some(org), user);
    }
    if let Some((user, org)) = spec.rsplit_once('@') {
        return (Some(org), user);
    }
    (None, spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_names_are_netbios_like() {
        assert!(org_name("ACME").is_ok());
        assert!(org_name("acme-01_x").is_ok());
        assert!(org_name("").is_err());
        assert!(org_name("ABCDEFGHIJKLMNOP").is_err(), "16 chars");
        assert!(org_name("ABCDEFGHIJKLMNO").is_ok(), "15 chars");
        assert!(org_name("AC ME").is_err());
        assert!(org_name("AC.ME").is_err());
        assert!(org_name("-ACME").is_err());
        assert!(org_name("株式会社").is_err());
        assert!(org_name("workgroup").is_err(), "reserved");
        assert_eq!(fold_org("acme"), "ACME");
    }

    #[test]
    fn user_names_fold_case_and_allow_japanese() {
        assert_eq!(user_name("山田太郎").unwrap(), "山田太郎");
        assert_eq!(fold("Alice"), fold("ALICE"));
        assert!(user_name("a@b").is_err());
        assert!(user_name("a\\b").is_err());
        assert!(user_name(" alice").is_err());
        assert!(user_name("alice.").is_err());
        assert!(user_name("al\u{7}ice").is_err());
        assert!(user_name(&"x".repeat(65)).is_err());
        // NFD input is stored as NFC, so both spellings are one user.
        assert_eq!(user_name("e\u{301}").unwrap(), "\u{e9}");
    }

    #[test]
    fn share_names_reject_separators_and_reserved() {
        assert!(share_name("経理").is_ok());
        assert!(share_name("Team Docs").is_ok());
        assert!(share_name("a/b").is_err());
        assert!(share_name("IPC$").is_err());
        assert!(share_name("x$").is_err());
        assert!(share_name(&"s".repeat(81)).is_err());
    }

    #[test]
    fn qualified_names_split() {
        assert_eq!(split_qualified("ACME\\alice"), (Some("ACME"), "alice"));
        assert_eq!(split_qualified("alice@ACME"), (Some("ACME"), "alice"));
        assert_eq!(split_qualified("alice"), (None, "alice"));
    }
}
