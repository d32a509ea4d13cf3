//! Command-line interface: clap parses raw arguments, which become one
//! validated, immutable [`Config`]; commands run against it; the exit code
//! is decided in one place.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::analysis::evidence::evidence_files;
use crate::analysis::{self, reference::Reference};
use crate::audit::Audit;
use crate::digest::Digest;
use crate::exit_codes::{self, Condition, FailOn, FailOnValue, Findings, Outcome, Question};
use crate::model::writes;
use crate::model::Target;
use crate::progress::Progress;
use crate::report::{self, du, tags, Format, Report};
use crate::select::{Scope, Selection};
use crate::storage::LocateError;
use crate::timeline::Timeline;
use crate::verify::CANCEL;

#[derive(Parser, Debug)]
#[command(
    name = "regaudit",
    version,
    about = "Audit a Docker Distribution registry's storage tree without running a registry",
    after_long_help = overview_help()
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

/// Options of every command that reads a tree.
#[derive(clap::Args, Debug)]
struct Common {
    /// Registry version whose rules apply: 2.8 or 3.
    #[arg(long, default_value = "2.8")]
    target: Target,
    /// Colour in text: auto = on a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it).
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorWhen::Auto, ignore_case = true)]
    color: ColorWhen,
    /// Never show progress (it only appears when stderr is a terminal: hashing, and an object-store root's cost).
    #[arg(long)]
    no_progress: bool,
    /// Write the SHA-256 of the exact bytes written to stdout to FILE
    /// (as `sha256sum` does for stdin: `HEX  -`), to seal the report.
    #[arg(long, value_name = "FILE")]
    report_digest: Option<PathBuf>,
    /// Requests in flight at most, on an object-store root.
    #[arg(long, value_name = "N", default_value_t = 32, help_heading = OBJECT_STORE)]
    max_requests: usize,
    /// Requests started per second at most, on an object-store root (default: no limit).
    #[arg(long, value_name = "N", help_heading = OBJECT_STORE)]
    rate_limit: Option<f64>,
    /// Read every link, inferring none from its listed size and ETag (more GETs).
    #[arg(long, help_heading = OBJECT_STORE)]
    read_all: bool,
    /// Follow symbolic links in the tree as the real registry does (read-only; loops fail as they fail for it).
    /// By default none is followed and every answer that depends on one says so.
    #[arg(long)]
    follow_symlinks: bool,
}

/// The heading of the options that apply to `s3://`, `gs://` and `az://` roots.
const OBJECT_STORE: &str = "Object storage (ROOT s3://BUCKET[/PREFIX], gs://, az://)";

/// What a command prints and when it fails. The choices of `--format` and
/// `--fail-on` differ per command: [`command`] sets them from [`SPECS`].
#[derive(clap::Args, Debug)]
struct Output {
    /// Output format.
    #[arg(long, value_name = "FORMAT", default_value = "text", ignore_case = true)]
    format: Format,
    /// Exit 1 when one of these holds, instead of the command's default (comma-separated; see Exit status).
    #[arg(long, value_name = "LIST", value_delimiter = ',', ignore_case = true)]
    fail_on: Vec<FailOnValue>,
    /// Print only the verdict line (-qq: nothing; the exit status answers).
    #[arg(long, short, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    quiet: u8,
    /// Full lists in text (by default long lists show a few examples per kind and a count).
    #[arg(long, short)]
    verbose: bool,
}

