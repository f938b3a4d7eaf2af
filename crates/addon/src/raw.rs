//! JSON kept as its text.
//!
//! Snapshot items and the objects a hook writes are the bulk of a run: tens of thousands of
//! Services and their children. Held as [`serde_json::Value`] trees they take several times the
//! text they come from (a map, a hash index and a heap string per key), and building and freeing
//! those trees is most of a large run's time. [`RawJson`] keeps the text: a hook deserializes each
//! item into the typed, compact structure it needs (borrowing strings from the text), and writes
//! objects serialized once from typed structures.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// One JSON document as compact text, validated when it was made.
#[derive(Clone)]
pub struct RawJson(Box<RawValue>);

impl RawJson {
    /// Serializes `value` once.
    pub fn new<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Self> {
        serde_json::value::to_raw_value(value).map(Self)
    }

    /// `null`.
    pub fn null() -> Self {
        Self(RawValue::NULL.to_owned())
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The text as serde_json's borrowed raw value, to deserialize from without a copy.
    pub fn as_raw(&self) -> &RawValue {
        &self.0
    }

    /// Whether the document is `null` (a jq filter that left the object out).
    pub fn is_null(&self) -> bool {
        self.get() == "null"
    }

    /// Deserializes the text; strings of `T` may borrow from it.
    pub fn parse<'a, T: Deserialize<'a>>(&'a self) -> serde_json::Result<T> {
        serde_json::from_str(self.get())
    }

    /// Deserializes the text into an owned value.
    pub fn parse_owned<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(self.get())
    }

    /// The document as a generic tree (for small documents and tests).
    pub fn to_value(&self) -> serde_json::Result<Value> {
        self.parse_owned()
    }
}

impl From<&Value> for RawJson {
    fn from(value: &Value) -> Self {
        // Serializing a `Value` into memory cannot fail: its map keys are strings and writing to
        // a `Vec` does not fail. The fallback only keeps this conversion free of a panic.
        Self::new(value).unwrap_or_else(|_| Self::null())
    }
}

impl From<Value> for RawJson {
    fn from(value: Value) -> Self {
        Self::from(&value)
    }
}

/// Equal text; both sides come out of serde_json compact, so equal documents built the same way
/// compare equal (key order is part of the text).
impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl fmt::Debug for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl fmt::Display for RawJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.get())
    }
}

impl Serialize for RawJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(d).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_text_and_parses_borrowed() {
        let raw: RawJson = serde_json::from_str(r#" {"name": "a", "n": 1} "#).unwrap();
        assert_eq!(raw.get(), r#"{"name": "a", "n": 1}"#, "inner text kept as written");
        #[derive(Deserialize)]
        struct Item<'a> {
            name: &'a str,
        }
        assert_eq!(raw.parse::<Item<'_>>().unwrap().name, "a");
        assert_eq!(raw.to_value().unwrap(), json!({"name": "a", "n": 1}));
        assert_eq!(serde_json::to_string(&raw).unwrap(), r#"{"name": "a", "n": 1}"#);
    }

    #[test]
    fn null_and_conversions() {
        assert!(RawJson::null().is_null());
        assert!(serde_json::from_str::<RawJson>("null").unwrap().is_null());
        assert_eq!(RawJson::from(json!({"a": [1, "x"]})).get(), r#"{"a":[1,"x"]}"#);
        assert_eq!(RawJson::from(json!(1)), RawJson::new(&1).unwrap());
        assert_ne!(RawJson::from(json!(1)), RawJson::null());
    }
}
