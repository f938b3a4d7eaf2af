//! The reference documents generated from the schemas: `docs/CONFIGURATION.md` from
//! `openapi/config-values.yaml` and `docs/CR.md` from the user-facing CRDs, each in English and,
//! with the descriptions of the `doc-ru-` twins, in Russian.
//!
//! A document is front matter plus one section per setting or field, so a schema change that
//! is not regenerated fails `cargo xtask codegen --check` like a stale CRD does.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use kube::CustomResourceExt;
use metallb_api::{
    MetalLoadBalancerBGPPeer, MetalLoadBalancerClass, MetalLoadBalancerConfiguration,
    MetalLoadBalancerPool,
};
use serde_json::Value;

/// Language of a generated document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// English: `X.md`, descriptions from the schemas themselves.
    En,
    /// Russian: `X.ru.md`, descriptions from the `doc-ru-` twins.
    Ru,
}

impl Lang {
    fn pick(self, en: &'static str, ru: &'static str) -> &'static str {
        match self {
            Lang::En => en,
            Lang::Ru => ru,
        }
    }
}

/// Patterns longer than this are left out: they are unreadable, and the description states
/// the accepted format in words.
const MAX_SHOWN_PATTERN: usize = 80;

/// `docs/CONFIGURATION.md` (or `.ru.md`) from the module settings schema under `root`.
pub fn configuration(root: &Path, lang: Lang) -> Result<String> {
    let schema = read_yaml(&root.join("openapi/config-values.yaml"))?;
    let russian = read_yaml(&root.join("openapi/doc-ru-config-values.yaml"))?;
    let version = schema.get("x-config-version").and_then(Value::as_i64).unwrap_or(1);
    let mut out =
        front_matter(lang.pick("The metallb module: configuration", "Модуль metallb: настройки"));
    out.push_str(&generated_note("openapi/config-values.yaml"));
    out.push_str(lang.pick(
        "The module is configured with the `ModuleConfig` named `metallb`; the settings below go \
         to its `spec.settings`.",
        "Модуль настраивается ресурсом `ModuleConfig` с именем `metallb`; параметры ниже задаются \
         в его `spec.settings`.",
    ));
    let _ = write!(
        out,
        " {} `spec.version: {version}`.\n\n",
        lang.pick("The current settings version is", "Текущая версия настроек —")
    );
    out.push_str(&description(&schema, &russian, lang));
    let examples = schema.get("x-examples").and_then(Value::as_array);
    if let Some(example) = examples.into_iter().flatten().find(|e| !is_empty_object(e)) {
        let _ = writeln!(out, "{}:\n", lang.pick("Example", "Пример"));
        out.push_str(&yaml_block(&serde_json::json!({
            "apiVersion": "deckhouse.io/v1alpha1",
            "kind": "ModuleConfig",
            "metadata": {"name": "metallb"},
            "spec": {"enabled": true, "version": version, "settings": example},
        }))?);
    }
    out.push_str(&format!("## {}\n\n", lang.pick("Settings", "Параметры")));
    fields(&mut out, &schema, Some(&russian), "", 3, lang)?;
    Ok(finish(out))
}