/// Which repositories and tags a listing shows; validated once into
/// [`Config::select`]. `--tag` applies where tags are listed (`tags`,
/// `timeline`); [`Spec::tag_filter`] hides and refuses it elsewhere.
#[derive(clap::Args, Debug)]
struct Filters {
    /// Only repositories whose name matches GLOB (repeatable; `*` matches `/` too, e.g. 'base/*').
    ///
    /// scan, diff, gc and writes still analyse the whole tree: they show, and exit on, what concerns these.
    #[arg(long = "repo", id = "repo_globs", value_name = "GLOB")]
    repo: Vec<String>,
    /// Only tags whose name matches GLOB (repeatable, e.g. 'v1.*').
    #[arg(long = "tag", id = "tag_globs", value_name = "GLOB")]
    tag: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// One row per tag: digest, kind, platforms, created, size, served.
    Tags {
        /// Storage root (holding docker/), docker/registry/v2, a level between, or s3://BUCKET[/PREFIX].
        root: PathBuf,
        /// Only these repositories (exact names; see also --repo).
        repositories: Vec<String>,
        /// Hash the blobs of these tags to fill in `intact`.
        #[arg(long)]
        verify: bool,
        #[command(flatten)]
        filters: Filters,
        /// Order of the rows.
        #[arg(long, value_enum, value_name = "KEY", default_value_t = tags::SortKey::Name, ignore_case = true)]
        sort: tags::SortKey,
        /// Reverse the order of the rows.
        #[arg(long)]
        reverse: bool,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        common: Common,
    },
    /// The whole tree of one reference with every node's state.
    Inspect {
        /// Storage root (holding docker/), docker/registry/v2, a level between, or s3://BUCKET[/PREFIX].
        root: PathBuf,
        /// REPOSITORY:TAG or REPOSITORY@DIGEST.
        reference: String,
        /// Hash every blob of the tree to fill in `intact`.
        #[arg(long)]
        verify: bool,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        common: Common,
    },
    /// Hash every blob (or those of some repositories) and report damage.
    Verify {
        /// Storage root (holding docker/), docker/registry/v2, a level between, or s3://BUCKET[/PREFIX].
        root: PathBuf,
        /// Only the blobs these repositories reach (exact names; see also --repo).
        repositories: Vec<String>,
        #[command(flatten)]
        filters: Filters,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        common: Common,
    },
    /// Start here: inventory summary, problems, and with --verify, integrity.
    Scan {
        /// Storage root (holding docker/), docker/registry/v2, a level between, or s3://BUCKET[/PREFIX].
        root: PathBuf,
        /// Also hash every blob.
        #[arg(long)]
        verify: bool,
        #[command(flatten)]
        time: WritesTime,
        #[command(flatten)]
        filters: Filters,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        common: Common,
    },
    /// Write an image or index as an OCI image layout in DEST, verifying every blob.
    Export {
        /// Storage root (holding docker/), docker/registry/v2, a level between, or s3://BUCKET[/PREFIX].
        root: PathBuf,
        /// REPOSITORY:TAG or REPOSITORY@DIGEST.
        reference: String,
        /// The OCI layout directory to create or add to (local); never inside ROOT.
        dest: PathBuf,
        /// Name in index.json (org.opencontainers.image.ref.name); defaults to the tag.
        #[arg(long)]
        tag: Option<String>,
        /// Export what can be, even when blobs are missing or corrupt (exit 1).
        #[arg(long)]
        allow_partial: bool,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        common: Common,
    },
    /// What changed between two trees: tags, manifests, blobs, uploads, content.
    Diff {
        /// Tree A (e.g. last night's backup): a directory or s3://BUCKET[/PREFIX].
        root_a: PathBuf,
        /// Tree B (e.g. today's): a directory or s3://BUCKET[/PREFIX].
        root_b: PathBuf,
        /// Do not hash blobs present in both; compare their sizes only.
        #[arg(long)]
        no_content: bool,
        #[command(flatten)]
        filters: Filters,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        common: Common,
    },
    /// Disk usage per repository: referenced, unique and shared bytes.
    Du {
        /// Storage root (holding docker/), docker/registry/v2, a level between, or s3://BUCKET[/PREFIX].
        root: PathBuf,
        #[command(flatten)]
        filters: Filters,
        /// Order of the rows.
        #[arg(long, value_enum, value_name = "KEY", default_value_t = du::SortKey::Name, ignore_case = true)]
        sort: du::SortKey,
        /// Reverse the order of the rows.
        #[arg(long)]
        reverse: bool,
        /// Only the first N rows (after sorting); the total stays that of the whole tree.
        #[arg(long, value_name = "N")]
        top: Option<usize>,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        common: Common,
    },
    /// What `registry garbage-collect` would delete, or where it would abort (read-only).
    Gc {
        /// Storage root (holding docker/), docker/registry/v2, a level between, or s3://BUCKET[/PREFIX].
        root: PathBuf,
        /// Model `garbage-collect --delete-untagged`.
        #[arg(long, short = 'm')]
        delete_untagged: bool,
        /// Accepted out of habit: regaudit never deletes, so every run is a dry run.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        filters: Filters,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        common: Common,
    },
    /// Every write a registry serving this tree would make, and whether it
    /// can be served from a read-only volume.
    Writes {
        /// Storage root (holding docker/), docker/registry/v2, a level between, or s3://BUCKET[/PREFIX].
        root: PathBuf,
        #[command(flatten)]
        time: WritesTime,
        #[command(flatten)]
        filters: Filters,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        common: Common,
    },
    /// Every event the tree's metadata records (tags set, manifests put,
    /// layers linked, blobs written, uploads), oldest first.
    Timeline {
        /// Storage root (holding docker/), docker/registry/v2, a level between, or s3://BUCKET[/PREFIX].
        root: PathBuf,
        /// Only events at or after this time (RFC 3339, or YYYY-MM-DD in UTC).
        #[arg(long)]
        since: Option<String>,
        /// Only events at or before this time (RFC 3339, or YYYY-MM-DD in UTC).
        #[arg(long)]
        until: Option<String>,
        #[command(flatten)]
        filters: Filters,
        /// Show times in UTC instead of local time (text only).
        #[arg(long)]
        utc: bool,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        common: Common,
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

impl Command {
    /// The options shared by the commands that read a tree; none for `completions` and `man`.
    fn options(&self) -> Option<(&Common, &Output)> {
        match self {
            Command::Tags { common, output, .. }
            | Command::Inspect { common, output, .. }
            | Command::Verify { common, output, .. }
            | Command::Scan { common, output, .. }
            | Command::Export { common, output, .. }
            | Command::Diff { common, output, .. }
            | Command::Du { common, output, .. }
            | Command::Gc { common, output, .. }
            | Command::Writes { common, output, .. }
            | Command::Timeline { common, output, .. } => Some((common, output)),
            Command::Completions { .. } | Command::Man { .. } => None,
        }
    }

    /// `--repo`/`--tag`, for the commands that read whole trees.
    fn filters(&self) -> Option<&Filters> {
        match self {
            Command::Tags { filters, .. }
            | Command::Verify { filters, .. }
            | Command::Du { filters, .. }
            | Command::Timeline { filters, .. }
            | Command::Scan { filters, .. }
            | Command::Diff { filters, .. }
            | Command::Gc { filters, .. }
            | Command::Writes { filters, .. } => Some(filters),
            _ => None,
        }
    }
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

/// What differs between the commands' option sets, their examples and their
/// question (what fails them): one entry per command that reads a tree.
struct Spec {
    name: &'static str,
    formats: &'static [Format],
    question: &'static Question,
    /// Whether it lists tags (`--tag GLOB` applies).
    tag_filter: bool,
    /// Command lines and what each does.
    examples: &'static [(&'static str, &'static str)],
}

const TEXT_JSON: &[Format] = &[Format::Text, Format::Json];
/// A listing: also one JSON object per line.
const LISTING: &[Format] = &[Format::Text, Format::Json, Format::Jsonl];

const SPECS: &[Spec] = &[
    Spec {
        name: "tags",
        formats: LISTING,
        question: &exit_codes::TAGS,
        tag_filter: true,
        examples: &[
            ("regaudit tags /srv/registry", "every tag and whether it is served"),
            ("regaudit tags /srv/registry base/app --verify", "one repository, its blobs hashed"),
            ("regaudit tags /srv/registry --repo 'base/*' --tag 'v1.*' --sort created", "some tags, newest first"),
            ("regaudit tags /srv/registry --fail-on not-served -q", "fail only when a tag is not served"),
        ],
    },
    Spec {
        name: "inspect",
        formats: TEXT_JSON,
        question: &exit_codes::INSPECT,
        tag_filter: false,
        examples: &[
            ("regaudit inspect /srv/registry base/app:1.4", "the tree of a tag and each node's state"),
            ("regaudit inspect /srv/registry base/app@sha256:… --verify", "by digest, every blob hashed"),
        ],
    },
    Spec {
        name: "verify",
        formats: &[Format::Text, Format::Json, Format::Jsonl, Format::Dfxml, Format::Bodyfile],
        question: &exit_codes::VERIFY,
        tag_filter: false,
        examples: &[
            ("regaudit verify /srv/registry", "hash every blob; which tags damage breaks"),
            ("regaudit verify /srv/registry base/app --format json", "only what one repository reaches"),
            ("regaudit verify /srv/registry --format dfxml > case/blobs.dfxml", "evidence hashes as DFXML"),
        ],
    },
    Spec {
        name: "scan",
        formats: TEXT_JSON,
        question: &exit_codes::SCAN,
        tag_filter: false,
        examples: &[
            ("regaudit scan /srv/registry", "start here: contents, served tags, problems"),
            ("regaudit scan /srv/registry --verify", "and hash every blob"),
            ("regaudit scan s3://bucket/registry --max-requests 64", "a bucket, 64 requests in flight at most"),
            ("regaudit scan /srv/registry -q --fail-on problems:error,writes", "health check: errors or writes fail"),
            ("regaudit scan /srv/registry --repo 'team/*'", "what concerns some repositories (the tree is read whole)"),
        ],
    },
    Spec {
        name: "export",
        formats: TEXT_JSON,
        question: &exit_codes::EXPORT,
        tag_filter: false,
        examples: &[
            ("regaudit export /srv/registry base/app:1.4 /tmp/app", "write an OCI layout, every blob verified"),
            ("regaudit export /srv/registry base/app:1.4 /tmp/app --allow-partial", "what can be saved"),
        ],
    },
    Spec {
        name: "diff",
        formats: TEXT_JSON,
        question: &exit_codes::DIFF,
        tag_filter: false,
        examples: &[
            ("regaudit diff /backup/registry /srv/registry", "what changed since the backup"),
            ("regaudit diff /backup/registry /srv/registry --no-content -q", "sizes only; a one-line answer"),
            ("regaudit diff /backup/registry /srv/registry --repo 'team/*'", "the changes of some repositories"),
        ],
    },
    Spec {
        name: "du",
        formats: LISTING,
        question: &exit_codes::DU,
        tag_filter: false,
        examples: &[
            ("regaudit du /srv/registry --sort unique --top 10", "what deleting each repository would free"),
            ("regaudit du /srv/registry --format jsonl | jq -c 'select(.unique_bytes > 1e9)'", "for scripts"),
        ],
    },
    Spec {
        name: "gc",
        formats: &[Format::Text, Format::Json, Format::GcLog],
        question: &exit_codes::GC,
        tag_filter: false,
        examples: &[
            ("regaudit gc /srv/registry", "what garbage-collect would delete"),
            ("regaudit gc /srv/registry -m --target 3", "with --delete-untagged, by the rules of registry 3"),
            ("regaudit gc /srv/registry --format gc-log", "the lines garbage-collect --dry-run prints"),
            ("regaudit gc s3://bucket/registry", "on a bucket (rootdirectory /registry), credentials from AWS_*"),
            ("regaudit gc /srv/registry -m --repo 'team/*'", "the whole run, showing what team/* loses"),
        ],
    },
    Spec {
        name: "writes",
        formats: TEXT_JSON,
        question: &exit_codes::WRITES,
        tag_filter: false,
        examples: &[
            ("regaudit writes /srv/registry", "can it be served from a read-only volume?"),
            ("regaudit writes /srv/registry --now 2026-12-01T00:00:00Z --purge-age 7d", "at a given time"),
            ("regaudit writes /srv/registry --repo 'team/*'", "the operations on some repositories"),
        ],
    },
    Spec {
        name: "timeline",
        formats: &[Format::Text, Format::Json, Format::Jsonl, Format::Bodyfile],
        question: &exit_codes::TIMELINE,
        tag_filter: true,
        examples: &[
            ("regaudit timeline /srv/registry --utc", "every recorded event, oldest first"),
            ("regaudit timeline /srv/registry --since 2026-11-01 --repo 'base/*'", "one month, some repositories"),
            ("regaudit timeline /srv/registry --format bodyfile > body; mactime -b body", "merge with other timelines"),
        ],
    },
];

fn spec(name: &str) -> &'static Spec {
    SPECS.iter().find(|s| s.name == name).expect("every command reading a tree has a spec")
}

/// `--help` after the options: examples, then the exit status.
fn command_help(spec: &Spec) -> String {
    let mut out = String::from("Examples:\n");
    for (line, what) in spec.examples {
        out.push_str(&format!("  {line}\n      {what}\n"));
    }
    out.push('\n');
    out.push_str(&exit_codes::help(spec.question));
    out
}

/// The top-level `--help` after the commands: each command's default question.
fn overview_help() -> String {
    let mut out = String::from(
        "Exit status:\n  0  nothing the command fails on was found\n  \
         1  something it fails on was found; by default (--fail-on LIST replaces it; see each command's --help):\n",
    );
    for spec in SPECS {
        let default: Vec<&str> = spec.question.default.iter().map(|c| c.name()).collect();
        let default = if default.is_empty() { "never".to_string() } else { default.join(", ") };
        out.push_str(&format!("       {:<8} {default}\n", spec.name));
    }
    out.push_str(&format!("  2  {}\n\nJSON documents are described in docs/json.md.", exit_codes::ERROR_HELP));
    out
}

/// A format choice limited to the formats of one command; any case.
#[derive(Clone)]
struct FormatParser(&'static str, &'static [Format]);

impl clap::builder::TypedValueParser for FormatParser {
    type Value = Format;

    fn parse_ref(&self, cmd: &clap::Command, arg: Option<&clap::Arg>, value: &OsStr) -> Result<Format, clap::Error> {
        let text = value.to_string_lossy();
        let found =
            Format::value_variants().iter().find(|f| f.to_possible_value().is_some_and(|p| p.matches(&text, true)));
        match found {
            Some(f) if self.1.contains(f) => Ok(*f),
            Some(f) => {
                let owners: Vec<String> =
                    SPECS.iter().filter(|s| s.formats.contains(f)).map(|s| format!("`regaudit {}`", s.name)).collect();
                let offered: Vec<String> =
                    self.1.iter().filter_map(|f| f.to_possible_value()).map(|p| p.get_name().to_owned()).collect();
                let message = format!(
                    "--format {text} is only for {}; `regaudit {}` takes {}",
                    owners.join(", "),
                    self.0,
                    offered.join(", ")
                );
                Err(clap::Error::raw(clap::error::ErrorKind::InvalidValue, message).format(&mut cmd.clone()))
            }
            // Not a format at all: clap's own error, with the possible values
            // (it cannot accept what matched no format above).
            None => clap::builder::PossibleValuesParser::new(self.possible_values().into_iter().flatten())
                .parse_ref(cmd, arg, value)
                .and_then(|_| Err(clap::Error::new(clap::error::ErrorKind::InvalidValue).with_cmd(cmd))),
        }
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(self.1.iter().filter_map(|f| f.to_possible_value())))
    }
}

/// `--fail-on` values limited to one command's offer; `problems:SEV` and `none` too.
#[derive(Clone)]
struct FailOnParser(&'static Question);

impl FailOnParser {
    fn values(&self) -> Vec<clap::builder::PossibleValue> {
        use clap::builder::PossibleValue;
        let mut values: Vec<PossibleValue> =
            self.0.offered.iter().map(|c| PossibleValue::new(c.name()).help(c.help())).collect();
        if self.0.offered.contains(&Condition::Problems) {
            for sev in ["problems:info", "problems:warning", "problems:error"] {
                values.push(PossibleValue::new(sev).hide(true));
            }
        }
        values.push(PossibleValue::new("none").help("never exit 1"));
        values
    }
}

impl clap::builder::TypedValueParser for FailOnParser {
    type Value = FailOnValue;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<FailOnValue, clap::Error> {
        let name = clap::builder::PossibleValuesParser::new(self.values()).parse_ref(cmd, arg, value)?;
        FailOnValue::parse(&name)
            .map_err(|e| clap::Error::raw(clap::error::ErrorKind::InvalidValue, e).format(&mut cmd.clone()))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(self.values().into_iter()))
    }
}

/// The parser's definition: the derive, with each command's format and
/// `--fail-on` choices, option visibility and help from [`SPECS`].
/// Completions and man pages come from it too.
fn command() -> clap::Command {
    let mut cmd = Args::command();
    for spec in SPECS {
        cmd = cmd.mut_subcommand(spec.name, |sub| {
            let asks = !spec.question.offered.is_empty();
            let sub = if sub.get_arguments().any(|a| a.get_id() == "tag_globs") {
                sub.mut_arg("tag_globs", |a| a.hide(!spec.tag_filter))
            } else {
                sub
            };
            sub.mut_arg("format", |a| a.value_parser(FormatParser(spec.name, spec.formats)))
                .mut_arg("fail_on", |a| a.value_parser(FailOnParser(spec.question)).hide(!asks))
                .mut_arg("quiet", |a| a.hide(!asks))
                .after_long_help(command_help(spec))
        });
    }
    cmd
}

/// The validated run configuration.
#[derive(Debug)]
pub struct Config {
    /// `Auto` leaves it to anstream: a terminal, unless NO_COLOR (CLICOLOR_FORCE forces it).
    pub color: anstream::ColorChoice,
    pub format: Format,
    pub target: Target,
    pub progress: bool,
    pub fail_on: FailOn,
    /// 0: the report; 1: only the verdict line; 2: nothing.
    pub quiet: u8,
    /// Full lists in text.
    pub verbose: bool,
    /// `--repo` and `--tag` globs.
    pub select: Selection,
    /// How object-store roots are opened and read.
    pub objects: crate::storage::ObjectSettings,
}

impl Config {
    fn new(spec: &Spec, common: &Common, output: &Output, filters: Option<&Filters>) -> Result<Config, ConfigError> {
        let select = match filters {
            Some(f) if !spec.tag_filter && !f.tag.is_empty() => {
                let owners: Vec<String> =
                    SPECS.iter().filter(|s| s.tag_filter).map(|s| format!("`regaudit {}`", s.name)).collect();
                return Err(ConfigError::TagFilterNotOffered(owners));
            }
            Some(f) => Selection::parse(&f.repo, &f.tag).map_err(ConfigError::Selection)?,
            None => Selection::default(),
        };
        if common.max_requests == 0 {
            return Err(ConfigError::MaxRequests);
        }
        if common.rate_limit.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
            return Err(ConfigError::RateLimit);
        }
        let objects = crate::storage::ObjectSettings {
            options: crate::storage::s3::ObjectOptions {
                max_requests: common.max_requests,
                rate_limit: common.rate_limit,
                ..Default::default()
            },
            read_all: common.read_all,
            progress: !common.no_progress,
        };
        Ok(Config {
            color: match common.color {
                ColorWhen::Auto => anstream::ColorChoice::Auto,
                ColorWhen::Always => anstream::ColorChoice::Always,
                ColorWhen::Never => anstream::ColorChoice::Never,
            },
            format: output.format,
            target: common.target,
            progress: !common.no_progress,
            fail_on: FailOn::new(spec.question, &output.fail_on),
            quiet: output.quiet,
            verbose: output.verbose,
            select,
            objects,
        })
    }
}

