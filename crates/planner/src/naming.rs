//! Child object names: `<service>-<class>-<index>` when that is a valid DNS label, else a
//! truncated, sanitised form with a stable hash suffix (fixes the previous implementation's
//! over-long and invalid names).

use sha2::{Digest, Sha256};

/// Kubernetes limit for a DNS-1123 label (RFC 1123 §2.1).
const MAX_LABEL: usize = 63;
/// Hex characters of the hash suffix: 40 bits make a collision between two long names of one
/// namespace negligible (birthday bound ~2^20 names) while leaving room for a readable prefix.
const HASH_CHARS: usize = 10;

/// Whether `name` is a DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.len() <= MAX_LABEL
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes.iter().all(|b| alnum(b) || *b == b'-')
}

/// The name of the child carrying IP number `index` of `service` in `class`.
pub fn child_name(service: &str, class: &str, index: u32) -> String {
    let natural = format!("{service}-{class}-{index}");
    if is_dns_label(&natural) {
        return natural;
    }
    let digest = Sha256::digest(natural.as_bytes());
    let hash: String = digest
        .iter()
        .flat_map(|b| [b >> 4, b & 0xf])
        .take(HASH_CHARS)
        .map(|nibble| char::from_digit(u32::from(nibble), 16).unwrap_or('0'))
        .collect();
    let suffix = format!("-{hash}-{index}");
    let sanitized: String = format!("{service}-{class}")
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .collect();
    let budget = MAX_LABEL - suffix.len();
    let prefix = sanitized[..sanitized.len().min(budget)].trim_matches('-');
    // A name made only of invalid characters still needs an alphanumeric start.
    let prefix = if prefix.is_empty() { "lb" } else { prefix };
    format!("{prefix}{suffix}")
}

/// The index encoded in a previous-implementation name `<service>-<class>-<index>`.
pub(crate) fn legacy_index(name: &str, service: &str, class: &str) -> Option<u32> {
    let rest =
        name.strip_prefix(service)?.strip_prefix('-')?.strip_prefix(class)?.strip_prefix('-')?;
    if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_names_when_valid() {
        assert_eq!(child_name("web", "front", 2), "web-front-2");
        assert!(is_dns_label("web-front-2"));
    }

    #[test]
    fn long_or_invalid_names_are_truncated_with_a_stable_hash() {
        let long = "s".repeat(63);
        let cases = [
            (long.as_str(), "front", 0),
            ("web", "class.with.dots", 1),
            ("web", "Upper_Case", 3),
            ("---", "...", 0),
        ];
        for (service, class, index) in cases {
            let name = child_name(service, class, index);
            assert!(is_dns_label(&name), "{name}");
            assert_eq!(name, child_name(service, class, index), "stable");
            assert!(name.ends_with(&format!("-{index}")), "{name}");
        }
        assert_ne!(child_name(&long, "front", 0), child_name(&long, "front", 1));
        assert_ne!(child_name(&long, "a", 0), child_name(&long, "b", 0));
    }

    #[test]
    fn legacy_index_parses_only_exact_names() {
        assert_eq!(legacy_index("web-front-10", "web", "front"), Some(10));
        assert_eq!(legacy_index("web-front-x", "web", "front"), None);
        assert_eq!(legacy_index("web-back-1", "web", "front"), None);
        assert_eq!(legacy_index("web-front-", "web", "front"), None);
    }
}
