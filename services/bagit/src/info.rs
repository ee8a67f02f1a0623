//! `bag-info.txt`: the labels a case bundle carries, written so that no value can break the file.
//!
//! RFC 8493 §2.2.2 allows continuation lines, and bagit-python reads them, but every reader
//! handles them a little differently; a value here is always one line. Values come from case
//! records (names, addresses, descriptions typed by people), so they are sanitised rather than
//! refused: every control character, line separator and bidirectional control becomes a space,
//! runs of spaces collapse, and the ends are trimmed. Labels come from code, so a bad one is an
//! error.

use crate::BagError;
use crate::path::is_forbidden;
use chrono::NaiveDate;
use std::fmt::Write as _;

/// Labels the writer computes itself; a caller may not supply them.
const COMPUTED_LABELS: [&str; 3] = ["Payload-Oxum", "Bag-Size", "Bagging-Date"];

/// What a case bundle says about itself in `bag-info.txt` (RFC 8493 §2.2.2 reserved labels).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BagInfo {
    /// `Source-Organization`: the enforcement unit that holds the recordings. Required.
    pub source_organization: String,
    /// `Organization-Address`.
    pub organization_address: Option<String>,
    /// `Contact-Name`.
    pub contact_name: Option<String>,
    /// `Contact-Email`.
    pub contact_email: Option<String>,
    /// `External-Identifier`: the case number in the case system. Required.
    pub external_identifier: String,
    /// `External-Description`.
    pub external_description: Option<String>,
    /// `Bagging-Date`: by default the UTC date of the writer's bagging time; a caller that keeps
    /// local dates (Asia/Shanghai) sets it.
    pub bagging_date: Option<NaiveDate>,
    /// `Bag-Group-Identifier`: when one case needs several bags.
    pub bag_group_identifier: Option<String>,
    /// `Internal-Sender-Identifier`: the bundle's id in recvault.
    pub internal_sender_identifier: Option<String>,
    /// Further labels, written in this order after the reserved ones. `Payload-Oxum`, `Bag-Size`
    /// and `Bagging-Date` are computed and refused here.
    pub extra: Vec<(String, String)>,
}

impl BagInfo {
    /// Checks what [`BagWriter::finish`](crate::BagWriter::finish) would refuse, without writing
    /// anything: call it before streaming gigabytes into a bag that `finish` would not close.
    pub fn validate(&self) -> Result<(), BagError> {
        for (label, value) in
            [("Source-Organization", &self.source_organization), ("External-Identifier", &self.external_identifier)]
        {
            if sanitize_value(value).is_empty() {
                return Err(BagError::InvalidInfo { label: label.to_owned(), reason: "required, and empty" });
            }
        }
        for (label, _) in &self.extra {
            check_label(label)?;
            if COMPUTED_LABELS.iter().any(|c| c.eq_ignore_ascii_case(label.trim())) {
                return Err(BagError::InvalidInfo { label: label.clone(), reason: "computed by the writer" });
            }
        }
        Ok(())
    }

    /// The text of `bag-info.txt`, with the computed labels.
    pub(crate) fn render(
        &self,
        default_date: NaiveDate,
        payload_octets: u64,
        payload_files: u64,
    ) -> Result<String, BagError> {
        self.validate()?;
        let mut lines: Vec<(&str, String)> = vec![("Source-Organization", sanitize_value(&self.source_organization))];
        let optional = |label, value: &Option<String>| value.as_deref().map(|v| (label, sanitize_value(v)));
        lines.extend(optional("Organization-Address", &self.organization_address));
        lines.extend(optional("Contact-Name", &self.contact_name));
        lines.extend(optional("Contact-Email", &self.contact_email));
        lines.push(("External-Identifier", sanitize_value(&self.external_identifier)));
        lines.extend(optional("External-Description", &self.external_description));
        let date = self.bagging_date.unwrap_or(default_date);
        lines.push(("Bagging-Date", date.format("%Y-%m-%d").to_string()));
        lines.extend(optional("Bag-Group-Identifier", &self.bag_group_identifier));
        lines.extend(optional("Internal-Sender-Identifier", &self.internal_sender_identifier));
        lines.extend(self.extra.iter().map(|(l, v)| (l.as_str(), sanitize_value(v))));
        lines.push(("Payload-Oxum", format!("{payload_octets}.{payload_files}")));
        lines.push(("Bag-Size", human_size(payload_octets)));
        let mut out = String::new();
        for (label, value) in lines {
            // A value may be empty after sanitising; "Label:" alone is still a valid line.
            let sep = if value.is_empty() { "" } else { " " };
            let _ = writeln!(out, "{label}:{sep}{value}");
        }
        Ok(out)
    }
}

