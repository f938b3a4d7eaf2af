//! Kubernetes condition semantics: merge ours into the existing list, keep everything else.
//!
//! `lastTransitionTime` changes only when `status` changes (so re-planning an unchanged state
//! writes byte-identical conditions), conditions of other types and their order are kept, and
//! ours are replaced in place or appended — the fix for the previous implementation's
//! zero timestamps and whole-list overwrites.

use compact_str::CompactString;

use crate::model::{Condition, ConditionStatus, Timestamp};

/// A condition the planner wants, before merging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Wanted {
    pub(crate) type_: &'static str,
    pub(crate) status: ConditionStatus,
    pub(crate) reason: &'static str,
    pub(crate) message: CompactString,
}

impl Wanted {
    pub(crate) fn new(
        type_: &'static str,
        status: ConditionStatus,
        reason: &'static str,
        message: impl Into<CompactString>,
    ) -> Self {
        Self { type_, status, reason, message: message.into() }
    }
}

/// Merges `wanted` into `existing`: replaced in place, appended in `wanted` order, other
/// types cloned untouched.
///
/// `generation` is the object's `metadata.generation`; zero (a kind without generations, such
/// as a Service) writes no `observedGeneration`. The API server drops a zero there
/// (`metav1.Condition` marks it `omitempty`), so writing it would make every re-plan differ
/// from what is stored and patch the object again on every run.
pub(crate) fn merge(
    existing: &[Condition],
    wanted: Vec<Wanted>,
    now: &Timestamp,
    generation: Option<i64>,
) -> Vec<Condition> {
    let generation = generation.filter(|&g| g != 0);
    let build = |w: Wanted, old: Option<&Condition>| Condition {
        type_: w.type_.into(),
        status: w.status,
        reason: w.reason.into(),
        message: w.message,
        last_transition_time: match old {
            Some(old) if old.status == w.status => old.last_transition_time.clone(),
            _ => now.clone(),
        },
        observed_generation: generation,
    };
    // Exactly the final length: a plan holds one such list per Service and per child, so
    // spare capacity would be a tenth of a large run's memory.
    let appended = wanted.iter().filter(|w| find(existing, w.type_).is_none()).count();
    let mut wanted: Vec<Option<Wanted>> = wanted.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(existing.len() + appended);
    for old in existing {
        let mine = wanted
            .iter_mut()
            .find(|w| w.as_ref().is_some_and(|w| w.type_ == old.type_))
            .and_then(Option::take);
        out.push(match mine {
            Some(w) => build(w, Some(old)),
            None => old.clone(),
        });
    }
    out.extend(wanted.into_iter().flatten().map(|w| build(w, None)));
    out
}

/// The existing condition of a type, if any.
pub(crate) fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(type_: &str, status: ConditionStatus, time: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status,
            reason: "Old".into(),
            message: "old".into(),
            last_transition_time: Timestamp(time.into()),
            observed_generation: Some(1),
        }
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let existing = vec![
            cond("Foreign", ConditionStatus::True, "t0"),
            cond("A", ConditionStatus::True, "t0"),
            cond("B", ConditionStatus::True, "t0"),
        ];
        let now = Timestamp("t1".into());
        let merged = merge(
            &existing,
            vec![
                Wanted::new("A", ConditionStatus::True, "Same", "new message"),
                Wanted::new("B", ConditionStatus::False, "Changed", "x"),
                Wanted::new("C", ConditionStatus::True, "New", "y"),
            ],
            &now,
            Some(7),
        );
        let summary: Vec<_> = merged
            .iter()
            .map(|c| (c.type_.as_str(), c.reason.as_str(), c.last_transition_time.0.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                ("Foreign", "Old", "t0"),
                ("A", "Same", "t0"),
                ("B", "Changed", "t1"),
                ("C", "New", "t1"),
            ]
        );
        assert_eq!(merged[0].observed_generation, Some(1), "foreign kept as is");
        assert_eq!(merged[1].observed_generation, Some(7));
    }

    /// A Service has no `metadata.generation`: its conditions carry none, as the server
    /// stores them, so merging into what was stored changes nothing.
    #[test]
    fn no_generation_writes_no_observed_generation() {
        let now = Timestamp("t1".into());
        let wanted = || vec![Wanted::new("A", ConditionStatus::True, "R", "m")];
        let written = merge(&[], wanted(), &now, Some(0));
        assert_eq!(written[0].observed_generation, None);
        assert_eq!(merge(&written, wanted(), &Timestamp("t2".into()), Some(0)), written);
    }
}
