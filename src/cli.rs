//! Command-line interface: clap parses raw arguments, which become one
//! validated, immutable [`Config`]; commands run against it; the exit code
//! is decided in one place.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use clap::{CommandFactory, Parser, Subcommand};

use crate::audit::Audit;
use crate::digest::Digest;
use crate::exit_codes;
use crate::model::writes;
use crate::model::Target;
use crate::progress::Progress;
use crate::report::inspect::{self, Reference};
use crate::report::{self, diff, du, gc, tags, Format};
use crate::tree::LocateError;
use crate::verify::CANCEL;

/// Shown by `--help` and in the man page.
const EXIT_STATUS: &str = "Exit status: 0 nothing found; 1 findings (problems, a tag not served, \
differences, deletions, hazards); 2 could not run (bad arguments, not a registry tree, I/O), or \
hashing was interrupted by Ctrl-C (the partial report is printed and says so). \
JSON documents are described in docs/json.md.";

#[derive(Parser, Debug)]
#[command(
    name = "regaudit",
    version,
    about = "Audit a Docker Distribution registry's storage tree without running a registry",
    after_long_help = EXIT_STATUS
)]
struct Args {
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Registry version whose rules apply: 2.8 or 3.
    #[arg(long, global = true, default_value = "2.8")]
    target: Target,
    /// Never show progress bars (they only appear when stderr is a terminal).
    #[arg(long, global = true)]
    no_progress: bool,
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
        /// Hash the blobs of these tags to fill in `intact`.
        #[arg(long)]
        verify: bool,
    },
    /// The whole tree of one reference with every node's state.
    Inspect {
        /// Storage root (holding docker/), docker/registry/v2, or a level between.
        root: PathBuf,
        /// REPOSITORY:TAG or REPOSITORY@DIGEST.
        reference: String,
        /// Hash every blob of the tree to fill in `intact`.
        #[arg(long)]
        verify: bool,
    },
    /// Hash every blob (or those of some repositories) and report damage.
    Verify {
        /// Storage root (holding docker/), docker/registry/v2, or a level between.
        root: PathBuf,
        /// Only the blobs these repositories reach.
        repositories: Vec<String>,
    },
    /// Start here: inventory summary, problems, and with --verify, integrity.
    Scan {
        /// Storage root (holding docker/), docker/registry/v2, or a level between.
        root: PathBuf,
        /// Also hash every blob.
        #[arg(long)]
        verify: bool,
        #[command(flatten)]
        time: WritesTime,
    },
    /// Write an image or index as an OCI image layout in DEST, verifying every blob.
    Export {
        /// Storage root (holding docker/), docker/registry/v2, or a level between.
        root: PathBuf,
        /// REPOSITORY:TAG or REPOSITORY@DIGEST.
        reference: String,
        /// The OCI layout directory to create or add to; never inside ROOT.
        dest: PathBuf,
        /// Name in index.json (org.opencontainers.image.ref.name); defaults to the tag.
        #[arg(long)]
        tag: Option<String>,
        /// Export what can be, even when blobs are missing or corrupt (exit 1).
        #[arg(long)]
        allow_partial: bool,
    },
    /// What changed between two trees: tags, manifests, blobs, uploads, content.
    Diff {
        /// Tree A (e.g. last night's backup).
        root_a: PathBuf,
        /// Tree B (e.g. today's).
        root_b: PathBuf,
        /// Do not hash blobs present in both; compare their sizes only.
        #[arg(long)]
        no_content: bool,
    },
    /// Disk usage per repository: referenced, unique and shared bytes.
    Du {
        /// Storage root (holding docker/), docker/registry/v2, or a level between.
        root: PathBuf,
        /// Order of the rows.
        #[arg(long, value_enum, default_value_t = du::SortKey::Name)]
        sort: du::SortKey,
    },
    /// What `registry garbage-collect` would delete, or where it would abort (read-only).
    Gc {
        /// Storage root (holding docker/), docker/registry/v2, or a level between.
        root: PathBuf,
        /// Model `garbage-collect --delete-untagged`.
        #[arg(long, short = 'm')]
        delete_untagged: bool,
    },
    /// Every write a registry serving this tree would make, and whether it
    /// can be served from a read-only volume (exit 1 when something writes).
    Writes {
        /// Storage root (holding docker/), docker/registry/v2, or a level between.
        root: PathBuf,
        #[command(flatten)]
        time: WritesTime,
    },
    /// Print a shell completion script (e.g. `regaudit completions bash > /etc/bash_completion.d/regaudit`).
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `regaudit man | man -l -`, or write all pages to a directory.
    Man {
        /// The page of this subcommand (regaudit-COMMAND(1)) instead of regaudit(1).
        command: Option<String>,
        /// Write regaudit.1 and every regaudit-COMMAND.1 into this directory instead.
        #[arg(long, conflicts_with = "command")]
        out_dir: Option<PathBuf>,
    },
}