/// Why options that parsed are not valid together, or not valid values.
#[derive(Debug, thiserror::Error)]
enum ConfigError {
    /// `--tag` given to a command that lists no tags; the commands that do.
    #[error("--tag GLOB is only for {}", .0.join(" and "))]
    TagFilterNotOffered(Vec<String>),
    /// A `--repo` or `--tag` glob that does not compile.
    #[error("{0}")]
    Selection(String),
    /// `--purge-age` (the message of `model::writes::parse_duration`).
    #[error("{0}")]
    PurgeAge(String),
    #[error("invalid --now {value:?}: {source} (use RFC 3339, e.g. 2026-01-31T12:00:00Z)")]
    Now { value: String, source: chrono::ParseError },
    /// `--since` or `--until` (the message of `timeline::parse_time`).
    #[error("{0}")]
    Time(String),
    #[error("--max-requests must be at least 1")]
    MaxRequests,
    #[error("--rate-limit must be a number of requests per second above 0")]
    RateLimit,
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

impl Failure {
    /// Says why on stderr; the outcome it comes to.
    fn report(self) -> Outcome {
        match self {
            Failed(msg) => {
                let _ = writeln!(anstream::stderr(), "regaudit: {msg}");
                Outcome::Error
            }
            // The reader has what it wanted.
            Failure::ClosedPipe => Outcome::Clean,
        }
    }
}

impl From<String> for Failure {
    fn from(e: String) -> Failure {
        Failed(e)
    }
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Failure {
        Failed(e.to_string())
    }
}

impl From<crate::export::ExportError> for Failure {
    fn from(e: crate::export::ExportError) -> Failure {
        Failed(e.to_string())
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
    crate::storage::configure_threads();
    let argv: Vec<OsString> = argv.into_iter().collect();
    main(&argv).code()
}

/// Parses, validates, runs one command and writes its report: the outcome
/// decides the exit status ([`Outcome::code`]).
fn main(argv: &[OsString]) -> Outcome {
    let args = match command().try_get_matches_from(argv).and_then(|m| Args::from_arg_matches(&m)) {
        Ok(a) => a,
        // `--help` and `--version` are clap "errors" printed to stdout.
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { Outcome::Error } else { Outcome::Clean };
        }
    };
    let name = command_name(&args.command);
    crate::storage::set_follow_symlinks(args.command.options().is_some_and(|(common, _)| common.follow_symlinks));
    let config = match args.command.options() {
        Some((common, output)) => match Config::new(spec(name), common, output, args.command.filters()) {
            Ok(config) => config,
            Err(e) => return Failed(e.to_string()).report(),
        },
        // `completions` and `man` print what was asked and never fail.
        None => Config {
            color: anstream::ColorChoice::Auto,
            format: Format::Text,
            target: Target::default(),
            progress: false,
            fail_on: FailOn::default_for(&exit_codes::NEVER),
            quiet: 0,
            verbose: false,
            select: Selection::default(),
            objects: Default::default(),
        },
    };
    crate::storage::set_object_settings(config.objects.clone());
    // Every stream of the process (stdout, stderr) follows --color.
    report::set_verbose(config.verbose);
    anstream::ColorChoice::write_global(config.color);
    let roots = roots(&args.command);
    report::provenance::begin(argv, config.target, crate::analysis::provenance::identify_roots(&roots));
    let report_digest = args.command.options().and_then(|(common, _)| common.report_digest.clone());
    if let Some(file) = &report_digest {
        if let Err(msg) = digest_file_outside(file, &roots) {
            return Failed(msg).report();
        }
    }
    let hasher = std::sync::Arc::new(std::sync::Mutex::new(sha2::Sha256::default()));
    let mut stdout: Box<dyn Write> = match report_digest {
        None => Box::new(anstream::stdout().lock()),
        // Hash below the colour stripping: the bytes that reach stdout.
        Some(_) => {
            let raw: Box<dyn Write> =
                Box::new(report::DigestingWriter { inner: std::io::stdout().lock(), hasher: hasher.clone() });
            Box::new(anstream::AutoStream::new(raw, anstream::AutoStream::choice(&std::io::stdout())))
        }
    };
    let mut sink = std::io::sink();
    let out: &mut dyn Write = if config.quiet > 0 { &mut sink } else { &mut *stdout };
    let out = &mut ProgressCleared(out);
    let result = execute(&config, args.command, out);
    crate::progress::finish_object_stores();
    let _ = out.flush();
    let unread = crate::storage::unread_objects();
    let outcome = match result {
        Ok(findings) => {
            if config.quiet == 1 {
                let _ = writeln!(stdout, "{}", config.fail_on.verdict(name, &findings));
                let _ = stdout.flush();
            }
            for note in config.fail_on.incomplete_notes(&findings) {
                let _ = writeln!(anstream::stderr(), "regaudit: {note}");
            }
            config.fail_on.outcome(&findings)
        }
        Err(failure) => failure.report(),
    };
    // What the object store never delivered leaves the answer incomplete.
    let outcome = match unread.as_slice() {
        [] => outcome,
        keys => {
            let named = report::shown(keys.len(), 5);
            let list: Vec<_> = keys[..named].iter().map(|k| crate::names::escape(k)).collect();
            let more = if named < keys.len() { format!(" and {} more", keys.len() - named) } else { String::new() };
            let _ = writeln!(
                anstream::stderr(),
                "regaudit: incomplete: {} could not be read from the object store, even after retries: {}{more}",
                report::plural_s(keys.len(), "object"),
                list.join(", ")
            );
            outcome.max(Outcome::Incomplete)
        }
    };
    drop(stdout);
    match &report_digest {
        Some(file) => match write_digest(file, &hasher) {
            Ok(()) => outcome,
            Err(msg) => outcome.max(Failed(msg).report()),
        },
        None => outcome,
    }
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Tags { .. } => "tags",
        Command::Inspect { .. } => "inspect",
        Command::Verify { .. } => "verify",
        Command::Scan { .. } => "scan",
        Command::Export { .. } => "export",
        Command::Diff { .. } => "diff",
        Command::Du { .. } => "du",
        Command::Gc { .. } => "gc",
        Command::Writes { .. } => "writes",
        Command::Timeline { .. } => "timeline",
        Command::Completions { .. } => "completions",
        Command::Man { .. } => "man",
    }
}

