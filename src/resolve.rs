//! Resolution: tag → manifest → children (lists and indexes, recursively,
//! cycle-safe) → config → layers, with every node's state and what the
//! target registry would answer when a client fetches it.

use std::collections::{BTreeSet, HashSet};

use serde::Serialize;

use crate::digest::Digest;
use crate::inventory::Repository;
use crate::manifest::{Descriptor, ManifestError, ManifestKind, MediaType, Platform};
use crate::model::serve::{Fetch, LinkedBy, Server};

/// Indexes nested deeper than this are reported instead of followed, which
/// bounds memory and stack on hostile trees.
pub const MAX_DEPTH: usize = 16;

/// Most nodes one resolved tree may have, which bounds its memory. Each
/// distinct child manifest is followed once (a repeat is listed, not
/// followed again), so an index naming the same child many times stays
/// small; the budget is above the references a 4 MiB manifest can hold with
/// valid digests (about 50,000 of 83 bytes each), so that no manifest the
/// registry serves has its own references cut. Past it, a manifest is cut
/// and whether the tree is served is not known.
pub const MAX_NODES: usize = 100_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Manifest,
    Child,
    Config,
    Layer,
}

#[derive(Clone, Debug, Serialize)]
pub struct Node {
    pub role: Role,
    /// As written in the referencing manifest (it may be invalid).
    pub digest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_type: Option<MediaType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<ManifestKind>,
    /// Size of the stored data.
    pub size: Option<u64>,
    /// Size the referencing descriptor declares.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub declared_size: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// The blob's data exists.
    pub present: bool,
    /// The link through which this repository reaches it; null when none.
    pub linked: Option<LinkedBy>,
    /// Manifests and configs: whether the content decodes (null for layers).
    pub parses: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the target registry answers to a GET of this node.
    pub fetch: Fetch,
    /// Foreign layers are fetched from their URLs, not from the registry.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub foreign: bool,
    /// Set when this manifest's references were not followed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut: Option<Cut>,
    /// A child manifest already followed earlier in this tree: its
    /// references are listed there only.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub repeated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// After verification: `intact`, `corrupt`, `truncated`, `unreadable`
    /// or `size-mismatch` (null when not hashed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Node>,
    #[serde(skip)]
    pub parsed_digest: Option<Digest>,
    #[serde(skip)]
    pub manifest_error: Option<ManifestError>,
}

/// Why a manifest's references were not followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cut {
    /// It refers back to itself through its children.
    Cycle,
    /// It is nested more than [`MAX_DEPTH`] indexes deep.
    TooDeep,
    /// Following it would make the tree larger than [`MAX_NODES`] nodes.
    TooLarge,
}

impl Cut {
    pub fn describe(self, d: &str) -> String {
        match self {
            Cut::Cycle => format!("manifest {d} refers back to itself through its children"),
            Cut::TooDeep => format!(
                "manifest {d} is nested more than {MAX_DEPTH} indexes deep and was not followed; \
                 whether the tree is served is not known"
            ),
            Cut::TooLarge => format!(
                "manifest {d} was not followed: its tree would have more than {MAX_NODES} nodes; \
                 whether the tree is served is not known"
            ),
        }
    }
}

impl Node {
    fn new(role: Role, digest_text: String, parsed: Option<Digest>) -> Node {
        Node {
            role,
            digest: digest_text,
            media_type: None,
            kind: None,
            size: None,
            declared_size: None,
            platform: None,
            present: false,
            linked: None,
            parses: None,
            error: None,
            fetch: Fetch::Ok,
            foreign: false,
            cut: None,
            repeated: false,
            content: None,
            subject: None,
            artifact_type: None,
            children: Vec::new(),
            parsed_digest: parsed,
            manifest_error: None,
        }
    }

    /// Every node of the tree, this one first.
    pub fn walk(&self) -> Vec<&Node> {
        let mut out = vec![self];
        for c in &self.children {
            out.extend(c.walk());
        }
        out
    }

