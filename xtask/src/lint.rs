//! The module conventions of the platform's linter (dmt) that apply to this module.
//!
//! Each check returns findings instead of failing at the first one, so one run lists every
//! problem. The rules and their reasons are in `shared/reference/addon-operator.md` §7.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use addon::error_chain;
use anyhow::{Context, Result, bail};
use serde_json::Value;

/// One broken convention.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// File (relative to the repository root) the finding is about.
    pub file: String,
    /// What is wrong, and what to do.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

/// Root entries that are chart content; everything else must be in `.helmignore`.
const CHART_CONTENT: [&str; 5] = ["templates", "charts", "monitoring", "Chart.yaml", "values.yaml"];
/// Keys `module.yaml` may have (the platform parses it strictly).
const MODULE_YAML_KEYS: [&str; 13] = [
    "name",
    "namespace",
    "stage",
    "descriptions",
    "weight",
    "critical",
    "tags",
    "subsystems",
    "exclusiveGroup",
    "requirements",
    "accessibility",
    "update",
    "disable",
];
/// Values of `stage` the platform knows.
const STAGES: [&str; 4] = ["Experimental", "Preview", "General Availability", "Deprecated"];

/// Runs every check over the module at `root`.
pub fn run(root: &Path) -> Result<Vec<Finding>> {
    let mut findings = Vec::new();
    let enum_exclusions = enum_exclusions(root)?;
    check_module_yaml(root, &mut findings)?;
    check_helmignore(root, &mut findings)?;
    for file in yaml_files(root, "crds")? {
        check_crd(root, &file, &enum_exclusions, &mut findings)?;
    }
    for file in yaml_files(root, "openapi")? {
        check_openapi(root, &file, &enum_exclusions, &mut findings)?;
    }
    check_conversions(root, &mut findings)?;
    check_bilingual_docs(root, &mut findings)?;
    check_no_cyrillic(root, &mut findings)?;
    check_templates(root, &mut findings)?;
    findings.sort();
    findings.dedup();
    Ok(findings)
}

/// Prints the findings; fails when there are any.
pub fn report(findings: &[Finding]) -> Result<()> {
    for finding in findings {
        eprintln!("{finding}");
    }
    if !findings.is_empty() {
        bail!("{} module convention(s) broken", findings.len());
    }
    eprintln!("module conventions: ok");
    Ok(())
}

fn finding(root: &Path, file: &Path, message: impl Into<String>) -> Finding {
    Finding { file: relative(root, file), message: message.into() }
}

fn relative(root: &Path, file: &Path) -> String {
    file.strip_prefix(root).unwrap_or(file).display().to_string()
}

fn read_yaml(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_norway::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Every `*.yaml` below `root/dir`, sorted.
fn yaml_files(root: &Path, dir: &str) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    walk(&root.join(dir), &mut |path| {
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path.to_path_buf());
        }
    })?;
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, visit: &mut dyn FnMut(&Path)) -> Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, visit)?;
        } else {
            visit(&path);
        }
    }
    Ok(())
}

fn is_doc_ru(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("doc-ru-"))
}

fn doc_ru_twin(path: &Path) -> PathBuf {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    path.with_file_name(format!("doc-ru-{name}"))
}

/// Schema paths (`properties.a.items.properties.b`) excluded from the enum rule in
/// `.dmtlint.yaml`, so this lint and the platform's agree.
fn enum_exclusions(root: &Path) -> Result<BTreeSet<String>> {
    let path = root.join(".dmtlint.yaml");
    if !path.exists() {
        return Ok(BTreeSet::new());
    }
    let config = read_yaml(&path)?;
    let list = config.pointer("/linters-settings/openapi/exclude-rules/enum");
    Ok(list
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect())
}

fn check_module_yaml(root: &Path, findings: &mut Vec<Finding>) -> Result<()> {
    let path = root.join("module.yaml");
    let module = read_yaml(&path)?;
    let Some(map) = module.as_object() else {
        findings.push(finding(root, &path, "must be a mapping"));
        return Ok(());
    };
    for key in map.keys().filter(|k| !MODULE_YAML_KEYS.contains(&k.as_str())) {
        findings.push(finding(root, &path, format!("unknown key `{key}`")));
    }
    if map.get("name").and_then(Value::as_str) != Some(metallb_api::names::module::NAME) {
        findings.push(finding(root, &path, "`name` must be `metallb`"));
    }
    if map.get("namespace").and_then(Value::as_str) != Some(metallb_api::names::module::NAMESPACE) {
        findings.push(finding(root, &path, "`namespace` must be `d8-metallb`"));
    }
    if !map.get("stage").and_then(Value::as_str).is_some_and(|s| STAGES.contains(&s)) {
        findings.push(finding(root, &path, format!("`stage` must be one of {STAGES:?}")));
    }
    for lang in ["en", "ru"] {
        if map.get("descriptions").and_then(|d| d.get(lang)).and_then(Value::as_str).is_none() {
            findings.push(finding(root, &path, format!("`descriptions.{lang}` is missing")));
        }
    }
    let chart = read_yaml(&root.join("Chart.yaml"))?;
    if chart.get("name").and_then(Value::as_str) != Some(metallb_api::names::module::NAME) {
        findings.push(finding(root, &root.join("Chart.yaml"), "`name` must equal the module name"));
    }
    Ok(())
}

