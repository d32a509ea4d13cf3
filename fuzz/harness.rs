//! What each fuzz target does with one input: call the parser and check the
//! properties that must hold for every input. Shared with the main crate's
//! `tests/fuzz_regressions.rs`, which replays every saved crasher through
//! these same functions on stable Rust.
#![allow(dead_code)]

use regaudit::digest::parse_link;
use regaudit::gojson;
use regaudit::layout::{self, BlobPath, RepoPath};
use regaudit::manifest::{go_std_base64_valid, parse_config, parse_manifest_for};
use regaudit::model::Target;

/// A link file's bytes. What parses is exactly a digest, so it prints back
/// as the same bytes.
pub fn link(data: &[u8]) {
    if let Ok(d) = parse_link(data) {
        assert_eq!(d.to_string().as_bytes(), data, "a link parsed but does not print back as itself");
    }
}

/// Blob bytes read as a manifest (by 2.8.2's and by v3.1.1's structs) and
/// as an image config; and as a base64 `data` field.
pub fn manifest(data: &[u8]) {
    for target in [Target::V2_8, Target::V3] {
        if let Ok(m) = parse_manifest_for(data, target) {
            for d in m.references() {
                if let Some(digest) = &d.digest {
                    // A parsed reference prints back as the text it came from.
                    assert_eq!(digest.to_string(), d.digest_text());
                }
            }
        }
    }
    let _ = parse_config(data);
    if let Ok(text) = std::str::from_utf8(data) {
        // Go's StdEncoding: what decodes is whole padded quanta once CR and LF are gone.
        let kept: String = text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
        if go_std_base64_valid(text).is_ok() {
            assert_eq!(kept.len() % 4, 0, "{text:?} decodes without whole quanta");
        }
    }
}

/// Any bytes through the Go-JSON decoder. Its syntax check must agree with
/// serde_json's wherever both follow RFC 8259 alike (valid UTF-8, no `\u`
/// escapes, shallow); skipping, unquoting and time parsing never panic;
/// and for an ASCII key, Go's folding is ASCII case-insensitivity.
pub fn gojson(data: &[u8]) {
    let valid = gojson::check_valid(data).is_ok();
    let shallow = data.iter().filter(|b| matches!(b, b'[' | b'{')).count() < 100;
    if std::str::from_utf8(data).is_ok() && shallow && !data.windows(2).any(|w| w == b"\\u") {
        let serde = serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok();
        assert_eq!(valid, serde, "Go's syntax check and serde_json disagree");
    }
    if let Ok(mut d) = gojson::Decoder::new(data) {
        let _ = d.raw();
    }
    let text = String::from_utf8_lossy(data);
    let _ = gojson::parse_go_rfc3339(&text);
    let _ = gojson::unquote(data);
    let _ = gojson::unmarshal_any_map(data);
    if data.is_ascii() {
        for name in ["schemaVersion", "mediaType", "os.version", "layers", "blobSum", "v1Compatibility"] {
            assert_eq!(gojson::key_folds_to(name, &text), name.eq_ignore_ascii_case(&text), "{name} / {text:?}");
        }
    }
}

/// A path below `blobs/` or a repository directory: the first byte says
/// whether it is a directory, the rest is `/`-separated components. What
/// the classifier accepts as a registry object must be the path the layout
/// builds for that object, so the reader and the reports agree.
pub fn path(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else { return };
    let is_dir = flags & 1 == 1;
    let text = String::from_utf8_lossy(rest);
    let parts: Vec<&str> = text.split('/').collect();
    let blobs = format!("{}/blobs/{text}", layout::V2);
    match layout::classify_blob_path(&parts, is_dir) {
        BlobPath::Data { digest, misplaced: false } => assert_eq!(layout::blob_data(&digest), blobs),
        BlobPath::BlobDir { digest, misplaced: false } => assert_eq!(layout::blob_dir(&digest), blobs),
        _ => {}
    }
    let repo = "r";
    let full = format!("{}/{text}", layout::repo_dir(repo));
    match layout::classify_repo_path(&parts, is_dir) {
        RepoPath::LayerLink(d) => assert_eq!(layout::layer_link(repo, &d), full),
        RepoPath::RevisionLink(d) => assert_eq!(layout::revision_link(repo, &d), full),
        RepoPath::SignatureLink { revision, signature } => {
            assert_eq!(layout::signature_link(repo, &revision, &signature), full)
        }
        RepoPath::TagDir(tag) => assert_eq!(layout::tag_dir(repo, tag), full),
        RepoPath::TagCurrentLink(tag) => assert_eq!(layout::tag_current_link(repo, tag), full),
        RepoPath::TagIndexLink(tag, d) => assert_eq!(layout::tag_index_link(repo, tag, &d), full),
        RepoPath::UploadDir(uuid) => assert_eq!(layout::upload_dir(repo, uuid), full),
        _ => {}
    }
    for target in [regaudit::model::Target::V2_8, regaudit::model::Target::V3] {
        let _ = layout::repository_name_is_valid(&text, target);
    }
    let _ = layout::storage_path_is_valid(&text);
    let _ = layout::tag_name_is_valid(&text);
}
