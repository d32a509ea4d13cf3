//! Shell completions and man pages come from the clap definition: check that
//! they name every subcommand, that bash accepts and uses the script, and
//! that the man pages are roff `man` can render.

mod common;

use std::process::Command;

use common::regaudit;

/// Every subcommand, as `regaudit --help` lists it.
fn subcommands() -> Vec<String> {
    let help = regaudit(&["--help"]);
    assert_eq!(help.code, 0, "{}", help.stderr);
    let section = help.stdout.split("Commands:").nth(1).expect("a Commands: section");
    let names: Vec<String> = section
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_owned)
        .collect();
    for expected in ["tags", "inspect", "verify", "scan", "export", "diff", "du", "gc", "completions", "man"] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from --help: {names:?}");
    }
    names
}

fn bash(script: &str) -> std::process::Output {
    Command::new("bash").args(["--norc", "--noprofile", "-c", script]).output().expect("run bash")
}

#[test]
fn every_shell_gets_a_script() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = regaudit(&["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        assert!(run.stdout.contains("regaudit"), "{shell}");
        for name in subcommands() {
            assert!(run.stdout.contains(&name), "{shell} completion lacks {name}");
        }
    }
    let bad = regaudit(&["completions", "tcsh"]);
    assert_eq!(bad.code, 2);
}

#[test]
fn bash_accepts_the_script_and_completes_with_it() {
    let script = regaudit(&["completions", "bash"]).stdout;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("regaudit.bash");
    std::fs::write(&path, &script).unwrap();

    let syntax = bash(&format!("bash -n {}", path.display()));
    assert!(syntax.status.success(), "bash -n: {}", String::from_utf8_lossy(&syntax.stderr));

    // What bash offers after `regaudit ` and after `regaudit gc --format `.
    let complete = |line: &str| -> Vec<String> {
        let words: Vec<&str> = line.split(' ').collect();
        let out = bash(&format!(
            "source {path}; COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE='{line}'; COMP_POINT={point}; \
             _regaudit regaudit '{cur}' '{prev}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            path = path.display(),
            words = words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" "),
            cword = words.len() - 1,
            point = line.len(),
            cur = words[words.len() - 1],
            prev = words[words.len() - 2],
        ));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
    };
    let offered = complete("regaudit ");
    for name in subcommands() {
        assert!(offered.contains(&name), "bash does not offer {name}: {offered:?}");
    }
    assert_eq!(complete("regaudit gc --format "), ["text", "json", "gc-log"]);
    assert_eq!(complete("regaudit verify --format "), ["text", "json", "jsonl", "dfxml", "bodyfile"]);
    let shells = complete("regaudit completions ");
    for shell in ["bash", "elvish", "fish", "powershell", "zsh"] {
        assert!(shells.iter().any(|s| s == shell), "bash does not offer {shell}: {shells:?}");
    }
}

#[test]
fn man_page_lists_every_subcommand_and_renders() {
    let page = regaudit(&["man"]);
    assert_eq!(page.code, 0, "{}", page.stderr);
    assert!(page.stdout.starts_with(".ie") || page.stdout.starts_with(".TH"), "{}", &page.stdout[..80]);
    assert!(page.stdout.contains(".TH regaudit 1"));
    assert!(page.stdout.contains("Exit status"), "exit codes belong in the man page");
    for name in subcommands() {
        assert!(page.stdout.contains(&format!("regaudit\\-{}(1)", name.replace('-', "\\-"))), "man lacks {name}");
        let sub = regaudit(&["man", &name]);
        assert_eq!(sub.code, 0, "man {name}: {}", sub.stderr);
        let title = sub.stdout.lines().find(|l| l.starts_with(".TH ")).unwrap_or_default().replace('\\', "");
        assert!(title.starts_with(&format!(".TH regaudit-{name} 1")), "man {name}: {title}");
    }
    assert!(regaudit(&["man", "gc"]).stdout.contains("delete\\-untagged"));
    assert_eq!(regaudit(&["man", "no-such-command"]).code, 2);

    // `man -l` renders it when man and groff are here; neither is required.
    if Command::new("man").arg("--version").output().is_ok_and(|o| o.status.success()) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("regaudit.1");
        std::fs::write(&file, &page.stdout).unwrap();
        let rendered = Command::new("man").arg("-l").arg(&file).env("MANPAGER", "cat").env("MANWIDTH", "100").output();
        match rendered {
            Ok(out) if out.status.success() && !out.stdout.is_empty() => {
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(text.contains("SYNOPSIS") && text.contains("regaudit-scan(1)"), "{text}");
                assert!(
                    !String::from_utf8_lossy(&out.stderr).contains("warning"),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            other => eprintln!("man -l could not render (no groff?), not checked: {other:?}"),
        }
    }
}

#[test]
fn man_out_dir_writes_one_page_per_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    std::fs::create_dir(&out).unwrap();
    let run = regaudit(&["man", "--out-dir", out.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut files: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    files.sort();
    let mut expected: Vec<String> = subcommands().iter().map(|n| format!("regaudit-{n}.1")).collect();
    expected.push("regaudit.1".into());
    expected.sort();
    assert_eq!(files, expected);
}
