//! The failback timer: the end of a node's failback hold-down is no Kubernetes event, so
//! `discovery` has a schedule binding that re-plans while a hold-down runs or has just ended,
//! and returns at once otherwise (see `metallb_planner::hold_down`).

use addon::{HookInput, ScheduleBinding};
use metallb_planner::Timestamp;
use serde_json::Value;

use super::read::{self, Snapshots};
use crate::order;
use crate::types::node;

/// The schedule binding's name.
const TIMER: &str = "failback";

/// Period of the timer: how late after its hold-down ends an IP moves back at most.
const CRONTAB: &str = "*/10 * * * * *";

/// A timer run plans again while a hold-down ended less than this long ago: three periods,
/// so a late or skipped tick of the framework's cron still sees the end.
const WINDOW_SECONDS: u32 = 30;

/// Default of `failbackHoldDownSeconds` (also in `openapi/config-values.yaml`): long enough to
/// ride out a node that flaps (a kubelet restart, a link that bounces), short enough that a
/// repaired node carries its share again within a minute or two.
const DEFAULT_HOLD_DOWN_SECONDS: u32 = 60;

/// The schedule binding, in the module's queue.
pub(super) fn timer() -> ScheduleBinding {
    ScheduleBinding { queue: Some(order::QUEUE.into()), ..ScheduleBinding::new(TIMER, CRONTAB) }
}

/// The module setting `failbackHoldDownSeconds`; the default when absent or unreadable, so a
/// bad value never turns the hold-down off.
pub(super) fn hold_down_seconds(values: &Value) -> u32 {
    values
        .pointer("/failbackHoldDownSeconds")
        .and_then(Value::as_u64)
        .and_then(|s| u32::try_from(s).ok())
        .unwrap_or(DEFAULT_HOLD_DOWN_SECONDS)
}

/// Whether this run was started by the timer alone.
pub(super) fn timer_only(input: &HookInput) -> bool {
    let contexts = input.binding_contexts();
    !contexts.is_empty() && contexts.iter().all(|c| c.binding == TIMER)
}

/// Whether a node's hold-down is running or just ended, from the nodes and speakers alone.
pub(super) fn due(s: &Snapshots<'_>, now: &Timestamp) -> bool {
    let mut nodes = node::read_all(&s.nodes, &mut Vec::new());
    read::apply_speaker_readiness(&mut nodes, &s.speakers);
    let probe = metallb_planner::Input {
        now: now.clone(),
        nodes,
        failback_hold_down_seconds: s.failback_hold_down_seconds,
        ..Default::default()
    };
    metallb_planner::hold_down::failback_due(&probe, WINDOW_SECONDS)
}
