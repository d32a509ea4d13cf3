//! The real command's failures as Go words them: the abort record and the
//! error texts reproduced from the registry and its storage driver.

use super::{Abort, Stage};
use crate::digest::LinkError;
use crate::inventory::ReadFault;

pub(super) fn abort(
    stage: Stage,
    reason: impl Into<String>,
    path: impl Into<String>,
    message: impl Into<String>,
) -> Abort {
    Abort { stage, reason: reason.into(), path: path.into(), message: message.into(), panics: false }
}

/// Go's error text for a link the registry cannot parse.
pub(super) fn link_error_text(e: &LinkError) -> &'static str {
    match e {
        // Seen with 2.8.2: a trailing newline fails the length check.
        LinkError::TrailingWhitespace => "invalid checksum digest length",
        LinkError::Invalid(crate::digest::DigestError::WrongLength { .. }) => "invalid checksum digest length",
        LinkError::Invalid(crate::digest::DigestError::UnsupportedAlgorithm(_)) => "unsupported digest algorithm",
        _ => "invalid checksum digest format",
    }
}

/// The call of the registry's walk that fails on a directory it cannot
/// list: `storagedriver.WalkFallback` stats each entry before listing it, so
/// a path too long for the kernel fails at the stat (seen with 2.8.2 and
/// 3.1.1), any other fault at the open.
pub(super) fn walk_op(f: &ReadFault) -> &'static str {
    if f.error == "file name too long" {
        "stat"
    } else {
        "open"
    }
}
