//! Address pools as sorted, disjoint intervals of `u128`, never as address lists.
//!
//! A class pool may be an IPv6 `/64` (2^64 addresses), so nothing here enumerates a pool:
//! parsing yields intervals, sizes are sums of interval lengths, and the free set is a map of
//! free intervals that allocation splits.
//!
//! ```text
//!  "10.0.0.0/30", "10.0.0.2-10.0.0.9"  ─parse─►  [10.0.0.0 ..= 10.0.0.9]   (merged, v4)
//!  free set (union of all pools)  ─take 10.0.0.4─►  [10.0.0.0..=10.0.0.3] [10.0.0.5..=10.0.0.9]
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::Error;

/// Address family of an interval or an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Family {
    /// IPv4, values below 2^32.
    #[serde(rename = "IPv4")]
    V4,
    /// IPv6.
    #[serde(rename = "IPv6")]
    V6,
}

impl Family {
    /// The family of `ip`.
    pub fn of_ip(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// Address families in preference order, each once (a Service's `spec.ipFamilies`), held in
/// place: every Service has one, and a vector each would be a heap allocation per Service.
/// Empty allows both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Vec<Family>", into = "Vec<Family>")]
pub struct Families {
    items: [Family; 2],
    len: u8,
}

impl Default for Families {
    fn default() -> Self {
        Self::new(&[])
    }
}

impl From<Vec<Family>> for Families {
    fn from(preferred: Vec<Family>) -> Self {
        Self::new(&preferred)
    }
}

impl From<Families> for Vec<Family> {
    fn from(f: Families) -> Self {
        f.as_slice().to_vec()
    }
}

impl FromIterator<Family> for Families {
    fn from_iter<I: IntoIterator<Item = Family>>(items: I) -> Self {
        Self::new(&items.into_iter().collect::<Vec<_>>())
    }
}

impl Families {
    /// `preferred` without repeats.
    pub fn new(preferred: &[Family]) -> Self {
        let mut out = Self { items: [Family::V4; 2], len: 0 };
        for &f in preferred {
            if !out.as_slice().contains(&f) {
                out.items[usize::from(out.len)] = f;
                out.len += 1;
            }
        }
        out
    }

    /// The families; empty allows both.
    pub fn as_slice(&self) -> &[Family] {
        &self.items[..usize::from(self.len)]
    }
}

/// One address as a family plus an integer, so pools can do arithmetic on it.
///
/// Ordering is IPv4 before IPv6, then numeric: the order "lowest free address" refers to.
///
/// Aligned to 8 bytes rather than `u128`'s 16, which makes it 24 bytes instead of 32: every
/// slot and every allocated IP of a run holds one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(C, packed(8))]
pub struct Addr {
    /// Family of the address.
    pub family: Family,
    /// The address as an integer (IPv4 uses the low 32 bits).
    pub value: u128,
}

const _: () = assert!(std::mem::size_of::<Addr>() == 24);

impl Addr {
    /// Converts a standard address.
    pub fn from_ip(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self { family: Family::V4, value: u128::from(u32::from(v4)) },
            IpAddr::V6(v6) => Self { family: Family::V6, value: u128::from(v6) },
        }
    }

    /// Parses one address, trimming nothing: callers decide about whitespace.
    pub fn parse(text: &str) -> Option<Self> {
        text.parse::<IpAddr>().ok().map(Self::from_ip)
    }

    /// Converts back to a standard address.
    pub fn to_ip(self) -> IpAddr {
        match self.family {
            // IPv4 values are built from u32 only, so the truncation never loses bits.
            Family::V4 => IpAddr::V4(Ipv4Addr::from(self.value as u32)),
            Family::V6 => IpAddr::V6(Ipv6Addr::from(self.value)),
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_ip().fmt(f)
    }
}

/// A closed interval `start..=end` of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    /// Family of both ends.
    pub family: Family,
    /// First address.
    pub start: u128,
    /// Last address (inclusive, so a full IPv6 space is representable).
    pub end: u128,
}

impl Interval {
    /// Number of addresses; `None` only for the whole IPv6 space (2^128 does not fit).
    pub fn size(&self) -> Option<u128> {
        (self.end - self.start).checked_add(1)
    }

    /// Whether `addr` lies inside.
    pub fn contains(&self, addr: Addr) -> bool {
        addr.family == self.family && self.start <= addr.value && addr.value <= self.end
    }

