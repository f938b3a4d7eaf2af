//! `.helmignore`: which files of the chart directory Helm leaves out of the chart.
//!
//! Helm's rules, as far as the module uses them: one pattern a line, `#` comments; a pattern
//! without `/` matches the name of a file or directory at any depth (`*.md`, `target`); a
//! pattern with `/` matches the path from the chart root (a leading `/` is dropped); a trailing
//! `/` restricts the pattern to directories. `*` matches within one name and `?` one character.
//! Negation (`!`) and `**` are rejected rather than silently misread.

use crate::{Error, Result};

/// One `.helmignore` line.
#[derive(Debug, Clone)]
struct Rule {
    pattern: String,
    /// The pattern contains `/`: it matches whole paths, not names.
    anchored: bool,
    /// The pattern ended with `/`: it matches directories only.
    dir_only: bool,
}

/// The parsed `.helmignore`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rules(Vec<Rule>);

impl Rules {
    /// Parses the text of a `.helmignore`.
    pub(crate) fn parse(text: &str) -> Result<Self> {
        let mut rules = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with('!') || line.contains("**") {
                return Err(Error::IgnorePattern(line.to_owned()));
            }
            let dir_only = line.ends_with('/');
            let pattern = line.trim_end_matches('/').trim_start_matches('/');
            rules.push(Rule {
                anchored: pattern.contains('/'),
                pattern: pattern.to_owned(),
                dir_only,
            });
        }
        Ok(Self(rules))
    }

    /// Whether the entry at `rel` (relative to the chart root, `/`-separated) is left out.
    pub(crate) fn ignores(&self, rel: &str, is_dir: bool) -> bool {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        self.0.iter().any(|rule| {
            (is_dir || !rule.dir_only)
                && if rule.anchored { glob(&rule.pattern, rel) } else { glob(&rule.pattern, name) }
        })
    }
}

/// `filepath.Match` without character classes: `*` (not crossing `/`) and `?`.
fn glob(pattern: &str, text: &str) -> bool {
    let mut p = pattern.chars();
    match p.next() {
        None => text.is_empty(),
        Some('*') => {
            let rest = p.as_str();
            let mut t = text;
            loop {
                if glob(rest, t) {
                    return true;
                }
                let mut chars = t.chars();
                match chars.next() {
                    Some(c) if c != '/' => t = chars.as_str(),
                    _ => return false,
                }
            }
        }
        Some(c) => {
            let mut chars = text.chars();
            match chars.next() {
                Some(t) if t == c || (c == '?' && t != '/') => glob(p.as_str(), chars.as_str()),
                _ => false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_helm() {
        let rules =
            Rules::parse("# c\n*.md\ntarget\ndocs/\n/xtask/src\nwerf*.yaml\na?c\n").unwrap();
        let cases = [
            ("README.md", false, true),
            ("monitoring/notes.md", false, true),
            ("target", true, true),
            ("crates/x/target", true, true),
            ("docs", true, true),
            ("docs", false, false),
            ("xtask/src", true, true),
            ("other/xtask/src", true, false),
            ("werf.inc.yaml", false, true),
            ("abc", false, true),
            ("templates/a.yaml", false, false),
            ("Chart.yaml", false, false),
        ];
        for (rel, is_dir, expected) in cases {
            assert_eq!(rules.ignores(rel, is_dir), expected, "{rel}");
        }
    }

    #[test]
    fn unsupported_syntax_is_rejected() {
        assert!(Rules::parse("!keep.md").is_err());
        assert!(Rules::parse("a/**/b").is_err());
    }
}
