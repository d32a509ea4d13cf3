//! Exit status, decided in one place. Each report says what it found
//! ([`Findings`]); each command asks its own question (its [`Question`]:
//! which [`Condition`]s fail it by default), which `--fail-on` can replace;
//! [`FailOn::exit_code`] gives the answer. Exit 2 is never a matter of
//! choice: the command could not run, or its answer is incomplete.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::problem::Severity;

/// Nothing that fails the command's question was found.
pub const CLEAN: i32 = 0;
/// Something the question fails on was found (see `--fail-on`).
pub const FINDINGS: i32 = 1;
/// The command could not run (bad arguments, not a registry tree, I/O) or
/// its answer is incomplete (verification interrupted).
pub const ERROR: i32 = 2;

/// The outcome of a run, as fd's `ExitCode`: decided once, from what the
/// report found ([`FailOn::outcome`]) or from why the command stopped, and
/// converted to the exit status once. Ordered from best to worst, so that
/// the worse of two is their `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Nothing the command's question fails on was found.
    Clean,
    /// A condition of `--fail-on` (or the command's default) holds.
    Findings,
    /// The answer does not cover everything: hashing was interrupted, or a
    /// condition asked about depends on what is not modelled.
    Incomplete,
    /// The command could not run.
    Error,
}

impl Outcome {
    /// The exit status: incomplete answers exit 2, as errors do.
    pub fn code(self) -> i32 {
        match self {
            Outcome::Clean => CLEAN,
            Outcome::Findings => FINDINGS,
            Outcome::Incomplete | Outcome::Error => ERROR,
        }
    }
}

impl From<Outcome> for i32 {
    fn from(outcome: Outcome) -> i32 {
        outcome.code()
    }
}

/// What a command can fail on; the kebab-case names are `--fail-on` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Condition {
    /// A problem at or above the severity threshold (warning by default).
    Problems,
    /// A tag a registry serving the tree would not serve.
    NotServed,
    /// A blob that is corrupt, truncated, unreadable or missing (hashed).
    Damage,
    /// A request that would make a registry serving the tree write.
    Writes,
    /// `garbage-collect` would abort.
    Aborts,
    /// A hazard of `garbage-collect`: something its deletions break or risk.
    Hazards,
    /// `garbage-collect` would delete something.
    Deletions,
    /// The two trees differ.
    Differences,
    /// An export is missing blobs (`--allow-partial`).
    Partial,
}

impl Condition {
    pub const ALL: [Condition; 9] = [
        Condition::Problems,
        Condition::NotServed,
        Condition::Damage,
        Condition::Writes,
        Condition::Aborts,
        Condition::Hazards,
        Condition::Deletions,
        Condition::Differences,
        Condition::Partial,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Condition::Problems => "problems",
            Condition::NotServed => "not-served",
            Condition::Damage => "damage",
            Condition::Writes => "writes",
            Condition::Aborts => "aborts",
            Condition::Hazards => "hazards",
            Condition::Deletions => "deletions",
            Condition::Differences => "differences",
            Condition::Partial => "partial",
        }
    }

    /// One line for `--help` and the man pages.
    pub fn help(self) -> &'static str {
        match self {
            Condition::Problems => {
                "a problem of severity warning or error (problems:error, problems:info set the threshold)"
            }
            Condition::NotServed => "a tag a registry serving the tree would not serve",
            Condition::Damage => "a blob that is corrupt, truncated, unreadable or missing (after hashing)",
            Condition::Writes => "a request that would make a registry serving the tree write to it",
            Condition::Aborts => "garbage-collect would abort",
            Condition::Hazards => "a garbage-collect hazard: a deletion that breaks or risks something",
            Condition::Deletions => "garbage-collect would delete anything (normal for a live registry)",
            Condition::Differences => "the trees differ",
            Condition::Partial => "the export is missing blobs (--allow-partial)",
        }
    }

    fn from_name(name: &str) -> Option<Condition> {
        Condition::ALL.into_iter().find(|c| c.name().eq_ignore_ascii_case(name))
    }
}