    /// Whether two intervals share at least one address.
    pub fn overlaps(&self, other: &Interval) -> bool {
        self.family == other.family && self.start <= other.end && other.start <= self.end
    }

    /// Parses `a.b.c.d/nn`, an IPv6 CIDR, `a-b` of one family, or a single address.
    ///
    /// A CIDR with host bits set (`10.0.0.7/24`) is accepted as its network, as `ip route`
    /// does, because the CRD schema cannot express "network address only".
    pub fn parse(entry: &str) -> Result<Self, Error> {
        let text = entry.trim();
        if let Some((ip, len)) = text.split_once('/') {
            let addr = Addr::parse(ip.trim())
                .ok_or_else(|| Error::InvalidAddress { entry: entry.to_owned() })?;
            let bits: u32 = match addr.family {
                Family::V4 => 32,
                Family::V6 => 128,
            };
            let prefix: u32 = len
                .trim()
                .parse()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| Error::InvalidPrefix { entry: entry.to_owned() })?;
            let host_bits = bits - prefix;
            // `checked_shl` fails for a shift of 128 (an IPv6 /0): then every bit is a host bit.
            let host_mask = 1u128.checked_shl(host_bits).map_or(u128::MAX, |v| v.wrapping_sub(1));
            let start = addr.value & !host_mask;
            return Ok(Self { family: addr.family, start, end: start | host_mask });
        }
        if let Some((a, b)) = text.split_once('-') {
            let (Some(first), Some(last)) = (Addr::parse(a.trim()), Addr::parse(b.trim())) else {
                return Err(Error::InvalidAddress { entry: entry.to_owned() });
            };
            if first.family != last.family {
                return Err(Error::MixedFamilies { entry: entry.to_owned() });
            }
            if first.value > last.value {
                return Err(Error::ReversedRange { entry: entry.to_owned() });
            }
            return Ok(Self { family: first.family, start: first.value, end: last.value });
        }
        let addr =
            Addr::parse(text).ok_or_else(|| Error::InvalidAddress { entry: entry.to_owned() })?;
        Ok(Self { family: addr.family, start: addr.value, end: addr.value })
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let start = Addr { family: self.family, value: self.start };
        let end = Addr { family: self.family, value: self.end };
        write!(f, "{start}-{end}")
    }
}

/// Number of addresses in a pool. IPv6 pools can hold up to 2^128 addresses per family,
/// one more than `u128` holds, so the count says when it saturated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PoolSize {
    /// Exact count, or `u128::MAX` when saturated.
    count: u128,
    /// The true count exceeds `u128::MAX`.
    saturated: bool,
}

impl PoolSize {
    /// An exact count.
    pub fn exact(count: u128) -> Self {
        Self { count, saturated: false }
    }

    /// Adds an interval's length, saturating at "more than `u128::MAX`".
    fn add_interval(self, interval: &Interval) -> Self {
        match interval.size().and_then(|len| self.count.checked_add(len)) {
            Some(count) if !self.saturated => Self::exact(count),
            _ => Self { count: u128::MAX, saturated: true },
        }
    }

    /// The count when it fits in `u128`.
    pub fn get(&self) -> Option<u128> {
        (!self.saturated).then_some(self.count)
    }

    /// Decimal text for a status field; exact even past `u128` for the one value a pool can
    /// reach there (a full IPv6 space plus IPv4 ranges is still shown as a lower bound with `+`).
    pub fn to_decimal(&self) -> String {
        if self.saturated {
            // 2^128: a whole IPv6 space; anything larger also has IPv4 addresses, shown as "+".
            "340282366920938463463374607431768211456+".to_owned()
        } else {
            self.count.to_string()
        }
    }
}

/// A parsed pool: sorted, merged, disjoint intervals plus the entries that failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pool {
    intervals: Vec<Interval>,
    errors: Vec<Error>,
}