    /// Whether a client can fetch every node that the registry must serve.
    pub fn served(&self) -> bool {
        self.walk().iter().all(|n| n.foreign || (n.fetch.is_ok() && n.cut.is_none()))
    }

    /// Not served only because of what is not known: a GET that is not
    /// modelled (a symlink the registry follows), or references not followed
    /// because of regaudit's own bounds (depth, node budget), which the
    /// registry does not have.
    pub fn served_unknown(&self) -> bool {
        let failing: Vec<&Node> =
            self.walk().into_iter().filter(|n| !n.foreign && (!n.fetch.is_ok() || n.cut.is_some())).collect();
        let unknown = |n: &&Node| match n.cut {
            Some(Cut::Cycle) => false,
            Some(Cut::TooDeep | Cut::TooLarge) => matches!(n.fetch, Fetch::Ok | Fetch::Unmodelled(_)),
            None => matches!(n.fetch, Fetch::Unmodelled(_)),
        };
        !failing.is_empty() && failing.iter().all(unknown)
    }

    /// Sentences saying why the tree is not served.
    pub fn failures(&self) -> Vec<String> {
        self.walk()
            .iter()
            .filter(|n| !n.foreign)
            .filter_map(|n| match (&n.cut, n.fetch.reason()) {
                (Some(cut), _) => Some(cut.describe(&n.digest)),
                (None, Some(reason)) if matches!(n.fetch, Fetch::NoAnswer(_)) => {
                    Some(format!("{} GET gets no answer (connection dropped): {}", n.role.name(), reason))
                }
                (None, Some(reason)) => Some(format!("{} GET {}: {}", n.role.name(), n.fetch.status_text(), reason)),
                _ => None,
            })
            .collect()
    }

    /// Digests of every node with a valid digest.
    pub fn digests(&self) -> impl Iterator<Item = &Digest> {
        self.walk().into_iter().filter_map(|n| n.parsed_digest.as_ref())
    }

    /// Bytes of every distinct node (stored size, else declared size).
    pub fn total_size(&self) -> u64 {
        let mut seen = HashSet::new();
        self.walk()
            .iter()
            .filter(|n| seen.insert(&n.digest))
            .map(|n| n.size.unwrap_or_else(|| n.declared_size.unwrap_or(0).max(0) as u64))
            .sum()
    }
}

impl Role {
    /// For sentences: "child manifest", "layer"...
    pub fn name(self) -> &'static str {
        match self {
            Role::Manifest => "manifest",
            Role::Child => "child manifest",
            Role::Config => "config",
            Role::Layer => "layer",
        }
    }
}

pub struct Resolver<'a> {
    pub server: &'a Server<'a>,
}

/// State of one tree's resolution: the manifests above the current one, the
/// manifests already followed, and how many more nodes the tree may grow.
struct Walk {
    stack: Vec<Digest>,
    followed: BTreeSet<Digest>,
    budget: usize,
}

