//! Hashing while streaming: the digest of what was actually read, so a copy
//! can be verified against the digest it is stored under.

use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256, Sha384, Sha512};

use crate::digest::{Algorithm, Digest};

/// A running hash with the digest's own algorithm. sha2 uses the SHA-NI
/// instructions; AWS-LC's assembly was measured no faster per core here
/// (BENCHMARKS.md, "SHA-256 from AWS-LC"), so it is not used.
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

    /// The FIPS 180 "abc" vectors of the longer algorithms verify accepts.
    #[test]
    fn sha384_and_sha512_match_the_fips_vectors() {
        let abc = [
            (Algorithm::Sha384, "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"),
            (Algorithm::Sha512, "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"),
        ];
        for (alg, hex) in abc {
            let mut h = Hasher::new(alg);
            h.update(b"abc");
            assert_eq!(h.finish().hex(), hex);
        }
    }
}
