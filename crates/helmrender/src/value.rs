//! Values between JSON (how values, schemas and rendered objects are handled in Rust) and the
//! template engine's own value type.

use std::collections::BTreeMap;
use std::sync::Arc;

use gotmpl::Value;
use serde_json::Value as Json;

use crate::{Error, Result};

/// JSON → template value. Integers stay integers (Helm's YAML values keep them too), objects
/// become maps, whose keys the engine keeps sorted as Go does.
pub fn from_json(json: &Json) -> Result<Value> {
    Ok(match json {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::Int(i),
            (None, Some(u), _) => Value::Uint(u),
            (None, None, Some(f)) => Value::Float(f),
            (None, None, None) => return Err(Error::Value(format!("number {n} out of range"))),
        },
        Json::String(s) => Value::String(s.as_str().into()),
        Json::Array(items) => {
            Value::List(items.iter().map(from_json).collect::<Result<Vec<_>>>()?.into())
        }
        Json::Object(map) => {
            let mut out = BTreeMap::new();
            for (key, value) in map {
                out.insert(Arc::<str>::from(key.as_str()), from_json(value)?);
            }
            Value::Map(Arc::new(out))
        }
    })
}

/// Template value → JSON, for `toYaml` and for tests. Functions have no JSON form.
pub fn to_json(value: &Value) -> Result<Json> {
    Ok(match value {
        Value::Nil => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Uint(u) => Json::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .ok_or_else(|| Error::Value(format!("{f} has no JSON form")))?,
        Value::String(s) => Json::String(s.to_string()),
        Value::List(items) => Json::Array(items.iter().map(to_json).collect::<Result<_>>()?),
        Value::Map(map) => Json::Object(
            map.iter().map(|(k, v)| Ok((k.to_string(), to_json(v)?))).collect::<Result<_>>()?,
        ),
        Value::Function(_) => return Err(Error::Value("a function has no JSON form".into())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips() {
        let json = serde_json::json!({
            "b": [1, -2, 3.5, "x", null, true, {"z": u64::MAX}],
            "a": {},
        });
        let back = to_json(&from_json(&json).unwrap()).unwrap();
        assert_eq!(back, json);
    }

    #[test]
    fn nan_and_functions_have_no_json_form() {
        assert!(to_json(&Value::Float(f64::NAN)).is_err());
        let f: gotmpl::ValueFunc = Arc::new(|_| Ok(Value::Nil));
        assert!(to_json(&Value::Function(f)).is_err());
    }
}
