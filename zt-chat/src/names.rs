//! What makes two names the same name: channel, group and workspace names are compared (and
//! kept) in one canonical form, so look-alikes cannot sit side by side.
//!
//! [`canonical`] applies Unicode compatibility normalisation (NFKC: `é` typed as one code point
//! or as `e` plus a combining accent, full-width `ｇｅｎｅｒａｌ`, ligatures) and drops the
//! default-ignorable code points (zero-width spaces and joiners, soft hyphens, variation
//! selectors, bidirectional marks), which render as nothing. [`key`] is what uniqueness compares:
//! the canonical form without case.
//!
//! ```
//! use zt_chat::names::{canonical, key};
//!
//! assert_eq!(canonical("caf\u{65}\u{301}"), canonical("caf\u{e9}"));
//! assert_eq!(canonical("gen\u{200b}eral"), "general");
//! assert_eq!(key("ＧＥＮＥＲＡＬ"), key("general"));
//! ```

use unicode_normalization::UnicodeNormalization as _;

/// Whether `c` is a Default_Ignorable_Code_Point (Unicode's DerivedCoreProperties): drawn as
/// nothing where it is not supported.
pub fn is_default_ignorable(c: char) -> bool {
    matches!(c,
        '\u{ad}' | '\u{34f}' | '\u{61c}' | '\u{115f}'..='\u{1160}' | '\u{17b4}'..='\u{17b5}'
        | '\u{180b}'..='\u{180f}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}' | '\u{3164}' | '\u{fe00}'..='\u{fe0f}' | '\u{feff}'
        | '\u{ffa0}' | '\u{fff0}'..='\u{fff8}' | '\u{1bca0}'..='\u{1bca3}'
        | '\u{1d173}'..='\u{1d17a}' | '\u{e0000}'..='\u{e0fff}')
}

/// Whether `c` is a bidirectional embedding, override or isolate (or a mark), which can make a
/// name display in another order than it is stored (`txt.exe` shown as `exe.txt`).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `name` in its canonical form: NFKC, without default-ignorable code points, trimmed.
pub fn canonical(name: &str) -> String {
    let kept: String = name.nfkc().filter(|&c| !is_default_ignorable(c)).collect();
    kept.trim().to_owned()
}

/// The uniqueness key of `name`: its canonical form, lowercased (and normalised again, as
/// lowercasing can leave a form NFKC would change).
pub fn key(name: &str) -> Vec<u8> {
    canonical(name)
        .to_lowercase()
        .nfkc()
        .collect::<String>()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alikes_share_a_key_and_distinct_names_do_not() {
        let same = [
            ("Café", "Cafe\u{301}"),
            ("general", "gen\u{200d}eral"),
            ("general", "\u{feff}general\u{2060}"),
            ("ops", "ＯＰＳ"),
            ("office", "o\u{fb03}ce"),
        ];
        for (a, b) in same {
            assert_eq!(key(a), key(b), "{a:?} and {b:?}");
        }
        assert_ne!(key("general"), key("generai"));
        assert_ne!(key("ops"), key("opz"));
        assert_eq!(canonical(" \u{200b} "), "");
    }
}