/// Hashes `digests`, with a progress bar and Ctrl-C stopping early.
/// Returns whether Ctrl-C stopped it: the answer is then incomplete.
fn verify(config: &Config, audit: &mut Audit, digests: &BTreeSet<Digest>) -> bool {
    // First Ctrl-C: stop hashing and report what was verified; second: quit.
    let _ = ctrlc::set_handler(|| {
        if CANCEL.swap(true, Ordering::SeqCst) {
            std::process::exit(Outcome::Error.code());
        }
    });
    let total = digests.iter().filter_map(|d| audit.inventory.blob_size(d)).sum();
    let progress = Progress::bytes(config.progress, total, "verifying");
    audit.verify(digests, &progress);
    CANCEL.load(Ordering::SeqCst)
}

/// The repositories named (each must exist) plus those `--repo` globs
/// match; empty means every repository. Globs that match nothing are an
/// error, since an empty list would mean all.
fn select_repositories(audit: &Audit, named: &[String], select: &Selection) -> Result<Vec<String>, Failure> {
    let unknown = analysis::tags::unknown_repositories(audit, named);
    if let Some(why) = unknown.iter().find_map(|r| audit.why_unseen(r)) {
        return Err(Failed(why));
    } else if !unknown.is_empty() {
        return Err(Failed(format!("no repository {} in this tree", unknown.join(", "))));
    }
    if select.repos.is_empty() {
        return Ok(named.to_vec());
    }
    let mut chosen: BTreeSet<String> = named.iter().cloned().collect();
    chosen.extend(
        audit.inventory.repositories.iter().filter(|r| select.keeps_repository(&r.name)).map(|r| r.name.clone()),
    );
    if chosen.is_empty() {
        return Err(Failed(format!("no repository in this tree matches --repo {}", select.repo_globs())));
    }
    Ok(chosen.into_iter().collect())
}

