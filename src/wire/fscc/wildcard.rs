//! QUERY_DIRECTORY search patterns (MS-FSCC 2.1.4.4, the
//! FsRtlIsNameInExpression rules): `*` and `?`, plus the DOS wildcards that
//! Windows clients send after translating 8.3-era patterns:
//!
//! - `<` (DOS_STAR): any run of characters that does not go past the last
//!   `.` of the name ("<.txt" is how "*.txt" reaches the server);
//! - `>` (DOS_QM): any one character except `.`, or nothing at a `.` or at
//!   the end of the name (so "a>>" matches "a", "ab" and "abc");
//! - `"` (DOS_DOT): a `.`, or nothing at the end of the name.
//!
//! Matching here compares characters exactly. Windows matches without
//! regard to case, so the engine folds pattern and name with the server's
//! one case rule first (`engine::names::matches`, `types::fold_name`);
//! `wire` imports nothing of the crate, so the rule is not applied here.

/// Longest pattern a QUERY_DIRECTORY may carry, in UTF-16 units: a name's
/// limit (MS-FSCC 2.1.5.2). Longer ones cannot match any name more than a
/// shorter one can, and would only make the matcher work harder.
pub const MAX_PATTERN_UTF16: usize = 255;

/// True if `name` matches `pattern`, both already case-folded. An empty
/// pattern matches nothing (the handler turns an empty pattern into "*"
/// first, MS-SMB2 3.3.5.18).
///
/// Costs O(|pattern| × |name|): every pattern character advances the set
/// of reachable name positions in one pass, and runs of `*` count as one.
pub fn name_matches(pattern: &str, name: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let mut p: Vec<char> = pattern.chars().collect();
    p.dedup_by(|a, b| *a == '*' && *b == '*');
    let n: Vec<char> = name.chars().collect();
    if p.is_empty() {
        return false;
    }
    let last_dot = n.iter().rposition(|&c| c == '.');
    // reach[j]: pattern prefix consumed so far can end just before n[j].
    // One row per pattern position keeps this O(|p| * |n|) with no recursion.
    let mut reach = vec![false; n.len() + 1];
    reach[0] = true;
    for &pc in &p {
        reach = step(pc, &reach, &n, last_dot);
        if !reach.iter().any(|&r| r) {
            return false;
        }
    }
    reach[n.len()]
}

