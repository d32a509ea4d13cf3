//! `regaudit inspect`: one reference's whole tree with every node's state.

use std::io::{self, Write};

use serde::Serialize;

use super::table::{human_size, Cell, Table, BAD, BOLD, DIM, GOOD, WARN};
use super::{problems, Report};
use crate::digest::Digest;
use crate::model::serve::LinkedBy;
use crate::model::Target;
use crate::names::{Shown, ShownText};
use crate::problem::Problem;
use crate::resolve::{Node, Role};

#[derive(Serialize)]
pub struct InspectReport {
    pub schema_version: u32,
    pub target: Target,
    pub root: String,
    pub reference: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
    pub served: bool,
    /// `served` is false only because a GET is not modelled: unknown.
    pub served_unknown: bool,
    pub intact: Option<bool>,
    pub not_served: Vec<String>,
    /// For a tag: the manifests it pointed at before.
    pub history: Vec<Digest>,
    pub tree: Option<Node>,
    /// Problems in this repository or in the blobs of this tree.
    pub problems: Vec<Problem>,
    /// Present (true) only when Ctrl-C stopped `--verify` early.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// Manifests of this repository whose OCI `subject` is a manifest of
    /// this tree (signatures, SBOMs, attestations).
    pub referrers: Vec<Referrer>,
}

#[derive(Serialize)]
pub struct Referrer {
    /// The referrer's revision.
    pub digest: Digest,
    /// The manifest of this tree it refers to.
    pub subject: Digest,
    /// Its `artifactType`; empty when it has none.
    pub artifact_type: String,
    /// Tags pointing at the referrer (none: garbage-collect --delete-untagged sweeps it).
    pub tags: Vec<String>,
}

fn state_cells(n: &Node) -> Vec<Cell> {
    let flag = |ok: bool, yes: &str, no: &str| {
        if ok {
            Cell::styled(yes.to_string(), GOOD)
        } else {
            Cell::styled(no.to_string(), BAD)
        }
    };
    let linked = match n.linked {
        Some(LinkedBy::Revision) => Cell::styled("revision", GOOD),
        Some(LinkedBy::Layers) if matches!(n.role, Role::Manifest | Role::Child) => Cell::styled("_layers", WARN),
        Some(LinkedBy::Layers) => Cell::styled("linked", GOOD),
        None => Cell::styled("not linked", BAD),
    };
    let parses = match n.parses {
        Some(ok) => flag(ok, "parses", "unparseable"),
        None => Cell::new(""),
    };
    let fetch = if n.foreign {
        Cell::styled("foreign", DIM)
    } else {
        Cell::styled(n.fetch.status_text(), if n.fetch.is_ok() { GOOD } else { BAD })
    };
    let mut cells = vec![flag(n.present, "present", "missing"), linked, parses, fetch];
    if let Some(state) = n.content {
        cells.push(Cell::styled(state, if state == "intact" { GOOD } else { BAD }));
    }
    cells
}

/// Adds `n` and its children to `table`. A node where the walk stopped gets
/// a mark in the NOTE column and its sentence in `notes`, printed under the
/// table, so that no row grows by a sentence.
fn push_rows(table: &mut Table, notes: &mut Vec<String>, n: &Node, prefix: &str, last: bool, root: bool) {
    let branch = if root {
        String::new()
    } else if last {
        format!("{prefix}└─ ")
    } else {
        format!("{prefix}├─ ")
    };
    let role = match n.role {
        Role::Manifest => "manifest",
        Role::Child => "child",
        Role::Config => "config",
        Role::Layer => "layer",
    };
    // A config with no os and architecture (an OCI artifact's empty config) has no platform to show.
    let platform = n.platform.as_ref().map(|p| p.to_string()).filter(|p| p != "/");
    let what = n.kind.map(|k| k.name().to_string()).or_else(|| platform.clone()).unwrap_or_default();
    let what = match (&platform, n.role) {
        (Some(p), Role::Child) => format!("{what} {p}"),
        _ => what,
    };
    let size = n.size.or(n.declared_size.map(|s| s.max(0) as u64)).map(human_size).unwrap_or_default();
    let mut row = vec![
        Cell::new(format!("{branch}{role}")),
        Cell::name(super::tags::short(&n.digest)),
        Cell::new(what),
        Cell::new(size),
    ];
    row.extend(state_cells(n));
    if let Some(cut) = n.cut {
        // NOTE is the last column whenever a node has a note.
        row.resize_with(table.headers.len() - 1, || Cell::new(""));
        notes.push(cut.describe(&n.digest));
        row.push(Cell::styled(format!("[{}]", notes.len()), BAD));
    }
    table.push(row);
    let child_prefix = if root { String::new() } else { format!("{prefix}{}", if last { "   " } else { "│  " }) };
    for (i, c) in n.children.iter().enumerate() {
        push_rows(table, notes, c, &child_prefix, i + 1 == n.children.len(), false);
    }
}

