//! docs/json.md is the contract of the JSON output. Each command's document
//! is listed there in a ```json-doc COMMAND``` block, one field path a line
//! (`PATH TYPES DESCRIPTION`; `a.b`, `a[]` for elements, `a.*` for the
//! values of a map, a trailing `?` when the field may be absent; TYPES are
//! `|`-joined JSON types or the NAME of a ```json-type NAME``` block).
//!
//! This test runs every command on every testdata tree and checks, for each
//! real document: every field is documented, with a documented type, and
//! every documented non-optional field is there. And every documented path
//! shows up in some real output, except the few listed in NOT_EXERCISED.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use common::{regaudit, testdata};

const PRIMITIVES: [&str; 8] = ["string", "integer", "number", "bool", "null", "object", "array", "map"];

/// Documented paths that no testdata output reaches (the test asserts they
/// are indeed not reached, so this list cannot go stale silently).
const NOT_EXERCISED: &[(&str, &str)] = &[
    ("diff", "tag_history.added[]"),
    ("diff", "tag_history.removed[]"),
    ("writes", "proxy.error"),
    // Needs an abort and a symlink or read fault together (tests/read_faults.rs makes those).
    ("gc", "would_delete_when_fixed.unmodelled[]"),
    // No testdata tree tags a referrer (tests/text_layout.rs checks the untagged one).
    ("inspect", "referrers[].tags[]"),
    // json_docs exports each image to a DEST of its own (tests/text_layout.rs checks warnings).
    ("export", "warnings[]"),
    ("node", "cut"),
    ("node", "foreign"),
    // A child manifest named twice in one tree: tests/hostile.rs makes those.
    ("node", "repeated"),
    // Only when Ctrl-C stops --verify: tests/verify.rs checks them.
    ("tags", "interrupted"),
    ("inspect", "interrupted"),
    // Object-store roots only: tests/s3_cli.rs checks them.
    ("provenance", "roots[].object_store"),
    ("provenance", "roots[].object_store.requests"),
    ("provenance", "roots[].object_store.requests.list"),
    ("provenance", "roots[].object_store.requests.get"),
    ("provenance", "roots[].object_store.requests.head"),
    ("provenance", "roots[].object_store.requests.total"),
    ("provenance", "roots[].object_store.bytes_read"),
    ("provenance", "roots[].object_store.objects_listed"),
    ("provenance", "roots[].object_store.listing_started"),
    ("provenance", "roots[].object_store.listing_finished"),
];

struct Field {
    types: Vec<String>,
    optional: bool,
}

/// A block: its field paths (relative to the document or the named type).
type Scope = BTreeMap<String, Field>;

struct Doc {
    commands: BTreeMap<String, Scope>,
    types: BTreeMap<String, Scope>,
}

fn parse_doc(text: &str) -> Doc {
    let mut doc = Doc { commands: BTreeMap::new(), types: BTreeMap::new() };
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```") else { continue };
        let (kind, name) = match info.split_whitespace().collect::<Vec<_>>()[..] {
            ["json-doc", name] => ("doc", name),
            ["json-type", name] => ("type", name),
            _ => continue,
        };
        let mut scope = Scope::new();
        for line in lines.by_ref() {
            if line.starts_with("```") {
                break;
            }
            let mut words = line.split_whitespace();
            let (Some(path), Some(types)) = (words.next(), words.next()) else {
                assert!(line.trim().is_empty(), "{name}: a field line needs PATH TYPES: {line:?}");
                continue;
            };
            assert!(words.next().is_some(), "{name}: {path} has no description");
            let (path, optional) = match path.strip_suffix('?') {
                Some(p) => (p, true),
                None => (path, false),
            };
            let types = types.split('|').map(str::to_owned).collect();
            assert!(scope.insert(path.to_owned(), Field { types, optional }).is_none(), "{name}: {path} twice");
        }
        let map = if kind == "doc" { &mut doc.commands } else { &mut doc.types };
        assert!(map.insert(name.to_owned(), scope).is_none(), "block {name} twice");
    }
    for (name, scope) in doc.commands.iter().chain(&doc.types) {
        for (path, field) in scope {
            for t in &field.types {
                assert!(
                    PRIMITIVES.contains(&t.as_str()) || doc.types.contains_key(t),
                    "{name}.{path}: unknown type {t}"
                );
            }
        }
    }
    doc
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

struct Checker<'a> {
    doc: &'a Doc,
    /// (scope name, path) seen in real output.
    seen: BTreeSet<(String, String)>,
    errors: Vec<String>,
}

