//! RFC 6902 JSON patch operations, JSON pointers (RFC 6901) and a strict applier.
//!
//! The framework applies values patches strictly: `add` needs an existing parent, `remove` needs an
//! existing target (`reference/addon-operator.md` §3.1). [`apply`] follows the same rules so that a
//! hook (via [`crate::PatchableValues`]) and the test kit agree with the framework on what is valid.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::{Error, Result};

/// RFC 6902 operation names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PatchOpKind {
    /// Set a member or insert into an array.
    Add,
    /// Delete an existing member or element.
    Remove,
    /// Overwrite an existing member (rejected by the framework for values).
    Replace,
    /// Move `from` to `path`.
    Move,
    /// Copy `from` to `path`.
    Copy,
    /// Fail unless `path` equals `value`.
    Test,
}

impl PatchOpKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PatchOpKind::Add => "add",
            PatchOpKind::Remove => "remove",
            PatchOpKind::Replace => "replace",
            PatchOpKind::Move => "move",
            PatchOpKind::Copy => "copy",
            PatchOpKind::Test => "test",
        }
    }
}

/// One JSON patch operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PatchOp {
    /// Operation.
    pub op: PatchOpKind,
    /// Target JSON pointer.
    pub path: String,
    /// Value of `add`/`replace`/`test`; `Some(Null)` is an explicit `null`.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// Source pointer of `move`/`copy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl PatchOp {
    /// `{"op":"add","path":path,"value":value}`.
    pub fn add(path: impl Into<String>, value: Value) -> Self {
        Self { op: PatchOpKind::Add, path: path.into(), value: Some(value), from: None }
    }

    /// `{"op":"remove","path":path}`.
    pub fn remove(path: impl Into<String>) -> Self {
        Self { op: PatchOpKind::Remove, path: path.into(), value: None, from: None }
    }

    /// `{"op":"replace","path":path,"value":value}`.
    pub fn replace(path: impl Into<String>, value: Value) -> Self {
        Self { op: PatchOpKind::Replace, path: path.into(), value: Some(value), from: None }
    }
}

/// Escapes one pointer token: `~` → `~0`, `/` → `~1`.
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Builds a pointer from unescaped tokens.
pub fn pointer<S: AsRef<str>>(tokens: impl IntoIterator<Item = S>) -> String {
    tokens.into_iter().map(|t| format!("/{}", escape_token(t.as_ref()))).collect()
}

/// Splits a pointer into unescaped tokens (`""` is the whole document).
pub fn parse_pointer(pointer: &str) -> Result<Vec<String>> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(Error::Pointer(pointer.to_owned()));
    };
    rest.split('/')
        .map(|t| {
            let bytes = t.as_bytes();
            for (i, b) in bytes.iter().enumerate() {
                if *b == b'~' && !matches!(bytes.get(i + 1), Some(b'0' | b'1')) {
                    return Err(Error::Pointer(pointer.to_owned()));
                }
            }
            Ok(t.replace("~1", "/").replace("~0", "~"))
        })
        .collect()
}

/// Looks a pointer up.
pub fn get<'a>(doc: &'a Value, pointer: &str) -> Option<&'a Value> {
    let tokens = parse_pointer(pointer).ok()?;
    let mut cur = doc;
    for t in &tokens {
        cur = match cur {
            Value::Object(m) => m.get(t)?,
            Value::Array(a) => a.get(array_index(t, a.len(), false).ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Applies operations in order, strictly; on error the document is left unchanged.
pub fn apply(doc: &mut Value, ops: &[PatchOp]) -> Result<()> {
    let mut work = doc.clone();
    for op in ops {
        apply_one(&mut work, op)?;
    }
    *doc = work;
    Ok(())
}

fn fail(op: &PatchOp, reason: &'static str) -> Error {
    Error::Patch { op: op.op.as_str(), path: op.path.clone(), reason }
}

fn apply_one(doc: &mut Value, op: &PatchOp) -> Result<()> {
    let value = || op.value.clone().ok_or_else(|| fail(op, "missing value"));
    match op.op {
        PatchOpKind::Add => insert(doc, &op.path, value()?, op),
        PatchOpKind::Remove => take(doc, &op.path, op).map(drop),
        PatchOpKind::Replace => {
            take(doc, &op.path, op)?;
            insert(doc, &op.path, value()?, op)
        }
        PatchOpKind::Move => {
            let from = op.from.as_deref().ok_or_else(|| fail(op, "missing from"))?;
            if op.path.starts_with(&format!("{from}/")) {
                return Err(fail(op, "cannot move a value into itself"));
            }
            let v = take(doc, from, op)?;
            insert(doc, &op.path, v, op)
        }
        PatchOpKind::Copy => {
            let from = op.from.as_deref().ok_or_else(|| fail(op, "missing from"))?;
            let v = get(doc, from).cloned().ok_or_else(|| fail(op, "from does not exist"))?;
            insert(doc, &op.path, v, op)
        }
        PatchOpKind::Test => match get(doc, &op.path) {
            Some(current) if *current == value()? => Ok(()),
            _ => Err(fail(op, "test failed")),
        },
    }
}

fn array_index(token: &str, len: usize, allow_end: bool) -> std::result::Result<usize, ()> {
    if token == "-" && allow_end {
        return Ok(len);
    }
    if token.is_empty() || (token.len() > 1 && token.starts_with('0')) {
        return Err(());
    }
    let i: usize = token.parse().map_err(|_| ())?;
    let max = if allow_end { len } else { len.saturating_sub(1) };
    if i > max || (!allow_end && len == 0) { Err(()) } else { Ok(i) }
}

fn parent<'a>(doc: &'a mut Value, path: &str, op: &PatchOp) -> Result<(&'a mut Value, String)> {
    let mut tokens = parse_pointer(path)?;
    let last = tokens.pop().ok_or_else(|| fail(op, "the document root cannot be targeted"))?;
    let mut cur = doc;
    for t in &tokens {
        cur = match cur {
            Value::Object(m) => m.get_mut(t).ok_or_else(|| fail(op, "parent does not exist"))?,
            Value::Array(a) => {
                let i = array_index(t, a.len(), false)
                    .map_err(|()| fail(op, "parent does not exist"))?;
                &mut a[i]
            }
            _ => return Err(fail(op, "parent is not a container")),
        };
    }
    Ok((cur, last))
}

fn insert(doc: &mut Value, path: &str, value: Value, op: &PatchOp) -> Result<()> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (container, last) = parent(doc, path, op)?;
    match container {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            let i = array_index(&last, a.len(), true)
                .map_err(|()| fail(op, "array index out of range"))?;
            a.insert(i, value);
            Ok(())
        }
        _ => Err(fail(op, "parent is not a container")),
    }
}