/// RFC 8493 §2.2.2: a label is not empty, has no colon, CR or LF, and does not start or end with
/// whitespace. Other control characters are refused as well.
fn check_label(label: &str) -> Result<(), BagError> {
    let bad = |reason| Err(BagError::InvalidInfo { label: label.to_owned(), reason });
    if label.is_empty() {
        return bad("empty label");
    }
    if label.contains(':') {
        return bad("a label may not contain `:`");
    }
    if label.chars().any(is_forbidden) {
        return bad("a label may not contain control characters");
    }
    if label.starts_with(char::is_whitespace) || label.ends_with(char::is_whitespace) {
        return bad("a label may not start or end with whitespace");
    }
    Ok(())
}

/// One line, no control characters, single spaces, trimmed.
pub(crate) fn sanitize_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        let c = if is_forbidden(c) || c.is_whitespace() { ' ' } else { c };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// `Bag-Size`: decimal units with one decimal, as people read sizes ("2.1 GB").
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KB", "MB", "GB", "TB", "PB", "EB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    // Move up while the rounded value would print as 1000.0 or more.
    while value >= 999.95 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> BagInfo {
        BagInfo {
            source_organization: "福州市城市管理综合执法支队".into(),
            external_identifier: "CASE-2024-0001".into(),
            ..BagInfo::default()
        }
    }

    #[test]
    fn renders_reserved_and_computed_labels_in_order() {
        let mut i = info();
        i.contact_email = Some("archive@example.invalid".into());
        i.internal_sender_identifier = Some("bundle-7".into());
        i.extra = vec![("Case-Closed".into(), "2024-05-01".into())];
        let text = i.render(NaiveDate::from_ymd_opt(2024, 5, 2).unwrap(), 2_100_000_000, 3).unwrap();
        assert_eq!(
            text,
            "Source-Organization: 福州市城市管理综合执法支队\n\
             Contact-Email: archive@example.invalid\n\
             External-Identifier: CASE-2024-0001\n\
             Bagging-Date: 2024-05-02\n\
             Internal-Sender-Identifier: bundle-7\n\
             Case-Closed: 2024-05-01\n\
             Payload-Oxum: 2100000000.3\n\
             Bag-Size: 2.1 GB\n"
        );
    }

    #[test]
    fn values_cannot_break_lines() {
        let mut i = info();
        i.external_description = Some("  line one\r\nline two\u{2028}three\ttab\u{85}end  ".into());
        let text = i.render(NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(), 0, 0).unwrap();
        assert!(text.contains("External-Description: line one line two three tab end\n"), "{text}");
        assert_eq!(text.lines().count(), 6);
    }

    #[test]
    fn refuses_bad_or_computed_labels_and_empty_required_values() {
        for label in ["", "A:B", "Bad\nLabel", " Lead", "Trail ", "Payload-Oxum", "bag-size"] {
            let mut i = info();
            i.extra = vec![(label.into(), "x".into())];
            assert!(matches!(i.validate(), Err(BagError::InvalidInfo { .. })), "{label:?}");
        }
        let mut i = info();
        i.source_organization = " \n ".into();
        assert!(i.validate().is_err());
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1000), "1.0 KB");
        assert_eq!(human_size(999_960), "1.0 MB");
        assert_eq!(human_size(2_147_483_648), "2.1 GB");
        assert_eq!(human_size(u64::MAX), "18.4 EB");
    }
}