/// A command's question: what fails it unless `--fail-on` says otherwise,
/// and what it can be asked to fail on.
#[derive(Debug)]
pub struct Question {
    pub default: &'static [Condition],
    pub offered: &'static [Condition],
}

use Condition::*;

pub const SCAN: Question = Question {
    default: &[Problems, NotServed, Damage],
    offered: &[Problems, NotServed, Damage, Writes, Aborts, Hazards, Deletions],
};
pub const TAGS: Question =
    Question { default: &[Problems, NotServed, Damage], offered: &[Problems, NotServed, Damage] };
pub const INSPECT: Question = TAGS;
pub const VERIFY: Question = Question { default: &[Damage], offered: &[Damage, Problems] };
pub const EXPORT: Question = Question { default: &[Partial], offered: &[Partial] };
pub const DIFF: Question = Question { default: &[Differences], offered: &[Differences] };
/// Commands that answer without judging: `du`, `completions`, `man`.
pub const NEVER: Question = Question { default: &[], offered: &[] };
pub const DU: Question = NEVER;
pub const GC: Question = Question { default: &[Aborts, Hazards], offered: &[Aborts, Hazards, Deletions] };
pub const WRITES: Question = Question { default: &[Writes], offered: &[Writes] };
/// `timeline` fails only on what kept it from reading the tree's times.
pub const TIMELINE: Question = Question { default: &[Problems], offered: &[Problems] };

/// What a report found, in counts; reports fill in what they know.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// Problems by severity: info, warning, error.
    pub problems: [usize; 3],
    pub not_served: usize,
    /// Damaged blobs (verify, scan) or tags whose content is damaged (tags, inspect).
    pub damaged: usize,
    pub writes: usize,
    pub aborts: bool,
    pub hazards: usize,
    pub deletions: usize,
    pub differences: bool,
    pub partial: bool,
    /// Hashing was interrupted: the answer covers only part of the tree.
    pub interrupted: bool,
    /// Conditions the report cannot answer: something it depends on is not
    /// modelled (a symlink the registry follows, a file that vanished).
    pub unknown: BTreeSet<Condition>,
}

impl Findings {
    /// Counts `problems` by severity.
    pub fn with_problems<'a>(mut self, problems: impl IntoIterator<Item = &'a crate::problem::Problem>) -> Findings {
        for p in problems {
            self.problems[p.severity as usize] += 1;
        }
        self
    }

    fn problems_at_least(&self, threshold: Severity) -> usize {
        self.problems[threshold as usize..].iter().sum()
    }
}

/// One `--fail-on` value: a condition, a threshold-qualified `problems:SEV`,
/// or `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOnValue {
    None,
    Condition(Condition, Option<Severity>),
}

impl FailOnValue {
    /// Parses `problems`, `problems:error`, `not-served`, `none`... (any case).
    pub fn parse(s: &str) -> Result<FailOnValue, String> {
        if s.eq_ignore_ascii_case("none") {
            return Ok(FailOnValue::None);
        }
        let (name, severity) = match s.split_once(':') {
            Some((name, sev)) => (name, Some(sev)),
            None => (s, None),
        };
        let condition = Condition::from_name(name).ok_or_else(|| format!("unknown condition {name:?}"))?;
        let severity = match severity {
            None => None,
            Some(_) if condition != Condition::Problems => {
                return Err(format!("only `problems` takes a severity (problems:error), not {name}"))
            }
            Some(sev) => Some(match sev.to_ascii_lowercase().as_str() {
                "info" => Severity::Info,
                "warning" => Severity::Warning,
                "error" => Severity::Error,
                _ => return Err(format!("unknown severity {sev:?}: use info, warning or error")),
            }),
        };
        Ok(FailOnValue::Condition(condition, severity))
    }
}

impl std::str::FromStr for FailOnValue {
    type Err = String;
    fn from_str(s: &str) -> Result<FailOnValue, String> {
        FailOnValue::parse(s)
    }
}