impl Pool {
    /// Parses every entry; bad entries are kept as errors and the good ones still form the pool,
    /// so one typo does not take a whole class down.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Self {
        let mut intervals = Vec::with_capacity(entries.len());
        let mut errors = Vec::new();
        for entry in entries {
            match Interval::parse(entry.as_ref()) {
                Ok(interval) => intervals.push(interval),
                Err(err) => errors.push(err),
            }
        }
        Self { intervals: merge(intervals), errors }
    }

    /// The merged intervals in address order.
    pub fn intervals(&self) -> &[Interval] {
        &self.intervals
    }

    /// Entries that did not parse.
    pub fn errors(&self) -> &[Error] {
        &self.errors
    }

    /// Whether `addr` lies in the pool (binary search over the merged intervals).
    pub fn contains(&self, addr: Addr) -> bool {
        let idx =
            self.intervals.partition_point(|iv| (iv.family, iv.end) < (addr.family, addr.value));
        self.intervals.get(idx).is_some_and(|iv| iv.contains(addr))
    }

    /// Whether two pools share an address.
    pub fn overlaps(&self, other: &Pool) -> bool {
        let (mut i, mut j) = (0, 0);
        while let (Some(a), Some(b)) = (self.intervals.get(i), other.intervals.get(j)) {
            if a.overlaps(b) {
                return true;
            }
            if (a.family, a.end) < (b.family, b.end) {
                i += 1;
            } else {
                j += 1;
            }
        }
        false
    }

    /// Total number of addresses.
    pub fn size(&self) -> PoolSize {
        self.intervals.iter().fold(PoolSize::default(), |size, iv| size.add_interval(iv))
    }
}

/// Sorts and merges touching or overlapping intervals of the same family.
fn merge(mut intervals: Vec<Interval>) -> Vec<Interval> {
    intervals.sort();
    let mut out: Vec<Interval> = Vec::with_capacity(intervals.len());
    for iv in intervals {
        match out.last_mut() {
            Some(last)
                if last.family == iv.family
                    && (iv.start <= last.end || iv.start - last.end == 1) =>
            {
                last.end = last.end.max(iv.end);
            }
            _ => out.push(iv),
        }
    }
    out
}

/// Free addresses of the union of every pool, as a map `start → (family, end)`.
///
/// IPs are unique across classes even when pools overlap, so there is one free set for the
/// whole cluster; a class searches it restricted to its own intervals.
#[derive(Debug, Clone, Default)]
pub(crate) struct FreeSet {
    free: BTreeMap<(Family, u128), u128>,
}

