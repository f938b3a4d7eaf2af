//! Values patches as the framework accepts them, computed from "what the values should be".
//!
//! The framework accepts only `add` and `remove` under `/<moduleKey>/`, applies them strictly (the
//! parent of an `add` must exist, the target of a `remove` must exist) and validates the result
//! (`reference/addon-operator.md` §3.1). A hook that writes patches by hand easily breaks one of
//! those rules, and a hook that re-emits unchanged values makes the framework re-render Helm for
//! nothing. [`PatchableValues`] keeps the current module values, turns every requested change into
//! the minimal list of valid operations and emits nothing when the value is already there.

use serde::Serialize;
use serde_json::{Map, Value};

/// The values key of a module: its name in camelCase (`my-module` → `myModule`), the
/// framework's rule for the top-level key of the module's values and of its image digests.
pub fn values_key(module: &str) -> String {
    let mut out = String::with_capacity(module.len());
    let mut upper = false;
    for c in module.chars() {
        if c == '-' || c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

use crate::json_patch::{self, PatchOp};
use crate::{Error, Result};

/// The module's values plus the patch that brings them to what the hook wants.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchableValues {
    root_key: String,
    /// `{"<root_key>": module values}`, kept equal to "input values + ops".
    doc: Value,
    ops: Vec<PatchOp>,
}

impl PatchableValues {
    /// Starts from the module's current values (an object; `null` counts as `{}`).
    pub fn new(root_key: impl Into<String>, module_values: Value) -> Result<Self> {
        let root_key = root_key.into();
        let module_values = match module_values {
            Value::Null => Value::Object(Map::new()),
            v @ Value::Object(_) => v,
            _ => return Err(Error::ValuesNotObject(root_key)),
        };
        let mut doc = Map::new();
        doc.insert(root_key.clone(), module_values);
        Ok(Self { root_key, doc: Value::Object(doc), ops: Vec::new() })
    }

    /// Starts from module values known to be an object.
    pub(crate) fn from_object(root_key: String, module_values: Map<String, Value>) -> Self {
        let mut doc = Map::new();
        doc.insert(root_key.clone(), Value::Object(module_values));
        Self { root_key, doc: Value::Object(doc), ops: Vec::new() }
    }

    /// The values root key (`myModule`).
    pub fn root_key(&self) -> &str {
        &self.root_key
    }

    /// Current module values, with the operations so far applied.
    pub fn current(&self) -> &Value {
        &self.doc[&self.root_key]
    }

    /// The value at a dot-separated path (`internal.nodes`), if present.
    pub fn get(&self, path: &str) -> Option<&Value> {
        self.get_at(&split(path))
    }

    /// The value at a path given as segments (use when keys contain dots).
    pub fn get_at<S: AsRef<str>>(&self, segments: &[S]) -> Option<&Value> {
        json_patch::get(self.current(), &json_patch::pointer(segments))
    }

    /// Sets the value at a dot-separated path, creating missing parent objects first.
    ///
    /// Emits nothing if the value is already there; when both old and new are objects only the
    /// differing members are patched.
    pub fn set(&mut self, path: &str, value: impl Serialize) -> Result<()> {
        let value = serde_json::to_value(value).map_err(Error::Serialize)?;
        self.set_at(&split(path), value)
    }

    /// [`Self::set`] with the path given as segments.
    pub fn set_at<S: AsRef<str>>(&mut self, segments: &[S], value: Value) -> Result<()> {
        if segments.is_empty() {
            return self.sync(value);
        }
        let display = || segments.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(".");
        let mut ops = Vec::new();
        for depth in 1..segments.len() {
            let prefix = &segments[..depth];
            match self.get_at(prefix) {
                Some(Value::Object(_)) => continue,
                None | Some(Value::Null) => {
                    ops.push(PatchOp::add(self.pointer(prefix), Value::Object(Map::new())))
                }
                Some(_) => {
                    return Err(Error::ValuesPath {
                        path: display(),
                        reason: "crosses a non-object",
                    });
                }
            }
            self.commit(&mut ops)?;
        }
        let target = self.pointer(segments);
        match self.get_at(segments) {
            Some(old) => diff(old, &value, &target, &mut ops),
            None => ops.push(PatchOp::add(target, value)),
        }
        self.commit(&mut ops)
    }

    /// Removes the value at a dot-separated path; nothing is emitted if it is absent.
    pub fn remove(&mut self, path: &str) -> Result<()> {
        self.remove_at(&split(path))
    }

    /// [`Self::remove`] with the path given as segments.
    pub fn remove_at<S: AsRef<str>>(&mut self, segments: &[S]) -> Result<()> {
        if segments.is_empty() {
            return Err(Error::ValuesPath {
                path: String::new(),
                reason: "the module root cannot be removed",
            });
        }
        if self.get_at(segments).is_some() {
            let mut ops = vec![PatchOp::remove(self.pointer(segments))];
            self.commit(&mut ops)?;
        }
        Ok(())
    }

    /// Makes the whole module values equal to `module_values` with the minimal patch.
    pub fn sync(&mut self, module_values: Value) -> Result<()> {
        if !module_values.is_object() {
            return Err(Error::ValuesNotObject(self.root_key.clone()));
        }
        let mut ops = Vec::new();
        diff(self.current(), &module_values, &self.pointer::<&str>(&[]), &mut ops);
        self.commit(&mut ops)
    }

    /// Operations emitted so far, in order.
    pub fn ops(&self) -> &[PatchOp] {
        &self.ops
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    fn pointer<S: AsRef<str>>(&self, segments: &[S]) -> String {
        let mut p = json_patch::pointer([self.root_key.as_str()]);
        p.push_str(&json_patch::pointer(segments));
        p
    }

    /// Applies `ops` strictly to the tracked document, so an invalid op fails here, not in the
    /// framework.
    fn commit(&mut self, ops: &mut Vec<PatchOp>) -> Result<()> {
        json_patch::apply(&mut self.doc, ops)?;
        self.ops.append(ops);
        Ok(())
    }
}

fn split(path: &str) -> Vec<&str> {
    if path.is_empty() { Vec::new() } else { path.split('.').collect() }
}

/// Appends the minimal `add`/`remove` operations that turn `old` into `new` at `at`.
///
/// Objects are compared member by member (keys in sorted order, removals first, for
/// deterministic output); anything else is replaced as a whole with `add`.
pub fn diff(old: &Value, new: &Value, at: &str, out: &mut Vec<PatchOp>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut removed: Vec<&String> = o.keys().filter(|k| !n.contains_key(*k)).collect();
            removed.sort();
            for k in removed {
                out.push(PatchOp::remove(format!("{at}/{}", json_patch::escape_token(k))));
            }
            let mut keys: Vec<&String> = n.keys().collect();
            keys.sort();
            for k in keys {
                let p = format!("{at}/{}", json_patch::escape_token(k));
                match o.get(k) {
                    Some(ov) => diff(ov, &n[k], &p, out),
                    None => out.push(PatchOp::add(p, n[k].clone())),
                }
            }
        }
        _ => out.push(PatchOp::add(at, new.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keys() {
        for (module, key) in
            [("metallb", "metallb"), ("my-module", "myModule"), ("cni-cilium-x", "cniCiliumX")]
        {
            assert_eq!(values_key(module), key);
        }
    }
    use serde_json::json;

    fn ops_json(v: &PatchableValues) -> String {
        serde_json::to_string(v.ops()).unwrap()
    }

    #[test]
    fn unchanged_value_emits_nothing() {
        let mut v =
            PatchableValues::new("myModule", json!({"internal": {"nodes": ["a"]}})).unwrap();
        v.set("internal.nodes", ["a"]).unwrap();
        v.remove("internal.absent").unwrap();
        v.sync(json!({"internal": {"nodes": ["a"]}})).unwrap();
        assert!(v.is_empty());
    }

    #[test]
    fn parents_are_created_first() {
        let mut v = PatchableValues::new("myModule", Value::Null).unwrap();
        v.set("internal.deep.x", 1).unwrap();
        assert_eq!(
            ops_json(&v),
            r#"[{"op":"add","path":"/myModule/internal","value":{}},{"op":"add","path":"/myModule/internal/deep","value":{}},{"op":"add","path":"/myModule/internal/deep/x","value":1}]"#
        );
        assert_eq!(v.get("internal.deep.x"), Some(&json!(1)));
    }

    #[test]
    fn object_values_are_patched_member_by_member_with_escaping() {
        let mut v = PatchableValues::new("m", json!({"internal": {"a": 1, "b": 2}})).unwrap();
        v.set_at(&["internal"], json!({"a": 1, "c/d": 3})).unwrap();
        assert_eq!(
            ops_json(&v),
            r#"[{"op":"remove","path":"/m/internal/b"},{"op":"add","path":"/m/internal/c~1d","value":3}]"#
        );
    }

    #[test]
    fn remove_only_existing_paths() {
        let mut v = PatchableValues::new("m", json!({"internal": {"old": true}})).unwrap();
        v.remove("internal.old").unwrap();
        v.remove("internal.old").unwrap();
        assert_eq!(ops_json(&v), r#"[{"op":"remove","path":"/m/internal/old"}]"#);
        assert!(v.remove("").is_err());
    }

    #[test]
    fn crossing_a_scalar_fails() {
        let mut v = PatchableValues::new("m", json!({"internal": 5})).unwrap();
        let err = v.set("internal.x", 1).unwrap_err();
        assert_eq!(err.to_string(), r#"values path "internal.x": crosses a non-object"#);
        assert!(PatchableValues::new("m", json!([1])).is_err());
    }

    #[test]
    fn null_parent_is_replaced_by_an_object() {
        let mut v = PatchableValues::new("m", json!({"internal": null})).unwrap();
        v.set("internal.x", "y").unwrap();
        assert_eq!(v.current(), &json!({"internal": {"x": "y"}}));
    }
}
