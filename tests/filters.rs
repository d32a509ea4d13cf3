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

// `--repo` on the commands that analyse the whole tree (scan, diff, gc,
// writes): an output filter, with the whole run's totals kept and the exit
// status following what is shown.

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
}

fn in_multi(name: &str) -> bool {
    name.starts_with("multi/")
}

#[test]
fn gc_repo_filter_shows_the_selected_part_of_the_whole_run() {
    let root = full();
    let (whole_code, whole) = json(&["gc", &root, "-m"]);
    let (code, part) = json(&["gc", &root, "-m", "--repo", "multi/*"]);
    assert_eq!((whole_code, code), (1, 1), "hazards in both");
    assert_eq!(whole["filter"], Value::Null);

    // The prediction is the whole run's, whatever is shown.
    for key in ["marked", "eligible_blobs", "eligible_manifests", "repositories", "aborts", "incomplete"] {
        assert_eq!(part[key], whole[key], "{key}");
    }
    let f = &part["filter"];
    assert_eq!(strings(&f["repo_globs"]), ["multi/*"]);
    let selected = strings(&f["repositories"]);
    assert!(selected.len() >= 3 && selected.iter().all(|r| in_multi(r)), "{selected:?}");
    let w = &f["whole_run"];
    let len = |v: &Value, k: &str| v[k].as_array().unwrap().len();
    assert_eq!(w["manifests"], len(&whole, "manifests"));
    assert_eq!(w["blobs"], len(&whole, "blobs"));
    assert_eq!(w["files"], len(&whole, "removes"));
    assert_eq!(w["hazards"], len(&whole, "hazards"));
    assert_eq!(w["reclaimable_bytes"], whole["reclaimable_bytes"]);

    // Manifests, links and hazards naming a repository: exactly the selected ones'.
    let of_multi = |v: &Value, list: &str| -> Vec<Value> {
        v[list].as_array().unwrap().iter().filter(|m| m["repository"].as_str().is_some_and(in_multi)).cloned().collect()
    };
    assert!(!of_multi(&whole, "manifests").is_empty());
    assert_eq!(*part["manifests"].as_array().unwrap(), of_multi(&whole, "manifests"));
    assert_eq!(*part["layer_links"].as_array().unwrap(), of_multi(&whole, "layer_links"));
    let named: Vec<&Value> =
        part["hazards"].as_array().unwrap().iter().filter(|h| h["repository"].is_string()).collect();
    assert_eq!(named.len(), of_multi(&whole, "hazards").len());
    assert!(len(&part, "hazards") < len(&whole, "hazards"), "another repository's hazards are left out");

    // Blobs: a subset of the run's; each deleted manifest of a selected
    // repository is a deleted blob shown; a blob still linked by one is shown.
    let blobs = |v: &Value| -> Vec<Value> { v["blobs"].as_array().unwrap().clone() };
    let (shown, all) = (blobs(&part), blobs(&whole));
    assert!(!shown.is_empty() && shown.len() < all.len(), "{} of {}", shown.len(), all.len());
    assert!(shown.iter().all(|b| all.contains(b)));
    let shown_digests: Vec<&str> = shown.iter().map(|b| b["digest"].as_str().unwrap()).collect();
    let all_digests: Vec<&str> = all.iter().map(|b| b["digest"].as_str().unwrap()).collect();
    for m in part["manifests"].as_array().unwrap() {
        let d = m["digest"].as_str().unwrap();
        assert!(!all_digests.contains(&d) || shown_digests.contains(&d), "manifest blob {d} not shown");
    }
    for b in &all {
        if strings(&b["linked_by"]).iter().any(|r| in_multi(r)) {
            assert!(shown.contains(b), "{b}");
        }
    }
    let bytes: u64 = shown.iter().map(|b| b["size"].as_u64().unwrap()).sum();
    assert_eq!(part["reclaimable_bytes"], bytes);

    // Files: those of the selected repositories and of the blobs shown.
    let removes = strings(&part["removes"]);
    let all_removes = strings(&whole["removes"]);
    assert!(removes.iter().all(|p| all_removes.contains(p)));
    for p in &all_removes {
        let in_repo = selected.iter().any(|r| p.starts_with(&format!("{}/repositories/{r}/_", common::V2)));
        let of_blob = shown_digests.iter().any(|d| p.contains(&format!("/{}/", &d["sha256:".len()..])));
        assert_eq!(removes.contains(p), in_repo || of_blob, "{p}");
    }

    // Text says it is filtered, and by what, with the whole run's counts.
    let text = regaudit(&["gc", &root, "-m", "--repo", "multi/*"]);
    assert!(text.stdout.contains("Filtered by --repo multi/*"), "{}", text.stdout);
    let words = text.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains(&format!("modelled whole: {} manifests", w["manifests"])), "{}", text.stdout);
}