/// Whether a `.helmignore` pattern (no slashes; `*` as the only wildcard) matches `name`.
fn glob_matches(pattern: &str, name: &str) -> bool {
    let pattern = pattern.trim_end_matches('/');
    match pattern.split_once('*') {
        None => pattern == name,
        Some((prefix, rest)) => {
            let Some(tail) = name.strip_prefix(prefix) else { return false };
            (0..=tail.len())
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| glob_matches(rest, &tail[i..]))
        }
    }
}

fn check_helmignore(root: &Path, findings: &mut Vec<Finding>) -> Result<()> {
    let path = root.join(".helmignore");
    let Ok(text) = std::fs::read_to_string(&path) else {
        findings.push(finding(root, &path, "is missing"));
        return Ok(());
    };
    let patterns: Vec<&str> =
        text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    if patterns.is_empty() {
        findings.push(finding(root, &path, "is empty"));
    }
    for pattern in &patterns {
        if matches!(*pattern, "*" | "**" | "/*" | "**/*") {
            findings.push(finding(root, &path, format!("`{pattern}` ignores the whole chart")));
        }
        for content in CHART_CONTENT {
            if glob_matches(pattern, content) {
                findings.push(finding(root, &path, format!("`{pattern}` ignores `{content}`")));
            }
        }
    }
    let mut entries: Vec<String> = std::fs::read_dir(root)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name != ".helmignore" && name != ".git")
        .collect();
    entries.sort();
    for entry in entries {
        let covered = CHART_CONTENT.contains(&entry.as_str())
            || patterns.iter().any(|pattern| glob_matches(pattern, &entry));
        if !covered {
            findings.push(finding(
                root,
                &path,
                format!("`{entry}` is neither chart content nor ignored; add it to .helmignore"),
            ));
        }
    }
    Ok(())
}

/// Walks a schema, calling `visit(path, schema)` for every (sub)schema; `path` uses the
/// `properties.x.items.properties.y` form of the platform's linter.
fn walk_schema(schema: &Value, path: &str, visit: &mut dyn FnMut(&str, &Value)) {
    visit(path, schema);
    let join = |a: &str, b: &str| if a.is_empty() { b.to_owned() } else { format!("{a}.{b}") };
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            walk_schema(sub, &join(path, &format!("properties.{name}")), visit);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = schema.get(key).filter(|s| s.is_object()) {
            walk_schema(sub, &join(path, key), visit);
        }
    }
}

/// An enum value in the platform's spelling: CamelCase, capital first, letters and digits.
fn is_camel_case(value: &str) -> bool {
    let mut chars = value.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
}

fn check_enums(
    root: &Path,
    file: &Path,
    schema: &Value,
    exclusions: &BTreeSet<String>,
    findings: &mut Vec<Finding>,
) {
    walk_schema(schema, "", &mut |path, sub| {
        if exclusions.contains(path) {
            return;
        }
        for value in sub.get("enum").and_then(Value::as_array).into_iter().flatten() {
            if let Some(text) = value.as_str().filter(|v| !is_camel_case(v)) {
                findings.push(finding(
                    root,
                    file,
                    format!("enum value `{text}` at `{path}` must be CamelCase with a capital first letter"),
                ));
            }
        }
    });
}

/// Checks that every property path of a doc-ru twin exists in the English schema, so a
/// renamed field cannot leave a stale translation behind.
fn check_twin_paths(
    root: &Path,
    twin_path: &Path,
    twin: &Value,
    original: &Value,
    findings: &mut Vec<Finding>,
) {
    let mut known = BTreeSet::new();
    walk_schema(original, "", &mut |path, _| {
        known.insert(path.to_owned());
    });
    walk_schema(twin, "", &mut |path, _| {
        if !known.contains(path) {
            findings.push(finding(
                root,
                twin_path,
                format!("`{path}` does not exist in the English schema"),
            ));
        }
    });
}

/// The `openAPIV3Schema` of every version of a CRD, by version name.
fn crd_schemas(crd: &Value) -> Vec<(String, Value)> {
    crd.pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| {
            let name = v.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
            let schema = v.pointer("/schema/openAPIV3Schema").cloned().unwrap_or(Value::Null);
            (name, schema)
        })
        .collect()
}

