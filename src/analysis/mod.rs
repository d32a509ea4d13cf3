//! Analysis: everything a command computes from an audited tree before its
//! report renders it. Reports (`crate::report`) receive these results and
//! only render them; every read of the tree below the audit (hashing blobs,
//! listing a directory a deletion takes, the stat of an evidence file)
//! happens here. One module per command; each builds the result model its
//! report renders (the serializable types, in `report::<command>`).

pub mod diff;
pub mod du;
pub mod evidence;
pub mod gc;
pub mod inspect;
pub mod problems;
pub mod provenance;
pub mod reference;
pub mod scan;
pub mod tags;
pub mod timeline;
pub mod verify;
pub mod writes;

/// The stat of a file as read (times, mode, owner): data reports render.
pub use crate::storage::{FileStat, Stamp};
