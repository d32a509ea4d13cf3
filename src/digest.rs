//! Content digests and the registry's link files.
//!
//! The registry parses a link file with go-digest's `Parse` on the raw bytes:
//! no trimming, lowercase hex of the exact length. We do the same, so a link
//! the registry would reject is rejected here too.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// The digest algorithms the registry accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl Algorithm {
    pub const ALL: [Algorithm; 3] = [Algorithm::Sha256, Algorithm::Sha384, Algorithm::Sha512];

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Length of the raw hash in bytes.
    pub fn size(self) -> usize {
        match self {
            Algorithm::Sha256 => 32,
            Algorithm::Sha384 => 48,
            Algorithm::Sha512 => 64,
        }
    }
}

/// A validated digest. sha256 is kept inline; the rare longer ones are boxed
/// so that the common case stays small (inventories hold millions of these).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Digest {
    Sha256([u8; 32]),
    Sha384(Box<[u8; 48]>),
    Sha512(Box<[u8; 64]>),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("no ':' separating algorithm and hex")]
    NoSeparator,
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("{alg} needs {expected} hex characters, found {found}")]
    WrongLength { alg: &'static str, expected: usize, found: usize },
    #[error("hex part is not lowercase hexadecimal")]
    NotLowercaseHex,
}

impl Digest {
    /// Builds a digest from an algorithm and its hex part, as found in paths.
    pub fn from_parts(alg: Algorithm, hex_part: &str) -> Result<Digest, DigestError> {
        let expected = alg.size() * 2;
        if hex_part.len() != expected {
            return Err(DigestError::WrongLength { alg: alg.name(), expected, found: hex_part.len() });
        }
        if !hex_part.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(DigestError::NotLowercaseHex);
        }
        let mut buf = [0u8; 64];
        let raw = &mut buf[..alg.size()];
        hex::decode_to_slice(hex_part, raw).map_err(|_| DigestError::NotLowercaseHex)?;
        Ok(Digest::from_raw(alg, raw))
    }

    /// Builds a digest from raw hash bytes; `raw.len()` must equal `alg.size()`.
    pub fn from_raw(alg: Algorithm, raw: &[u8]) -> Digest {
        match alg {
            Algorithm::Sha256 => Digest::Sha256(raw.try_into().expect("sha256 is 32 bytes")),
            Algorithm::Sha384 => Digest::Sha384(Box::new(raw.try_into().expect("sha384 is 48 bytes"))),
            Algorithm::Sha512 => Digest::Sha512(Box::new(raw.try_into().expect("sha512 is 64 bytes"))),
        }
    }

    /// Parses `alg:hex` exactly as go-digest does (no trimming).
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let (alg, hex_part) = s.split_once(':').ok_or(DigestError::NoSeparator)?;
        let alg = Algorithm::from_name(alg).ok_or_else(|| DigestError::UnsupportedAlgorithm(alg.to_string()))?;
        Digest::from_parts(alg, hex_part)
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Digest::Sha256(_) => Algorithm::Sha256,
            Digest::Sha384(_) => Algorithm::Sha384,
            Digest::Sha512(_) => Algorithm::Sha512,
        }
    }

    pub fn raw(&self) -> &[u8] {
        match self {
            Digest::Sha256(b) => b,
            Digest::Sha384(b) => &b[..],
            Digest::Sha512(b) => &b[..],
        }
    }

    pub fn hex(&self) -> String {
        hex::encode(self.raw())
    }

    /// Short form for tables: `sha256:0123456789ab`.
    pub fn short(&self) -> String {
        let hex = self.hex();
        format!("{}:{}", self.algorithm().name(), &hex[..12])
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm().name(), self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Longest link file we read. A valid one is at most 135 bytes (sha512).
pub const LINK_READ_LIMIT: usize = 1024;

/// Why a link file's content is not a digest the registry would accept.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("is empty (0 bytes)")]
    Empty,
    #[error("is larger than {LINK_READ_LIMIT} bytes")]
    TooLarge,
    #[error("ends with a newline or whitespace, which the registry rejects")]
    TrailingWhitespace,
    #[error("is not UTF-8 text")]
    NotUtf8,
    /// Rejected by the registry (2.8.2 as Debian builds it, and 3); named
    /// apart because it is an easy mistake to make by hand.
    #[error("names a digest in uppercase hex, which the registry rejects")]
    UppercaseHex,
    #[error("is not a digest: {0}")]
    Invalid(DigestError),
}

/// Parses the content of a link file the way the registry's `readlink` does.
/// `bytes` may be truncated at [`LINK_READ_LIMIT`] + 1 by the reader.
pub fn parse_link(bytes: &[u8]) -> Result<Digest, LinkError> {
    if bytes.is_empty() {
        return Err(LinkError::Empty);
    }
    if bytes.len() > LINK_READ_LIMIT {
        return Err(LinkError::TooLarge);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| LinkError::NotUtf8)?;
    match Digest::parse(text) {
        Ok(d) => Ok(d),
        Err(DigestError::NotLowercaseHex) if Digest::parse(&text.to_ascii_lowercase()).is_ok() => {
            Err(LinkError::UppercaseHex)
        }
        // Name the common real-world defect precisely.
        Err(_) if text.trim_end() != text && Digest::parse(text.trim_end()).is_ok() => {
            Err(LinkError::TrailingWhitespace)
        }
        Err(e) => Err(LinkError::Invalid(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4";

    #[test]
    fn parses_and_displays_sha256() {
        let s = format!("sha256:{HEX}");
        let d = Digest::parse(&s).unwrap();
        assert_eq!(d.to_string(), s);
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.short(), "sha256:a3ed95caeb02");
    }

    #[test]
    fn rejects_what_go_digest_rejects() {
        assert_eq!(Digest::parse(HEX), Err(DigestError::NoSeparator));
        assert!(matches!(Digest::parse(&format!("md5:{HEX}")), Err(DigestError::UnsupportedAlgorithm(_))));
        assert!(matches!(Digest::parse(&format!("sha256:{}", &HEX[1..])), Err(DigestError::WrongLength { .. })));
        assert_eq!(Digest::parse(&format!("sha256:{}", HEX.to_uppercase())), Err(DigestError::NotLowercaseHex));
        assert!(Digest::parse(&format!("SHA256:{HEX}")).is_err());
        assert!(Digest::parse(&format!(" sha256:{HEX}")).is_err());
    }

    #[test]
    fn sha512_round_trips() {
        let hex = "ab".repeat(64);
        let d = Digest::parse(&format!("sha512:{hex}")).unwrap();
        assert_eq!(d.hex(), hex);
        assert_eq!(d.algorithm(), Algorithm::Sha512);
    }

    #[test]
    fn link_parsing_is_strict() {
        let good = format!("sha256:{HEX}");
        assert!(parse_link(good.as_bytes()).is_ok());
        assert_eq!(parse_link(b""), Err(LinkError::Empty));
        assert_eq!(parse_link(format!("{good}\n").as_bytes()), Err(LinkError::TrailingWhitespace));
        assert_eq!(parse_link(&[0xff, 0xfe]), Err(LinkError::NotUtf8));
        assert_eq!(parse_link(&vec![b'a'; LINK_READ_LIMIT + 1]), Err(LinkError::TooLarge));
        assert!(matches!(parse_link(b"garbage"), Err(LinkError::Invalid(_))));
        assert_eq!(
            parse_link(good.to_uppercase().replace("SHA256", "sha256").as_bytes()),
            Err(LinkError::UppercaseHex)
        );
    }
}