/// Renders regaudit(1) or regaudit-COMMAND(1), or writes them all to `out_dir`.
fn man(command: Option<&str>, out_dir: Option<PathBuf>, out: &mut dyn Write) -> Result<(), Failure> {
    // Built as clap_mangen::generate_to builds it, so pages name each other alike.
    let mut cmd = self::command().disable_help_subcommand(true);
    cmd.build();
    if let Some(dir) = out_dir {
        let write = |page: &clap::Command| -> std::io::Result<()> {
            let name = page.get_display_name().unwrap_or_else(|| page.get_name());
            let mut file = std::fs::File::create(dir.join(format!("{name}.1")))?;
            man_page(page, &mut file)
        };
        for page in std::iter::once(&cmd).chain(cmd.get_subcommands()) {
            write(page).map_err(|e| Failed(format!("{}: {e}", dir.display())))?;
        }
        return Ok(());
    }
    let page = match command {
        None => &cmd,
        Some(name) => {
            cmd.find_subcommand(name).ok_or_else(|| Failed(format!("no subcommand {name}; see `regaudit --help`")))?
        }
    };
    man_page(page, out)?;
    Ok(())
}

/// One man page: clap_mangen's sections, with the text after the options
/// (examples, exit status) as sections of its own, kept as laid out.
fn man_page(page: &clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
    let after = page.get_after_long_help().map(|h| h.to_string()).unwrap_or_default();
    let man = clap_mangen::Man::new(page.clone().after_long_help(None::<&str>));
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    if page.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(out)?;
    }
    if page.has_subcommands() {
        man.render_subcommands_section(out)?;
    }
    // "Examples:" and "Exit status:" start sections; the rest is shown as is.
    let mut roff = roff::Roff::new();
    for block in after.split("\n\n") {
        let mut lines = block.lines();
        let Some(first) = lines.next() else { continue };
        let (heading, rest) = match first.strip_suffix(':') {
            Some(h) => (h.to_uppercase(), lines.collect::<Vec<_>>()),
            None => ("NOTES".to_string(), block.lines().collect()),
        };
        roff.control("SH", [heading.as_str()]);
        if heading == "EXIT STATUS" {
            roff.text([roff::roman("Exit status of regaudit:")]);
        }
        roff.control("nf", []);
        for line in rest {
            roff.text([roff::roman(line)]);
        }
        roff.control("fi", []);
    }
    roff.to_writer(out)?;
    if page.get_version().is_some() || page.get_long_version().is_some() {
        man.render_version_section(out)?;
    }
    Ok(())
}