/// The conditions that fail a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailOn {
    conditions: BTreeSet<Condition>,
    /// The lowest severity of a problem that counts.
    severity: Severity,
}

impl FailOn {
    /// The command's default question.
    pub fn default_for(question: &Question) -> FailOn {
        FailOn { conditions: question.default.iter().copied().collect(), severity: Severity::Warning }
    }

    /// `--fail-on` values (already checked against the command's offer);
    /// none given means the default.
    pub fn new(question: &Question, values: &[FailOnValue]) -> FailOn {
        if values.is_empty() {
            return FailOn::default_for(question);
        }
        let mut fail_on = FailOn { conditions: BTreeSet::new(), severity: Severity::Warning };
        for v in values {
            if let FailOnValue::Condition(c, sev) = *v {
                fail_on.conditions.insert(c);
                if let Some(sev) = sev {
                    fail_on.severity = sev;
                }
            }
        }
        fail_on
    }

    /// Each condition that holds, with how much of it was found.
    pub fn failures(&self, f: &Findings) -> Vec<String> {
        use crate::report::plural;
        let mut out = Vec::new();
        for &c in &self.conditions {
            let found = match c {
                Problems => {
                    let n = f.problems_at_least(self.severity);
                    let at = match self.severity {
                        Severity::Info => String::new(),
                        Severity::Warning => " (warning or error)".into(),
                        Severity::Error => " (error)".into(),
                    };
                    (n > 0).then(|| plural(n, "problem", "problems") + &at)
                }
                NotServed => (f.not_served > 0).then(|| plural(f.not_served, "tag not served", "tags not served")),
                // Blobs for verify and scan, tags for tags and inspect.
                Damage => (f.damaged > 0).then(|| format!("damaged content ({})", f.damaged)),
                Writes => (f.writes > 0).then(|| plural(f.writes, "operation writes", "operations write")),
                Aborts => f.aborts.then(|| "garbage-collect aborts".to_string()),
                Hazards => (f.hazards > 0).then(|| plural(f.hazards, "hazard", "hazards")),
                Deletions => (f.deletions > 0).then(|| plural(f.deletions, "file deleted", "files deleted")),
                Differences => f.differences.then(|| "the trees differ".to_string()),
                Partial => f.partial.then(|| "the export is partial".to_string()),
            };
            out.extend(found);
        }
        out
    }

    /// The conditions asked about that the report cannot answer.
    pub fn unknown(&self, f: &Findings) -> Vec<&'static str> {
        self.conditions.intersection(&f.unknown).map(|c| c.name()).collect()
    }

    pub fn outcome(&self, f: &Findings) -> Outcome {
        if f.interrupted || !self.unknown(f).is_empty() {
            Outcome::Incomplete
        } else if self.failures(f).is_empty() {
            Outcome::Clean
        } else {
            Outcome::Findings
        }
    }

    /// What stderr says of an incomplete answer, after the report.
    pub fn incomplete_notes(&self, f: &Findings) -> Vec<String> {
        let unknown = self.unknown(f);
        if f.interrupted {
            vec!["interrupted: the report covers only what was verified before Ctrl-C".to_string()]
        } else if !unknown.is_empty() {
            vec![format!(
                "incomplete: the answer above does not cover what it lists as not modelled ({} not known)",
                unknown.join(", ")
            )]
        } else {
            Vec::new()
        }
    }

    /// The one-line answer `--quiet` prints, e.g. `fail: 2 problems (warning or error), 1 tag not served`.
    pub fn verdict(&self, command: &str, f: &Findings) -> String {
        let failures = self.failures(f);
        let mut line = format!("regaudit {command}: ");
        let unknown = self.unknown(f);
        if f.interrupted {
            line.push_str("incomplete: interrupted");
        } else if !unknown.is_empty() {
            let _ = write!(line, "incomplete: {} not known (not modelled)", unknown.join(", "));
        } else if failures.is_empty() {
            let _ = write!(line, "ok (fails on: {})", self.describe());
        } else {
            let _ = write!(line, "fail: {}", failures.join(", "));
        }
        line
    }

    /// The conditions as `--fail-on` spells them.
    pub fn describe(&self) -> String {
        if self.conditions.is_empty() {
            return "none".into();
        }
        let names: Vec<String> = self
            .conditions
            .iter()
            .map(|c| match (c, self.severity) {
                (Problems, Severity::Info) => "problems:info".to_string(),
                (Problems, Severity::Error) => "problems:error".to_string(),
                _ => c.name().to_string(),
            })
            .collect();
        names.join(",")
    }
}

