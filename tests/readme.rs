//! The README's examples are real: every ```console block that starts with
//! `$ regaudit ARGS` is run on testdata and must print what the block shows
//! (absolute paths shortened to `testdata/…`; a line ending in `…` was cut
//! and matches any line it begins). `scripts/update-readme-examples` rewrites
//! them from the current output.

mod common;

use std::path::Path;

#[test]
fn readme_examples_are_real_output() {
    let manifest_dir = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(Path::new(manifest_dir).join("README.md")).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let mut checked = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if line != "```console" {
            continue;
        }
        let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
        let Some(command) = block.first().and_then(|l| l.strip_prefix("$ regaudit ")) else { continue };
        let shown: Vec<&str> = block[1..].to_vec();

        // Repository paths become absolute; export writes to a fresh scratch DEST.
        let words: Vec<&str> = command.split_whitespace().collect();
        let mut args: Vec<String> = words
            .iter()
            .map(|w| if w.starts_with("testdata/") { format!("{manifest_dir}/{w}") } else { (*w).to_owned() })
            .collect();
        let mut shown_dest = None;
        if words[0] == "export" {
            let dest = scratch.path().join(format!("export-{}", checked.len()));
            shown_dest = Some((words[3], dest.to_str().unwrap().to_owned()));
            args[3] = dest.to_str().unwrap().to_owned();
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = common::regaudit(&argv);
        assert_ne!(run.code, 2, "{command}: {}", run.stderr);
        let mut stdout = run.stdout.replace(&format!("{manifest_dir}/"), "");
        if let Some((shown, real)) = shown_dest {
            stdout = stdout.replace(&real, shown);
        }
        let actual: Vec<&str> = stdout.lines().map(str::trim_end).collect();
        let same = actual.len() == shown.len()
            && actual.iter().zip(&shown).all(|(a, s)| match s.strip_suffix('…') {
                Some(prefix) => a.starts_with(prefix),
                None => a == s,
            });
        assert!(same, "README example `regaudit {command}` is out of date; it prints:\n{stdout}");
        checked.push(words[0].to_owned());
    }
    for command in ["scan", "tags", "inspect", "verify", "export", "diff", "du", "gc"] {
        assert!(checked.iter().any(|c| c == command), "the README has no example of {command}");
    }
}