impl Checker<'_> {
    /// Checks `v`, found at `path` of block `scope`, against the doc.
    fn check(&mut self, scope_name: &str, scope: &Scope, path: &str, v: &Value, at: &str) {
        self.seen.insert((scope_name.to_owned(), path.to_owned()));
        let Some(field) = scope.get(path) else {
            self.errors.push(format!("{at}: `{scope_name}` does not document {path}"));
            return;
        };
        let actual = json_type(v);
        if field.types.iter().any(|t| t == actual) {
            match v {
                Value::Object(_) => self.check_object(scope_name, scope, path, v, at),
                Value::Array(items) => {
                    for item in items {
                        self.check(scope_name, scope, &format!("{path}[]"), item, at);
                    }
                }
                _ => {}
            }
            return;
        }
        if let (Value::Object(o), true) = (v, field.types.iter().any(|t| t == "map")) {
            for item in o.values() {
                self.check(scope_name, scope, &format!("{path}.*"), item, at);
            }
            return;
        }
        if let (Value::Object(_), Some(name)) = (v, field.types.iter().find(|t| self.doc.types.contains_key(*t))) {
            let doc = self.doc;
            self.check_object(name, &doc.types[name], "", v, at);
            return;
        }
        self.errors.push(format!("{at}: `{scope_name}` {path} is {actual}, documented {}", field.types.join("|")));
    }

    fn check_object(&mut self, scope_name: &str, scope: &Scope, path: &str, v: &Value, at: &str) {
        let Value::Object(o) = v else { return };
        for (key, item) in o {
            self.check(scope_name, scope, &join(path, key), item, at);
        }
        // Documented fields of this object (its direct children) must be there.
        let prefix = if path.is_empty() { String::new() } else { format!("{path}.") };
        for (p, field) in scope {
            let Some(key) = p.strip_prefix(&prefix) else { continue };
            if !key.contains(['.', '[']) && key != "*" && !field.optional && !o.contains_key(key) {
                self.errors.push(format!("{at}: `{scope_name}` {p} is documented as always present but missing"));
            }
        }
    }
}

/// Runs `args --format json`; None when the command could not run (exit 2).
fn json(args: &[String]) -> Option<Value> {
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend(["--format", "json"]);
    let run = regaudit(&all);
    if run.code == 2 {
        // An incomplete prediction (issue 12) still prints its report.
        return serde_json::from_str(&run.stdout).ok();
    }
    Some(serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{all:?}: {e}\n{}", run.stdout)))
}

fn trees() -> Vec<String> {
    common::all_trees().iter().map(|t| testdata(t).to_str().unwrap().to_owned()).collect()
}

/// `repository@digest` of every revision link in a tree (untagged ones too).
fn revisions(root: &Path) -> Vec<String> {
    let repos = root.join(common::V2).join("repositories");
    let mut out = Vec::new();
    // Repositories are the directories holding `_manifests` (symlinks followed, as the registry
    // does); other `_` directories are not entered.
    let walk = walkdir::WalkDir::new(&repos).follow_links(true).sort_by_file_name().into_iter().filter_entry(|e| {
        let name = e.file_name().to_string_lossy();
        e.file_type().is_dir() && (!name.starts_with('_') || name == "_manifests")
    });
    for entry in walk.flatten().filter(|e| e.file_name() == "_manifests") {
        let repo = entry.path().parent().unwrap().strip_prefix(&repos).unwrap().to_string_lossy().into_owned();
        let Ok(revs) = std::fs::read_dir(entry.path().join("revisions/sha256")) else { continue };
        for rev in revs {
            out.push(format!("{repo}@sha256:{}", rev.unwrap().file_name().to_string_lossy()));
        }
    }
    out
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_owned()).collect()
}