fn check_crd(
    root: &Path,
    file: &Path,
    exclusions: &BTreeSet<String>,
    findings: &mut Vec<Finding>,
) -> Result<()> {
    if is_doc_ru(file) {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let original = file.with_file_name(name.trim_start_matches("doc-ru-"));
        if !original.exists() {
            findings.push(finding(root, file, "translation of a file that does not exist"));
            return Ok(());
        }
        let (twin, crd) = (read_yaml(file)?, read_yaml(&original)?);
        let originals = crd_schemas(&crd);
        for (version, schema) in crd_schemas(&twin) {
            match originals.iter().find(|(v, _)| *v == version) {
                Some((_, english)) => check_twin_paths(root, file, &schema, english, findings),
                None => {
                    findings.push(finding(root, file, format!("no version `{version}` in the CRD")))
                }
            }
        }
        return Ok(());
    }
    let crd = read_yaml(file)?;
    if crd.get("apiVersion").and_then(Value::as_str) != Some("apiextensions.k8s.io/v1") {
        findings.push(finding(root, file, "CRDs must be apiextensions.k8s.io/v1"));
    }
    for (label, value) in [("module", "metallb"), ("heritage", "deckhouse")] {
        if crd.pointer(&format!("/metadata/labels/{label}")).and_then(Value::as_str) != Some(value)
        {
            findings.push(finding(root, file, format!("missing label `{label}: {value}`")));
        }
    }
    if !doc_ru_twin(file).exists() {
        findings.push(finding(root, file, "has no doc-ru- twin with Russian descriptions"));
    }
    for (_, schema) in crd_schemas(&crd) {
        check_enums(root, file, &schema, exclusions, findings);
        walk_schema(&schema, "", &mut |path, sub| {
            if sub.get("deprecated").is_some() {
                findings.push(finding(
                    root,
                    file,
                    format!("`{path}` uses `deprecated`; use `x-doc-deprecated`"),
                ));
            }
        });
    }
    Ok(())
}

fn check_openapi(
    root: &Path,
    file: &Path,
    exclusions: &BTreeSet<String>,
    findings: &mut Vec<Finding>,
) -> Result<()> {
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let in_conversions = file.parent().is_some_and(|p| p.ends_with("conversions"));
    if in_conversions || name == "openapi-case-tests.yaml" {
        return Ok(());
    }
    if is_doc_ru(file) {
        let original = file.with_file_name(name.trim_start_matches("doc-ru-"));
        if !original.exists() {
            findings.push(finding(root, file, "translation of a file that does not exist"));
        } else {
            check_twin_paths(root, file, &read_yaml(file)?, &read_yaml(&original)?, findings);
        }
        return Ok(());
    }
    let schema = read_yaml(file)?;
    check_enums(root, file, &schema, exclusions, findings);
    // The platform's linter wants a Russian twin for every schema except values.yaml, whose
    // user-visible part comes from config-values.yaml through `x-extend`.
    if name != "values.yaml" && !doc_ru_twin(file).exists() {
        findings.push(finding(root, file, "has no doc-ru- twin with Russian descriptions"));
    }
    walk_schema(&schema, "", &mut |path, sub| {
        if sub.get("x-kubernetes-validations").is_some() {
            findings.push(finding(
                root,
                file,
                format!("`{path}`: use x-deckhouse-validations in openapi/, not x-kubernetes-validations"),
            ));
        }
    });
    Ok(())
}

fn check_conversions(root: &Path, findings: &mut Vec<Finding>) -> Result<()> {
    let config = read_yaml(&root.join("openapi/config-values.yaml"))?;
    let current = config.get("x-config-version").and_then(Value::as_i64).unwrap_or(1);
    for version in 2..=current {
        let path = root.join(format!("openapi/conversions/v{version}.yaml"));
        if !path.exists() {
            findings.push(finding(
                root,
                &path,
                "missing: conversions must be consecutive up to x-config-version",
            ));
            continue;
        }
        let conversion = read_yaml(&path)?;
        if conversion.get("version").and_then(Value::as_i64) != Some(version) {
            findings.push(finding(root, &path, format!("`version` must be {version}")));
        }
        for lang in ["en", "ru"] {
            if conversion.pointer(&format!("/description/{lang}")).and_then(Value::as_str).is_none()
            {
                findings.push(finding(root, &path, format!("`description.{lang}` is missing")));
            }
        }
    }
    for file in yaml_files(root, "openapi/conversions")? {
        let name = file.file_stem().and_then(|n| n.to_str()).unwrap_or_default();
        let version = name.strip_prefix('v').and_then(|v| v.parse::<i64>().ok());
        if name != "testcases" && !version.is_some_and(|v| (2..=current).contains(&v)) {
            findings.push(finding(
                root,
                &file,
                format!("not a conversion to a version in 2..={current}"),
            ));
        }
    }
    Ok(())
}

fn check_bilingual_docs(root: &Path, findings: &mut Vec<Finding>) -> Result<()> {
    let docs = root.join("docs");
    let mut files = Vec::new();
    walk(&docs, &mut |path| {
        // Developer notes under docs/internal are English only; user documents are bilingual.
        if !path.starts_with(docs.join("internal")) && path.extension().is_some_and(|e| e == "md") {
            files.push(path.to_path_buf());
        }
    })?;
    for file in &files {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if let Some(stem) = name.strip_suffix(".ru.md") {
            if !file.with_file_name(format!("{stem}.md")).exists() {
                findings.push(finding(root, file, "Russian document without an English original"));
            }
        } else if let Some(stem) = name.strip_suffix(".md")
            && !file.with_file_name(format!("{stem}.ru.md")).exists()
        {
            findings.push(finding(root, file, format!("has no Russian version {stem}.ru.md")));
        }
    }
    Ok(())
}

/// Whether a file is meant to be read in English only.
fn is_english_file(root: &Path, path: &Path) -> bool {
    let rel = relative(root, path);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let text_kind = [".yaml", ".yml", ".json", ".md"].iter().any(|ext| name.ends_with(ext));
    text_kind
        && !name.starts_with("doc-ru-")
        && !name.contains(".ru.")
        && name != "module.yaml"
        && !rel.starts_with("openapi/conversions/")
        && !rel.starts_with("target/")
        && !rel.starts_with(".git/")
}

