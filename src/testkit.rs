//! Test-only: builds what the tree reader hands the models ([`Inventory`],
//! decoded [`Contents`], the registry-walk [`WalkFacts`]) in memory, as the
//! reader would from a tree holding the same files, so the models of serve,
//! writes, gc, resolution and checks can be tested per target without a
//! tree on disk or the binary. The conformance tests (tests/*_conformance.rs)
//! hold the models to the real registry; these hold single rules in place.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::contents::Contents;
use crate::digest::{parse_link, Algorithm, Digest};
use crate::inventory::{
    Blob, EntryKind, FaultOp, Inventory, LinkMap, ReadFault, Repository, Tag, Upload, WalkEntry, WalkFacts,
};
use crate::manifest::{parse_config, parse_manifest_for};
use crate::model::Target;

pub const SCHEMA2: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The sha256 digest of `bytes`.
pub fn sha256(bytes: &[u8]) -> Digest {
    Digest::from_raw(Algorithm::Sha256, &Sha256::digest(bytes))
}

/// What the builder hands the models.
pub struct Built {
    pub inv: Inventory,
    pub contents: Contents,
    pub walk: WalkFacts,
}

impl Built {
    pub fn repo(&self, name: &str) -> &Repository {
        self.inv.repository(name).unwrap_or_else(|| panic!("no repository {name}"))
    }
}

/// An image pushed by [`TreeBuilder::image`].
#[derive(Clone, Debug)]
pub struct Image {
    pub manifest: Digest,
    pub config: Digest,
    pub layers: Vec<Digest>,
}

/// A link file: the digest its path names, and its content.
type LinkFile = (Digest, Vec<u8>);

/// A tag's `current/link` content (None: absent) and its `index/` links.
type TagSpec = (Option<Vec<u8>>, Vec<LinkFile>);

#[derive(Default)]
struct RepoSpec {
    layers_dir: bool,
    manifests_dir: bool,
    layer_links: Vec<LinkFile>,
    revisions: Vec<LinkFile>,
    tags: BTreeMap<String, TagSpec>,
    uploads: BTreeMap<String, Upload>,
}

/// A storage tree described file by file, as a registry push leaves it.
#[derive(Default)]
pub struct TreeBuilder {
    blobs: BTreeMap<Digest, Vec<u8>>,
    repos: BTreeMap<String, RepoSpec>,
    faults: Vec<ReadFault>,
    symlinks: Vec<String>,
    /// Makes every layer distinct.
    counter: u32,
}

impl TreeBuilder {
    pub fn new() -> TreeBuilder {
        TreeBuilder::default()
    }

    fn repo(&mut self, name: &str) -> &mut RepoSpec {
        self.repos.entry(name.to_string()).or_default()
    }

    /// `blobs/sha256/<hh>/<hex>/data` holding `bytes`.
    pub fn blob(&mut self, bytes: &[u8]) -> Digest {
        let d = sha256(bytes);
        self.blobs.insert(d.clone(), bytes.to_vec());
        d
    }

    /// A blob holding `v` as compact JSON.
    pub fn json_blob(&mut self, v: &Value) -> Digest {
        self.blob(&serde_json::to_vec(v).expect("JSON"))
    }

    /// Deletes a blob's data (a garbage-collected or lost blob).
    pub fn remove_blob(&mut self, d: &Digest) {
        self.blobs.remove(d);
    }

    /// `_layers/<alg>/<hex>/link` naming `d`.
    pub fn layer_link(&mut self, repo: &str, d: &Digest) {
        self.layer_link_raw(repo, d, d.to_string().as_bytes());
    }

    /// `_layers/<alg>/<hex(d)>/link` holding `content`.
    pub fn layer_link_raw(&mut self, repo: &str, d: &Digest, content: &[u8]) {
        let r = self.repo(repo);
        r.layers_dir = true;
        r.layer_links.push((d.clone(), content.to_vec()));
    }

    /// `_manifests/revisions/<alg>/<hex>/link` naming `d`.
    pub fn revision(&mut self, repo: &str, d: &Digest) {
        self.revision_raw(repo, d, d.to_string().as_bytes());
    }

    /// `_manifests/revisions/<alg>/<hex(d)>/link` holding `content`.
    pub fn revision_raw(&mut self, repo: &str, d: &Digest, content: &[u8]) {
        let r = self.repo(repo);
        r.manifests_dir = true;
        r.revisions.push((d.clone(), content.to_vec()));
    }