/// Every command with a JSON document, in its modes: all of them on the
/// trees the real registry wrote, the main ones on each broken variant.
fn runs(scratch: &Path) -> Vec<(String, Vec<String>)> {
    let mut runs = Vec::new();
    let full = testdata("trees/full").to_str().unwrap().to_owned();
    let minimal = testdata("trees/minimal").to_str().unwrap().to_owned();
    for (i, t) in trees().iter().enumerate() {
        let t = t.as_str();
        let whole = t.contains("/trees/");
        let mut run = |command: &str, args: &[&str]| runs.push((command.to_owned(), s(args)));
        run("scan", &["scan", t, "--verify"]);
        run("tags", &["tags", t, "--verify"]);
        run("verify", &["verify", t]);
        run("du", &["du", t]);
        run("writes", &["writes", t, "--now", "2030-01-01T00:00:00Z"]);
        run("writes", &["writes", t, "--target", "3"]);
        run("gc", &["gc", t, "-m"]);
        run("gc", &["gc", t, "--target", "3"]);
        run("diff", &["diff", &minimal, t]);
        run("timeline", &["timeline", t]);
        if whole {
            run("diff", &["diff", &full, t]);
            run("scan", &["scan", t]);
            run("tags", &["tags", t]);
            run("gc", &["gc", t]);
            run("gc", &["gc", t, "-m", "--target", "3"]);
            run("diff", &["diff", t, &minimal, "--no-content"]);
            run("timeline", &["timeline", t, "--repo", "*/*", "--since", "2000-01-01", "--until", "2100-01-01"]);
            run("timeline", &["timeline", t, "--tag", "*"]);
            run("du", &["du", t, "--top", "1"]);
            for reference in revisions(Path::new(t)) {
                run("inspect", &["inspect", t, &reference]);
            }
        }
        let Some(tags) = json(&s(&["tags", t])) else { continue };
        for (j, tag) in tags["tags"].as_array().unwrap().iter().enumerate() {
            let repo = tag["repository"].as_str().unwrap();
            let by_tag = format!("{repo}:{}", tag["tag"].as_str().unwrap());
            run("inspect", &["inspect", t, &by_tag, "--verify"]);
            if whole || j == 0 {
                let dest = scratch.join(format!("export-{i}-{j}"));
                run("export", &["export", t, &by_tag, dest.to_str().unwrap(), "--allow-partial"]);
            }
            if j == 0 {
                run("verify", &["verify", t, repo]);
            }
        }
    }
    runs
}

#[test]
fn json_output_matches_docs_json_md() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/json.md")).unwrap();
    let doc = parse_doc(&text);

    // Every command (but completions and man, which print no JSON) has a block.
    let help = regaudit(&["--help"]).stdout;
    let section = help.split("Commands:").nth(1).unwrap();
    let commands: BTreeSet<String> = section
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| !["help", "completions", "man"].contains(n))
        .map(str::to_owned)
        .collect();
    assert_eq!(commands, doc.commands.keys().cloned().collect(), "commands vs json-doc blocks in docs/json.md");

    let scratch = tempfile::tempdir().unwrap();
    let mut checker = Checker { doc: &doc, seen: BTreeSet::new(), errors: Vec::new() };
    let mut documents: BTreeMap<String, usize> = BTreeMap::new();
    let runs = runs(scratch.path());
    // Four at a time: each run is a short process, mostly start-up.
    let outputs: Vec<Option<Value>> = std::thread::scope(|scope| {
        let chunks: Vec<_> = runs.chunks(runs.len().div_ceil(4)).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| scope.spawn(move || chunk.iter().map(|(_, args)| json(args)).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    for ((command, args), v) in runs.iter().zip(outputs) {
        let Some(mut v) = v else { continue };
        *documents.entry(command.clone()).or_default() += 1;
        assert_eq!(v["schema_version"], 1, "{args:?}");
        let at = args.join(" ");
        // Every document starts with the provenance header, documented once.
        let header = v.as_object_mut().and_then(|o| o.shift_remove("provenance"));
        match header {
            Some(p) => checker.check_object("provenance", &doc.types["provenance"], "", &p, &at),
            None => checker.errors.push(format!("{at}: no provenance header")),
        }
        checker.check_object(command, &doc.commands[command], "", &v, &at);
    }
    for command in &commands {
        assert!(documents.get(command).is_some_and(|n| *n > 0), "no JSON document of {command} was checked");
    }
    let mut errors = checker.errors.clone();
    errors.sort();
    errors.dedup();
    assert!(errors.is_empty(), "docs/json.md does not match the output:\n{}", errors.join("\n"));

    // Documented paths no real output reached: exactly NOT_EXERCISED.
    let mut unseen = BTreeSet::new();
    for (name, scope) in doc.commands.iter().chain(&doc.types) {
        for path in scope.keys() {
            if !checker.seen.contains(&(name.clone(), path.clone())) {
                unseen.insert((name.clone(), path.clone()));
            }
        }
    }
    let expected: BTreeSet<(String, String)> =
        NOT_EXERCISED.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect();
    assert_eq!(unseen, expected, "documented but never seen in real output (typo, or update NOT_EXERCISED)");
}