#[test]
fn exit_status_follows_what_the_filter_shows() {
    let root = full();
    // gc: deleted/app holds the default run's hazards.
    assert_eq!(regaudit(&["gc", &root, "-q"]).code, 1);
    assert_eq!(regaudit(&["gc", &root, "-q", "--repo", "deleted/*"]).code, 1);
    let base = regaudit(&["gc", &root, "--repo", "base/*"]);
    assert_eq!(base.code, 0, "{}", base.stdout);
    assert!(base.stdout.contains("No hazards."), "{}", base.stdout);
    // --fail-on deletions: what the selected repositories lose.
    let (_, v) = json(&["gc", &root, "--repo", "base/*"]);
    let fails = if v["removes"].as_array().unwrap().is_empty() { 0 } else { 1 };
    assert_eq!(regaudit(&["gc", &root, "-q", "--repo", "base/*", "--fail-on", "deletions"]).code, fails);
    assert_eq!(regaudit(&["gc", &root, "-q", "--repo", "deleted/*", "--fail-on", "deletions"]).code, 1);

    // writes: uploads/pending writes, oci/* does not.
    let now = "--now=2026-12-01T00:00:00Z";
    assert_eq!(regaudit(&["writes", &root, now, "-q"]).code, 1);
    assert_eq!(regaudit(&["writes", &root, now, "-q", "--repo", "uploads/*"]).code, 1);
    let oci = regaudit(&["writes", &root, now, "--repo", "oci/*"]);
    assert_eq!(oci.code, 0, "{}", oci.stdout);
    assert!(oci.stdout.contains("serves read-only (the selected repositories): yes"), "{}", oci.stdout);

    // gc-log is the real run's whole stdout: no filter.
    let log = regaudit(&["gc", &root, "--format", "gc-log", "--repo", "base/*"]);
    assert_eq!(log.code, 2);
    assert!(log.stderr.contains("--repo does not apply"), "{}", log.stderr);
    for command in ["scan", "gc", "writes"] {
        let none = regaudit(&[command, &root, "--repo", "no-such-*"]);
        assert_eq!(none.code, 2, "{command}");
        assert!(none.stderr.contains("no repository in this tree matches --repo no-such-*"), "{}", none.stderr);
    }
}

#[test]
fn writes_repo_filter_keeps_the_whole_summary_and_paths_fit() {
    let root = full();
    let now = "--now=2026-12-01T00:00:00Z";
    let (_, whole) = json(&["writes", &root, now]);
    let (_, part) = json(&["writes", &root, now, "--repo", "uploads/*", "--repo", "base/*"]);
    let keep = |r: &str| r.starts_with("uploads/") || r.starts_with("base/");
    let expected: Vec<Value> = whole["operations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| keep(o["repository"].as_str().unwrap()))
        .cloned()
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(*part["operations"].as_array().unwrap(), expected);
    assert_eq!(part["filter"]["whole_run"], whole["summary"]);
    assert_eq!(strings(&part["filter"]["repo_globs"]), ["uploads/*", "base/*"]);
    let writing = expected.iter().filter(|o| !o["writes"].as_array().unwrap().is_empty()).count();
    assert_eq!(part["summary"]["writing_operations"], writing);
    assert_eq!(part["summary"]["operations"], expected.len());

    // Every text line fits 100 columns, --verbose (whole paths) too.
    for verbose in [false, true] {
        let mut args = vec!["writes", root.as_str(), now];
        if verbose {
            args.push("-v");
        }
        let text = regaudit(&args).stdout;
        let long: Vec<&str> = text.lines().filter(|l| unicode_width::UnicodeWidthStr::width(*l) > 100).collect();
        assert!(long.is_empty(), "{long:#?}");
        assert!(text.contains("modify  _uploads/"), "{text}");
    }
}

/// A copy of the full tree whose `multi/oci-index:latest` tag link is garbage.
fn tree_with_a_bad_tag() -> tempfile::TempDir {
    let dir = common::scratch("trees/full");
    let link = dir.path().join(common::V2).join("repositories/multi/oci-index/_manifests/tags/latest/current/link");
    std::fs::write(link, "not a digest").unwrap();
    dir
}

#[test]
fn scan_repo_filter_shows_the_problems_and_tags_of_the_selected_repositories() {
    let dir = tree_with_a_bad_tag();
    let root = dir.path().to_str().unwrap();
    let (code, whole) = json(&["scan", root]);
    assert_eq!(code, 1, "{whole}");
    let (code, multi) = json(&["scan", root, "--repo", "multi/*"]);
    assert_eq!(code, 1, "{multi}");
    let (code, base) = json(&["scan", root, "--repo", "base/*"]);
    assert_eq!(code, 0, "{base}");

    let problems = |v: &Value| v["problems"].as_array().unwrap().len();
    assert!(problems(&whole) > 0);
    assert_eq!(problems(&multi), problems(&whole), "the bad link is in multi/oci-index");
    assert_eq!(problems(&base), 0);
    assert_eq!(base["filter"]["problems_not_shown"], problems(&whole));
    assert_eq!(multi["filter"]["problems_not_shown"], 0);
    // Tags: as `tags --repo` counts them; the inventory stays the whole tree's.
    let count = |glob: &str| {
        let (_, v) = json(&["tags", root, "--repo", glob]);
        v["tags"].as_array().unwrap().len()
    };
    assert_eq!(base["tags"]["total"], count("base/*"));
    assert_eq!(multi["tags"]["total"], count("multi/*"));
    assert!(multi["tags"]["not_served"].as_u64().unwrap() >= 1);
    assert_eq!(base["inventory"], whole["inventory"]);
    // gc and writes in scan: as the commands filtered alike.
    let (_, gc) = json(&["gc", root, "--repo", "base/*"]);
    assert_eq!(base["gc"][0]["files"], gc["removes"].as_array().unwrap().len());
    assert_eq!(base["gc"][0]["hazards"], gc["hazards"].as_array().unwrap().len());
    let (_, writes) = json(&["writes", root, "--repo", "base/*"]);
    assert_eq!(base["writes"]["operations"], writes["summary"]["operations"]);
    let text = regaudit(&["scan", root, "--repo", "base/*"]).stdout;
    assert!(text.contains("Filtered by --repo base/*"), "{text}");
}

#[test]
fn diff_repo_filter_answers_for_the_selected_repositories() {
    let dir = tree_with_a_bad_tag();
    let root = dir.path().to_str().unwrap();
    let full = full();
    assert_eq!(regaudit(&["diff", &full, root, "-q"]).code, 1);
    let (code, base) = json(&["diff", &full, root, "--repo", "base/*"]);
    assert_eq!(code, 0, "{base}");
    assert_eq!(base["identical"], true);
    assert_eq!(base["filter"]["whole_trees_identical"], false);
    let (code, multi) = json(&["diff", &full, root, "--repo", "multi/oci-index"]);
    assert_eq!(code, 1, "{multi}");
    let moved = multi["tags"]["moved"].as_array().unwrap();
    assert_eq!(moved.len(), 1, "{multi}");
    assert_eq!(moved[0]["repository"], "multi/oci-index");
    let text = regaudit(&["diff", &full, root, "--repo", "base/*"]).stdout;
    assert!(text.contains("No differences in the selected repositories"), "{text}");
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("the whole trees are different"), "{text}");
}

