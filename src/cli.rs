//! Command-line interface: clap parses raw arguments, which become one
//! validated, immutable [`Config`]; commands run against it; the exit code
//! is decided in one place.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::audit::Audit;
use crate::exit_codes;
use crate::model::writes;
use crate::model::Target;
use crate::report::inspect::{self, Reference};
use crate::report::{self, tags, Format};

#[derive(Parser, Debug)]
#[command(
    name = "regaudit",
    version,
    about = "Audit a Docker Distribution registry's storage tree without running a registry"
)]
struct Args {
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Registry version whose rules apply: 2.8 or 3.
    #[arg(long, global = true, default_value = "2.8")]
    target: Target,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// One row per tag: digest, kind, platforms, created, size, served.
    Tags {
        /// Storage root (holding docker/), docker/registry/v2, or a level between.
        root: PathBuf,
        /// Only these repositories.
        repositories: Vec<String>,
    },
    /// The whole tree of one reference with every node's state.
    Inspect {
        /// Storage root (holding docker/), docker/registry/v2, or a level between.
        root: PathBuf,
        /// REPOSITORY:TAG or REPOSITORY@DIGEST.
        reference: String,
    },
    /// Every write a registry serving this tree would make, and whether it
    /// can be served from a read-only volume (exit 1 when something writes).
    Writes {
        /// Storage root (holding docker/), docker/registry/v2, or a level between.
        root: PathBuf,
        /// Uploads whose startedat is older than this are purged (e.g. 168h, 30m, 7d).
        #[arg(long, default_value = "168h")]
        purge_age: String,
        /// The time to predict for, RFC 3339 (default: now).
        #[arg(long)]
        now: Option<String>,
    },
}

/// The validated run configuration.
#[derive(Debug)]
pub struct Config {
    pub format: Format,
    pub target: Target,
}

/// Why a command could not run (exit code 2).
#[derive(Debug)]
struct Failure(String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure(e.to_string())
    }
}

pub fn run(argv: impl IntoIterator<Item = OsString>) -> i32 {
    let args = match Args::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { exit_codes::ERROR } else { exit_codes::CLEAN };
        }
    };
    let config = Config { format: args.format, target: args.target };
    let mut out = anstream::stdout().lock();
    match execute(&config, args.command, &mut out) {
        Ok(found) => {
            let _ = out.flush();
            exit_codes::from_findings(found)
        }
        Err(Failure(msg)) => {
            let _ = out.flush();
            let _ = writeln!(anstream::stderr(), "regaudit: {msg}");
            exit_codes::ERROR
        }
    }
}

/// Runs one command; `Ok(true)` means it found something.
fn execute(config: &Config, command: Command, out: &mut dyn Write) -> Result<bool, Failure> {
    match command {
        Command::Tags { root, repositories } => {
            let audit = Audit::run(&root, config.target)?;
            let unknown = tags::unknown_repositories(&audit, &repositories);
            if !unknown.is_empty() {
                return Err(Failure(format!("no repository {} in this tree", unknown.join(", "))));
            }
            let report = tags::build(&audit, &repositories);
            report::emit(&report, config.format, out)?;
            Ok(report.has_findings())
        }
        Command::Inspect { root, reference } => {
            let reference = Reference::parse(&reference)?;
            let audit = Audit::run(&root, config.target)?;
            let report = inspect::build(&audit, &reference)?;
            report::emit(&report, config.format, out)?;
            Ok(report.has_findings())
        }
        Command::Writes { root, purge_age, now } => {
            let settings = writes_settings(&purge_age, now.as_deref())?;
            let audit = Audit::run(&root, config.target)?;
            let report = report::writes::build(&audit, &settings, &purge_age);
            report::emit(&report, config.format, out)?;
            Ok(report.has_findings())
        }
    }
}

/// Validates `writes` options before any work is done.
fn writes_settings(purge_age: &str, now: Option<&str>) -> Result<writes::Settings, Failure> {
    let purge_age = writes::parse_duration(purge_age).map_err(Failure)?;
    let now = match now {
        None => chrono::Utc::now(),
        Some(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map_err(|e| Failure(format!("invalid --now {s:?}: {e} (use RFC 3339, e.g. 2026-01-31T12:00:00Z)")))?
            .with_timezone(&chrono::Utc),
    };
    Ok(writes::Settings { now, purge_age })
}