impl<'a> Resolver<'a> {
    pub fn new(server: &'a Server<'a>) -> Resolver<'a> {
        Resolver { server }
    }

    /// Resolves a manifest by digest in a repository, with everything below it.
    pub fn manifest(&self, repo: &Repository, d: &Digest) -> Node {
        let mut walk = Walk { stack: Vec::new(), followed: BTreeSet::new(), budget: MAX_NODES };
        self.manifest_node(repo, Role::Manifest, None, d.to_string(), Some(d.clone()), &mut walk)
    }

    fn manifest_node(
        &self,
        repo: &Repository,
        role: Role,
        desc: Option<&Descriptor>,
        digest_text: String,
        digest: Option<Digest>,
        walk: &mut Walk,
    ) -> Node {
        let mut node = Node::new(role, digest_text, digest.clone());
        if let Some(desc) = desc {
            node.media_type = Some(desc.media_type.clone());
            node.declared_size = Some(desc.size);
            node.platform = desc.platform().cloned();
        }
        let Some(d) = digest else {
            node.fetch = Fetch::NotFound(format!("{:?} is not a valid digest", node.digest));
            return node;
        };
        self.fill_presence(&mut node, &d);
        node.linked = match (repo.revisions.get(&d), repo.layer_links.get(&d)) {
            (Some(Ok(_)), _) => Some(LinkedBy::Revision),
            (_, Some(Ok(_))) => Some(LinkedBy::Layers),
            _ => None,
        };
        let (fetch, _) = self.server.manifest(repo, &d);
        node.fetch = fetch;
        let Some(parsed) = self.server.contents.manifest(&d) else {
            return node;
        };
        let m = match parsed {
            Ok(m) => m,
            Err(e) => {
                node.parses = Some(false);
                node.error = Some(e.to_string());
                node.manifest_error = Some(e.clone());
                return node;
            }
        };
        node.parses = Some(true);
        node.kind = Some(m.kind);
        node.subject = m.subject().map(Descriptor::digest_text);
        node.artifact_type = Some(m.artifact_type().to_string()).filter(|a| !a.is_empty());
        if walk.stack.contains(&d) {
            node.cut = Some(Cut::Cycle);
            return node;
        }
        if walk.followed.contains(&d) {
            // Same repository, same digest: the same subtree as where it was followed.
            node.repeated = true;
            return node;
        }
        if walk.stack.len() >= MAX_DEPTH {
            node.cut = Some(Cut::TooDeep);
            return node;
        }
        let references = m.manifests.len() + m.layers.len() + usize::from(m.config.is_some());
        if references > walk.budget {
            node.cut = Some(Cut::TooLarge);
            return node;
        }
        walk.budget -= references;
        walk.followed.insert(d.clone());
        walk.stack.push(d.clone());
        for child in &m.manifests {
            let c = self.manifest_node(
                repo,
                Role::Child,
                Some(child),
                child.digest_text().clone(),
                child.digest.clone(),
                walk,
            );
            node.children.push(c);
        }
        if let Some(config) = &m.config {
            node.children.push(self.blob_node(repo, Role::Config, config));
        }
        for layer in &m.layers {
            node.children.push(self.blob_node(repo, Role::Layer, layer));
        }
        walk.stack.pop();
        node
    }

    fn fill_presence(&self, node: &mut Node, d: &Digest) {
        node.size = self.server.inv.blob_size(d);
        node.present = node.size.is_some();
    }

    fn blob_node(&self, repo: &Repository, role: Role, desc: &Descriptor) -> Node {
        let mut node = Node::new(role, desc.digest_text().clone(), desc.digest.clone());
        node.media_type = Some(desc.media_type.clone());
        node.declared_size = Some(desc.size);
        node.foreign = role == Role::Layer && desc.is_foreign();
        let Some(d) = desc.digest.clone() else {
            node.fetch = Fetch::NotFound(format!("{:?} is not a valid digest", desc.digest_text()));
            return node;
        };
        self.fill_presence(&mut node, &d);
        node.linked = matches!(repo.layer_links.get(&d), Some(Ok(_))).then_some(LinkedBy::Layers);
        node.fetch = self.server.blob(repo, &d);
        if role == Role::Config {
            match self.server.contents.config(&d) {
                Some(Ok(c)) => {
                    node.parses = Some(true);
                    node.platform = Some(c.platform.clone());
                }
                Some(Err(e)) => {
                    node.parses = Some(false);
                    node.error = Some(e.to_string());
                }
                None => {}
            }
        }
        node
    }
}

/// A tag, resolved.
#[derive(Clone, Debug, Serialize)]
pub struct ResolvedTag {
    pub repository: String,
    pub tag: String,
    /// The digest `current/link` names; null when absent or invalid.
    pub digest: Option<Digest>,
    pub kind: Option<ManifestKind>,
    pub platforms: Vec<String>,
    pub created: Option<String>,
    /// Bytes of the manifest, its children, configs and layers (distinct).
    pub size: u64,
    pub served: bool,
    /// `served` is false only because a GET is not modelled: unknown.
    pub served_unknown: bool,
    /// Whether every blob hashes to its digest; null until verified.
    pub intact: Option<bool>,
    /// OCI referrers in the repository (signatures, SBOMs...): revisions
    /// whose `subject` is this tag's manifest or one of its children.
    pub referrers: usize,
    /// Why `served` is false.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_served: Vec<String>,
    /// Earlier manifests of this tag (its index), excluding the current one.
    pub history: Vec<Digest>,
    /// Boxed: most tags are listed without their tree.
    #[serde(skip)]
    pub tree: Option<Box<Node>>,
}