impl FreeSet {
    /// Starts with every address of every pool free.
    pub(crate) fn new<'a>(pools: impl IntoIterator<Item = &'a Pool>) -> Self {
        let all = pools.into_iter().flat_map(|p| p.intervals.iter().copied()).collect();
        let free = merge(all).into_iter().map(|iv| ((iv.family, iv.start), iv.end)).collect();
        Self { free }
    }

    /// Marks `addr` as taken; returns false when it was not free.
    pub(crate) fn take(&mut self, addr: Addr) -> bool {
        let Some((&(family, start), &end)) =
            self.free.range(..=(addr.family, addr.value)).next_back()
        else {
            return false;
        };
        if family != addr.family || addr.value > end {
            return false;
        }
        self.free.remove(&(family, start));
        if start < addr.value {
            self.free.insert((family, start), addr.value - 1);
        }
        if addr.value < end {
            self.free.insert((family, addr.value + 1), end);
        }
        true
    }

    /// The lowest free address inside `pool`, restricted to `families` (in preference order;
    /// empty = every family, IPv4 first).
    pub(crate) fn lowest_in(&self, pool: &Pool, families: &[Family]) -> Option<Addr> {
        let all = [Family::V4, Family::V6];
        let order = if families.is_empty() { &all[..] } else { families };
        order.iter().find_map(|&family| {
            pool.intervals
                .iter()
                .filter(|iv| iv.family == family)
                .find_map(|iv| self.lowest_in_interval(iv))
        })
    }

    /// The lowest free address inside one interval: O(log n).
    pub(crate) fn lowest_in_interval(&self, iv: &Interval) -> Option<Addr> {
        let covering = self
            .free
            .range(..=(iv.family, iv.start))
            .next_back()
            .filter(|&(&(family, _), &end)| family == iv.family && end >= iv.start)
            .map(|_| iv.start);
        let value = covering.or_else(|| {
            self.free
                .range((iv.family, iv.start)..=(iv.family, iv.end))
                .next()
                .map(|(&(_, start), _)| start)
        })?;
        Some(Addr { family: iv.family, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(text: &str) -> Addr {
        Addr::parse(text).unwrap()
    }

    #[test]
    fn parses_every_entry_form() {
        const CASES: [(&str, &str, u128); 7] = [
            ("10.0.0.0/24", "10.0.0.0-10.0.0.255", 256),
            ("10.0.0.7/30", "10.0.0.4-10.0.0.7", 4),
            ("10.0.0.5/32", "10.0.0.5-10.0.0.5", 1),
            (" 10.33.5.100 - 10.33.5.106 ", "10.33.5.100-10.33.5.106", 7),
            ("192.0.2.9", "192.0.2.9-192.0.2.9", 1),
            ("2001:db8::/126", "2001:db8::-2001:db8::3", 4),
            ("2001:db8::/64", "2001:db8::-2001:db8::ffff:ffff:ffff:ffff", 1 << 64),
        ];
        for (entry, shown, len) in CASES {
            let iv = Interval::parse(entry).unwrap();
            assert_eq!(iv.to_string(), shown, "{entry}");
            assert_eq!(iv.size(), Some(len), "{entry}");
        }
    }

    #[test]
    fn rejects_malformed_entries_with_typed_errors() {
        type Check = fn(&Error) -> bool;
        let cases: [(&str, Check); 7] = [
            ("10.0.0.0/33", |e| matches!(e, Error::InvalidPrefix { .. })),
            ("10.0.0.0/x", |e| matches!(e, Error::InvalidPrefix { .. })),
            ("10.0.0/24", |e| matches!(e, Error::InvalidAddress { .. })),
            ("10.0.0.9-10.0.0.1", |e| matches!(e, Error::ReversedRange { .. })),
            ("10.0.0.1-2001:db8::1", |e| matches!(e, Error::MixedFamilies { .. })),
            ("", |e| matches!(e, Error::InvalidAddress { .. })),
            ("10.0.0.1-", |e| matches!(e, Error::InvalidAddress { .. })),
        ];
        for (entry, expected) in cases {
            let err = Interval::parse(entry).unwrap_err();
            assert!(expected(&err), "{entry}: {err:?}");
        }
    }

    #[test]
    fn whole_ipv6_space_saturates_the_size() {
        let pool = Pool::parse(&["::/0", "10.0.0.0/31"]);
        assert_eq!(pool.size().get(), None);
        assert!(pool.size().to_decimal().starts_with("340282366920938463463374607431768211456"));
        let v6_64 = Pool::parse(&["2001:db8::/64", "10.0.0.0/31"]);
        assert_eq!(v6_64.size().get(), Some((1 << 64) + 2));
        assert_eq!(v6_64.size().to_decimal(), "18446744073709551618");
    }

    #[test]
    fn merges_and_keeps_bad_entries_as_errors() {
        let pool = Pool::parse(&["10.0.0.4/30", "10.0.0.0-10.0.0.4", "bogus", "10.0.0.8"]);
        assert_eq!(pool.intervals().len(), 1);
        assert_eq!(pool.intervals()[0].to_string(), "10.0.0.0-10.0.0.8");
        assert_eq!(pool.errors().len(), 1);
        assert!(pool.contains(v4("10.0.0.8")));
        assert!(!pool.contains(v4("10.0.0.9")));
        assert!(!pool.contains(Addr::parse("::a00:1").unwrap()));
    }

    #[test]
    fn overlap_detection() {
        let a = Pool::parse(&["10.0.0.0/24"]);
        let b = Pool::parse(&["10.0.0.255-10.0.1.3"]);
        let c = Pool::parse(&["10.0.1.0/24", "2001:db8::/64"]);
        assert!(a.overlaps(&b));
        assert!(b.overlaps(&c));
        assert!(!a.overlaps(&c));
    }

    #[test]
    fn free_set_takes_and_finds_lowest_without_enumerating() {
        let pool = Pool::parse(&["2001:db8::/64", "10.0.0.0/30"]);
        let mut free = FreeSet::new([&pool]);
        assert_eq!(free.lowest_in(&pool, &[]), Some(v4("10.0.0.0")));
        assert!(free.take(v4("10.0.0.0")));
        assert!(!free.take(v4("10.0.0.0")));
        assert!(free.take(v4("10.0.0.2")));
        assert_eq!(free.lowest_in(&pool, &[]), Some(v4("10.0.0.1")));
        assert!(free.take(v4("10.0.0.1")));
        assert!(free.take(v4("10.0.0.3")));
        assert_eq!(free.lowest_in(&pool, &[]), Some(Addr::parse("2001:db8::").unwrap()));
        assert_eq!(free.lowest_in(&pool, &[Family::V6]), Some(Addr::parse("2001:db8::").unwrap()));
        assert!(!free.take(v4("10.0.0.3")));
        let narrow = Pool::parse(&["10.0.0.0/31"]);
        assert_eq!(free.lowest_in(&narrow, &[]), None);
    }
}