fn take(doc: &mut Value, path: &str, op: &PatchOp) -> Result<Value> {
    let (container, last) = parent(doc, path, op)?;
    match container {
        Value::Object(m) => m.shift_remove(&last).ok_or_else(|| fail(op, "path does not exist")),
        Value::Array(a) => {
            let i =
                array_index(&last, a.len(), false).map_err(|()| fail(op, "path does not exist"))?;
            Ok(a.remove(i))
        }
        _ => Err(fail(op, "parent is not a container")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointer_escaping_round_trips() {
        let p = pointer(["a/b", "c~d", "plain"]);
        assert_eq!(p, "/a~1b/c~0d/plain");
        assert_eq!(parse_pointer(&p).unwrap(), vec!["a/b", "c~d", "plain"]);
        assert!(parse_pointer("no-slash").is_err());
        assert!(parse_pointer("/bad~2").is_err());
        assert_eq!(parse_pointer("/").unwrap(), vec![""]);
    }

    #[test]
    fn strict_add_and_remove() {
        let mut doc = json!({"m": {"a": 1, "list": [1, 2]}});
        apply(&mut doc, &[PatchOp::add("/m/b", json!(2)), PatchOp::add("/m/list/-", json!(3))])
            .unwrap();
        assert_eq!(doc, json!({"m": {"a": 1, "list": [1, 2, 3], "b": 2}}));
        let err = apply(&mut doc, &[PatchOp::add("/m/x/y", json!(1))]).unwrap_err();
        assert_eq!(err.to_string(), r#"json patch add "/m/x/y": parent does not exist"#);
        let err = apply(&mut doc, &[PatchOp::remove("/m/missing")]).unwrap_err();
        assert_eq!(err.to_string(), r#"json patch remove "/m/missing": path does not exist"#);
        apply(&mut doc, &[PatchOp::remove("/m/list/0")]).unwrap();
        assert_eq!(doc["m"]["list"], json!([2, 3]));
    }

    #[test]
    fn failed_patch_leaves_document_unchanged() {
        let mut doc = json!({"a": 1});
        let before = doc.clone();
        assert!(apply(&mut doc, &[PatchOp::add("/b", json!(2)), PatchOp::remove("/zzz")]).is_err());
        assert_eq!(doc, before);
    }

    #[test]
    fn replace_move_copy_test() {
        let mut doc = json!({"a": {"x": 1}, "b": [0]});
        let ops: Vec<PatchOp> = serde_json::from_value(json!([
            {"op": "replace", "path": "/a/x", "value": 2},
            {"op": "copy", "from": "/a/x", "path": "/b/1"},
            {"op": "move", "from": "/a", "path": "/c"},
            {"op": "test", "path": "/c/x", "value": 2}
        ]))
        .unwrap();
        apply(&mut doc, &ops).unwrap();
        assert_eq!(doc, json!({"b": [0, 2], "c": {"x": 2}}));
        let err = apply(&mut doc, &[PatchOp::replace("/nope", json!(1))]).unwrap_err();
        assert!(err.to_string().contains("path does not exist"));
    }

    #[test]
    fn explicit_null_value_is_kept() {
        let op: PatchOp = serde_json::from_str(r#"{"op":"add","path":"/a","value":null}"#).unwrap();
        assert_eq!(op.value, Some(Value::Null));
        let op: PatchOp = serde_json::from_str(r#"{"op":"remove","path":"/a"}"#).unwrap();
        assert_eq!(op.value, None);
    }
}