/// Against the real `garbage-collect` (2.8.2 and v3.1.1) on a copy of the
/// full tree: with `--repo`, every file the real run removes in a selected
/// repository's directory is shown, every file shown is one it removes, and
/// the whole run's count is the real one.
#[test]
fn gc_filter_hides_nothing_the_real_run_removes_in_the_selected_repositories() {
    use common::registry::{self, Changes, Real};
    for real in [Real::V2_8, Real::V3] {
        if !registry::require_real(real) {
            continue;
        }
        for delete_untagged in [false, true] {
            let (_dir, root) = registry::scratch_copy(&testdata("trees/full"));
            let root_s = root.to_str().unwrap();
            let mut args = vec!["gc", root_s, "--target", real.target(), "--repo", "multi/*", "--repo", "deleted/*"];
            if delete_untagged {
                args.push("-m");
            }
            let (_, part) = json(&args);
            let before = registry::snapshot(&root);
            let run = registry::garbage_collect_real(real, &root, false, delete_untagged);
            // v3 aborts on the schema1 manifest: the abort is shown whatever the filter.
            let stderr = String::from_utf8_lossy(&run.stderr);
            assert_eq!(run.status.success(), part["aborts"].is_null(), "{stderr}");
            let after = registry::snapshot(&root);
            let removed = Changes::between(&before, &after).files(&after, &before).removed;
            let label = format!("{} -m={delete_untagged}", real.target());
            assert_eq!(part["filter"]["whole_run"]["files"], removed.len(), "{label}");
            let shown = strings(&part["removes"]);
            assert!(shown.iter().all(|p| removed.contains(p)), "{label}: {shown:?}");
            let selected = strings(&part["filter"]["repositories"]);
            for p in &removed {
                if selected.iter().any(|r| p.starts_with(&format!("{}/repositories/{r}/_", common::V2))) {
                    assert!(shown.contains(p), "{label}: {p} removed but not shown");
                }
            }
            // Each blob shown as deleted: its data is gone in the real run.
            for b in part["blobs"].as_array().unwrap() {
                let hex = &b["digest"].as_str().unwrap()["sha256:".len()..];
                let data = format!("{}/blobs/sha256/{}/{hex}/data", common::V2, &hex[..2]);
                assert!(removed.contains(&data), "{label}: {data}");
            }
            if delete_untagged && run.status.success() {
                assert!(!shown.is_empty(), "{label}");
            }
        }
    }
}