/// When the predicted registry runs, for upload purging and proxy expiry.
#[derive(clap::Args, Debug)]
struct WritesTime {
    /// Uploads whose startedat is older than this are purged (e.g. 168h, 30m, 7d).
    #[arg(long, default_value = "168h")]
    purge_age: String,
    /// The time to predict for, RFC 3339 (default: now).
    #[arg(long)]
    now: Option<String>,
}

/// The validated run configuration.
#[derive(Debug)]
pub struct Config {
    pub format: Format,
    pub target: Target,
    pub progress: bool,
}

/// Why a command stopped early.
#[derive(Debug)]
enum Failure {
    /// It could not run (exit code 2); the message goes to stderr.
    Error(String),
    /// The reader closed our stdout (`| head`): stop quietly, as ripgrep
    /// and other Unix tools do.
    ClosedPipe,
}

use Failure::Error as Failed;

impl From<String> for Failure {
    fn from(e: String) -> Failure {
        Failed(e)
    }
}

impl From<LocateError> for Failure {
    fn from(e: LocateError) -> Failure {
        Failed(e.to_string())
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        match e.kind() {
            std::io::ErrorKind::BrokenPipe => Failure::ClosedPipe,
            _ => Failed(e.to_string()),
        }
    }
}

pub fn run(argv: impl IntoIterator<Item = OsString>) -> i32 {
    crate::tree::configure_threads();
    let args = match Args::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { exit_codes::ERROR } else { exit_codes::CLEAN };
        }
    };
    // Refused while parsing, before any command reads the tree or writes DEST.
    if args.format == Format::GcLog && !matches!(args.command, Command::Gc { .. }) {
        let e = Args::command()
            .error(clap::error::ErrorKind::ArgumentConflict, "--format gc-log is only for `regaudit gc`");
        let _ = e.print();
        return exit_codes::ERROR;
    }
    let config = Config { format: args.format, target: args.target, progress: !args.no_progress };
    let mut out = anstream::stdout().lock();
    match execute(&config, args.command, &mut out) {
        Ok(found) => {
            let _ = out.flush();
            exit_codes::from_findings(found)
        }
        Err(Failed(msg)) => {
            let _ = out.flush();
            let _ = writeln!(anstream::stderr(), "regaudit: {msg}");
            exit_codes::ERROR
        }
        Err(Failure::ClosedPipe) => exit_codes::CLEAN,
    }
}

/// Hashes `digests`, with a progress bar and Ctrl-C stopping early.
fn verify(config: &Config, audit: &mut Audit, digests: &BTreeSet<Digest>) {
    // First Ctrl-C: stop hashing and report what was verified; second: quit.
    let _ = ctrlc::set_handler(|| {
        if CANCEL.swap(true, Ordering::SeqCst) {
            std::process::exit(exit_codes::ERROR);
        }
    });
    let total = digests.iter().filter_map(|d| audit.inventory.blob_size(d)).sum();
    let progress = Progress::bytes(config.progress, total, "verifying");
    audit.verify(digests, &progress);
}

/// The one rule for every command that hashes: when Ctrl-C stopped it, the
/// partial report (which says so) has been printed, and the run fails (exit 2).
fn fail_if_interrupted(audit: &Audit) -> Result<(), Failure> {
    match &audit.verification {
        Some(v) if v.interrupted => {
            Err(Failed("interrupted: the report above covers only what was verified before Ctrl-C".into()))
        }
        _ => Ok(()),
    }
}

fn check_repositories(audit: &Audit, repositories: &[String]) -> Result<(), Failure> {
    let unknown = tags::unknown_repositories(audit, repositories);
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(Failed(format!("no repository {} in this tree", unknown.join(", "))))
    }
}

/// Renders regaudit(1) or regaudit-COMMAND(1), or writes them all to `out_dir`.
fn man(command: Option<&str>, out_dir: Option<PathBuf>, out: &mut dyn Write) -> Result<(), Failure> {
    // Built the way clap_mangen::generate_to builds it, so pages name each other alike.
    let mut cmd = Args::command().disable_help_subcommand(true);
    cmd.build();
    if let Some(dir) = out_dir {
        clap_mangen::generate_to(cmd, &dir).map_err(|e| Failed(format!("{}: {e}", dir.display())))?;
        return Ok(());
    }
    let page = match command {
        None => cmd,
        Some(name) => cmd
            .find_subcommand(name)
            .cloned()
            .ok_or_else(|| Failed(format!("no subcommand {name}; see `regaudit --help`")))?,
    };
    clap_mangen::Man::new(page).render(out)?;
    Ok(())
}

