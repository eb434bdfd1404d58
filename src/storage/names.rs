//! File and stream names: validation, NFC normalization and NTFS-style
//! case folding.
//!
//! A name is normalized to NFC first (macOS clients send decomposed
//! Japanese: ハ U+30CF + ゚ U+309A instead of パ U+30D1), then folded by
//! upper-casing each character on its own where its uppercase is a single
//! character ([`crate::types::fold_name`], the rule the engine compares
//! names and stream names with too). That is how NTFS compares names: a
//! per-UTF-16-unit upcase table, no full case folding (so "ß" never becomes
//! "SS"). The folded form only feeds the keyed lookup hash; the NFC form is
//! what we store (sealed) and show.

use super::error::{Result, StorageError};
use unicode_normalization::UnicodeNormalization;

/// NTFS limit on one path component, in UTF-16 code units (MS-FSCC 2.1.5.2).
pub const MAX_NAME_UTF16: usize = 255;

/// Validates `name` and returns its NFC form (the display name we keep).
pub fn normalize(name: &str) -> Result<String> {
    let nfc: String = name.nfc().collect();
    if nfc.is_empty() || nfc == "." || nfc == ".." {
        return Err(StorageError::InvalidName);
    }
    if nfc.encode_utf16().count() > MAX_NAME_UTF16 || nfc.chars().any(forbidden) {
        return Err(StorageError::InvalidName);
    }
    Ok(nfc)
}

/// Characters Windows never allows in a name component (MS-FSCC 2.1.5.2):
/// controls, the separators and the wildcard/redirection characters.
/// macOS clients map these to private-use code points before sending.
fn forbidden(c: char) -> bool {
    c < ' ' || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composed_and_decomposed_japanese_are_one_name() {
        let composed = "パスワード.txt"; // パ = U+30D1
        let decomposed = "\u{30CF}\u{309A}スワー\u{30C8}\u{3099}.txt"; // ハ+゚, ト+゙
        assert_ne!(composed, decomposed);
        let a = normalize(composed).unwrap();
        let b = normalize(decomposed).unwrap();
        assert_eq!(a, b);
        assert_eq!(crate::types::fold_name(&a), crate::types::fold_name(&b));
    }

    #[test]
    fn rejects_bad_names() {
        for bad in ["", ".", "..", "a/b", "a\\b", "a:b", "a*", "x\u{1}", "a|b"] {
            assert_eq!(normalize(bad), Err(StorageError::InvalidName), "{bad:?}");
        }
        assert!(normalize(&"あ".repeat(255)).is_ok());
        assert_eq!(normalize(&"あ".repeat(256)), Err(StorageError::InvalidName));
        assert!(normalize("...hidden").is_ok());
    }
}