fn check_no_cyrillic(root: &Path, findings: &mut Vec<Finding>) -> Result<()> {
    let mut files = Vec::new();
    for dir in ["crds", "openapi", "docs", "templates", "monitoring", "examples"] {
        walk(&root.join(dir), &mut |path| files.push(path.to_path_buf()))?;
    }
    files.extend(["README.md", "Chart.yaml"].map(|f| root.join(f)));
    for file in files.iter().filter(|f| f.is_file() && is_english_file(root, f)) {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let cyrillic = |c: char| ('\u{0400}'..='\u{04FF}').contains(&c);
        if let Some((number, _)) =
            text.lines().enumerate().find(|(_, line)| line.chars().any(cyrillic))
        {
            findings.push(finding(
                root,
                file,
                format!("line {}: Cyrillic in an English file; Russian text goes to the .ru/doc-ru- twin", number + 1),
            ));
        }
    }
    Ok(())
}

// === rendered templates: the platform's container, RBAC and object rules ===

/// Modules whose kinds the chart renders only while they are enabled; the lint enables them
/// all (as the platform's linter does) so that every object is checked.
const LINT_MODULES: [&str; 3] = ["operator-prometheus", "prometheus", "vertical-pod-autoscaler"];
/// Priority classes the platform defines.
const PRIORITY_CLASSES: [&str; 11] = [
    "system-node-critical",
    "system-cluster-critical",
    "cluster-critical",
    "cluster-medium",
    "cluster-low",
    "production-high",
    "production-medium",
    "production-low",
    "staging",
    "develop",
    "standby",
];
/// Host ports the platform reserves for host-network components.
const HOST_PORTS: std::ops::RangeInclusive<i64> = 4200..=4299;
/// The only capability a container of the module may add: NET_RAW, for the L2 speaker's raw
/// ARP/NDP sockets. Anything else (the BGP speaker needs none: TCP MD5 and BFD's port are open
/// to an unprivileged process) is a finding.
const ADDABLE_CAPABILITIES: [&str; 1] = ["NET_RAW"];
/// Kinds that run pods, with the pointer to their pod spec.
const POD_CONTROLLERS: [(&str, &str); 5] = [
    ("DaemonSet", "/spec/template/spec"),
    ("Deployment", "/spec/template/spec"),
    ("StatefulSet", "/spec/template/spec"),
    ("Job", "/spec/template/spec"),
    ("CronJob", "/spec/jobTemplate/spec/template/spec"),
];
/// The apiVersion each built-in kind must use (older versions are gone from the API).
const API_VERSIONS: [(&str, &str); 11] = [
    ("DaemonSet", "apps/v1"),
    ("Deployment", "apps/v1"),
    ("StatefulSet", "apps/v1"),
    ("Job", "batch/v1"),
    ("CronJob", "batch/v1"),
    ("ClusterRole", "rbac.authorization.k8s.io/v1"),
    ("ClusterRoleBinding", "rbac.authorization.k8s.io/v1"),
    ("Role", "rbac.authorization.k8s.io/v1"),
    ("RoleBinding", "rbac.authorization.k8s.io/v1"),
    ("PodDisruptionBudget", "policy/v1"),
    ("PriorityClass", "scheduling.k8s.io/v1"),
];

/// One rendered object and the template it came from.
struct Rendered {
    template: String,
    object: Value,
}

impl Rendered {
    fn id(&self) -> String {
        let meta = &self.object["metadata"];
        format!(
            "{} {}/{}",
            self.object["kind"].as_str().unwrap_or("?"),
            meta["namespace"].as_str().unwrap_or(""),
            meta["name"].as_str().unwrap_or("?")
        )
    }

    fn finding(&self, message: impl fmt::Display) -> Finding {
        Finding { file: self.template.clone(), message: format!("{}: {message}", self.id()) }
    }
}

/// Renders the chart with every settings example (`x-examples` of config-values.yaml), once
/// with the internal values' examples (classes exist) and once with their defaults (no class),
/// over the platform linter's stub globals, and checks every rendered object.
fn check_templates(root: &Path, findings: &mut Vec<Finding>) -> Result<()> {
    use helmrender::openapi::{ModuleSchema, global_stub};
    let templates = root.join("templates");
    if !templates.is_dir() {
        return Ok(());
    }
    let chart = match helmrender::Chart::load(root) {
        Ok(chart) => chart,
        Err(error) => {
            findings.push(finding(
                root,
                &templates,
                format!("does not load: {}", error_chain(&error)),
            ));
            return Ok(());
        }
    };
    let schema = ModuleSchema::load(&root.join("openapi"))?;
    let module = metallb_api::names::module::NAME;
    let global = global_stub(module, &root.join("images"), &LINT_MODULES)?;
    let release = helmrender::Release {
        name: module.to_owned(),
        namespace: metallb_api::names::module::NAMESPACE.to_owned(),
    };
    let internals = [("examples", schema.internal_example()), ("defaults", serde_json::json!({}))];
    for (n, settings) in schema.settings_examples().iter().enumerate() {
        for (internal_name, internal) in &internals {
            let values = serde_json::json!({
                "global": global,
                metallb_api::names::module::VALUES_KEY: schema.module_values(settings, internal),
            });
            let context = format!("settings example {n}, internal {internal_name}");
            let manifests = match chart.render(&values, &release) {
                Ok(manifests) => manifests,
                Err(error) => {
                    findings.push(finding(
                        root,
                        &templates,
                        format!("render with {context} fails: {}", error_chain(&error)),
                    ));
                    continue;
                }
            };
            let mut objects = Vec::new();
            for (index, manifest) in manifests.iter().enumerate() {
                match manifest.to_json(index) {
                    Ok(object) if object.is_object() => {
                        objects.push(Rendered { template: manifest.template.clone(), object })
                    }
                    Ok(_) => findings.push(Finding {
                        file: manifest.template.clone(),
                        message: format!("document {index} ({context}) is not an object"),
                    }),
                    Err(error) => findings.push(Finding {
                        file: manifest.template.clone(),
                        message: format!("{context}: {}", error_chain(&error)),
                    }),
                }
            }
            check_rendered(&objects, findings);
        }
    }
    Ok(())
}