/// Advances the set of reachable name positions over one pattern char.
fn step(pc: char, reach: &[bool], n: &[char], last_dot: Option<usize>) -> Vec<bool> {
    let len = n.len();
    let mut next = vec![false; len + 1];
    // The two filling wildcards: a filled range only grows to the right,
    // so filling from the first reachable position once is enough (filling
    // from each reachable position made a run of them quadratic).
    if pc == '*' {
        if let Some(j) = reach.iter().position(|&r| r) {
            next[j..].iter_mut().for_each(|r| *r = true);
        }
        return next;
    }
    if pc == '<' {
        // Up to (not including) the last dot if it lies ahead, otherwise
        // to the end of the name.
        let first = |from: usize, to: usize| (from..to).find(|&j| reach[j]);
        let dot = last_dot.unwrap_or(len);
        if let Some(j) = first(0, (dot + 1).min(len + 1)) {
            let limit = if last_dot.is_some() { dot } else { len };
            next[j..=limit].iter_mut().for_each(|r| *r = true);
        }
        if let Some(j) = last_dot.and_then(|d| first(d + 1, len + 1)) {
            next[j..].iter_mut().for_each(|r| *r = true);
        }
        return next;
    }
    for j in (0..=len).filter(|&j| reach[j]) {
        match pc {
            '>' => match n.get(j) {
                None | Some('.') => next[j] = true,
                Some(_) => next[j + 1] = true,
            },
            '"' => match n.get(j) {
                None => next[j] = true,
                Some('.') => next[j + 1] = true,
                Some(_) => {}
            },
            '?' => {
                if j < len {
                    next[j + 1] = true;
                }
            }
            c => {
                if n.get(j) == Some(&c) {
                    next[j + 1] = true;
                }
            }
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::name_matches as m;
    use proptest::prelude::*;

    /// The first matcher, quadratic per `*` but plainly right: every
    /// reachable position fills on its own.
    fn reference(pattern: &str, name: &str) -> bool {
        let p: Vec<char> = pattern.chars().collect();
        let n: Vec<char> = name.chars().collect();
        if p.is_empty() {
            return false;
        }
        let len = n.len();
        let last_dot = n.iter().rposition(|&c| c == '.');
        let mut reach = vec![false; len + 1];
        reach[0] = true;
        for &pc in &p {
            let mut next = vec![false; len + 1];
            for j in (0..=len).filter(|&j| reach[j]) {
                match pc {
                    '*' => next[j..].iter_mut().for_each(|r| *r = true),
                    '<' => {
                        let limit = match last_dot {
                            Some(d) if d >= j => d,
                            _ => len,
                        };
                        next[j..=limit].iter_mut().for_each(|r| *r = true);
                    }
                    '>' => match n.get(j) {
                        None | Some('.') => next[j] = true,
                        Some(_) => next[j + 1] = true,
                    },
                    '"' => match n.get(j) {
                        None => next[j] = true,
                        Some('.') => next[j + 1] = true,
                        Some(_) => {}
                    },
                    '?' => {
                        if j < len {
                            next[j + 1] = true;
                        }
                    }
                    c => {
                        if n.get(j) == Some(&c) {
                            next[j + 1] = true;
                        }
                    }
                }
            }
            reach = next;
        }
        reach[len]
    }

    proptest! {
        #[test]
        fn agrees_with_the_reference(pattern in "[ab.*?<>\"]{0,12}", name in "[abAB.]{0,12}") {
            prop_assert_eq!(m(&pattern, &name), reference(&pattern, &name), "{:?} {:?}", pattern, name);
        }
    }

    #[test]
    fn hostile_patterns_match_like_short_ones() {
        // 32K stars are one star; a 255-character pattern of alternating
        // stars against a 255-character name (quadratic per star in the
        // old matcher, linear now) still gives the right answer.
        let name = "a".repeat(254) + "b";
        assert!(m(&("*".repeat(32_768) + "b"), &name));
        assert!(m(&"**".repeat(100), &name));
        assert!(!m(&("*a".repeat(127) + "c"), &name));
        assert!(m(&("*a".repeat(127) + "b"), &name));
    }

    #[test]
    fn star_and_question_mark() {
        assert!(m("*", "anything.txt"));
        assert!(m("*", ""));
        assert!(m("*.txt", "a.txt"));
        assert!(m("*.txt", ".txt"));
        assert!(!m("*.txt", "a.txt.bak"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("b.txt", "b.txt"));
        assert!(!m("b.txt", "b.txt2"));
        assert!(!m("", "a"));
    }

    #[test]
    fn exact_on_folded_input() {
        assert!(m("B.TXT", "B.TXT"));
        assert!(!m("B.TXT", "b.txt"));
        assert!(m("報告*", "報告書.docx"));
    }

    #[test]
    fn dos_star() {
        // "<.txt" is "*.txt" in DOS form; "<" may cross non-final dots.
        assert!(m("<.txt", "a.txt"));
        assert!(m("<.txt", "a.b.txt"));
        assert!(!m("<.txt", "a.txt.bak"));
        // "<" alone cannot consume the last dot...
        assert!(!m("<", "a.b"));
        // ...but matches names without a dot entirely.
        assert!(m("<", "abc"));
        // "*.*" becomes '<"*': matches with or without an extension.
        assert!(m("<\"*", "abc"));
        assert!(m("<\"*", "abc.txt"));
        assert!(m("<\"*", "a.b.c"));
    }

    #[test]
    fn dos_qm() {
        // "a??" in DOS form is "a>>": matches 1 to 3 characters before a dot.
        assert!(m("a>>", "a"));
        assert!(m("a>>", "ab"));
        assert!(m("a>>", "abc"));
        assert!(!m("a>>", "abcd"));
        // '>' does not match a dot but lets the '.' in the pattern match it.
        assert!(m("a>>.txt", "a.txt"));
        assert!(m("a>>.txt", "ab.txt"));
        assert!(!m("a>>.txt", "abcd.txt"));
        assert!(!m(">", "."));
    }

    #[test]
    fn dos_dot() {
        assert!(m("abc\"", "abc"));
        assert!(m("abc\"", "abc."));
        assert!(!m("abc\"", "abcd"));
        // '"' followed by more pattern: a real dot is needed unless at the end.
        assert!(m("abc\"txt", "abc.txt"));
        assert!(!m("abc\"txt", "abctxt"));
        // The classic DOS "????????.???" → ">>>>>>>>\">>>".
        assert!(m(">>>>>>>>\">>>", "readme.txt"));
        assert!(m(">>>>>>>>\">>>", "readme"));
        assert!(!m(">>>>>>>>\">>>", "toolongname.txt"));
    }
}