impl Report for InspectReport {
    fn findings(&self) -> crate::exit_codes::Findings {
        crate::exit_codes::Findings {
            not_served: usize::from(!self.served && !self.served_unknown),
            unknown: if self.served_unknown {
                [crate::exit_codes::Condition::NotServed].into()
            } else {
                Default::default()
            },
            damaged: usize::from(self.intact == Some(false)),
            ..Default::default()
        }
        .with_problems(&self.problems)
    }

    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        let (served, style) = super::table::served_cell(self.served, self.served_unknown);
        writeln!(
            out,
            "{}{}{}  →  {}  served by registry {}: {}{served}{}{}",
            BOLD.render(),
            Shown(&self.reference),
            BOLD.render_reset(),
            self.digest.as_ref().map_or_else(|| "-".to_string(), Digest::to_string),
            self.target,
            style.render(),
            style.render_reset(),
            match self.intact {
                Some(true) => "  intact: yes",
                Some(false) => "  intact: no",
                None => "",
            }
        )?;
        if let Some(tree) = &self.tree {
            let mut headers = vec!["NODE", "DIGEST", "KIND", "SIZE", "DATA", "LINK", "CONTENT", "GET"];
            // The hashed state of each node (`--verify`); it had no column, so was never shown.
            if tree.walk().iter().any(|n| n.content.is_some()) {
                headers.push("VERIFIED");
            }
            if tree.walk().iter().any(|n| n.cut.is_some()) {
                headers.push("NOTE");
            }
            let mut table = Table::new(headers).right_align(&[3]);
            let mut notes = Vec::new();
            push_rows(&mut table, &mut notes, tree, "", true, true);
            writeln!(out)?;
            table.write(out)?;
            for (i, note) in notes.iter().enumerate() {
                writeln!(out, "  {}[{}] {}{}", BAD.render(), i + 1, ShownText(note), BAD.render_reset())?;
            }
        }
        if !self.referrers.is_empty() {
            writeln!(out, "\nReferrers (OCI subject): {}", self.referrers.len())?;
            let mut table = Table::new(vec!["REFERRER", "OF", "ARTIFACT TYPE", "TAGS"]);
            for r in &self.referrers {
                let tags = if r.tags.is_empty() { "- (untagged)".to_string() } else { r.tags.join(",") };
                table.push(vec![
                    Cell::new(r.digest.short()),
                    Cell::new(r.subject.short()),
                    Cell::new(if r.artifact_type.is_empty() { "-" } else { &r.artifact_type }),
                    Cell::new(tags),
                ]);
            }
            table.write(out)?;
        }
        if !self.not_served.is_empty() {
            writeln!(out, "\nNot served because:")?;
            for r in &self.not_served {
                writeln!(out, "  {}", ShownText(r))?;
            }
        }
        if !self.history.is_empty() {
            writeln!(out, "\nEarlier manifests of this tag:")?;
            for h in &self.history {
                writeln!(out, "  {h}")?;
            }
        }
        writeln!(out)?;
        problems::write(&self.problems, out)
    }
}
