//! `--repo GLOB` and `--tag GLOB`: which repositories and tags a listing
//! shows. Parsed once, from the command line, into a [`Selection`].

use glob::Pattern;

/// Repository and tag name globs; an empty list keeps every name.
/// `*` matches `/` too (`base/*` takes `base/app/sub`).
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub repos: Vec<Pattern>,
    pub tags: Vec<Pattern>,
}

impl Selection {
    /// Validates the globs; the error names the option and the glob.
    pub fn parse(repos: &[String], tags: &[String]) -> Result<Selection, String> {
        let parse = |option: &str, globs: &[String]| {
            globs
                .iter()
                .map(|g| Pattern::new(g).map_err(|e| format!("invalid {option} glob {g:?}: {e}")))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Selection { repos: parse("--repo", repos)?, tags: parse("--tag", tags)? })
    }

    pub fn keeps_repository(&self, name: &str) -> bool {
        self.repos.is_empty() || self.repos.iter().any(|p| p.matches(name))
    }

    pub fn keeps_tag(&self, name: &str) -> bool {
        self.tags.is_empty() || self.tags.iter().any(|p| p.matches(name))
    }

    /// The globs as given, for a message.
    pub fn repo_globs(&self) -> String {
        self.repos.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_keeps_all_and_globs_match_across_slashes() {
        let all = Selection::default();
        assert!(all.keeps_repository("a/b") && all.keeps_tag("x"));
        let s = Selection::parse(&["base/*".into(), "tools".into()], &["v1.*".into()]).unwrap();
        assert!(s.keeps_repository("base/app/sub") && s.keeps_repository("tools"));
        assert!(!s.keeps_repository("tools/x") && !s.keeps_repository("other"));
        assert!(s.keeps_tag("v1.2") && !s.keeps_tag("v2"));
        let err = Selection::parse(&["[".into()], &[]).unwrap_err();
        assert!(err.starts_with("invalid --repo glob \"[\""), "{err}");
    }
}
