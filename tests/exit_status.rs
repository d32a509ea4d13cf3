//! The exit status answers each command's own question (src/exit_codes.rs),
//! `--fail-on` replaces it, and the habits of the ecosystem hold: `--color`
//! with NO_COLOR and CLICOLOR_FORCE, `-q`, case-insensitive formats, per
//! command `--help`, `gc --dry-run`.

mod common;

use std::process::Command;

use common::{regaudit, testdata};

const NOW: &str = "2026-12-01T00:00:00Z";

fn tree(rel: &str) -> String {
    testdata(rel).to_str().unwrap().to_owned()
}

/// The exit status of `regaudit ARGS` (testdata paths are made absolute).
fn code(args: &[&str]) -> i32 {
    let args: Vec<String> =
        args.iter().map(|a| if a.contains('/') && !a.contains(':') { tree(a) } else { (*a).to_owned() }).collect();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = regaudit(&argv);
    assert!(run.code == 0 || run.code == 1, "{args:?} could not run: {}", run.stderr);
    run.code
}

#[test]
fn each_command_asks_its_own_question() {
    // The bundled healthy tree: serving it writes (schema1 conversion) and
    // garbage-collect would delete blobs, but it has no problem and every
    // tag is served.
    assert_eq!(code(&["scan", "trees/full", "--now", NOW]), 0);
    assert_eq!(code(&["scan", "trees/full", "--verify", "--now", NOW]), 0);
    assert_eq!(code(&["tags", "trees/full"]), 0);
    assert_eq!(code(&["inspect", "trees/full", "multi/oci-index:latest"]), 0);
    assert_eq!(code(&["verify", "trees/full"]), 0);
    assert_eq!(code(&["du", "trees/full"]), 0);
    assert_eq!(code(&["diff", "trees/full", "trees/full"]), 0);
    // writes: any predicted write.
    assert_eq!(code(&["writes", "trees/full", "--now", NOW]), 1);
    assert_eq!(code(&["writes", "broken/revision-missing-data", "--now", NOW]), 0);
    // gc: deletions are its normal answer; hazards and aborts fail it.
    assert_eq!(code(&["gc", "broken/schema1-signatures", "-m"]), 0, "a deletion, no hazard");
    assert_eq!(code(&["gc", "trees/minimal-multi", "-m"]), 1, "hazards");
    assert_eq!(code(&["gc", "broken/revision-link-empty"]), 1, "aborts");
    // diff: differences.
    assert_eq!(code(&["diff", "trees/minimal", "broken/blob-corrupt"]), 1);
    // verify: damage, not the other problems of the tree.
    assert_eq!(code(&["verify", "broken/blob-corrupt"]), 1);
    assert_eq!(code(&["verify", "broken/stray-files"]), 0);
    // scan, tags, inspect: problems (warning or error) and tags not served.
    assert_eq!(code(&["scan", "broken/stray-files", "--now", NOW]), 1, "warning: unexpected-entry");
    assert_eq!(code(&["scan", "broken/alias-link", "--now", NOW]), 0, "info only");
    assert_eq!(code(&["tags", "broken/layer-missing-data"]), 1);
    assert_eq!(code(&["inspect", "broken/layer-missing-data", "app:v1"]), 1);
    assert_eq!(code(&["scan", "broken/blob-corrupt", "--verify", "--now", NOW]), 1, "damage");
}

#[test]
fn fail_on_replaces_the_question() {
    // The old scan: a write fails it too.
    assert_eq!(code(&["scan", "trees/full", "--now", NOW, "--fail-on", "problems,writes"]), 1);
    // A severity threshold: stray-files has warnings only.
    assert_eq!(code(&["scan", "broken/stray-files", "--now", NOW, "--fail-on", "problems:error"]), 0);
    assert_eq!(code(&["scan", "broken/stray-files", "--now", NOW, "--fail-on", "Problems:Warning"]), 1);
    assert_eq!(code(&["scan", "broken/alias-link", "--now", NOW, "--fail-on", "problems:info"]), 1);
    // Repeated and comma-separated values add up.
    assert_eq!(code(&["tags", "broken/layer-missing-data", "--fail-on", "damage", "--fail-on", "none"]), 0);
    assert_eq!(code(&["scan", "trees/full", "--now", NOW, "--fail-on", "deletions"]), 1);
    assert_eq!(code(&["gc", "broken/schema1-signatures", "-m", "--fail-on", "deletions"]), 1);
    assert_eq!(code(&["gc", "trees/minimal-multi", "-m", "--fail-on", "none"]), 0);
    assert_eq!(code(&["verify", "broken/stray-files", "--fail-on", "damage,problems"]), 1);
    assert_eq!(code(&["writes", "trees/full", "--now", NOW, "--fail-on", "none"]), 0);

    // A condition a command cannot answer, or a bad severity, is misuse.
    for bad in [
        vec!["gc", "trees/full", "--fail-on", "writes"],
        vec!["scan", "trees/full", "--fail-on", "problems:fatal"],
        vec!["scan", "trees/full", "--fail-on", "writes:error"],
        vec!["du", "trees/full", "--fail-on", "problems"],
    ] {
        let mut args = bad.clone();
        let root = tree(args[1]);
        args[1] = &root;
        let run = regaudit(&args);
        assert_eq!(run.code, 2, "{bad:?}");
        assert!(run.stderr.contains("--fail-on"), "{bad:?}: {}", run.stderr);
        assert!(run.stdout.is_empty());
    }
}

