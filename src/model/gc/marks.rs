//! The mark set of a simulated run (registry/storage/garbagecollect.go
//! `MarkAndSweep`'s `markSet`).

use std::collections::HashSet;

use crate::digest::Digest;
use crate::inventory::Blob;
use crate::manifest::Descriptor;
use crate::sorted_map::SortedMap;

/// The mark set. Go keys it by digest *string*, so a reference whose digest
/// does not parse is marked too, as written; such a string never equals a
/// valid digest's, so the kinds are kept apart: digests of blobs the tree
/// holds as one flag per blob (the set is as large as the tree), other
/// digests and invalid strings in small sets.
pub(super) struct Marks<'a> {
    blobs: &'a SortedMap<Digest, Blob>,
    /// Indexed like `blobs`.
    stored: Vec<bool>,
    stored_count: usize,
    absent: HashSet<Digest>,
    invalid: HashSet<String>,
}

impl<'a> Marks<'a> {
    pub(super) fn new(blobs: &'a SortedMap<Digest, Blob>) -> Marks<'a> {
        Marks {
            blobs,
            stored: vec![false; blobs.len()],
            stored_count: 0,
            absent: HashSet::new(),
            invalid: HashSet::new(),
        }
    }

    /// Marks a reference; false when it already was.
    pub(super) fn insert(&mut self, r: &Descriptor) -> bool {
        match &r.digest {
            Some(d) => self.insert_digest(d),
            None => self.invalid.insert(r.digest_text()),
        }
    }

    pub(super) fn insert_digest(&mut self, d: &Digest) -> bool {
        match self.blobs.position(d) {
            Some(i) if self.stored[i] => false,
            Some(i) => {
                self.stored[i] = true;
                self.stored_count += 1;
                true
            }
            None => self.absent.insert(d.clone()),
        }
    }

    pub(super) fn contains(&self, d: &Digest) -> bool {
        match self.blobs.position(d) {
            Some(i) => self.stored[i],
            None => self.absent.contains(d),
        }
    }

    /// Whether Go's set holds this string.
    pub(super) fn contains_text(&self, s: &str) -> bool {
        match Digest::parse(s) {
            Ok(d) => self.contains(&d),
            Err(_) => self.invalid.contains(s),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.stored_count + self.absent.len() + self.invalid.len()
    }
}