/// `docs/CR.md` (or `.ru.md`) from the user-facing CRDs; Russian descriptions come from their
/// `crds/doc-ru-*.yaml` twins under `root`.
pub fn custom_resources(root: &Path, lang: Lang) -> Result<String> {
    let crds = [
        (
            serde_json::to_value(MetalLoadBalancerClass::crd())?,
            "crds/doc-ru-metalloadbalancerclasses.yaml",
        ),
        (
            serde_json::to_value(MetalLoadBalancerPool::crd())?,
            "crds/doc-ru-metalloadbalancerpools.yaml",
        ),
        (
            serde_json::to_value(MetalLoadBalancerBGPPeer::crd())?,
            "crds/doc-ru-metalloadbalancerbgppeers.yaml",
        ),
        (
            serde_json::to_value(MetalLoadBalancerConfiguration::crd())?,
            "crds/doc-ru-metalloadbalancerconfigurations.yaml",
        ),
    ];
    let mut out = front_matter(
        lang.pick("The metallb module: custom resources", "Модуль metallb: кастомные ресурсы"),
    );
    out.push_str(&generated_note("the CRDs in crds/"));
    for (crd, twin) in crds {
        let twin = read_yaml(&root.join(twin))?;
        let kind = crd.pointer("/spec/names/kind").and_then(Value::as_str).unwrap_or_default();
        let group = crd.pointer("/spec/group").and_then(Value::as_str).unwrap_or_default();
        let scope = crd.pointer("/spec/scope").and_then(Value::as_str).unwrap_or_default();
        let versions = crd.pointer("/spec/versions").and_then(Value::as_array);
        for version in versions.into_iter().flatten() {
            let name = version.get("name").and_then(Value::as_str).unwrap_or_default();
            let schema = version.pointer("/schema/openAPIV3Schema").unwrap_or(&Value::Null);
            let russian = twin
                .pointer("/spec/versions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|v| v.get("name").and_then(Value::as_str) == Some(name))
                .and_then(|v| v.pointer("/schema/openAPIV3Schema"));
            let _ = writeln!(out, "## {kind}\n");
            let _ = writeln!(out, "- {}: `{group}/{name}`", lang.pick("API version", "Версия API"));
            let _ = write!(out, "- {}: `{scope}`", lang.pick("Scope", "Область"));
            let short = crd.pointer("/spec/names/shortNames").and_then(Value::as_array);
            let short: Vec<_> = short.into_iter().flatten().filter_map(Value::as_str).collect();
            if !short.is_empty() {
                let _ = write!(
                    out,
                    "\n- {}: `{}`",
                    lang.pick("Short names", "Короткие имена"),
                    short.join("`, `")
                );
            }
            out.push_str("\n\n");
            out.push_str(&description(schema, russian.unwrap_or(&Value::Null), lang));
            let props = schema.get("properties").and_then(Value::as_object);
            for (top, sub) in props.into_iter().flatten() {
                if matches!(top.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let ru = russian.and_then(|r| r.pointer(&format!("/properties/{top}")));
                section(&mut out, top, sub, ru, false, 3, lang)?;
                fields(&mut out, sub, ru, top, 4, lang)?;
            }
        }
    }
    Ok(finish(out))
}

fn read_yaml(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_norway::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn front_matter(title: &str) -> String {
    format!("---\ntitle: \"{title}\"\n---\n\n")
}

fn generated_note(source: &str) -> String {
    format!("<!-- Generated by `cargo xtask codegen` from {source}. Do not edit. -->\n\n")
}

/// Trims trailing blank lines so the file ends with exactly one newline.
fn finish(out: String) -> String {
    format!("{}\n", out.trim_end())
}

fn is_empty_object(value: &Value) -> bool {
    value.as_object().is_some_and(serde_json::Map::is_empty)
}

/// The description in `lang`: the English one, or the twin's; the English one when the twin
/// has none, so a missing translation shows rather than an empty section.
fn description(english: &Value, russian: &Value, lang: Lang) -> String {
    let en = english.get("description").and_then(Value::as_str);
    let text = match lang {
        Lang::En => en,
        Lang::Ru => russian.get("description").and_then(Value::as_str).or(en),
    };
    text.map(|t| format!("{}\n\n", t.trim())).unwrap_or_default()
}

/// Sections for every property below `schema`, depth first, in schema order.
fn fields(
    out: &mut String,
    schema: &Value,
    russian: Option<&Value>,
    path: &str,
    level: usize,
    lang: Lang,
) -> Result<()> {
    let (schema, russian, path) = match schema.get("items").filter(|i| i.is_object()) {
        Some(items) => (items, russian.and_then(|r| r.get("items")), format!("{path}[]")),
        None => (schema, russian, path.to_owned()),
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let props = schema.get("properties").and_then(Value::as_object);
    for (name, sub) in props.into_iter().flatten() {
        let full = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
        let ru = russian.and_then(|r| r.pointer(&format!("/properties/{name}")));
        section(out, &full, sub, ru, required.contains(&name.as_str()), level, lang)?;
        fields(out, sub, ru, &full, level, lang)?;
    }
    Ok(())
}

/// One field: heading, facts list, description, example.
fn section(
    out: &mut String,
    path: &str,
    schema: &Value,
    russian: Option<&Value>,
    required: bool,
    level: usize,
    lang: Lang,
) -> Result<()> {
    let _ = writeln!(out, "{} `{path}`\n", "#".repeat(level));
    let mut facts = vec![format!("{}: {}", lang.pick("Type", "Тип"), type_name(schema, lang))];
    if required {
        facts.push(lang.pick("Required", "Обязательный").to_owned());
    }
    if schema.get("x-doc-deprecated").and_then(Value::as_bool) == Some(true) {
        facts.push(lang.pick("Deprecated", "Устарел").to_owned());
    }
    if let Some(default) = schema.get("default") {
        facts.push(format!("{}: `{}`", lang.pick("Default", "По умолчанию"), inline(default)));
    }
    let items = schema.get("items").unwrap_or(&Value::Null);
    if let Some(values) = schema.get("enum").or_else(|| items.get("enum")).and_then(Value::as_array)
    {
        let values: Vec<String> = values.iter().map(|v| format!("`{}`", inline(v))).collect();
        facts.push(format!(
            "{}: {}",
            lang.pick("Allowed values", "Допустимые значения"),
            values.join(", ")
        ));
    }
    if let Some(pattern) =
        schema.get("pattern").or_else(|| items.get("pattern")).and_then(Value::as_str)
        && pattern.len() <= MAX_SHOWN_PATTERN
    {
        facts.push(format!("{}: `{pattern}`", lang.pick("Pattern", "Шаблон")));
    }
    for (key, en, ru) in [
        ("minItems", "Minimum items", "Минимум элементов"),
        ("maxItems", "Maximum items", "Максимум элементов"),
        ("minimum", "Minimum", "Минимум"),
        ("maximum", "Maximum", "Максимум"),
        ("maxLength", "Maximum length", "Максимальная длина"),
    ] {
        if let Some(value) = schema.get(key) {
            facts.push(format!("{}: `{}`", lang.pick(en, ru), inline(value)));
        }
    }
    for fact in facts {
        let _ = writeln!(out, "- {fact}");
    }
    out.push('\n');
    out.push_str(&description(schema, russian.unwrap_or(&Value::Null), lang));
    let examples = schema.get("x-examples").and_then(Value::as_array);
    if let Some(example) = examples.into_iter().flatten().next() {
        let _ = writeln!(out, "{}:\n", lang.pick("Example", "Пример"));
        out.push_str(&yaml_block(example)?);
    }
    Ok(())
}

/// `string`, `array of string`, `object` (with `string` values), ...
fn type_name(schema: &Value, lang: Lang) -> String {
    let base = schema.get("type").and_then(Value::as_str).unwrap_or("any");
    match base {
        "array" => {
            let inner = of(schema.get("items").unwrap_or(&Value::Null));
            format!("`array` {} `{inner}`", lang.pick("of", "из"))
        }
        "object" => match schema.get("additionalProperties").filter(|a| a.is_object()) {
            Some(values) => format!(
                "`object` {} `{}` {}",
                lang.pick("with", "со значениями"),
                of(values),
                lang.pick("values", "")
            )
            .trim_end()
            .to_owned(),
            None => "`object`".to_owned(),
        },
        other => match schema.get("format").and_then(Value::as_str) {
            Some(format) => format!("`{other}` (`{format}`)"),
            None => format!("`{other}`"),
        },
    }
}

/// The `type` of a schema, `any` when it has none.
fn of(schema: &Value) -> &str {
    schema.get("type").and_then(Value::as_str).unwrap_or("any")
}

/// A value on one line: strings bare, everything else as JSON.
fn inline(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn yaml_block(value: &Value) -> Result<String> {
    let text = serde_norway::to_string(value).context("serializing an example")?;
    Ok(format!("```yaml\n{}\n```\n\n", text.trim_end()))
}
