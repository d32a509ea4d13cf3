//! Exit codes, decided in one place.

/// Nothing found.
pub const CLEAN: i32 = 0;
/// The command ran and found something (problems, writes, deletions...).
pub const FINDINGS: i32 = 1;
/// The command could not run: bad arguments, not a registry tree, I/O.
pub const ERROR: i32 = 2;

pub fn from_findings(found: bool) -> i32 {
    if found {
        FINDINGS
    } else {
        CLEAN
    }
}
