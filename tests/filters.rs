//! `--repo GLOB`, `--tag GLOB`, `--sort`, `--reverse`, `--top` and
//! `--format jsonl` on the bundled tree (made by the real registry).

mod common;

use serde_json::Value;

use common::*;

fn full() -> String {
    testdata("trees/full").to_str().unwrap().to_owned()
}

/// `(repository, tag)` of every row of `tags --format json`.
fn tag_rows(extra: &[&str]) -> Vec<(String, String)> {
    let root = full();
    let mut args = vec!["tags", root.as_str()];
    args.extend(extra);
    let (code, v) = json(&args);
    assert_eq!(code, 0, "{v}");
    v["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["repository"].as_str().unwrap().to_owned(), t["tag"].as_str().unwrap().to_owned()))
        .collect()
}

#[test]
fn repo_and_tag_globs_select_rows_and_add_to_exact_names() {
    let all = tag_rows(&[]);
    let multi = tag_rows(&["--repo", "multi/*"]);
    let expected: Vec<_> = all.iter().filter(|(r, _)| r.starts_with("multi/")).cloned().collect();
    assert!(expected.len() >= 2, "{all:?}");
    assert_eq!(multi, expected);
    // An exact name and a glob add up.
    let both = tag_rows(&["oci/app", "--repo", "multi/*"]);
    assert_eq!(both.len(), expected.len() + all.iter().filter(|(r, _)| r == "oci/app").count());
    let latest = tag_rows(&["--tag", "lat*"]);
    assert!(!latest.is_empty() && latest.iter().all(|(_, t)| t.starts_with("lat")), "{latest:?}");
    assert_eq!(latest.len(), all.iter().filter(|(_, t)| t.starts_with("lat")).count());

    let root = full();
    let none = regaudit(&["tags", &root, "--repo", "no-such-*"]);
    assert_eq!(none.code, 2);
    assert!(none.stderr.contains("no repository in this tree matches --repo no-such-*"), "{}", none.stderr);
    let bad = regaudit(&["verify", &root, "--repo", "["]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("invalid --repo glob"), "{}", bad.stderr);
    let misplaced = regaudit(&["du", &root, "--tag", "x"]);
    assert_eq!(misplaced.code, 2);
    assert!(misplaced.stderr.contains("--tag GLOB is only for"), "{}", misplaced.stderr);
}

#[test]
fn tags_sort_by_size_created_and_served() {
    let root = full();
    let (_, v) = json(&["tags", &root, "--sort", "size"]);
    let sizes: Vec<u64> = v["tags"].as_array().unwrap().iter().map(|t| t["size"].as_u64().unwrap()).collect();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
    let (_, v) = json(&["tags", &root, "--sort", "SIZE", "--reverse"]);
    let reversed: Vec<u64> = v["tags"].as_array().unwrap().iter().map(|t| t["size"].as_u64().unwrap()).collect();
    assert!(reversed.windows(2).all(|w| w[0] <= w[1]), "{reversed:?}");
    let (_, v) = json(&["tags", &root, "--sort", "created"]);
    let created: Vec<Option<&str>> = v["tags"].as_array().unwrap().iter().map(|t| t["created"].as_str()).collect();
    let known: Vec<&str> = created.iter().map_while(|c| *c).collect();
    assert!(known.windows(2).all(|w| w[0] >= w[1]), "newest first: {created:?}");
    assert!(created[known.len()..].iter().all(Option::is_none), "without a date last: {created:?}");
}

#[test]
fn du_sort_reverse_top_keeps_the_total() {
    let root = full();
    let (_, whole) = json(&["du", &root]);
    let (_, top) = json(&["du", &root, "--sort", "unique", "--top", "2"]);
    let (_, bottom) = json(&["du", &root, "--sort", "unique", "--reverse", "--top", "2"]);
    let unique = |v: &Value| -> Vec<u64> {
        v["repositories"].as_array().unwrap().iter().map(|r| r["unique_bytes"].as_u64().unwrap()).collect()
    };
    let mut all = unique(&whole);
    all.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(unique(&top), all[..2]);
    let mut last: Vec<u64> = all[all.len() - 2..].to_vec();
    last.reverse();
    assert_eq!(unique(&bottom), last);
    assert_eq!(top["total"], whole["total"]);
    assert_eq!(top["omitted"], all.len() - 2);
    assert_eq!(whole["omitted"], 0);
    let text = regaudit(&["du", &root, "--top", "1"]);
    assert!(text.stdout.contains("TOTAL (all)"), "{}", text.stdout);
    assert!(text.stdout.contains(&format!("{} repositories not shown", all.len() - 1)), "{}", text.stdout);
}

/// Each line stands alone with `schema_version` and `type` first; the rows
/// are the elements of the JSON document.
fn jsonl(args: &[&str]) -> Vec<serde_json::Map<String, Value>> {
    let mut all = args.to_vec();
    all.extend(["--format", "jsonl"]);
    let run = regaudit(&all);
    run.stdout
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            let mut o = v.as_object().unwrap().clone();
            let keys: Vec<&String> = o.keys().take(2).collect();
            assert_eq!(keys, ["schema_version", "type"], "{line}");
            assert_eq!(o["schema_version"], 1);
            o.shift_remove("schema_version");
            o
        })
        .collect()
}

fn of_type(lines: &[serde_json::Map<String, Value>], kind: &str) -> Vec<Value> {
    lines
        .iter()
        .filter(|o| o["type"] == kind)
        .map(|o| {
            let mut o = o.clone();
            o.shift_remove("type");
            Value::Object(o)
        })
        .collect()
}

#[test]
fn jsonl_rows_are_the_documents_elements() {
    let root = full();
    let lines = jsonl(&["tags", &root]);
    let (_, doc) = json(&["tags", &root]);
    assert_eq!(of_type(&lines, "tag"), *doc["tags"].as_array().unwrap());
    let lines = jsonl(&["du", &root]);
    let (_, doc) = json(&["du", &root]);
    assert_eq!(of_type(&lines, "repository"), *doc["repositories"].as_array().unwrap());
    assert_eq!(of_type(&lines, "total"), [doc["total"].clone()]);
    let lines = jsonl(&["verify", &root, "--repo", "oci/*"]);
    let summary = of_type(&lines, "summary");
    assert_eq!(summary.len(), 1);
    assert!(summary[0]["blobs_checked"].as_u64().unwrap() > 0);
    assert_eq!(summary[0]["repositories"], serde_json::json!(["oci/app", "oci/artifact"]));
    let lines = jsonl(&["timeline", &root, "--tag", "latest"]);
    let events = of_type(&lines, "event");
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e["tag"] == "latest"), "{events:?}");
    let current = of_type(&lines, "current-tag");
    assert!(!current.is_empty() && current.iter().all(|t| t["tag"] == "latest"));
}