    /// Points `tag` at `d`: its `current/link` and an `index/` entry, as a push does.
    pub fn tag(&mut self, repo: &str, tag: &str, d: &Digest) {
        let content = d.to_string().into_bytes();
        let t = self.tag_entry(repo, tag);
        t.0 = Some(content.clone());
        t.1.push((d.clone(), content));
    }

    /// `tags/<tag>/current/link` holding `content` (no index entry).
    pub fn tag_current_raw(&mut self, repo: &str, tag: &str, content: &[u8]) {
        self.tag_entry(repo, tag).0 = Some(content.to_vec());
    }

    /// `tags/<tag>/current/link` the reader could not open (`error` as Go prints it).
    pub fn tag_current_unreadable(&mut self, repo: &str, tag: &str, error: &str) {
        self.tag_entry(repo, tag).0 = None;
        self.fault(&crate::layout::tag_current_link(repo, tag), FaultOp::Read, error);
    }

    /// `tags/<tag>/` without a `current/link`.
    pub fn empty_tag(&mut self, repo: &str, tag: &str) {
        self.tag_entry(repo, tag);
    }

    fn tag_entry(&mut self, repo: &str, tag: &str) -> &mut TagSpec {
        let r = self.repo(repo);
        r.manifests_dir = true;
        r.tags.entry(tag.to_string()).or_default()
    }

    /// `_uploads/<uuid>/` with `startedat` (None: the file is absent) and an empty `data`.
    pub fn upload(&mut self, repo: &str, uuid: &str, started_at: Option<&str>) {
        let upload = Upload { started_at: started_at.map(str::to_string), data_size: Some(0), hashstates: Vec::new() };
        self.repo(repo).uploads.insert(uuid.to_string(), upload);
    }

    /// A read the walk could not make at `path` (relative to the root).
    pub fn fault(&mut self, path: &str, op: FaultOp, error: &str) {
        self.faults.push(ReadFault { path: path.into(), op, error: error.into(), traversable: false, vanished: false });
    }

    /// A directory at `path` that can be searched but not listed.
    pub fn traversable_fault(&mut self, path: &str) {
        self.fault(path, FaultOp::List, "permission denied");
        self.faults.last_mut().expect("just pushed").traversable = true;
    }

    /// A symbolic link at `path` (relative to the root).
    pub fn symlink(&mut self, path: &str) {
        self.symlinks.push(path.into());
    }

    /// A new layer blob, linked in `repo`.
    pub fn layer(&mut self, repo: &str) -> Digest {
        self.counter += 1;
        let d = self.blob(format!("layer {}", self.counter).as_bytes());
        self.layer_link(repo, &d);
        d
    }

    /// A config blob for `layers` layers; `empty_layer` adds a history entry
    /// with `"empty_layer": true` (what the 2.8 schema1 conversion needs the
    /// empty tar for).
    pub fn config(&mut self, layers: &[Digest], empty_layer: bool) -> Digest {
        let mut history: Vec<Value> =
            layers.iter().map(|_| json!({"created": "2026-01-01T00:00:00Z", "created_by": "ADD"})).collect();
        if empty_layer {
            history.push(json!({"created": "2026-01-01T00:00:00Z", "created_by": "CMD", "empty_layer": true}));
        }
        let diff_ids: Vec<String> = layers.iter().map(|d| d.to_string()).collect();
        self.json_blob(&json!({
            "architecture": "amd64",
            "os": "linux",
            "created": "2026-01-01T00:00:00Z",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        }))
    }

    /// An image manifest of `media_type` (schema2 or OCI) with one new layer,
    /// pushed to `repo`: its blobs linked in `_layers`, its revision, and
    /// `tag` pointing at it when given.
    pub fn image(&mut self, repo: &str, tag: Option<&str>, media_type: &str, empty_layer: bool) -> Image {
        let img = self.image_blobs(repo, media_type, empty_layer);
        self.revision(repo, &img.manifest);
        if let Some(tag) = tag {
            self.tag(repo, tag, &img.manifest);
        }
        img
    }