#[test]
fn quiet_prints_the_verdict_or_nothing() {
    let full = tree("trees/full");
    let run = regaudit(&["scan", &full, "--now", NOW, "-q"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "regaudit scan: ok (fails on: problems,not-served,damage)\n"));
    let run = regaudit(&["scan", &full, "--now", NOW, "-q", "--fail-on", "problems:error,writes"]);
    assert_eq!((run.code, run.stdout.as_str()), (1, "regaudit scan: fail: 11 operations write\n"));
    let run = regaudit(&["tags", &tree("broken/layer-missing-data"), "--quiet"]);
    assert_eq!(run.stdout, "regaudit tags: fail: 1 problem (warning or error), 1 tag not served\n");
    let run = regaudit(&["gc", &tree("trees/minimal-multi"), "-m", "-qq"]);
    assert_eq!((run.code, run.stdout.as_str(), run.stderr.as_str()), (1, "", ""));
    // JSON too is replaced by the verdict.
    let run = regaudit(&["diff", &full, &full, "-q", "--format", "json"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "regaudit diff: ok (fails on: differences)\n"));
}

/// `regaudit scan` on the minimal tree with these environment variables.
fn scan_with_env(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_regaudit"));
    cmd.args(["scan", &tree("trees/minimal"), "--now", NOW]).args(args);
    for var in ["NO_COLOR", "CLICOLOR_FORCE", "CLICOLOR"] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("run regaudit");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn color_follows_the_flag_then_no_color_then_clicolor_force() {
    let coloured = |s: &str| s.contains("\x1b[");
    // Not a terminal: no colour unless forced.
    assert!(!coloured(&scan_with_env(&[], &[])));
    assert!(coloured(&scan_with_env(&[], &[("CLICOLOR_FORCE", "1")])));
    // NO_COLOR wins over CLICOLOR_FORCE; the flag wins over both.
    assert!(!coloured(&scan_with_env(&[], &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")])));
    assert!(coloured(&scan_with_env(&["--color", "always"], &[("NO_COLOR", "1")])));
    assert!(coloured(&scan_with_env(&["--color=ALWAYS"], &[])));
    assert!(!coloured(&scan_with_env(&["--color", "never"], &[("CLICOLOR_FORCE", "1")])));
    assert!(!coloured(&scan_with_env(&["--color", "auto"], &[])));
    // The words are the same with and without colour.
    let plain = scan_with_env(&["--color", "never"], &[]);
    let forced = scan_with_env(&["--color", "always"], &[]);
    assert_eq!(strip_ansi(&forced), plain);
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn format_values_take_any_case_and_only_the_commands_own() {
    let full = tree("trees/full");
    let run = regaudit(&["tags", &full, "--format", "JSON"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(serde_json::from_str::<serde_json::Value>(&run.stdout).is_ok());
    assert_eq!(regaudit(&["gc", &full, "--format", "Gc-Log"]).code, 1);
    let run = regaudit(&["scan", &full, "--format", "gc-log"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--format gc-log is only for `regaudit gc`"), "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

#[test]
fn each_help_shows_its_own_options_examples_and_exit_status() {
    for command in ["tags", "inspect", "verify", "scan", "export", "diff", "du", "gc", "writes", "timeline"] {
        let help = regaudit(&[command, "--help"]);
        assert_eq!(help.code, 0);
        let text = &help.stdout;
        assert!(text.contains("Examples:\n  regaudit "), "{command}: {text}");
        assert!(text.contains("Exit status:\n  0  "), "{command}: {text}");
        let formats: &[&str] = match command {
            "gc" => &["text", "json", "gc-log"],
            "verify" => &["text", "json", "dfxml", "bodyfile"],
            "timeline" => &["text", "json", "bodyfile"],
            _ => &["text", "json"],
        };
        // The possible values of --format, inline or as a list with help.
        let start = text.find("--format <FORMAT>").unwrap();
        let end = start + text[start..].find("[default: text]").unwrap();
        let section = &text[start..end + text[end..].find("\n\n").unwrap()];
        for format in ["text", "json", "gc-log", "dfxml", "bodyfile"] {
            let offered = section.contains(&format!("- {format}"))
                || section.contains(&format!(" {format},"))
                || section.contains(&format!(" {format}]"));
            assert_eq!(offered, formats.contains(&format), "{command} --help and --format {format}: {section}");
        }
        assert_eq!(text.contains("--fail-on"), command != "du", "{command}: {text}");
        // Every command shows progress on an object-store root (its cost); hashing ones also hash.
        assert!(text.contains("--no-progress"), "{command}: --no-progress on every command");
        assert!(text.contains("--color <WHEN>"), "{command}");
        // The short help stays short.
        let short = regaudit(&[command, "-h"]).stdout;
        assert!(!short.contains("Exit status:\n"), "{command}: {short}");
    }
    let gc = regaudit(&["gc", "--help"]).stdout;
    assert!(gc.contains("by default: aborts, hazards"), "{gc}");
    let top = regaudit(&["--help"]).stdout;
    assert!(top.contains("Exit status:") && top.contains("gc       aborts, hazards"), "{top}");
    // Not for completions and man.
    assert!(!regaudit(&["man", "--help"]).stdout.contains("--format"));
}

#[test]
fn gc_dry_run_is_accepted_and_says_it_changes_nothing() {
    let root = tree("trees/minimal-multi");
    let plain = regaudit(&["gc", &root]);
    let dry = regaudit(&["gc", &root, "--dry-run"]);
    assert_eq!((dry.code, &dry.stdout), (plain.code, &plain.stdout));
    assert_eq!(dry.stderr.lines().count(), 1, "{}", dry.stderr);
    assert!(dry.stderr.contains("never deletes"), "{}", dry.stderr);
}

/// Hashing stopped by Ctrl-C is an incomplete answer: exit 2 for every
/// command that hashes, whatever `--fail-on` says, after the report of what
/// was verified.
#[test]
fn interrupted_hashing_exits_2_whatever_fail_on_says() {
    let dir = common::scratch("trees/minimal");
    // A large sparse blob keeps the hasher busy for a few seconds.
    let fake = "1111111111111111111111111111111111111111111111111111111111111111";
    let blob = dir.path().join(format!("{}/blobs/sha256/11/{fake}", common::V2));
    std::fs::create_dir_all(&blob).unwrap();
    std::fs::File::create(blob.join("data")).unwrap().set_len(16 << 30).unwrap();
    let root = dir.path().to_str().unwrap();
    // Signalled once it hashes the blob: the handler is installed by then.
    let child =
        common::start_hashing(&["scan", root, "--verify", "--format", "json", "--fail-on", "none"], &blob.join("data"));
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verification"]["interrupted"], true, "{v}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
}

/// The man pages carry the same examples and exit status, as sections of
/// their own that `man` renders line by line.
#[test]
fn man_pages_carry_examples_and_exit_status() {
    for command in ["tags", "inspect", "verify", "scan", "export", "diff", "du", "gc", "writes", "timeline"] {
        let page = regaudit(&["man", command]).stdout;
        assert!(page.contains(".SH EXAMPLES\n"), "{command}: {page}");
        assert!(page.contains(".SH \"EXIT STATUS\"\n"), "{command}: {page}");
        assert!(page.contains(&format!("regaudit {command} /")), "{command}: {page}");
        if command == "gc" {
            assert!(page.contains("gc\\-log"), "{page}");
        } else {
            assert!(!page.contains("gc\\-log"), "{command}: {page}");
        }
        let Ok(rendered) = render_man(&page) else { continue };
        let example = format!("regaudit {command} /");
        // Preformatted: every example line stays a line of its own.
        assert!(rendered.lines().any(|l| l.trim_start().starts_with(&example)), "{command}: {rendered}");
        assert!(rendered.lines().any(|l| l.trim_start().starts_with("2  could not run")), "{command}: {rendered}");
    }
}

/// `man -l` output when man and groff are installed; neither is required.
fn render_man(page: &str) -> Result<String, ()> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("page.1");
    std::fs::write(&file, page).unwrap();
    let out = Command::new("man")
        .arg("-l")
        .arg(&file)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "120")
        .output()
        .map_err(|_| ())?;
    if !out.status.success() || out.stdout.is_empty() {
        return Err(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");
    // groff may hyphenate-escape and embolden; compare on the plain text.
    Ok(String::from_utf8_lossy(&out.stdout).replace(['\u{2010}', '\u{2212}'], "-"))
}
