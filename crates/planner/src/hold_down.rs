//! Failback hold-down: a node that has just become a healthy candidate again gets no new IP
//! for a while.
//!
//! When a node fails, its IPs move to other nodes at once. When it comes back, the distinct-node
//! rule would move one of them back on the next run, which breaks that IP's connections a second
//! time; a node that flaps would break them twice per flap. So a node is *held down* while
//! `healthy_since + hold_down > now`: it keeps the IPs it still has, but placement does not
//! move an IP to it (nor choose it as a backup) while another candidate exists. An IP that never
//! had a node (a new Service) may go there: that breaks no connection. When the hold-down ends,
//! the next run moves IPs back where the distinct-node rule wants them.
//!
//! The planner reads no clock: `now` and `healthy_since` come in as RFC 3339 time stamps in the
//! [`Input`](crate::Input). A time stamp that does not parse means "not held down", so a bad
//! clock value never keeps an IP off a node for good.

use crate::model::{Input, NodeInput, Timestamp};

/// Whether a node may take new IPs now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldDown {
    /// Free to take IPs: healthy for at least the hold-down time, or since an unknown time.
    Clear,
    /// Became healthy recently; takes no new IP until `until` (Unix seconds).
    Held {
        /// When the hold-down ends, in Unix seconds.
        until: i64,
    },
}

impl HoldDown {
    /// The node's state at `input.now` under `input.failback_hold_down_seconds`.
    pub fn of(input: &Input, node: &NodeInput) -> Self {
        if input.failback_hold_down_seconds == 0 {
            return Self::Clear;
        }
        let (Some(now), Some(since)) =
            (unix_seconds(&input.now), node.healthy_since.as_ref().and_then(unix_seconds))
        else {
            return Self::Clear;
        };
        let until = since.saturating_add(i64::from(input.failback_hold_down_seconds));
        if until > now { Self::Held { until } } else { Self::Clear }
    }

    /// Held down at the time it was computed for.
    pub fn is_held(self) -> bool {
        matches!(self, Self::Held { .. })
    }
}

/// Whether some node's hold-down is running, or ended within the last `window` seconds: a
/// periodic caller that sees `true` must plan again, so that the IPs held away from a node move
/// back once its hold-down ends. The window covers the caller's period and its jitter.
pub fn failback_due(input: &Input, window: u32) -> bool {
    let Some(now) = unix_seconds(&input.now) else { return false };
    if input.failback_hold_down_seconds == 0 {
        return false;
    }
    input.nodes.iter().any(|n| {
        n.healthy_since.as_ref().and_then(unix_seconds).is_some_and(|since| {
            let until = since.saturating_add(i64::from(input.failback_hold_down_seconds));
            until > now.saturating_sub(i64::from(window))
        })
    })
}

/// Seconds since the Unix epoch of an RFC 3339 time stamp as Kubernetes writes them
/// (`2026-12-06T23:59:37Z`, optionally with fractional seconds or a numeric offset).
pub fn unix_seconds(ts: &Timestamp) -> Option<i64> {
    let s = ts.0.as_str();
    let (date, rest) = s.split_once(['T', 't'])?;
    let mut d = date.splitn(3, '-');
    let (year, month, day) = (num(d.next()?, 4)?, num(d.next()?, 2)?, num(d.next()?, 2)?);
    if rest.len() < 8 || !rest.is_char_boundary(8) {
        return None;
    }
    let (clock, zone) = rest.split_at(8);
    let mut c = clock.splitn(3, ':');
    let (hour, minute, second) = (num(c.next()?, 2)?, num(c.next()?, 2)?, num(c.next()?, 2)?);
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let zone = match zone.strip_prefix('.') {
        Some(frac) => {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            &frac[digits..]
        }
        None => zone,
    };
    let offset = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = match zone.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = zone[1..].split_once(':')?;
            let (h, m) = (num(h, 2)?, num(m, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// A fixed-width decimal field.
fn num(s: &str, width: usize) -> Option<i64> {
    (s.len() == width && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`:
/// eras of 400 years, each 146 097 days, with the year starting in March so that the leap day
/// comes last).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp(s.into())
    }

    #[test]
    fn parses_what_kubernetes_writes() {
        let cases = [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2000-02-29T12:00:00Z", Some(951_825_600)),
            ("2026-12-06T23:59:37Z", Some(1_796_601_577)),
            ("2026-12-06T23:59:37.123456Z", Some(1_796_601_577)),
            ("2026-12-07T01:59:37+02:00", Some(1_796_601_577)),
            ("2026-12-06T20:59:37-03:00", Some(1_796_601_577)),
            ("1969-12-31T23:59:59Z", Some(-1)),
            ("", None),
            ("2026-12-06", None),
            ("2026-13-01T00:00:00Z", None),
            ("2026-02-29T00:00:00Z", None),
            ("2026-12-06T24:00:00Z", None),
            ("2026-12-06T23:59:37", None),
            ("2026-12-06T23:59:37.Z", None),
            ("2026-12-06T23:59:37+2:00", None),
            ("2026-1-06T23:59:37Z", None),
            ("2026-12-06T23:59:3éZ", None),
        ];
        for (text, want) in cases {
            assert_eq!(unix_seconds(&ts(text)), want, "{text:?}");
        }
    }

    fn input(hold: u32, now: &str, since: Option<&str>) -> Input {
        Input {
            now: ts(now),
            failback_hold_down_seconds: hold,
            nodes: vec![NodeInput {
                name: "n".into(),
                ready: true,
                speaker_ready: true,
                healthy_since: since.map(ts),
                ..NodeInput::default()
            }],
            ..Input::default()
        }
    }

    #[test]
    fn held_while_recent() {
        let cases = [
            (60, "2026-01-01T00:01:00Z", Some("2026-01-01T00:00:30Z"), true),
            (60, "2026-01-01T00:01:00Z", Some("2026-01-01T00:00:00Z"), false),
            (60, "2026-01-01T00:01:00Z", Some("2026-01-01T00:00:01Z"), true),
            (0, "2026-01-01T00:01:00Z", Some("2026-01-01T00:01:00Z"), false),
            (60, "2026-01-01T00:01:00Z", None, false),
            (60, "garbage", Some("2026-01-01T00:01:00Z"), false),
            (60, "2026-01-01T00:01:00Z", Some("garbage"), false),
            // A clock ahead of ours: held, but never longer than since + hold.
            (60, "2026-01-01T00:01:00Z", Some("2026-01-01T00:01:30Z"), true),
        ];
        for (hold, now, since, held) in cases {
            let i = input(hold, now, since);
            assert_eq!(HoldDown::of(&i, &i.nodes[0]).is_held(), held, "{hold} {now} {since:?}");
        }
    }

    #[test]
    fn failback_due_covers_the_window_after_the_end() {
        let i = input(60, "2026-01-01T00:01:10Z", Some("2026-01-01T00:00:00Z"));
        assert!(failback_due(&i, 30), "ended 10 s ago, window 30 s");
        assert!(!failback_due(&i, 5), "ended 10 s ago, window 5 s");
        let i = input(60, "2026-01-01T00:00:10Z", Some("2026-01-01T00:00:00Z"));
        assert!(failback_due(&i, 0), "still running");
        let i = input(0, "2026-01-01T00:00:10Z", Some("2026-01-01T00:00:00Z"));
        assert!(!failback_due(&i, 30), "hold-down off");
    }
}