    /// The blobs of an image (manifest, config, one new layer), config and
    /// layer linked in `repo`'s `_layers`; the manifest is linked nowhere.
    pub fn image_blobs(&mut self, repo: &str, media_type: &str, empty_layer: bool) -> Image {
        let layer = self.layer(repo);
        let config = self.config(std::slice::from_ref(&layer), empty_layer);
        self.layer_link(repo, &config);
        let manifest = self.json_blob(&json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": self.descriptor(&config, DOCKER_CONFIG),
            "layers": [self.descriptor(&layer, DOCKER_LAYER)],
        }));
        Image { manifest, config, layers: vec![layer] }
    }

    /// A stored schema1 manifest (kept without signatures, as the registry
    /// stores it) with one new layer, pushed to `repo` and tagged.
    pub fn schema1(&mut self, repo: &str, tag: &str) -> Image {
        let layer = self.layer(repo);
        let manifest = self.json_blob(&json!({
            "schemaVersion": 1,
            "name": repo,
            "tag": tag,
            "architecture": "amd64",
            "fsLayers": [{"blobSum": layer.to_string()}],
            "history": [{"v1Compatibility": "{\"id\":\"1\",\"os\":\"linux\"}"}],
        }));
        self.revision(repo, &manifest);
        self.tag(repo, tag, &manifest);
        Image { manifest: manifest.clone(), config: manifest, layers: vec![layer] }
    }

    /// An index (`OCI_INDEX` or `DOCKER_LIST`) of `children` (image
    /// manifests of `child_type`), the first linux/amd64, the others
    /// linux/arm64, pushed to `repo` and tagged. The children's own
    /// revisions are left to the caller (a push makes them).
    pub fn index(&mut self, repo: &str, tag: &str, media_type: &str, children: &[(Digest, &str)]) -> Digest {
        let entries: Vec<Value> = children
            .iter()
            .enumerate()
            .map(|(i, (d, child_type))| {
                let mut e = self.descriptor(d, child_type);
                e["platform"] = json!({"architecture": if i == 0 { "amd64" } else { "arm64" }, "os": "linux"});
                e
            })
            .collect();
        let index = self.json_blob(&json!({"schemaVersion": 2, "mediaType": media_type, "manifests": entries}));
        self.revision(repo, &index);
        self.tag(repo, tag, &index);
        index
    }

    fn descriptor(&self, d: &Digest, media_type: &str) -> Value {
        // A descriptor's size for a blob that was removed is of no consequence.
        let size = self.blobs.get(d).map_or(0, Vec::len);
        json!({"mediaType": media_type, "size": size, "digest": d.to_string()})
    }

    /// The inventory, contents (decoded as `target` decodes them) and walk
    /// facts of the tree described so far.
    pub fn build(&self, target: Target) -> Built {
        let mut inv = Inventory {
            blobs: self.blobs.iter().map(|(d, b)| (d.clone(), Blob { size: b.len() as u64 })).collect(),
            faults: self.faults.clone(),
            symlinks: self.symlinks.clone(),
            ..Inventory::default()
        };
        inv.faults.sort();
        inv.symlinks.sort();
        let mut walk = WalkFacts { repositories_dir: true, blobs_dir: true, ..WalkFacts::default() };
        let mut dirs: BTreeMap<String, BTreeMap<String, EntryKind>> = BTreeMap::new();
        for (name, spec) in &self.repos {
            let mut repo = Repository::new(name.clone());
            repo.has_layers_dir = spec.layers_dir;
            repo.has_manifests_dir = spec.manifests_dir;
            repo.has_uploads_dir = !spec.uploads.is_empty();
            repo.layer_links = parse_links(&spec.layer_links);
            repo.revisions = parse_links(&spec.revisions);
            repo.tags = spec
                .tags
                .iter()
                .map(|(tag, (current, index))| {
                    (tag.clone(), Tag { current: current.as_deref().map(parse_link), index: parse_links(index) })
                })
                .collect();
            repo.uploads = spec.uploads.iter().map(|(k, u)| (k.clone(), clone_upload(u))).collect();
            inv.repositories.push(repo);
            // The catalog walk's view: every directory on the way, then the repository's own.
            let mut parent = String::new();
            for part in name.split('/') {
                dirs.entry(parent.clone()).or_default().insert(part.to_string(), EntryKind::Dir);
                parent = if parent.is_empty() { part.to_string() } else { format!("{parent}/{part}") };
            }
            let own = dirs.entry(name.clone()).or_default();
            for (marker, present) in [
                ("_layers", spec.layers_dir),
                ("_manifests", spec.manifests_dir),
                ("_uploads", !spec.uploads.is_empty()),
            ] {
                if present {
                    own.insert(marker.to_string(), EntryKind::Dir);
                }
            }
            if !spec.tags.is_empty() {
                walk.tags_dirs.insert(name.clone(), Vec::new());
            }
        }
        walk.catalog_dirs = dirs
            .into_iter()
            .map(|(dir, entries)| (dir, entries.into_iter().map(|(name, kind)| WalkEntry { name, kind }).collect()))
            .collect();
        let contents = self.contents(&inv, target);
        Built { inv, contents, walk }
    }

    /// Decodes what [`Contents::load`] would: every manifest a revision or
    /// tag names, the children of indexes, and their configs.
    fn contents(&self, inv: &Inventory, target: Target) -> Contents {
        let mut wanted: Vec<Digest> = Vec::new();
        for repo in &inv.repositories {
            for (d, link) in &repo.revisions {
                wanted.push(d.clone());
                wanted.extend(link.ok().cloned());
            }
            for tag in repo.tags.values() {
                wanted.extend(tag.current.clone().and_then(Result::ok));
                wanted.extend(tag.index.values().filter_map(|l| l.ok().cloned()));
            }
        }
        let mut manifests = BTreeMap::new();
        while let Some(d) = wanted.pop() {
            let Some(bytes) = self.blobs.get(&d) else { continue };
            if manifests.contains_key(&d) {
                continue;
            }
            let parsed = parse_manifest_for(bytes, target);
            if let Ok(m) = &parsed {
                wanted.extend(m.manifests.iter().filter_map(|c| c.digest.clone()));
            }
            manifests.insert(d, parsed);
        }
        let configs: BTreeMap<Digest, _> = manifests
            .values()
            .filter_map(|m| m.as_ref().ok()?.config.as_ref()?.digest.clone())
            .filter_map(|d| Some((d.clone(), parse_config(self.blobs.get(&d)?))))
            .collect();
        Contents { manifests: manifests.into_iter().collect(), configs: configs.into_iter().collect() }
    }
}