impl Resolver<'_> {
    pub fn tag(&self, repo: &Repository, tag: &str) -> ResolvedTag {
        let entry = repo.tags.get(tag);
        let current = entry.and_then(|t| t.current.clone()).and_then(Result::ok);
        let history = entry
            .map(|t| t.index.keys().filter(|d| Some(*d) != current.as_ref()).cloned().collect())
            .unwrap_or_default();
        let mut out = ResolvedTag {
            repository: repo.name.clone(),
            tag: tag.to_string(),
            digest: current.clone(),
            kind: None,
            platforms: Vec::new(),
            created: None,
            size: 0,
            served: false,
            served_unknown: false,
            intact: None,
            referrers: 0,
            not_served: Vec::new(),
            history,
            tree: None,
        };
        let d = match self.server.tag(repo, tag) {
            Ok(d) => d,
            Err(f) => {
                let status = f.status_text();
                out.served_unknown = matches!(f, Fetch::Unmodelled(_));
                out.not_served.push(format!("tag GET {status}: {}", f.reason().unwrap_or_default()));
                return out;
            }
        };
        let tree = self.manifest(repo, &d);
        out.kind = tree.kind;
        out.platforms = self.platforms(&tree);
        out.created = self.created(&tree);
        out.size = tree.total_size();
        out.served = tree.served();
        out.served_unknown = tree.served_unknown();
        out.not_served = tree.failures();
        out.tree = Some(Box::new(tree));
        out
    }

    fn platforms(&self, tree: &Node) -> Vec<String> {
        if tree.kind.is_some_and(ManifestKind::is_index) {
            return tree.children.iter().filter_map(|c| c.platform.as_ref().map(Platform::to_string)).collect();
        }
        let from_config = tree.children.iter().find(|c| c.role == Role::Config).and_then(|c| c.platform.as_ref());
        match (from_config, tree.kind, tree.parsed_digest.as_ref()) {
            (Some(p), _, _) => vec![p.to_string()],
            (None, Some(ManifestKind::Schema1), Some(d)) => match self.server.contents.manifest(d) {
                Some(Ok(m)) if !m.schema1_architecture().is_empty() => {
                    // The os from its v1Compatibility history; `?` when it names none.
                    let os = Some(m.schema1_os()).filter(|o| !o.is_empty()).unwrap_or("?");
                    vec![format!("{os}/{}", m.schema1_architecture())]
                }
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    /// The image's creation time as written; for an index, the newest of its
    /// images, compared as instants (offsets differ), or None when one of
    /// several times is not a time Go reads.
    fn created(&self, tree: &Node) -> Option<String> {
        // Schema1 has no config: its v1Compatibility history records the time.
        if let (Some(ManifestKind::Schema1), Some(d)) = (tree.kind, tree.parsed_digest.as_ref()) {
            if let Some(Ok(m)) = self.server.contents.manifest(d) {
                return m.schema1_created().map(str::to_string);
            }
        }
        let mut times: Vec<&str> = tree
            .walk()
            .iter()
            .filter(|n| n.role == Role::Config)
            .filter_map(|n| n.parsed_digest.as_ref())
            .filter_map(|d| self.server.contents.config(d)?.as_ref().ok()?.created.as_deref())
            .collect();
        times.sort_unstable();
        times.dedup();
        if let [only] = times[..] {
            return Some(only.to_string());
        }
        let instants: Option<Vec<_>> =
            times.iter().map(|t| crate::gojson::parse_go_rfc3339(t).map(|i| (i, *t))).collect();
        instants?.into_iter().max().map(|(_, t)| t.to_string())
    }
}
