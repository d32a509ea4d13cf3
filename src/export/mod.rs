//! `regaudit export`: one image or index, exactly as the registry would serve
//! it from this tree, written as an OCI image layout in DEST. The command in
//! three parts: [`plan`] decides what to copy from the tree, [`layout`]
//! writes it (the only code in the crate that writes, only under DEST), and
//! `report::export` renders what was done.

pub mod layout;
pub mod plan;

use std::path::Path;

use crate::analysis::reference::Reference;
use crate::audit::Audit;
use crate::digest::Digest;
use crate::manifest::media;
use crate::report::export::{BlobStatus, ExportReport};
use crate::report::SCHEMA_VERSION;
use layout::{CopyOutcome, DestError, Layout};

/// Moved to `crate::report::export`; the lead removes this re-export after the merge.
pub use layout::reaches_tree;

/// The annotation an OCI layout uses to name a manifest (`oci:DEST:TAG`).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

pub struct Options {
    /// Export what can be exported when blobs are missing or corrupt.
    pub allow_partial: bool,
    /// The name in `index.json`; defaults to the tag of a `repo:tag` reference.
    pub tag: Option<String>,
}

/// skopeo (containers/image `oci/layout/oci_transport.go`
/// `getManifestDescriptor`; checked with skopeo 1.9.3) looks `oci:DEST:NAME`
/// up only among OCI image manifests and indexes, and `oci:DEST` alone needs
/// a single entry: in a layout of two or more, an entry with a Docker media
/// type cannot be addressed. `entries` is index.json's (media type, name, digest) after the write.
fn unaddressable(entries: &[(String, Option<String>, String)], dest: &str) -> Vec<String> {
    if entries.len() < 2 {
        return Vec::new();
    }
    entries
        .iter()
        .filter(|(media_type, _, _)| ![media::OCI_MANIFEST, media::OCI_INDEX].contains(&media_type.as_str()))
        .map(|(_, name, digest)| {
            let name = name.as_deref().map(|n| format!(" ({n:?})")).unwrap_or_default();
            format!(
                "{digest}{name} has a Docker media type and {dest} now holds {} images: skopeo finds \
                 `oci:{dest}:NAME` only among OCI-typed entries and `oci:{dest}` only when it is alone, \
                 so it cannot address this image; export each Docker-typed image into a DEST of its own",
                entries.len()
            )
        })
        .collect()
}

/// Why an export wrote nothing, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// No such repository, or it cannot be read.
    #[error(transparent)]
    Repository(#[from] crate::audit::RepositoryError),
    #[error("{reference}: the registry would not resolve this tag: {reason}")]
    TagNotResolved { reference: String, reason: String },
    #[error("{reference}: the registry would not serve manifest {digest}: {reason}")]
    ManifestNotServed { reference: String, digest: Digest, reason: String },
    #[error("{reference}: manifest {digest} does not decode")]
    Undecodable { reference: String, digest: Digest },
    #[error(
        "{reference}: manifest {digest} is Docker schema1, which an OCI image layout cannot hold faithfully: \
         the image spec has no schema1 media type, schema1 has no config blob, and the registry stores \
         its signed payload without the signatures; nothing was written"
    )]
    Schema1 { reference: String, digest: String },
    /// Blobs cannot be exported and `--allow-partial` was not given.
    #[error("{reference} cannot be exported whole ({outcome}; --allow-partial exports the rest):\n  {}", failures.join("\n  "))]
    Incomplete { reference: String, failures: Vec<String>, outcome: &'static str },
    #[error(transparent)]
    Dest(#[from] DestError),
}

pub fn export(audit: &Audit, reference: &Reference, dest: &Path, opts: &Options) -> Result<ExportReport, ExportError> {
    let plan::Plan { repository, digest, kind, ref_name, mut blobs, copies, mut failures } =
        plan::plan(audit, reference, opts.tag.clone())?;
    let incomplete = |failures: Vec<String>, outcome| ExportError::Incomplete {
        reference: reference.to_string(),
        failures,
        outcome,
    };
    if !failures.is_empty() && !opts.allow_partial {
        return Err(incomplete(failures, "nothing was written"));
    }

    let layout = Layout::prepare(audit.root.path().dir(), dest)?;
    let mut copied_bytes = 0;
    for p in &copies {
        match layout.copy_blob(audit.root.open_blob(&p.source), &p.wanted) {
            Ok(CopyOutcome::Verified(n)) => {
                copied_bytes += n;
                blobs[p.index].size = Some(n);
            }
            Ok(CopyOutcome::Mismatch(actual, n)) => {
                let why = format!("its {n} bytes hash to {actual}, not to {}", p.wanted);
                failures.push(format!("{} {}: {why}", blobs[p.index].role.name(), p.wanted));
                blobs[p.index].status = BlobStatus::Corrupt;
                blobs[p.index].reason = Some(why);
            }
            Ok(CopyOutcome::Unreadable(e)) => {
                let why = format!("its data cannot be read: {e}");
                failures.push(format!("{} {}: {why}", blobs[p.index].role.name(), p.wanted));
                blobs[p.index].status = BlobStatus::NotServed;
                blobs[p.index].reason = Some(why);
            }
            Err(e) => {
                layout.abandon();
                return Err(DestError::io(&layout.dest, e).into());
            }
        }
    }
    if !failures.is_empty() && !opts.allow_partial {
        layout.abandon();
        let what = if layout.created { "DEST was removed again" } else { "index.json was not changed" };
        return Err(incomplete(failures, what));
    }
    let size = blobs.first().and_then(|b| b.size).unwrap_or(0);
    let media_type = plan::kind_media_type(kind).to_string();
    if let Some(top) = blobs.first_mut() {
        top.media_type.get_or_insert_with(|| media_type.clone());
    }
    let entries = layout
        .write_index(&digest, &media_type, size, ref_name.as_deref())
        .map_err(|e| DestError::io(&layout.dest, e))?;
    let warnings = unaddressable(&entries, &dest.display().to_string());
    Ok(ExportReport {
        schema_version: SCHEMA_VERSION,
        target: audit.target,
        root: audit.root.path().display().to_string(),
        reference: reference.to_string(),
        repository,
        digest: digest.to_string(),
        media_type,
        dest: dest.display().to_string(),
        ref_name,
        complete: failures.is_empty(),
        copied_bytes,
        blobs,
        warnings,
    })
}