/// Writes `report` in `format`; returns what it found, for the exit status.
fn emit(report: &impl Report, format: Format, out: &mut dyn Write) -> Result<Findings, Failure> {
    report::emit(report, format, out)?;
    Ok(report.findings())
}

/// Runs one command; returns what it found, for the exit status.
fn execute(config: &Config, command: Command, out: &mut dyn Write) -> Result<Findings, Failure> {
    let mut interrupted = false;
    let mut findings = match command {
        Command::Tags { root, repositories, verify: hash, sort, reverse, .. } => {
            let mut audit = Audit::run(&root, config.target)?;
            let repositories = select_repositories(&audit, &repositories, &config.select)?;
            if hash {
                let digests = analysis::tags::reachable_digests(&audit, &repositories, &config.select);
                interrupted = verify(config, &mut audit, &digests);
            }
            let mut report = analysis::tags::build(&audit, &repositories, &config.select);
            report.sort(sort, reverse);
            emit(&report, config.format, out)?
        }
        Command::Inspect { root, reference, verify: hash, .. } => {
            let reference = Reference::parse(&reference)?;
            let mut audit = Audit::run(&root, config.target)?;
            if hash {
                let digests = analysis::inspect::reachable_digests(&audit, &reference);
                interrupted = verify(config, &mut audit, &digests);
            }
            let report = analysis::inspect::build(&audit, &reference)?;
            emit(&report, config.format, out)?
        }
        Command::Verify { root, repositories, .. } => {
            let mut audit = Audit::run(&root, config.target)?;
            let repositories = select_repositories(&audit, &repositories, &config.select)?;
            let digests = analysis::verify::blobs_to_verify(&audit, &repositories);
            interrupted = verify(config, &mut audit, &digests);
            let report = analysis::verify::build(&audit, &repositories);
            match config.format {
                Format::Dfxml => report::dfxml::write(&report.root, &evidence_files(&audit, &repositories), out)?,
                Format::Bodyfile => report::bodyfile::write_evidence(&evidence_files(&audit, &repositories), out)?,
                format => report::emit(&report, format, out)?,
            }
            report.findings()
        }
        Command::Scan { root, verify: hash, time, .. } => {
            let settings = writes_settings(&time)?;
            let mut audit = Audit::run(&root, config.target)?;
            if hash {
                let digests = audit.inventory.blobs.keys().cloned().collect();
                interrupted = verify(config, &mut audit, &digests);
            }
            let scope = Scope::of(&config.select, &[&audit])?;
            let report = analysis::scan::build(&audit, &settings, scope.as_ref());
            emit(&report, config.format, out)?
        }
        Command::Export { root, reference, dest, tag, allow_partial, .. } => {
            if crate::storage::is_object_url(&dest) {
                return Err(Failed(format!(
                    "DEST {} is an object-store URL: export writes to a local directory",
                    dest.display()
                )));
            }
            let reference = Reference::parse(&reference)?;
            let audit = Audit::run(&root, config.target)?;
            let report =
                crate::export::export(&audit, &reference, &dest, &crate::export::Options { allow_partial, tag })?;
            emit(&report, config.format, out)?
        }
        Command::Diff { root_a, root_b, no_content, .. } => {
            let (a, b) = rayon::join(|| Audit::run(&root_a, config.target), || Audit::run(&root_b, config.target));
            let (a, b) = (a?, b?);
            let scope = Scope::of(&config.select, &[&a, &b])?;
            let report = analysis::diff::build(&a, &b, !no_content);
            let report = match &scope {
                Some(scope) => analysis::diff::filter(report, scope),
                None => report,
            };
            emit(&report, config.format, out)?
        }
        Command::Du { root, sort, reverse, top, .. } => {
            let audit = Audit::run(&root, config.target)?;
            let mut report = analysis::du::build(&audit, sort);
            report.select(&config.select, reverse, top);
            emit(&report, config.format, out)?
        }
        Command::Gc { root, delete_untagged, dry_run, .. } => {
            if dry_run {
                let _ = writeln!(anstream::stderr(), "regaudit: --dry-run changes nothing: regaudit never deletes");
            }
            let audit = Audit::run_for_gc(&root, config.target)?;
            let scope = Scope::of(&config.select, &[&audit])?;
            if scope.is_some() && config.format == Format::GcLog {
                return Err(Failed("--format gc-log is the whole run's output: --repo does not apply".into()));
            }
            let mut report = analysis::gc::predict(&audit, delete_untagged, config.format == Format::GcLog);
            if let Some(scope) = &scope {
                analysis::gc::filter(&mut report, scope);
            }
            match config.format {
                // The real run's lines, never predicted from a partial read.
                Format::GcLog if !crate::storage::unread_objects().is_empty() => {}
                Format::GcLog => report.write_log(out, &mut anstream::stderr())?,
                format => report::emit(&report, format, out)?,
            }
            report.findings()
        }
        Command::Writes { root, time, .. } => {
            let settings = writes_settings(&time)?;
            let audit = Audit::run(&root, config.target)?;
            let mut report = analysis::writes::build(&audit, &settings, &time.purge_age);
            if let Some(scope) = Scope::of(&config.select, &[&audit])? {
                analysis::writes::filter(&mut report, &scope);
            }
            emit(&report, config.format, out)?
        }
        Command::Timeline { root, since, until, utc, .. } => {
            let filter = timeline_filter(since.as_deref(), until.as_deref(), &config.select)?;
            let read = Timeline::read(&root, &filter)?;
            let report = analysis::timeline::build(&read, &filter, config.target, utc);
            match config.format {
                Format::Bodyfile => report.write_bodyfile(out)?,
                format => report::emit(&report, format, out)?,
            }
            report.findings()
        }
        // Both come from the same definition as the parser, so they never drift from it.
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut self::command(), "regaudit", out);
            Findings::default()
        }
        Command::Man { command, out_dir } => {
            man(command.as_deref(), out_dir, out)?;
            Findings::default()
        }
    };
    findings.interrupted |= interrupted;
    Ok(findings)
}

