//! Text that came from outside (a job, a message property) on its way to a log line, a message
//! header or an error: escaped, so that it cannot forge a log line or hide what it says.

use std::borrow::Cow;
use std::fmt::Write;

/// C0 and C1 controls and the bidirectional formatting characters: a job's text is shown to
/// people (timeline, bundles, court), where these could hide or reorder what it says, and written
/// to logs, where a newline forges a line.
pub fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every forbidden character written as `\u{…}` (and `\` as `\\`, so the escaping
/// cannot be forged either). Borrowed when there is nothing to escape.
pub fn escape_untrusted(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| is_forbidden(c) || c == '\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if is_forbidden(c) {
            let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// At most `max` characters of `s`, escaped.
pub fn escape_truncated(s: &str, max: usize) -> String {
    let cut: String = s.chars().take(max).collect();
    escape_untrusted(&cut).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        assert!(matches!(escape_untrusted("鼓楼区 st-01 ok"), Cow::Borrowed("鼓楼区 st-01 ok")));
    }

    #[test]
    fn controls_bidi_and_backslashes_are_escaped() {
        assert_eq!(escape_untrusted("a\nINFO forged"), "a\\u{000a}INFO forged");
        assert_eq!(escape_untrusted("x\u{1b}[31m"), "x\\u{001b}[31m");
        assert_eq!(escape_untrusted("evil\u{202e}4pm.exe"), "evil\\u{202e}4pm.exe");
        assert_eq!(escape_untrusted("c\u{85}d"), "c\\u{0085}d");
        // an escape sequence already in the input cannot pass for one of ours
        assert_eq!(escape_untrusted("a\\u{000a}"), "a\\\\u{000a}");
        for c in ['\0', '\r', '\t', '\u{7f}', '\u{9f}', '\u{61c}', '\u{200e}', '\u{2066}', '\u{2069}'] {
            assert!(!escape_untrusted(&format!("a{c}b")).contains(c), "{c:?}");
        }
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(escape_truncated("当事人当事人", 3), "当事人");
        assert_eq!(escape_truncated("a\nb", 2), "a\\u{000a}");
    }
}
