//! Conformance of `served` and of every node's predicted GET status with the
//! real registry (Debian's 2.8.2, and the provided v3.1.1 for `--target 3`)
//! serving each testdata tree unchanged, for a client that accepts the four
//! modern manifest types.

mod common;

use common::registry::{self, Real, Registry};
use common::*;

const MODERN_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// The status the registry answers to one request, as regaudit predicts it.
fn predicted(fetch: &serde_json::Value) -> u16 {
    match fetch["status"].as_str().unwrap() {
        "ok" => 200,
        "not-found" => 404,
        _ => 500,
    }
}

fn check_node(reg: &Registry, repo: &str, node: &serde_json::Value, context: &str, mismatches: &mut Vec<String>) {
    let digest = node["digest"].as_str().unwrap();
    let (path, headers): (String, Vec<(&str, &str)>) = match node["role"].as_str().unwrap() {
        "manifest" | "child" => (format!("/v2/{repo}/manifests/{digest}"), vec![("Accept", MODERN_ACCEPT)]),
        _ => (format!("/v2/{repo}/blobs/{digest}"), vec![]),
    };
    let real = reg.request("GET", &path, &headers).status;
    let want = predicted(&node["fetch"]);
    // The API answers 400 or 404 for names and digests it refuses; both are "not found" to us.
    let same = real == want || (want == 404 && real == 400);
    if !same {
        mismatches.push(format!("{context}: GET {path}: registry {real}, predicted {want} ({})", node["fetch"]));
    }
    for c in node["children"].as_array().into_iter().flatten() {
        check_node(reg, repo, c, context, mismatches);
    }
}

#[test]
fn served_matches_the_real_registry() {
    served_matches(Real::V2_8);
}

#[test]
fn served_target_3_matches_the_real_v3() {
    served_matches(Real::V3);
}

fn served_matches(real: Real) {
    if !registry::require_real(real) {
        return;
    }
    let mut mismatches = Vec::new();
    let mut checked = 0;
    // Symlinks: the registry follows them (here to the machine's own files);
    // regaudit reports them and does not follow. Not comparable.
    for tree in all_trees().into_iter().filter(|t| t != "broken/symlink") {
        let (_keep, root) = registry::scratch_copy(&testdata(&tree));
        checked += check_tree(real, &tree, &root, &mut mismatches);
    }
    assert!(checked > 30, "only {checked} tags checked");
    assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
}

/// Serves `root` with the real registry and compares every tag and node;
/// returns how many tags were checked.
fn check_tree(real: Real, label: &str, root: &std::path::Path, mismatches: &mut Vec<String>) -> usize {
    let target = real.target();
    let root_s = root.to_str().unwrap();
    let (_, tags) = json(&["tags", root_s, "--target", target]);
    let reg = Registry::serve_real(real, root);
    let mut checked = 0;
    for t in tags["tags"].as_array().unwrap() {
        let repo = t["repository"].as_str().unwrap();
        let tag = t["tag"].as_str().unwrap();
        let context = format!("{label} {repo}:{tag} (target {target})");
        let res = reg.request("GET", &format!("/v2/{repo}/manifests/{tag}"), &[("Accept", MODERN_ACCEPT)]);
        let (_, inspect) = json(&["inspect", root_s, &format!("{repo}:{tag}"), "--target", target]);
        let mut node_mismatches = Vec::new();
        if inspect["tree"].is_object() {
            check_node(&reg, repo, &inspect["tree"], &context, &mut node_mismatches);
        } else if res.status != 200 {
            // The tag itself fails: its reason names the predicted status.
            let reasons = t["not_served"].to_string();
            let want = if reasons.contains("tag GET 500") { 500 } else { 404 };
            if res.status != want && !(want == 404 && res.status == 400) {
                node_mismatches.push(format!("{context}: tag GET {}, predicted {want} ({reasons})", res.status));
            }
        }
        let tag_ok = res.status == 200;
        let real_served = tag_ok && node_mismatches.is_empty() && all_ok(&inspect["tree"]);
        if t["served"].as_bool().unwrap() != real_served || (!tag_ok && t["served"] == true) {
            mismatches.push(format!("{context}: tag GET {}, predicted served={}", res.status, t["served"]));
        }
        mismatches.extend(node_mismatches);
        checked += 1;
    }
    checked
}

/// A directory where a link belongs (a tag's `current/link`, a layer link):
/// reading it fails, and both registries answer 500, not 404.
#[test]
fn a_directory_where_a_link_belongs_is_a_500() {
    for real in [Real::V2_8, Real::V3] {
        if !registry::require_real(real) {
            continue;
        }
        let (_keep, root) = registry::scratch_copy(&testdata("trees/minimal"));
        let repo = root.join(V2).join("repositories/app");
        std::fs::create_dir_all(repo.join("_manifests/tags/bad/current/link")).unwrap();
        let layer = repo.join("_layers/sha256/45eda0bf87a676d4b2c3c855d5566f1a4fbc3daaae0dc17523baa54afdbdf881/link");
        std::fs::remove_file(&layer).unwrap();
        std::fs::create_dir(&layer).unwrap();
        let mut mismatches = Vec::new();
        let checked = check_tree(real, "link-dirs", &root, &mut mismatches);
        assert_eq!(checked, 2, "both tags checked");
        assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
        let (_, tags) = json(&["tags", root.to_str().unwrap(), "--target", real.target()]);
        let reasons = tags["tags"].to_string();
        assert!(reasons.contains("tag GET 500") && reasons.contains("layer GET 500"), "{reasons}");
    }
}

/// Whether every node of a predicted tree is 200 (foreign layers aside).
fn all_ok(node: &serde_json::Value) -> bool {
    if node.is_null() {
        return false;
    }
    (node["foreign"] == true || node["fetch"]["status"] == "ok")
        && node["cut"].is_null()
        && node["children"].as_array().into_iter().flatten().all(all_ok)
}

/// A repository name the API routes but the storage driver refuses (a
/// domain with a port): both registries answer 500 for everything in it.
#[test]
fn a_repository_the_driver_refuses_is_a_500() {
    for real in [Real::V2_8, Real::V3] {
        if !registry::require_real(real) {
            continue;
        }
        let (_keep, root) = registry::scratch_copy(&testdata("trees/minimal"));
        let repos = root.join(V2).join("repositories");
        std::fs::create_dir(repos.join("localhost:5000")).unwrap();
        copy_tree(&repos.join("app"), &repos.join("localhost:5000/app"));
        let mut mismatches = Vec::new();
        let checked = check_tree(real, "port-in-name", &root, &mut mismatches);
        assert_eq!(checked, 2, "both repositories' tags checked");
        assert!(mismatches.is_empty(), "{} mismatches:\n{}", mismatches.len(), mismatches.join("\n"));
        let (_, tags) = json(&["tags", root.to_str().unwrap(), "--target", real.target()]);
        let port = tags["tags"].as_array().unwrap().iter().find(|t| t["repository"] == "localhost:5000/app").unwrap();
        assert_eq!(port["served"], false, "{port}");
    }
}