/// What exit status 2 means, in help texts.
pub const ERROR_HELP: &str = "could not run (bad arguments, not a registry tree, I/O) or incomplete \
(hashing interrupted, or an answer depends on what is not modelled, such as a symlink the registry follows)";

/// The exit-status section of a command's `--help` and man page.
pub fn help(question: &Question) -> String {
    let default: Vec<&str> = question.default.iter().map(|c| c.name()).collect();
    let mut out = String::from("Exit status:\n");
    if question.default.is_empty() {
        out.push_str("  0  it ran\n");
    } else {
        let _ = writeln!(out, "  0  none of the conditions below holds");
        let _ = writeln!(
            out,
            "  1  one holds; by default: {} (marked *; --fail-on LIST replaces them):",
            default.join(", ")
        );
        for c in question.offered {
            let mark = if question.default.contains(c) { "*" } else { " " };
            let _ = writeln!(out, "     {mark} {:<12} {}", c.name(), c.help());
        }
    }
    let _ = writeln!(out, "  2  {ERROR_HELP}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings() -> Findings {
        Findings { problems: [3, 1, 0], not_served: 0, deletions: 4, ..Findings::default() }
    }

    #[test]
    fn defaults_ask_each_commands_own_question() {
        let f = findings();
        assert_eq!(FailOn::default_for(&SCAN).outcome(&f), Outcome::Findings, "a warning fails scan");
        assert_eq!(FailOn::default_for(&GC).outcome(&f), Outcome::Clean, "deletions are normal for gc");
        let info_only = Findings { problems: [3, 0, 0], ..Findings::default() };
        assert_eq!(FailOn::default_for(&SCAN).outcome(&info_only), Outcome::Clean);
    }

    #[test]
    fn fail_on_overrides_and_sets_the_threshold() {
        let f = findings();
        let parse = |list: &str| {
            let values: Vec<FailOnValue> = list.split(',').map(|v| FailOnValue::parse(v).unwrap()).collect();
            FailOn::new(&SCAN, &values)
        };
        assert_eq!(parse("problems:error").outcome(&f), Outcome::Clean);
        assert_eq!(parse("PROBLEMS:Warning").outcome(&f), Outcome::Findings);
        assert_eq!(parse("deletions").outcome(&f), Outcome::Findings);
        assert_eq!(parse("none").outcome(&f), Outcome::Clean);
        assert_eq!(parse("problems:info,not-served").describe(), "problems:info,not-served");
        assert_eq!(
            parse("problems,deletions").verdict("scan", &f),
            "regaudit scan: fail: 1 problem (warning or error), 4 files deleted"
        );
        let interrupted = Findings { interrupted: true, ..Findings::default() };
        assert_eq!(parse("none").outcome(&interrupted), Outcome::Incomplete);
        assert!(FailOnValue::parse("writes:error").is_err());
        assert!(FailOnValue::parse("problems:fatal").is_err());
        assert!(FailOnValue::parse("everything").is_err());
    }

    #[test]
    fn outcomes_map_to_the_three_statuses_and_the_worse_wins() {
        let codes: Vec<i32> =
            [Outcome::Clean, Outcome::Findings, Outcome::Incomplete, Outcome::Error].map(Outcome::code).into();
        assert_eq!(codes, [0, 1, 2, 2]);
        assert_eq!(Outcome::Findings.max(Outcome::Error), Outcome::Error, "a failed --report-digest wins");
        assert_eq!(Outcome::Clean.max(Outcome::Findings), Outcome::Findings);
    }
}
