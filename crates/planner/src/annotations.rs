//! Parsing of the Service annotations that take free text: the IP count, requested IPs and
//! the sharing key. Nothing here can fail: bad text becomes the nearest valid value plus a
//! reason.

use metallb_api::names::annotations;

use crate::model::ServiceInput;

/// Upper bound of the IP count: a typo like "300" must not create 300 objects (§11.9 of the
/// reference), and 64 is far above any real need of L2 announcing nodes.
pub const MAX_EXTERNAL_IPS: u32 = 64;

/// The Service's IP sharing key: the annotation trimmed, if not blank. Read where needed rather
/// than stored: a pointer pair per Service and per allocation claimant is not worth saving a
/// lookup in a handful of annotations.
pub(crate) fn sharing_key(s: &ServiceInput) -> Option<&str> {
    s.annotations.get(annotations::SHARED_IP_KEY).map(str::trim).filter(|k| !k.is_empty())
}

/// Why a count annotation was not used verbatim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CountIssue {
    /// Not an integer at all: the default, 1.
    NotInteger,
    /// An integer below 1.
    TooSmall,
    /// An integer above [`MAX_EXTERNAL_IPS`].
    TooLarge,
    /// A valid integer wrapped in whitespace.
    Whitespace,
}

impl CountIssue {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::NotInteger => "is not an integer",
            Self::TooSmall => "is below 1",
            Self::TooLarge => "is above 64",
            Self::Whitespace => "has surrounding whitespace",
        }
    }
}

/// The IP count from the annotation value: `(count, issue)`.
pub(crate) fn parse_count(raw: Option<&str>) -> (u32, Option<CountIssue>) {
    let Some(raw) = raw else {
        return (1, None);
    };
    let text = raw.trim();
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return (1, Some(CountIssue::NotInteger));
    }
    let negative = text.starts_with('-');
    // Too many digits for u64 still has a sign, hence a nearest valid value.
    let value = digits.parse::<u64>().unwrap_or(u64::MAX);
    if negative || value == 0 {
        return (1, Some(CountIssue::TooSmall));
    }
    if value > u64::from(MAX_EXTERNAL_IPS) {
        return (MAX_EXTERNAL_IPS, Some(CountIssue::TooLarge));
    }
    // `value` is in 1..=64 here, so it fits.
    let count = u32::try_from(value).unwrap_or(MAX_EXTERNAL_IPS);
    (count, (text != raw).then_some(CountIssue::Whitespace))
}

/// Entries of `network.deckhouse.io/load-balancer-ips`, trimmed; empty entries mean
/// "any address" for that index.
pub(crate) fn parse_requested(raw: Option<&str>) -> Vec<Option<String>> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    if raw.trim().is_empty() {
        return Vec::new();
    }
    raw.split(',')
        .map(|entry| {
            let entry = entry.trim();
            (!entry.is_empty()).then(|| entry.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_table() {
        use CountIssue::*;
        const CASES: [(Option<&str>, u32, Option<CountIssue>); 13] = [
            (None, 1, None),
            (Some("1"), 1, None),
            (Some("3"), 3, None),
            (Some("64"), 64, None),
            (Some("65"), 64, Some(TooLarge)),
            (Some("300"), 64, Some(TooLarge)),
            (Some("99999999999999999999999"), 64, Some(TooLarge)),
            (Some("0"), 1, Some(TooSmall)),
            (Some("-5"), 1, Some(TooSmall)),
            (Some("abc"), 1, Some(NotInteger)),
            (Some(""), 1, Some(NotInteger)),
            (Some(" 3"), 3, Some(Whitespace)),
            (Some("+2"), 2, None),
        ];
        for (raw, count, issue) in CASES {
            assert_eq!(parse_count(raw), (count, issue), "{raw:?}");
        }
    }

    #[test]
    fn requested_entries_are_trimmed_and_empty_means_any() {
        assert_eq!(parse_requested(None), Vec::<Option<String>>::new());
        assert_eq!(parse_requested(Some("  ")), Vec::<Option<String>>::new());
        assert_eq!(
            parse_requested(Some(" 10.0.0.1 ,,10.0.0.3")),
            [Some("10.0.0.1".to_owned()), None, Some("10.0.0.3".to_owned())]
        );
    }
}
