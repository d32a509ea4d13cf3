//! Replays every input in `tests/fuzz_regressions/<target>/` through the
//! same checks the fuzz targets make (`fuzz/harness.rs`), on stable Rust:
//! crashers the fuzzers found, and hand-made edge cases.

#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&bytes));
        assert!(outcome.is_ok(), "{target}: {} fails again", path.display());
        n += 1;
    }
    assert!(n > 0, "no inputs in {}", dir.display());
}

#[test]
fn link_inputs() {
    replay("link", harness::link);
}

#[test]
fn manifest_inputs() {
    replay("manifest", harness::manifest);
}

#[test]
fn path_inputs() {
    replay("path", harness::path);
}

#[test]
fn gojson_inputs() {
    replay("gojson", harness::gojson);
}