/// Validates `writes` options before any work is done.
fn writes_settings(time: &WritesTime) -> Result<writes::Settings, ConfigError> {
    let purge_age = writes::parse_duration(&time.purge_age).map_err(ConfigError::PurgeAge)?;
    let now = match time.now.as_deref() {
        None => chrono::Utc::now(),
        Some(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map_err(|source| ConfigError::Now { value: s.to_string(), source })?
            .with_timezone(&chrono::Utc),
    };
    Ok(writes::Settings { now, purge_age })
}

/// Validates `timeline` filters before any work is done.
fn timeline_filter(
    since: Option<&str>,
    until: Option<&str>,
    select: &Selection,
) -> Result<crate::timeline::Filter, ConfigError> {
    let time = |s: Option<&str>| s.map(crate::timeline::parse_time).transpose().map_err(ConfigError::Time);
    Ok(crate::timeline::Filter { since: time(since)?, until: time(until)?, select: select.clone() })
}

/// The trees a command reads, as given (for provenance and `--report-digest`).
fn roots(command: &Command) -> Vec<PathBuf> {
    match command {
        Command::Tags { root, .. }
        | Command::Inspect { root, .. }
        | Command::Verify { root, .. }
        | Command::Scan { root, .. }
        | Command::Export { root, .. }
        | Command::Du { root, .. }
        | Command::Gc { root, .. }
        | Command::Writes { root, .. }
        | Command::Timeline { root, .. } => vec![root.clone()],
        Command::Diff { root_a, root_b, .. } => vec![root_a.clone(), root_b.clone()],
        Command::Completions { .. } | Command::Man { .. } => Vec::new(),
    }
}

/// Refuses a `--report-digest` file inside a tree being read: never write
/// under the evidence.
fn digest_file_outside(file: &std::path::Path, roots: &[PathBuf]) -> Result<(), String> {
    if crate::storage::is_object_url(file) {
        return Err(format!("--report-digest {} is an object-store URL: give a local file", file.display()));
    }
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let name: Vec<&std::ffi::OsStr> = file.file_name().into_iter().collect();
    // An object-store root: no local file can be inside it.
    for root in roots.iter().filter(|r| !crate::storage::is_object_url(r)) {
        // The storage root the tree resolves to may lie above the path given.
        let located =
            crate::storage::StorageRoot::locate(root).ok().and_then(|r| r.path().dir().map(Path::to_path_buf));
        let Some(root) = located.or_else(|| std::fs::canonicalize(root).ok()) else { continue };
        // By device and inode and by mount, as export checks DEST.
        let inside = crate::export::reaches_tree(&root, parent, &name)
            .map_err(|e| format!("--report-digest {}: {e}", file.display()))?;
        if inside {
            return Err(format!(
                "--report-digest {} is inside the tree {}: nothing is ever written there",
                file.display(),
                root.display()
            ));
        }
    }
    Ok(())
}

/// The report's writer: the progress lines of object-store roots are
/// cleared before the first byte of the report.
struct ProgressCleared<'a>(&'a mut dyn Write);

impl Write for ProgressCleared<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        crate::progress::finish_object_stores();
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Writes `HEX  -` (the SHA-256 of what went to stdout) to `file`.
fn write_digest(file: &std::path::Path, hasher: &std::sync::Mutex<sha2::Sha256>) -> Result<(), String> {
    let hasher = hasher.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let hex = hex::encode(sha2::Digest::finalize(hasher));
    std::fs::write(file, format!("{hex}  -\n")).map_err(|e| format!("--report-digest {}: {e}", file.display()))
}
