//! Provenance: who ran what, on which tree, when. The CLI records the run
//! once at its start ([`begin`]); every JSON document and every DFXML file
//! then carries it, so a report can be tied to its evidence.

use std::sync::OnceLock;

use serde::Serialize;

use crate::model::Target;

/// The run as the CLI began it.
struct Run {
    arguments: Vec<String>,
    target: Target,
    roots: Vec<RootId>,
    started: chrono::DateTime<chrono::Utc>,
}

static RUN: OnceLock<Run> = OnceLock::new();

/// A storage root as given on the command line and as resolved.
#[derive(Clone, Debug, Serialize)]
pub struct RootId {
    pub given: String,
    /// The canonical path (symlinks resolved); null when it cannot be resolved.
    pub resolved: Option<String>,
    /// `st_dev` and `st_ino` of the resolved directory, as `stat -c '%d %i'` prints them.
    pub device: Option<u64>,
    pub inode: Option<u64>,
    /// For an object-store root: what reading it cost (absent for a directory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_store: Option<ObjectStoreUse>,
}

/// What an object-store root cost: requests by kind, bytes read, and when
/// its listing ran.
#[derive(Clone, Debug, Serialize)]
pub struct ObjectStoreUse {
    pub requests: Requests,
    /// Object bytes delivered by GETs (listing pages not included).
    pub bytes_read: u64,
    pub objects_listed: u64,
    /// UTC, RFC 3339.
    pub listing_started: String,
    pub listing_finished: String,
}

/// Requests sent, each retry counted.
#[derive(Clone, Debug, Serialize)]
pub struct Requests {
    pub list: u64,
    pub get: u64,
    pub head: u64,
    pub total: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    /// The name of `euid` in the user database; null when it has none.
    pub name: Option<String>,
}

/// The header every JSON document carries.
#[derive(Clone, Debug, Serialize)]
pub struct Provenance {
    pub tool: &'static str,
    pub version: &'static str,
    /// The exact arguments, the program name first (lossily UTF-8).
    pub arguments: Vec<String>,
    pub target: Target,
    pub roots: Vec<RootId>,
    /// UTC, RFC 3339.
    pub started: String,
    /// UTC, RFC 3339: when the report was written.
    pub finished: String,
    pub user: User,
    /// False when the kernel refused `O_NOATIME` (not the files' owner, no
    /// CAP_FOWNER): reads may then have updated access times, as `relatime`
    /// allows.
    pub noatime_honoured: bool,
}

/// Records the run. Call once, before any work; later calls do nothing.
/// `roots` as identified by `analysis::provenance::identify_roots`.
pub fn begin(arguments: &[std::ffi::OsString], target: Target, roots: Vec<RootId>) {
    let _ = RUN.set(Run {
        arguments: arguments.iter().map(|a| a.to_string_lossy().into_owned()).collect(),
        target,
        roots,
        started: chrono::Utc::now(),
    });
}

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub fn user() -> User {
    let euid = rustix::process::geteuid();
    let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(euid.as_raw())).ok().flatten().map(|u| u.name);
    User { uid: rustix::process::getuid().as_raw(), gid: rustix::process::getgid().as_raw(), euid: euid.as_raw(), name }
}

/// The header as of now; None when no run was begun (the library used
/// without the CLI).
pub fn current() -> Option<Provenance> {
    let run = RUN.get()?;
    let mut roots = run.roots.clone();
    crate::analysis::provenance::attach_object_store_use(&mut roots);
    Some(Provenance {
        tool: env!("CARGO_PKG_NAME"),
        version: env!("CARGO_PKG_VERSION"),
        arguments: run.arguments.clone(),
        target: run.target,
        roots,
        started: time(run.started),
        finished: time(chrono::Utc::now()),
        user: user(),
        noatime_honoured: crate::analysis::provenance::noatime_honoured(),
    })
}
