//! The text layouts people read: summaries first (they fit 80x24), detail
//! grouped with a few examples, everything with `--verbose`, lines within
//! 100 columns. On the bundled tree (made by the real registry).

mod common;

use common::*;

fn full() -> String {
    testdata("trees/full").to_str().unwrap().to_owned()
}

/// The summary: the lines before the first blank one.
fn summary(text: &str) -> Vec<&str> {
    text.lines().take_while(|l| !l.is_empty()).collect()
}

#[test]
fn gc_summary_fits_a_screen_and_folds_the_same_blob_into_one_hazard() {
    let root = full();
    let run = regaudit(&["gc", &root, "-m"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let head = summary(&run.stdout);
    assert!(head.len() <= 24 && head.iter().all(|l| l.chars().count() <= 80), "{head:#?}");
    assert!(head.iter().any(|l| l.starts_with("  Would delete: 10 manifests, 25 blobs")), "{head:#?}");
    let joined = head.join(" ");
    assert!(joined.contains(" hazards: ") && joined.contains(" linked-blob-deleted"), "{head:#?}");
    assert!(head.iter().any(|l| l.starts_with("  Next: ")), "{head:#?}");
    for line in run.stdout.lines() {
        assert!(line.chars().count() <= 100, "wider than 100 columns: {line}");
    }
    // One finding per blob in text; JSON keeps both codes.
    assert!(!run.stdout.contains("layer-link-dangling"), "{}", run.stdout);
    assert!(!run.stdout.contains("still link it"), "{}", run.stdout);
    let (_, v) = json(&["gc", &root, "-m"]);
    let count = |code: &str| v["hazards"].as_array().unwrap().iter().filter(|h| h["code"] == code).count();
    let linked = count("linked-blob-deleted");
    assert!(linked > 5 && count("layer-link-dangling") >= linked);
    // A few examples without -v; every one with it.
    let examples = |text: &str| text.lines().filter(|l| l.starts_with("    blob sha256:")).count();
    assert_eq!(examples(&run.stdout), 3);
    assert!(run.stdout.contains(&format!("… {} more (-v lists all", linked - 3)), "{}", run.stdout);
    let verbose = regaudit(&["gc", &root, "-m", "--verbose"]);
    assert_eq!(examples(&verbose.stdout), linked);
    let files = v["removes"].as_array().unwrap();
    assert!(run.stdout.contains(&format!("Files removed: {} (-v lists them", files.len())));
    for f in files {
        assert!(verbose.stdout.contains(&format!("  {}\n", f.as_str().unwrap())), "{f}");
    }
}

#[test]
fn writes_puts_its_verdict_first_and_verbose_adds_the_table() {
    let root = full();
    let now = "2026-11-29T12:00:00Z";
    let run = regaudit(&["writes", &root, "--now", now]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let head = summary(&run.stdout);
    assert_eq!(head[1], "serves read-only: no", "{head:#?}");
    assert!(head[2].starts_with("11 of 20 operations write"), "{head:#?}");
    assert!(head.len() <= 24 && head.iter().all(|l| l.chars().count() <= 100), "{head:#?}");
    assert!(!run.stdout.contains("KIND  "), "the table is for -v: {}", run.stdout);
    let verbose = regaudit(&["writes", &root, "--now", now, "-v"]);
    assert!(verbose.stdout.contains("KIND                  REPOSITORY"), "{}", verbose.stdout);
    // Every operation is listed with -v; a few of each kind without.
    let (_, v) = json(&["writes", &root, "--now", now]);
    let ops = v["operations"].as_array().unwrap();
    let lines = |text: &str, op: &serde_json::Value| {
        let shown = format!("    {} {}", op["repository"].as_str().unwrap(), op["reference"].as_str().unwrap());
        text.lines().filter(|l| l.starts_with(&shown)).count()
    };
    assert!(ops.iter().all(|op| lines(&verbose.stdout, op) >= 1));
    assert!(ops.iter().any(|op| lines(&run.stdout, op) == 0));
    // Paths are whole with -v.
    assert!(verbose
        .stdout
        .contains(&format!("/sha256/{}/link", "a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4")));
}

#[test]
fn scan_puts_the_verdict_first_and_groups_problems_by_code() {
    let root = full();
    let run = regaudit(&["scan", &root, "--now", "2026-12-01T00:00:00Z"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[1], "Verdict: OK: no problems, all 16 tags served");
    // Everything up to the problems fits an 80x24 screen.
    let summary: Vec<&&str> = lines.iter().take_while(|l| !l.starts_with("No problems found.")).collect();
    assert!(summary.len() <= 24, "{summary:#?}");
    assert!(summary.iter().skip(1).all(|l| l.chars().count() <= 80), "{summary:#?}");
    assert!(run.stdout.contains("revision links     25  1 referrer (OCI subject"), "{}", run.stdout);
    let (_, v) = json(&["scan", &root]);
    assert_eq!(v["inventory"]["referrers"], 1, "oci/artifact's SBOM");

    let broken = testdata("broken/revision-link-empty");
    let run = regaudit(&["scan", broken.to_str().unwrap()]);
    assert_eq!(run.code, 1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[1], "Verdict: 2 problems (warning or error), 1 tag not served");
    assert!(lines[2].starts_with("Next: read the problems below"), "{}", run.stdout);
    assert!(run.stdout.contains("  error link-invalid (1)\n"), "{}", run.stdout);
    assert!(run.stdout.contains("  error tag-dangling (1)\n"), "{}", run.stdout);
    assert!(run.stdout.lines().all(|l| l.chars().count() <= 100), "{}", run.stdout);
}

#[test]
fn inspect_shows_referrers_under_their_subject_and_no_empty_platform() {
    let root = full();
    let run = regaudit(&["inspect", &root, "oci/artifact:base"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("\nReferrers (OCI subject): 1\n"), "{}", run.stdout);
    assert!(
        run.stdout.contains("sha256:aabe1266a5f7  sha256:b2135dee381f  application/spdx+json  - (untagged)"),
        "{}",
        run.stdout
    );
    let (_, v) = json(&["inspect", &root, "oci/artifact:base"]);
    let r = &v["referrers"][0];
    assert_eq!(r["digest"], "sha256:aabe1266a5f7c80e32968225131fa3dca32a9f10944da4c78f9aeed5ea462ccc");
    assert_eq!(r["subject"], v["digest"]);
    assert_eq!(r["artifact_type"], "application/spdx+json");
    // The artifact's empty config has no platform: no "/" in KIND.
    let artifact = regaudit(&["inspect", &root, &format!("oci/artifact@{}", r["digest"].as_str().unwrap())]);
    let config = artifact.stdout.lines().find(|l| l.starts_with("├─ config")).unwrap();
    assert!(!config.contains(" / "), "{config}");
    // A manifest nothing refers to lists no referrers.
    let (_, v) = json(&["inspect", &root, "oci/app:1.0"]);
    assert_eq!(v["referrers"], serde_json::json!([]));
}

/// Whether the real skopeo can read the image `reference` names.
fn skopeo_reads(reference: &str) -> bool {
    std::process::Command::new("skopeo")
        .args(["inspect", "--raw", reference])
        .output()
        .expect("skopeo is installed (scripts/test installs it)")
        .status
        .success()
}

#[test]
fn export_warns_when_skopeo_cannot_address_a_docker_typed_image() {
    let root = full();
    let scratch = tempfile::tempdir().unwrap();
    let dest = scratch.path().join("layout");
    let dest_text = dest.to_str().unwrap();
    let (code, one) = json(&["export", &root, "base/schema2:v1", dest_text]);
    assert_eq!(code, 0);
    assert_eq!(one["warnings"], serde_json::json!([]), "one image alone is addressable");
    assert!(skopeo_reads(&format!("oci:{dest_text}")));
    let (_, oci) = json(&["export", &root, "oci/app:1.0", dest_text]);
    let warnings = oci["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].as_str().unwrap().starts_with(&format!("{} (\"v1\")", one["digest"].as_str().unwrap())));
    let run = regaudit(&["export", &root, "base/schema2:v2", dest_text]);
    assert_eq!(run.stdout.matches("\nwarning: ").count() + usize::from(run.stdout.starts_with("warning: ")), 2);
    // What the warnings say is what the real skopeo does.
    assert!(!skopeo_reads(&format!("oci:{dest_text}")), "ambiguous without a name");
    assert!(!skopeo_reads(&format!("oci:{dest_text}:v1")), "a Docker-typed entry is not found by name");
    assert!(!skopeo_reads(&format!("oci:{dest_text}:v2")));
    assert!(skopeo_reads(&format!("oci:{dest_text}:1.0")), "an OCI-typed entry is");
}

#[test]
fn schema1_shows_platform_and_created_from_its_history() {
    let root = full();
    // The bundled legacy/s1:old was pushed as schema1 by the real tools; its
    // history[0].v1Compatibility says linux, amd64, 2024-01-02T03:04:28Z.
    let (_, v) = json(&["tags", &root, "legacy/s1"]);
    let tag = &v["tags"][0];
    assert_eq!(tag["kind"], "schema1");
    assert_eq!(tag["platforms"], serde_json::json!(["linux/amd64"]));
    assert_eq!(tag["created"], "2024-01-02T03:04:28Z");
    let run = regaudit(&["tags", &root, "legacy/s1"]);
    let row = run.stdout.lines().nth(1).unwrap();
    assert!(row.contains("linux/amd64") && row.contains("2024-01-02T03:04:28Z"), "{row}");
}

/// Snapshots of the new layouts, paths of this checkout left out.
#[test]
fn layout_snapshots() {
    let here = format!("{}/", env!("CARGO_MANIFEST_DIR"));
    let text = |args: &[&str]| regaudit(args).stdout.replace(&here, "");
    let full = full();
    let broken = testdata("broken/revision-link-empty");
    insta::assert_snapshot!("gc_full_untagged_text", text(&["gc", &full, "-m"]));
    insta::assert_snapshot!("scan_broken_revision_link_empty_text", text(&["scan", broken.to_str().unwrap()]));
    insta::assert_snapshot!(
        "writes_full_verbose_text",
        text(&["writes", &full, "--now", "2026-11-29T12:00:00Z", "--verbose"])
    );
}
