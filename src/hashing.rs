//! Hashing while streaming: the digest of what was actually read, so a copy
//! can be verified against the digest it is stored under.

use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256, Sha384, Sha512};

use crate::digest::{Algorithm, Digest};

/// A running hash with the digest's own algorithm.
pub enum Hasher {
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    pub fn new(alg: Algorithm) -> Hasher {
        match alg {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha384 => Hasher::Sha384(Sha384::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha384(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => Digest::from_raw(Algorithm::Sha256, &h.finalize()),
            Hasher::Sha384(h) => Digest::from_raw(Algorithm::Sha384, &h.finalize()),
            Hasher::Sha512(h) => Digest::from_raw(Algorithm::Sha512, &h.finalize()),
        }
    }
}

/// Reads `from` to the end, writing every byte to `to` (when given), and
/// returns the digest of what was read with `alg`, and its length.
pub fn copy_hashed(mut from: impl Read, alg: Algorithm, mut to: Option<&mut dyn Write>) -> io::Result<(Digest, u64)> {
    let mut hasher = Hasher::new(alg);
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        if let Some(w) = to.as_deref_mut() {
            w.write_all(&buf[..n])?;
        }
        total += n as u64;
    }
    Ok((hasher.finish(), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_copies() {
        let mut out = Vec::new();
        let (d, n) = copy_hashed(&b"abc"[..], Algorithm::Sha256, Some(&mut out)).unwrap();
        assert_eq!(d.to_string(), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!((n, out.as_slice()), (3, &b"abc"[..]));
        let (d, _) = copy_hashed(&b""[..], Algorithm::Sha512, None).unwrap();
        assert!(d.hex().starts_with("cf83e1357eefb8bd"));
    }
}
