//! Moved to [`crate::storage`]; these re-exports keep the old paths
//! compiling until callers are updated.

pub use crate::storage::fs::{open_with_stat, stat_entry};
pub use crate::storage::{
    configure_threads, noatime_honoured, FileStat, Leaves, LocateError, Stamp, StorageRoot, SCHEDULER_STATE_READ_LIMIT,
};
