//! Content hashes: what the worker computed while streaming a file, and what the station claimed.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! digest_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// Parses 64 hex digits (either case).
            pub fn from_hex(s: &str) -> Result<Self, hex::FromHexError> {
                let mut out = [0u8; 32];
                hex::decode_to_slice(s, &mut out)?;
                Ok(Self(out))
            }

            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// From a database column; `None` unless exactly 32 bytes.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                bytes.try_into().ok().map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::from_hex(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

digest_type!(
    /// A BLAKE3-256 digest: the recording's identity in the archive.
    Blake3Hash
);
digest_type!(
    /// A SHA-256 digest, kept beside BLAKE3 because courts and other systems ask for it.
    Sha256Hash
);

/// Both digests of the same bytes, computed in one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentHashes {
    pub size: u64,
    pub blake3: Blake3Hash,
    pub sha256: Sha256Hash,
}

/// The hash algorithm a station used for its claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgorithm {
    Blake3,
    Sha256,
}

/// What the station says the file hashes to (R2.1: the bytes must arrive unaltered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimedHash {
    Blake3(Blake3Hash),
    Sha256(Sha256Hash),
}

impl ClaimedHash {
    pub fn algorithm(&self) -> HashAlgorithm {
        match self {
            Self::Blake3(_) => HashAlgorithm::Blake3,
            Self::Sha256(_) => HashAlgorithm::Sha256,
        }
    }

    pub fn hex(&self) -> String {
        match self {
            Self::Blake3(h) => h.to_hex(),
            Self::Sha256(h) => h.to_hex(),
        }
    }

    /// True when the observed bytes hash to the claimed value.
    pub fn matches(&self, observed: &ContentHashes) -> bool {
        match self {
            Self::Blake3(h) => *h == observed.blake3,
            Self::Sha256(h) => *h == observed.sha256,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes() -> ContentHashes {
        ContentHashes { size: 3, blake3: Blake3Hash([1; 32]), sha256: Sha256Hash([2; 32]) }
    }

    #[test]
    fn hex_round_trip_accepts_both_cases() {
        let h = Blake3Hash([0xab; 32]);
        assert_eq!(Blake3Hash::from_hex(&h.to_hex()).unwrap(), h);
        assert_eq!(Blake3Hash::from_hex(&h.to_hex().to_uppercase()).unwrap(), h);
        assert!(Blake3Hash::from_hex("abcd").is_err());
        assert!(Blake3Hash::from_hex(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn from_slice_needs_exactly_32_bytes() {
        assert!(Sha256Hash::from_slice(&[0; 31]).is_none());
        assert!(Sha256Hash::from_slice(&[0; 33]).is_none());
        assert_eq!(Sha256Hash::from_slice(&[7; 32]), Some(Sha256Hash([7; 32])));
    }

    #[test]
    fn a_claim_is_checked_against_its_own_algorithm() {
        let h = hashes();
        assert!(ClaimedHash::Blake3(Blake3Hash([1; 32])).matches(&h));
        assert!(ClaimedHash::Sha256(Sha256Hash([2; 32])).matches(&h));
        // the right bytes under the wrong algorithm do not match
        assert!(!ClaimedHash::Blake3(Blake3Hash([2; 32])).matches(&h));
        assert!(!ClaimedHash::Sha256(Sha256Hash([1; 32])).matches(&h));
    }
}

/// R2.1: checks the bytes the worker read against what the station said it staged.
/// An empty file is reported as such whatever the station claimed.
pub fn check_claims(
    claimed_size: u64,
    claim: Option<ClaimedHash>,
    observed: &ContentHashes,
) -> Result<(), crate::finding::Rejection> {
    use crate::finding::Rejection;
    if observed.size == 0 {
        return Err(Rejection::EmptyFile);
    }
    if claimed_size != observed.size {
        return Err(Rejection::SizeMismatch { claimed: claimed_size, observed: observed.size });
    }
    match claim {
        Some(c) if !c.matches(observed) => Err(Rejection::HashMismatch {
            algorithm: format!("{:?}", c.algorithm()).to_lowercase(),
            claimed: c.hex(),
            observed: match c {
                ClaimedHash::Blake3(_) => observed.blake3.to_hex(),
                ClaimedHash::Sha256(_) => observed.sha256.to_hex(),
            },
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod claim_tests {
    use super::*;

    #[test]
    fn r2_1_claims_are_checked_in_order_empty_size_hash() {
        let h = ContentHashes { size: 3, blake3: Blake3Hash([1; 32]), sha256: Sha256Hash([2; 32]) };
        let good = Some(ClaimedHash::Blake3(Blake3Hash([1; 32])));
        let bad = Some(ClaimedHash::Sha256(Sha256Hash([9; 32])));
        assert_eq!(check_claims(3, good, &h), Ok(()));
        assert_eq!(check_claims(3, None, &h), Ok(()));
        assert_eq!(check_claims(4, good, &h).unwrap_err().code(), "size_mismatch");
        let err = check_claims(3, bad, &h).unwrap_err();
        assert_eq!(err.code(), "hash_mismatch");
        assert!(err.to_string().contains(&"09".repeat(32)));
        assert!(err.to_string().contains(&"02".repeat(32)));
        let empty = ContentHashes { size: 0, ..h };
        assert_eq!(check_claims(0, bad, &empty).unwrap_err().code(), "empty_file");
        assert_eq!(check_claims(5, None, &empty).unwrap_err().code(), "empty_file");
    }
}