/// The rules of `addon-operator.md` §7 that apply to rendered objects.
fn check_rendered(objects: &[Rendered], findings: &mut Vec<Finding>) {
    let mut seen = BTreeSet::new();
    for rendered in objects {
        let object = &rendered.object;
        if !seen.insert(rendered.id()) {
            findings.push(rendered.finding("rendered twice"));
        }
        for (label, value) in
            [("heritage", "deckhouse"), ("module", metallb_api::names::module::NAME)]
        {
            if object.pointer(&format!("/metadata/labels/{label}")).and_then(Value::as_str)
                != Some(value)
            {
                findings.push(rendered.finding(format!("missing label `{label}: {value}`")));
            }
        }
        let kind = object["kind"].as_str().unwrap_or_default();
        if let Some((_, version)) = API_VERSIONS.iter().find(|(k, _)| *k == kind)
            && object["apiVersion"] != *version
        {
            findings.push(rendered.finding(format!("apiVersion must be {version}")));
        }
        if matches!(kind, "ClusterRole" | "Role") {
            check_rbac_rules(rendered, findings);
        }
        if let Some((_, pointer)) = POD_CONTROLLERS.iter().find(|(k, _)| *k == kind) {
            match object.pointer(pointer) {
                Some(pod) => check_pod(rendered, pod, findings),
                None => findings.push(rendered.finding("has no pod template")),
            }
            let history = object.pointer("/spec/revisionHistoryLimit").and_then(Value::as_i64);
            if kind == "Deployment" && history.is_none_or(|n| n > 2) {
                findings.push(rendered.finding("revisionHistoryLimit must be at most 2"));
            }
            if matches!(kind, "DaemonSet" | "Deployment" | "StatefulSet") {
                check_vpa(rendered, objects, findings);
            }
        }
    }
    check_node_port_clashes(objects, findings);
}

/// A port of the node a host-network pod takes: `(port, protocol)`.
type NodePort = (i64, String);

/// The node's ports a host-network pod takes: declared ports (host ports), and what it serves
/// on loopback (HTTP probes with a loopback host, `*METRICS_ADDR` on loopback, kube-rbac-proxy
/// upstreams), which are the node's ports too. Empty for a pod off the host network.
fn node_ports(pod: &Value) -> BTreeSet<NodePort> {
    let mut ports = BTreeSet::new();
    if pod["hostNetwork"] != true {
        return ports;
    }
    let tcp = |port: i64| (port, "TCP".to_owned());
    let loopback_port = |text: &str| {
        text.parse::<std::net::SocketAddr>()
            .ok()
            .filter(|addr| addr.ip().is_loopback())
            .map(|addr| i64::from(addr.port()))
    };
    for container in pod["containers"].as_array().into_iter().flatten() {
        for port in container["ports"].as_array().into_iter().flatten() {
            let number = port["hostPort"].as_i64().or_else(|| port["containerPort"].as_i64());
            let protocol = port["protocol"].as_str().unwrap_or("TCP").to_owned();
            ports.extend(number.map(|n| (n, protocol)));
        }
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
            if let Some(get) = container[probe].get("httpGet")
                && get["host"].as_str().is_some_and(is_loopback_host)
            {
                ports.extend(get["port"].as_i64().map(tcp));
            }
        }
        for env in container["env"].as_array().into_iter().flatten() {
            let name = env["name"].as_str().unwrap_or_default();
            if name.ends_with("METRICS_ADDR") {
                ports.extend(env["value"].as_str().and_then(loopback_port).map(tcp));
            }
            if name == "KUBE_RBAC_PROXY_CONFIG"
                && let Some(config) = env["value"].as_str()
                && let Ok(config) = serde_norway::from_str::<Value>(config)
            {
                for upstream in config["upstreams"].as_array().into_iter().flatten() {
                    let url = upstream["upstream"].as_str().unwrap_or_default();
                    let authority = url
                        .strip_prefix("http://")
                        .or_else(|| url.strip_prefix("https://"))
                        .and_then(|rest| rest.split('/').next());
                    ports.extend(authority.and_then(loopback_port).map(tcp));
                }
            }
        }
    }
    ports
}