impl TreeBuilder {
    /// Writes the tree described (faults and symlinks aside) below `root`,
    /// so that the real reader can be held to [`TreeBuilder::build`].
    pub fn write_to(&self, root: &Path) -> std::io::Result<()> {
        use crate::layout;
        let put = |rel: &str, bytes: &[u8]| -> std::io::Result<()> {
            let path = root.join(rel);
            std::fs::create_dir_all(path.parent().expect("below the root"))?;
            std::fs::write(path, bytes)
        };
        std::fs::create_dir_all(root.join(layout::V2).join("blobs"))?;
        std::fs::create_dir_all(root.join(layout::V2).join("repositories"))?;
        for (d, bytes) in &self.blobs {
            put(&layout::blob_data(d), bytes)?;
        }
        for (name, spec) in &self.repos {
            let dir = layout::repo_dir(name);
            for (present, marker) in [(spec.layers_dir, "_layers"), (spec.manifests_dir, "_manifests")] {
                if present {
                    std::fs::create_dir_all(root.join(&dir).join(marker))?;
                }
            }
            for (d, content) in &spec.layer_links {
                put(&layout::layer_link(name, d), content)?;
            }
            for (d, content) in &spec.revisions {
                put(&layout::revision_link(name, d), content)?;
            }
            for (tag, (current, index)) in &spec.tags {
                std::fs::create_dir_all(root.join(layout::tag_dir(name, tag)))?;
                if let Some(content) = current {
                    put(&layout::tag_current_link(name, tag), content)?;
                }
                for (d, content) in index {
                    put(&layout::tag_index_link(name, tag, d), content)?;
                }
            }
            for (uuid, upload) in &spec.uploads {
                let dir = layout::upload_dir(name, uuid);
                put(&format!("{dir}/data"), &vec![0; upload.data_size.unwrap_or(0) as usize])?;
                if let Some(started) = &upload.started_at {
                    put(&format!("{dir}/startedat"), started.as_bytes())?;
                }
            }
        }
        Ok(())
    }
}

fn clone_upload(u: &Upload) -> Upload {
    Upload { started_at: u.started_at.clone(), data_size: u.data_size, hashstates: u.hashstates.clone() }
}

/// Link files parsed as the reader parses them.
fn parse_links(links: &[LinkFile]) -> LinkMap {
    links.iter().map(|(d, content)| (d.clone(), parse_link(content))).collect()
}

/// A link file holding `d` and a newline, which the registry rejects
/// (docs/registry-rules.md §1.2).
pub fn with_newline(d: &Digest) -> Vec<u8> {
    format!("{d}\n").into_bytes()
}
