//! A reference as given on the command line: `repo:tag` or `repo@digest`.

use crate::digest::Digest;

/// `repo:tag` or `repo@digest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    Tag { repository: String, tag: String },
    Digest { repository: String, digest: Digest },
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference, String> {
        if let Some((repo, digest)) = s.rsplit_once('@') {
            let digest = Digest::parse(digest).map_err(|e| format!("{s:?}: bad digest: {e}"))?;
            return Ok(Reference::Digest { repository: repo.to_string(), digest });
        }
        // A ':' in the last path component separates the tag (a port may
        // contain one earlier: host:5000/app:tag).
        match s.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') && !repo.is_empty() && !tag.is_empty() => {
                Ok(Reference::Tag { repository: repo.to_string(), tag: tag.to_string() })
            }
            _ => Err(format!("{s:?} is not a reference: use REPOSITORY:TAG or REPOSITORY@DIGEST")),
        }
    }

    pub fn repository(&self) -> &str {
        match self {
            Reference::Tag { repository, .. } | Reference::Digest { repository, .. } => repository,
        }
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reference::Tag { repository, tag } => write!(f, "{repository}:{tag}"),
            Reference::Digest { repository, digest } => write!(f, "{repository}@{digest}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        assert_eq!(
            Reference::parse("host:5000/app:v1"),
            Ok(Reference::Tag { repository: "host:5000/app".into(), tag: "v1".into() })
        );
        let d = format!("sha256:{}", "a".repeat(64));
        assert!(matches!(Reference::parse(&format!("app@{d}")), Ok(Reference::Digest { .. })));
        assert!(Reference::parse("app").is_err());
        assert!(Reference::parse("host:5000/app").is_err());
        assert!(Reference::parse("app@sha256:zz").is_err());
    }
}