/// Host-network pods of different controllers may share a node (the L2 and the BGP speaker
/// both run on a node that a class and a configuration select), so no two of them may take the
/// same port of the node, declared or on loopback; and a loopback listener is a port of the
/// node too, so it stays in the platform's range.
fn check_node_port_clashes(objects: &[Rendered], findings: &mut Vec<Finding>) {
    let mut owners: BTreeMap<NodePort, Vec<&Rendered>> = BTreeMap::new();
    for rendered in objects {
        let kind = rendered.object["kind"].as_str().unwrap_or_default();
        let Some((_, pointer)) = POD_CONTROLLERS.iter().find(|(k, _)| *k == kind) else {
            continue;
        };
        let Some(pod) = rendered.object.pointer(pointer) else { continue };
        // Declared ports out of the range are reported with the container rules.
        let declared: BTreeSet<i64> = pod["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["ports"].as_array().into_iter().flatten())
            .filter_map(|p| p["hostPort"].as_i64().or_else(|| p["containerPort"].as_i64()))
            .collect();
        for (port, protocol) in node_ports(pod) {
            if !HOST_PORTS.contains(&port) && !declared.contains(&port) {
                findings.push(rendered.finding(format!(
                    "takes the node's port {port}/{protocol} (host network), outside 4200-4299"
                )));
            }
            owners.entry((port, protocol)).or_default().push(rendered);
        }
    }
    // Each of the objects sharing a port is reported, naming the others.
    for ((port, protocol), sharing) in owners {
        for rendered in &sharing {
            let others: Vec<String> =
                sharing.iter().map(|o| o.id()).filter(|id| *id != rendered.id()).collect();
            if !others.is_empty() {
                findings.push(rendered.finding(format!(
                    "takes the node's port {port}/{protocol}, which {} takes too; both may run on one node",
                    others.join(", ")
                )));
            }
        }
    }
}

fn check_rbac_rules(rendered: &Rendered, findings: &mut Vec<Finding>) {
    let rules = rendered.object["rules"].as_array().into_iter().flatten();
    for rule in rules {
        for key in ["apiGroups", "resources", "verbs"] {
            if rule[key].as_array().into_iter().flatten().any(|v| v == "*") {
                findings.push(rendered.finding(format!("`*` in {key}; grant named items only")));
            }
        }
    }
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

fn check_pod(rendered: &Rendered, pod: &Value, findings: &mut Vec<Finding>) {
    let mut push = |message: String| findings.push(rendered.finding(message));
    match str_at(pod, "/priorityClassName") {
        Some(class) if PRIORITY_CLASSES.contains(&class) => {}
        other => push(format!("priorityClassName {other:?} is not one of {PRIORITY_CLASSES:?}")),
    }
    let host_network = pod["hostNetwork"] == true;
    if host_network && str_at(pod, "/dnsPolicy") != Some("ClusterFirstWithHostNet") {
        push("hostNetwork needs dnsPolicy ClusterFirstWithHostNet".into());
    }
    let ids = |key: &str| pod.pointer(&format!("/securityContext/{key}")).and_then(Value::as_i64);
    let non_root = pod.pointer("/securityContext/runAsNonRoot").and_then(Value::as_bool);
    let allowed = match (ids("runAsUser"), ids("runAsGroup"), non_root) {
        (Some(0), Some(0), Some(false)) => true,
        (Some(u), Some(g), Some(true)) => u == g && (u == 65534 || u == 64535),
        _ => false,
    };
    if !allowed {
        push("pod securityContext must be runAsNonRoot with runAsUser/runAsGroup 65534 or 64535, or 0:0 with runAsNonRoot false".into());
    }
    let added = |c: &Value| -> Vec<String> {
        c.pointer("/securityContext/capabilities/add")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    let adds_any = pod["containers"]
        .as_array()
        .into_iter()
        .chain(pod["initContainers"].as_array())
        .flatten()
        .any(|c| !added(c).is_empty());
    // Root is allowed only to keep an added capability (see the L2 speaker's template); a pod
    // that adds none runs as the platform's unprivileged user.
    if ids("runAsUser") == Some(0) && !adds_any {
        push(
            "pod runs as root but no container adds a capability; run as 64535 (runAsNonRoot true)"
                .into(),
        );
    }
    let pod_seccomp = str_at(pod, "/securityContext/seccompProfile/type");
    let init = pod["initContainers"].as_array().into_iter().flatten().map(|c| (c, true));
    let main = pod["containers"].as_array().into_iter().flatten().map(|c| (c, false));
    for (container, is_init) in main.chain(init) {
        let name = container["name"].as_str().unwrap_or("?");
        let mut fail = |message: &str| push(format!("container {name}: {message}"));
        let image = container["image"].as_str().unwrap_or_default();
        if !image.starts_with(&format!("{}@sha256:", helmrender::openapi::STUB_REGISTRY)) {
            fail(
                "image must come from helm_lib_module_image or helm_lib_module_common_image (the platform's registry and a digest)",
            );
        }
        if !matches!(str_at(container, "/imagePullPolicy"), None | Some("IfNotPresent")) {
            fail("imagePullPolicy must be unset or IfNotPresent");
        }
        let security = &container["securityContext"];
        if !security.is_object() {
            fail("has no securityContext");
        }
        if security["readOnlyRootFilesystem"] != true {
            fail("readOnlyRootFilesystem must be true");
        }
        if security["privileged"] == true {
            fail("must not be privileged");
        }
        if security["allowPrivilegeEscalation"] != false {
            fail("allowPrivilegeEscalation must be false");
        }
        if !security
            .pointer("/capabilities/drop")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|c| c == "ALL"))
        {
            fail("capabilities must drop ALL");
        }
        for capability in added(container) {
            if !ADDABLE_CAPABILITIES.contains(&capability.as_str()) {
                fail(&format!(
                    "adds the capability {capability}; only {ADDABLE_CAPABILITIES:?} is ever needed"
                ));
            }
        }
        if str_at(security, "/seccompProfile/type").or(pod_seccomp) != Some("RuntimeDefault") {
            fail("seccompProfile must be RuntimeDefault");
        }
        for resource in ["cpu", "memory", "ephemeral-storage"] {
            if container.pointer(&format!("/resources/requests/{resource}")).is_none() {
                fail(&format!("no {resource} request"));
            }
        }
        if !is_init {
            for probe in ["livenessProbe", "readinessProbe"] {
                let handlers = ["exec", "httpGet", "tcpSocket", "grpc"]
                    .iter()
                    .filter(|h| container[probe].get(**h).is_some())
                    .count();
                if handlers != 1 {
                    fail(&format!("{probe} must have exactly one handler"));
                }
            }
        }
        for port in container["ports"].as_array().into_iter().flatten() {
            let number = port["containerPort"].as_i64().unwrap_or_default();
            if number <= 1024 {
                fail(&format!("port {number} must be above 1024"));
            }
            if host_network && !HOST_PORTS.contains(&number) {
                fail(&format!("host-network port {number} must be in 4200-4299"));
            }
        }
        let mut names = BTreeSet::new();
        for env in container["env"].as_array().into_iter().flatten() {
            let env_name = env["name"].as_str().unwrap_or_default();
            if !names.insert(env_name) {
                fail(&format!("env {env_name} is set twice"));
            }
        }
    }
    let containers = pod["containers"].as_array().into_iter().flatten();
    for container in containers {
        if is_kube_rbac_proxy(container) {
            check_kube_rbac_proxy(rendered, container, findings);
        } else if host_network {
            check_node_exposure(rendered, container, findings);
        }
    }
}

// === metrics and health of host-network pods: loopback, behind kube-rbac-proxy ===

/// What the platform names the kube-rbac-proxy image among its common images.
const KUBE_RBAC_PROXY_IMAGE: &str = "kubeRbacProxy";
/// Subresource the platform's kube-rbac-proxies authorize metrics requests against.
const METRICS_SUBRESOURCE: &str = "prometheus-metrics";

/// A container is the platform's kube-rbac-proxy when it runs the platform's common image
/// (its digest in the stub globals), whatever its name.
fn is_kube_rbac_proxy(container: &Value) -> bool {
    let stub = format!(
        "{}@{}",
        helmrender::openapi::STUB_REGISTRY,
        helmrender::openapi::stub_digest(KUBE_RBAC_PROXY_IMAGE)
    );
    container["image"] == stub.as_str()
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A container of a host-network pod other than kube-rbac-proxy: whatever it serves over TCP
/// is open to the node's whole network unless it listens on loopback, so it declares no TCP
/// port, its HTTP probes go to 127.0.0.1, and its metrics address (`*METRICS_ADDR`) is a
/// loopback one. Metrics reach the network only through kube-rbac-proxy (TLS and a
/// SubjectAccessReview per request), the platform's convention.
fn check_node_exposure(rendered: &Rendered, container: &Value, findings: &mut Vec<Finding>) {
    let name = container["name"].as_str().unwrap_or("?");
    let mut fail =
        |message: String| findings.push(rendered.finding(format!("container {name}: {message}")));
    for port in container["ports"].as_array().into_iter().flatten() {
        let protocol = port["protocol"].as_str().unwrap_or("TCP");
        if protocol == "TCP" {
            fail(format!(
                "TCP port {} is open on the node's network; listen on 127.0.0.1 and serve it through a kube-rbac-proxy container",
                port["containerPort"].as_i64().unwrap_or_default()
            ));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(get) = container[probe].get("httpGet")
            && !get["host"].as_str().is_some_and(is_loopback_host)
        {
            fail(format!(
                "{probe} reaches HTTP on the node's address; serve health on loopback and set httpGet.host 127.0.0.1"
            ));
        }
    }
    for env in container["env"].as_array().into_iter().flatten() {
        let env_name = env["name"].as_str().unwrap_or_default();
        if !env_name.ends_with("METRICS_ADDR") {
            continue;
        }
        let loopback = env["value"]
            .as_str()
            .and_then(|v| v.parse::<std::net::SocketAddr>().ok())
            .is_some_and(|addr| addr.ip().is_loopback());
        if !loopback {
            fail(format!(
                "env {env_name} must be a loopback address such as 127.0.0.1:PORT on the host network"
            ));
        }
    }
}

/// A kube-rbac-proxy serves TLS only, forwards to loopback only, and authorizes every
/// upstream against the `prometheus-metrics` subresource of the very object it runs in.
fn check_kube_rbac_proxy(rendered: &Rendered, container: &Value, findings: &mut Vec<Finding>) {
    let name = container["name"].as_str().unwrap_or("?");
    let mut fail =
        |message: String| findings.push(rendered.finding(format!("container {name}: {message}")));
    let args: Vec<&str> =
        container["args"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if !args.iter().any(|a| a.starts_with("--secure-listen-address=")) {
        fail("kube-rbac-proxy needs --secure-listen-address (TLS)".into());
    }
    if args.iter().any(|a| a.starts_with("--insecure-listen-address")) {
        fail("kube-rbac-proxy must not listen without TLS".into());
    }
    let config = container["env"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == "KUBE_RBAC_PROXY_CONFIG")
        .and_then(|e| e["value"].as_str());
    let Some(config) = config else {
        fail("kube-rbac-proxy has no KUBE_RBAC_PROXY_CONFIG".into());
        return;
    };
    let config: Value = match serde_norway::from_str(config) {
        Ok(config) => config,
        Err(error) => {
            fail(format!("KUBE_RBAC_PROXY_CONFIG is not YAML: {error}"));
            return;
        }
    };
    let upstreams = config["upstreams"].as_array().filter(|u| !u.is_empty());
    let Some(upstreams) = upstreams else {
        fail("KUBE_RBAC_PROXY_CONFIG has no upstreams".into());
        return;
    };
    let object = &rendered.object;
    let kind = object["kind"].as_str().unwrap_or_default();
    let expected = serde_json::json!({
        "namespace": object["metadata"]["namespace"],
        "apiGroup": "apps",
        "apiVersion": "v1",
        "resource": format!("{}s", kind.to_lowercase()),
        "subresource": METRICS_SUBRESOURCE,
        "name": object["metadata"]["name"],
    });
    for upstream in upstreams {
        let url = upstream["upstream"].as_str().unwrap_or_default();
        let host = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .and_then(|rest| rest.split('/').next())
            .map(|authority| authority.rsplit_once(':').map_or(authority, |(host, _)| host));
        if !host.is_some_and(is_loopback_host) {
            fail(format!("upstream {url:?} must be on loopback (http://127.0.0.1:PORT/)"));
        }
        let attributes = upstream.pointer("/authorization/resourceAttributes");
        if attributes != Some(&expected) {
            fail(format!(
                "upstream {url:?} must authorize with resourceAttributes {expected} (this {kind}'s {METRICS_SUBRESOURCE})"
            ));
        }
    }
}

/// A pod controller needs a VPA (the lint renders with the VPA module enabled) that targets it
/// and bounds cpu and memory of each of its containers.
fn check_vpa(rendered: &Rendered, objects: &[Rendered], findings: &mut Vec<Finding>) {
    let object = &rendered.object;
    let vpa = objects.iter().map(|o| &o.object).find(|o| {
        o["kind"] == "VerticalPodAutoscaler"
            && o["metadata"]["namespace"] == object["metadata"]["namespace"]
            && o["spec"]["targetRef"]["kind"] == object["kind"]
            && o["spec"]["targetRef"]["name"] == object["metadata"]["name"]
    });
    let Some(vpa) = vpa else {
        findings.push(rendered.finding("has no VerticalPodAutoscaler"));
        return;
    };
    let mode = str_at(vpa, "/spec/updatePolicy/updateMode");
    if !matches!(mode, Some("Off" | "Initial" | "Recreate" | "InPlaceOrRecreate")) {
        findings.push(rendered.finding(format!(
            "VPA updateMode {mode:?} is not Off, Initial, Recreate or InPlaceOrRecreate"
        )));
    }
    let policies = vpa.pointer("/spec/resourcePolicy/containerPolicies").and_then(Value::as_array);
    let containers = object.pointer("/spec/template/spec/containers").and_then(Value::as_array);
    for container in containers.into_iter().flatten() {
        let name = &container["name"];
        let policy = policies.into_iter().flatten().find(|p| p["containerName"] == *name);
        let bounded = policy.is_some_and(|p| {
            ["minAllowed", "maxAllowed"]
                .iter()
                .all(|bound| ["cpu", "memory"].iter().all(|r| p[*bound].get(*r).is_some()))
        });
        if !bounded {
            findings.push(rendered.finding(format!(
                "VPA has no cpu and memory minAllowed/maxAllowed for container {name}"
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_helmignore() {
        let cases = [
            ("*.md", "README.md", true),
            ("*.md", "README.ru.md", true),
            ("werf*.yaml", "werf.yaml", true),
            ("werf*.yaml", "werf.inc.yaml", true),
            ("crds", "crds", true),
            ("crds/", "crds", true),
            ("crds", "crds2", false),
            ("*.rs", "Cargo.toml", false),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(glob_matches(pattern, name), expected, "{pattern} ~ {name}");
        }
    }

    #[test]
    fn loopback_hosts() {
        for ok in ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in ["0.0.0.0", "", "$(HOST_IP)", "10.0.0.1", "::"] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn camel_case_rule() {
        for ok in ["L2", "NoSchedule", "Exists", "V1.2"] {
            assert!(is_camel_case(ok), "{ok}");
        }
        for bad in ["layer2", "no-schedule", "", "Foo_Bar", "Ready!"] {
            assert!(!is_camel_case(bad), "{bad}");
        }
    }
}
