//! Small sorted string collections held per Service: [`StringMap`] (annotations, selector) and
//! [`StringSet`] (nodes with a ready endpoint).

use std::fmt;

use compact_str::CompactString;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A map of strings kept as one vector sorted by key.
///
/// A Service's annotations and selector hold one or two entries each. A `BTreeMap` allocates a
/// 544-byte node for its first entry whatever it holds, which at 30k Services was more memory
/// than the entries themselves; a sorted vector holds exactly its entries. Lookups are binary
/// searches; inserts shift, which is cheap at these sizes. Serialized as a JSON object, in key
/// order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StringMap(Vec<(CompactString, CompactString)>);

impl StringMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.position(key).ok().map(|i| self.0[i].1.as_str())
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Sets `key` to `value`; returns the previous value.
    pub fn insert(
        &mut self,
        key: impl Into<CompactString>,
        value: impl Into<CompactString>,
    ) -> Option<CompactString> {
        let (key, value) = (key.into(), value.into());
        match self.position(&key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Later entries win, as in a JSON object with a repeated key.
impl<K: Into<CompactString>, V: Into<CompactString>> FromIterator<(K, V)> for StringMap {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self {
        let mut map = Self::new();
        for (k, v) in entries {
            map.insert(k, v);
        }
        map.0.shrink_to_fit();
        map
    }
}

impl<K: Into<CompactString>, V: Into<CompactString>, const N: usize> From<[(K, V); N]>
    for StringMap
{
    fn from(entries: [(K, V); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl Serialize for StringMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for StringMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = StringMap;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of strings")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StringMap, A::Error> {
                let mut map = StringMap(Vec::with_capacity(access.size_hint().unwrap_or(0)));
                while let Some((k, v)) = access.next_entry::<CompactString, CompactString>()? {
                    map.insert(k, v);
                }
                map.0.shrink_to_fit();
                Ok(map)
            }
        }
        d.deserialize_map(MapVisitor)
    }
}

/// A set of strings kept as one sorted vector, for the same reason as [`StringMap`]: a
/// Service's endpoint nodes are one or two names, and a `BTreeSet` allocates a node of eleven
/// for the first. Serialized as a JSON array, in order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(from = "Vec<CompactString>")]
pub struct StringSet(Vec<CompactString>);

impl StringSet {
    /// Whether `item` is in the set.
    pub fn contains(&self, item: &str) -> bool {
        self.0.binary_search_by(|x| x.as_str().cmp(item)).is_ok()
    }

    /// The number of items.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The items in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(CompactString::as_str)
    }
}

impl From<Vec<CompactString>> for StringSet {
    fn from(mut items: Vec<CompactString>) -> Self {
        items.sort_unstable();
        items.dedup();
        items.shrink_to_fit();
        Self(items)
    }
}

impl<T: Into<CompactString>> FromIterator<T> for StringSet {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        items.into_iter().map(Into::into).collect::<Vec<_>>().into()
    }
}

impl<T: Into<CompactString>> Extend<T> for StringSet {
    fn extend<I: IntoIterator<Item = T>>(&mut self, items: I) {
        let mut all = std::mem::take(&mut self.0);
        all.extend(items.into_iter().map(Into::into));
        *self = all.into();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn lookups_inserts_and_json() {
        let mut m = StringMap::from([("b", "2"), ("a", "1"), ("b", "3")]);
        assert_eq!(m.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "3")]);
        assert_eq!((m.get("a"), m.get("c"), m.contains_key("b")), (Some("1"), None, true));
        assert_eq!(m.insert("a", "9").as_deref(), Some("1"));
        assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"a":"9","b":"3"}"#);
        let back: StringMap = serde_json::from_str(r#"{"b":"3","a":"9"}"#).unwrap();
        assert_eq!(back, m);
        assert!(serde_json::from_str::<StringMap>(r#"{"a":1}"#).is_err());
        m.clear();
        assert!(m.is_empty());
    }

    #[test]
    fn sets_sort_dedup_and_extend() {
        let mut set = StringSet::from_iter(["b", "a", "b"]);
        assert_eq!(set.iter().collect::<Vec<_>>(), ["a", "b"]);
        set.extend(["c", "a"]);
        assert_eq!((set.len(), set.contains("c"), set.contains("d")), (3, true, false));
        assert_eq!(serde_json::to_string(&set).unwrap(), r#"["a","b","c"]"#);
        let back: StringSet = serde_json::from_str(r#"["c","a","b","a"]"#).unwrap();
        assert_eq!(back, set);
        assert!(StringSet::default().is_empty());
    }

    proptest! {
        /// Behaves as a `BTreeMap` of the same inserts, in content, order and JSON.
        #[test]
        fn matches_a_btree_map(entries in prop::collection::vec(("[a-d]{0,2}", "[x-z]{0,2}"), 0..12)) {
            let ours: StringMap = entries.iter().cloned().collect();
            let theirs: BTreeMap<String, String> = entries.into_iter().collect();
            prop_assert_eq!(ours.len(), theirs.len());
            prop_assert!(ours.iter().eq(theirs.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
            prop_assert_eq!(serde_json::to_string(&ours).unwrap(), serde_json::to_string(&theirs).unwrap());
        }
    }
}
