//! Object keys. Archived recordings are content-addressed by BLAKE3, so writing the same bytes twice
//! lands on the same key, and a key names exactly one content.

use crate::hash::Blake3Hash;

/// Prefix of archived recordings in the archive bucket.
pub const RECORDINGS_PREFIX: &str = "recordings/";

/// `recordings/ab/abcdef….mp4`: two hex digits of fan-out keep listings short.
pub fn archive_key(hash: &Blake3Hash) -> String {
    let hex = hash.to_hex();
    format!("{RECORDINGS_PREFIX}{}/{hex}.mp4", &hex[..2])
}

/// Prefix of recovered recordings (R2.1): files the worker derived from an unfinalized original.
pub const RECOVERED_PREFIX: &str = "recovered/";

/// `recovered/ab/abcdef….mp4`, by the recovered file's own BLAKE3 (never the original's).
pub fn recovered_key(hash: &Blake3Hash) -> String {
    let hex = hash.to_hex();
    format!("{RECOVERED_PREFIX}{}/{hex}.mp4", &hex[..2])
}

/// `<prefix>ab/abcdef…`: no extension, since quarantined bytes are not known to be MP4.
pub fn quarantine_key(prefix: &str, hash: &Blake3Hash) -> String {
    let hex = hash.to_hex();
    format!("{prefix}{}/{hex}", &hex[..2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_derived_from_the_content_hash() {
        let h = Blake3Hash([0xab; 32]);
        let hex = "ab".repeat(32);
        assert_eq!(archive_key(&h), format!("recordings/ab/{hex}.mp4"));
        assert_eq!(quarantine_key("quarantine/", &h), format!("quarantine/ab/{hex}"));
        assert_eq!(recovered_key(&h), format!("recovered/ab/{hex}.mp4"));
        assert_ne!(archive_key(&h), archive_key(&Blake3Hash([0xac; 32])));
    }
}
