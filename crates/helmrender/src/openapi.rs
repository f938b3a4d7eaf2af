//! Values for rendering a Deckhouse module's chart, built the way the platform builds them.
//!
//! The platform renders a module with `{"global": .., "<moduleKey>": ..}`: the module part is
//! the user's settings plus the hooks' internal values, defaulted from `openapi/values.yaml`
//! (which extends `config-values.yaml` through `x-extend`); the global part carries the image
//! digests and the list of enabled modules. The platform's linter renders with the schemas'
//! `x-examples` over stub globals; [`ModuleSchema`] and [`global_stub`] give tests and the
//! lint the same inputs.

use std::path::Path;

use serde_json::{Map, Value as Json, json};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Registry base of the linter's stub globals; an image reference that does not start with it
/// did not come from the module's image helper.
pub const STUB_REGISTRY: &str = "registry.example.com/deckhouse";

/// Images the platform ships for every module (`global.modulesImages.digests.common`) that
/// the stub globals carry: the chart reaches them through `helm_lib_module_common_image`.
pub const COMMON_IMAGES: [&str; 1] = ["kubeRbacProxy"];

/// The module's values schema, with `x-extend` applied.
#[derive(Debug, Clone)]
pub struct ModuleSchema {
    values: Json,
    config: Json,
}

impl ModuleSchema {
    /// Reads `values.yaml` and `config-values.yaml` of `openapi_dir`.
    pub fn load(openapi_dir: &Path) -> Result<Self> {
        let read = |name: &str| -> Result<Json> {
            let path = openapi_dir.join(name);
            let text = crate::read_text(&path)?;
            serde_norway::from_str(&text)
                .map_err(|e| Error::Schema { path: path.clone(), message: e.to_string() })
        };
        let config = read("config-values.yaml")?;
        let mut values = read("values.yaml")?;
        // `x-extend` copies the settings' properties into the values schema (the values
        // schema's own properties win on a clash, as the platform merges them).
        if values.pointer("/x-extend/schema").is_some() {
            let mut merged = config.get("properties").cloned().unwrap_or_else(|| json!({}));
            if let (Some(merged), Some(own)) = (
                merged.as_object_mut(),
                values.get("properties").and_then(Json::as_object).cloned(),
            ) {
                merged.extend(own);
            }
            values["properties"] = merged;
        }
        Ok(Self { values, config })
    }

    /// The settings examples (`x-examples` of `config-values.yaml`); `[{}]` when none.
    pub fn settings_examples(&self) -> Vec<Json> {
        match self.config.get("x-examples").and_then(Json::as_array) {
            Some(examples) if !examples.is_empty() => examples.clone(),
            _ => vec![json!({})],
        }
    }

    /// The internal values made of the first `x-examples` entry of every property of
    /// `internal` that has one (the linter's choice when it renders).
    pub fn internal_example(&self) -> Json {
        let props =
            self.values.pointer("/properties/internal/properties").and_then(Json::as_object);
        let example: Map<String, Json> = props
            .into_iter()
            .flatten()
            .filter_map(|(name, schema)| {
                let first = schema.get("x-examples").and_then(|e| e.get(0)).cloned();
                Some((name.clone(), first?))
            })
            .collect();
        Json::Object(example)
    }

    /// `settings` with `internal` set, defaulted like the platform defaults values.
    pub fn module_values(&self, settings: &Json, internal: &Json) -> Json {
        let mut values = settings.clone();
        if let Some(map) = values.as_object_mut() {
            map.insert("internal".into(), internal.clone());
        }
        apply_defaults(&self.values, &mut values);
        values
    }
}

/// Fills in `default`s the way the API server does: a property's default applies when its
/// parent object exists and the property is missing; the filled value is then defaulted in
/// turn; array items are defaulted by the `items` schema.
pub fn apply_defaults(schema: &Json, value: &mut Json) {
    if let (Some(props), Some(object)) =
        (schema.get("properties").and_then(Json::as_object), value.as_object_mut())
    {
        for (name, sub) in props {
            if !object.contains_key(name)
                && let Some(default) = sub.get("default")
            {
                object.insert(name.clone(), default.clone());
            }
            if let Some(child) = object.get_mut(name) {
                apply_defaults(sub, child);
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array_mut()) {
        for item in array {
            apply_defaults(items, item);
        }
    }
}

/// The global values the platform's linter renders with: [`STUB_REGISTRY`], a digest for
/// every image of `images_dir` (image name = the directory's name in camelCase) under the
/// module key, one for each of [`COMMON_IMAGES`] under `common`, and `enabled_modules`.
pub fn global_stub(module: &str, images_dir: &Path, enabled_modules: &[&str]) -> Result<Json> {
    let mut digests = Map::new();
    if images_dir.is_dir() {
        let io = |source| Error::Io { path: images_dir.to_path_buf(), source };
        for entry in std::fs::read_dir(images_dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            if entry.path().is_dir()
                && let Ok(dir) = entry.file_name().into_string()
            {
                let name = addon::values_key(&dir);
                digests.insert(name.clone(), Json::String(stub_digest(&name)));
            }
        }
    }
    let common: Map<String, Json> = COMMON_IMAGES
        .iter()
        .map(|image| ((*image).to_owned(), Json::String(stub_digest(image))))
        .collect();
    Ok(json!({
        "enabledModules": enabled_modules,
        "modulesImages": {
            "registry": {"base": STUB_REGISTRY},
            "digests": {addon::values_key(module): digests, "common": common},
        },
    }))
}

/// A digest that looks real and differs per image, so a test can tell which image a container
/// got.
pub fn stub_digest(image: &str) -> String {
    let hash = Sha256::digest(image.as_bytes());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_under_existing_parents_only() {
        let schema = json!({"properties": {
            "a": {"type": "object", "default": {}, "properties": {"b": {"default": 1}}},
            "c": {"type": "object", "properties": {"d": {"default": 2}}},
            "l": {"items": {"properties": {"x": {"default": "y"}}}},
        }});
        let mut value = json!({"l": [{}, {"x": "z"}]});
        apply_defaults(&schema, &mut value);
        assert_eq!(value, json!({"a": {"b": 1}, "l": [{"x": "y"}, {"x": "z"}]}));
    }
}