/// Runs one command; `Ok(true)` means it found something.
fn execute(config: &Config, command: Command, out: &mut dyn Write) -> Result<bool, Failure> {
    match command {
        Command::Tags { root, repositories, verify: hash } => {
            let mut audit = Audit::run(&root, config.target)?;
            check_repositories(&audit, &repositories)?;
            if hash {
                let digests = tags::reachable_digests(&audit, &repositories);
                verify(config, &mut audit, &digests);
            }
            let report = tags::build(&audit, &repositories);
            report::emit(&report, config.format, out)?;
            fail_if_interrupted(&audit)?;
            Ok(report.has_findings())
        }
        Command::Inspect { root, reference, verify: hash } => {
            let reference = Reference::parse(&reference)?;
            let mut audit = Audit::run(&root, config.target)?;
            if hash {
                let digests = inspect::reachable_digests(&audit, &reference);
                verify(config, &mut audit, &digests);
            }
            let report = inspect::build(&audit, &reference)?;
            report::emit(&report, config.format, out)?;
            fail_if_interrupted(&audit)?;
            Ok(report.has_findings())
        }
        Command::Verify { root, repositories } => {
            let mut audit = Audit::run(&root, config.target)?;
            check_repositories(&audit, &repositories)?;
            let digests = report::verify::blobs_to_verify(&audit, &repositories);
            verify(config, &mut audit, &digests);
            let report = report::verify::build(&audit, &repositories);
            report::emit(&report, config.format, out)?;
            fail_if_interrupted(&audit)?;
            Ok(report.has_findings())
        }
        Command::Scan { root, verify: hash, time } => {
            let settings = writes_settings(&time)?;
            let mut audit = Audit::run(&root, config.target)?;
            if hash {
                let digests = audit.inventory.blobs.keys().cloned().collect();
                verify(config, &mut audit, &digests);
            }
            let report = report::scan::build(&audit, &settings);
            report::emit(&report, config.format, out)?;
            fail_if_interrupted(&audit)?;
            Ok(report.has_findings())
        }
        Command::Export { root, reference, dest, tag, allow_partial } => {
            let reference = Reference::parse(&reference)?;
            let audit = Audit::run(&root, config.target)?;
            let report =
                crate::export::export(&audit, &reference, &dest, &crate::export::Options { allow_partial, tag })?;
            report::emit(&report, config.format, out)?;
            Ok(report.has_findings())
        }
        Command::Diff { root_a, root_b, no_content } => {
            let (a, b) = rayon::join(|| Audit::run(&root_a, config.target), || Audit::run(&root_b, config.target));
            let report = diff::build(&a?, &b?, !no_content);
            report::emit(&report, config.format, out)?;
            Ok(report.has_findings())
        }
        Command::Du { root, sort } => {
            let audit = Audit::run(&root, config.target)?;
            report::emit(&du::build(&audit, sort), config.format, out)?;
            Ok(false)
        }
        Command::Gc { root, delete_untagged } => {
            let audit = Audit::run_for_gc(&root, config.target)?;
            let walk = audit.root.registry_walks(&audit.inventory);
            let report = gc::build(&audit, &walk, delete_untagged, config.format == Format::GcLog);
            match config.format {
                Format::GcLog => report.write_log(out, &mut anstream::stderr())?,
                format => report::emit(&report, format, out)?,
            }
            Ok(report.has_findings())
        }
        Command::Writes { root, time } => {
            let settings = writes_settings(&time)?;
            let audit = Audit::run(&root, config.target)?;
            let report = report::writes::build(&audit, &settings, &time.purge_age);
            report::emit(&report, config.format, out)?;
            Ok(report.has_findings())
        }
        // Both come from the same clap definition, so they never drift from the parser.
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Args::command(), "regaudit", out);
            Ok(false)
        }
        Command::Man { command, out_dir } => {
            man(command.as_deref(), out_dir, out)?;
            Ok(false)
        }
    }
}

/// Validates `writes` options before any work is done.
fn writes_settings(time: &WritesTime) -> Result<writes::Settings, Failure> {
    let purge_age = writes::parse_duration(&time.purge_age).map_err(Failed)?;
    let now = match time.now.as_deref() {
        None => chrono::Utc::now(),
        Some(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map_err(|e| Failed(format!("invalid --now {s:?}: {e} (use RFC 3339, e.g. 2026-01-31T12:00:00Z)")))?
            .with_timezone(&chrono::Utc),
    };
    Ok(writes::Settings { now, purge_age })
}
