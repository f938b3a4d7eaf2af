//! Renders a Helm chart directory the way the platform does, for tests and lint.
//!
//! The module's templates are rendered in production by the platform's Helm (nelm). This crate
//! renders the same files in-process, so tests can check every rendered object without a Go
//! toolchain or a `helm` binary:
//!
//! ```text
//!  Chart.yaml ─┐                  ┌─► templates/*.yaml bodies ─┐
//!  .helmignore ┼─► Chart::load ───┤                            ├─► Chart::render(values)
//!  templates/ ─┘   (parse once)   └─► defines of templates/_*  │      │ one Go template set,
//!  other files ──► .Files (path → text)  ──────────────────────┘      │ Helm/sprig functions
//!                                                                    ▼
//!                                           Vec<Manifest> (one YAML document each)
//! ```
//!
//! The Go template language itself comes from the `gotmpl` crate (a maintained port of Go's
//! `text/template`). Helm adds its functions and sprig's on top; this crate implements only the
//! ones the module's chart uses, so a template that reaches for another one fails loudly instead
//! of rendering something Helm would not:
//!
//! | function | meaning (as in Helm/sprig) |
//! |---|---|
//! | `include NAME DATA` | output of the named template, as a string |
//! | `toYaml V` | V as YAML, without the trailing newline |
//! | `fail MSG` | stop rendering with MSG |
//! | `default D V` | V unless it is empty (nil, `""`, 0, false, empty list or map), else D |
//! | `quote V...` | each non-nil V as a Go double-quoted string, space separated |
//! | `indent N S`, `nindent N S` | S with every line indented by N spaces (`nindent`: after a newline) |
//! | `has X LIST` | whether LIST (nil = empty) contains X |
//! | `hasKey MAP KEY` | whether MAP (nil = empty) has KEY |
//! | `dict K V ...`, `list V ...` | a map, a list |
//! | `toString V` | V as a string |
//! | `hasPrefix P S`, `hasSuffix P S` | string tests |
//! | `trimPrefix P S`, `trimSuffix P S`, `replace OLD NEW S` | string edits |
//!
//! Differences from Helm, on purpose:
//!
//! * Rendering is strict, as the platform's linter renders: a missing map key is an error
//!   (Helm's `--strict`), and so is `<no value>` in the output.
//! * `.Files` is what Helm's really is, a map from path to content, and templates reach it with
//!   `range` and `index`. Helm's methods (`.Files.Get`, `.Files.Glob`) are not available, since
//!   the template engine has no method calls; `index .Files PATH | toString` is the portable
//!   spelling of `.Files.Get PATH`.
//! * `.Capabilities` and `.Template` are not provided; `.Release` has `Name`, `Namespace`,
//!   `Service`, `IsInstall`, `IsUpgrade` and `Revision`.
//!
//! The platform's image helpers need no function beyond these: `helm_lib_module_image` and
//! `helm_lib_module_common_image` (kube-rbac-proxy) are `index`, `hasKey` and `printf` over
//! `global.modulesImages`, which [`openapi::global_stub`] fills with a digest per module image
//! and per [`openapi::COMMON_IMAGES`] entry.

mod funcs;
mod ignore;
pub mod openapi;
mod value;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use gotmpl::Template;
use serde_json::{Value as Json, json};

pub use value::{from_json, to_json};

/// What can go wrong while loading or rendering a chart.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory of the chart could not be read.
    #[error("read {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file of the chart is not valid UTF-8 text.
    #[error("{} is not UTF-8 text", path.display())]
    NotText {
        /// The file.
        path: PathBuf,
    },
    /// `Chart.yaml` is not a mapping with a `name`.
    #[error("Chart.yaml: {0}")]
    ChartYaml(String),
    /// A `.helmignore` pattern uses syntax this renderer does not implement.
    #[error(".helmignore: unsupported pattern `{0}` (negation and `**` are not implemented)")]
    IgnorePattern(String),
    /// A template does not parse.
    #[error("parse {template}")]
    Parse {
        /// Path of the template in the chart.
        template: String,
        /// The parser's message.
        #[source]
        source: gotmpl::TemplateError,
    },
    /// A template failed while rendering (including an explicit `fail`).
    #[error("render {template}")]
    Render {
        /// Path of the template in the chart.
        template: String,
        /// The engine's message.
        #[source]
        source: gotmpl::TemplateError,
    },
    /// A template printed a value that is not set.
    #[error("{template}: printed a value that is not set (`<no value>`)")]
    NoValue {
        /// Path of the template in the chart.
        template: String,
    },
    /// A rendered document is not YAML.
    #[error("{template}: rendered document {index} is not YAML")]
    Yaml {
        /// Path of the template in the chart.
        template: String,
        /// Position of the document in the template's output, from 0.
        index: usize,
        /// The parser's message.
        #[source]
        source: serde_norway::Error,
    },
    /// A value cannot cross between JSON and the template engine (e.g. a NaN, a function).
    #[error("value: {0}")]
    Value(String),
    /// An OpenAPI schema of the module cannot be used to build values.
    #[error("{}: {message}", path.display())]
    Schema {
        /// The schema file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The Helm release a chart is rendered for (`.Release`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// `.Release.Name`; the platform names a module's release after the module.
    pub name: String,
    /// `.Release.Namespace`.
    pub namespace: String,
}

/// One rendered YAML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Path of the template that produced it, e.g. `templates/namespace.yaml`.
    pub template: String,
    /// The document, without the `---` separator and without surrounding blank lines.
    pub text: String,
}

impl Manifest {
    /// The document as JSON (for typed deserialisation and field checks).
    pub fn to_json(&self, index: usize) -> Result<Json> {
        serde_norway::from_str(&self.text).map_err(|source| Error::Yaml {
            template: self.template.clone(),
            index,
            source,
        })
    }
}

/// A loaded chart: parsed templates and the files templates may read.
pub struct Chart {
    name: String,
    metadata: Json,
    /// Paths of the templates that produce output (not partials), sorted.
    outputs: Vec<String>,
    /// Every template body and define, one engine instance; shared with `include`.
    templates: Arc<Template>,
    files: BTreeMap<String, String>,
}

impl std::fmt::Debug for Chart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chart")
            .field("name", &self.name)
            .field("outputs", &self.outputs)
            .field("files", &self.files.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Chart {
    /// Loads the chart in `dir`: `Chart.yaml`, every template under `templates/`, and every
    /// other file `.helmignore` does not exclude (the chart's `.Files`).
    pub fn load(dir: &Path) -> Result<Self> {
        let metadata: Json = serde_norway::from_str(&read_text(&dir.join("Chart.yaml"))?)
            .map_err(|e| Error::ChartYaml(e.to_string()))?;
        let name = metadata
            .get("name")
            .and_then(Json::as_str)
            .ok_or_else(|| Error::ChartYaml("no `name`".into()))?
            .to_owned();
        let ignore = match std::fs::read_to_string(dir.join(".helmignore")) {
            Ok(text) => ignore::Rules::parse(&text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ignore::Rules::default(),
            Err(source) => return Err(Error::Io { path: dir.join(".helmignore"), source }),
        };
        let mut sources = BTreeMap::new();
        let mut files = BTreeMap::new();
        walk(dir, "", &ignore, &mut |rel, path| {
            if rel.starts_with("templates/") {
                sources.insert(rel.to_owned(), read_text(path)?);
            } else if !is_chart_metadata(rel) {
                files.insert(rel.to_owned(), read_text(path)?);
            }
            Ok(())
        })?;

        // `include` needs the finished template set, which needs `include` registered first:
        // the function reaches the set through a cell filled below (a weak reference, so the
        // set does not own itself).
        let cell: Arc<OnceLock<std::sync::Weak<Template>>> = Arc::new(OnceLock::new());
        let mut set = Template::new(&name)
            .missing_key(gotmpl::MissingKey::Error)
            .funcs(funcs::helm(cell.clone()));
        let mut outputs = Vec::new();
        for (path, source) in &sources {
            // Each file is parsed on its own, as Helm does, so errors name the file; its body
            // and its defines then join the one set every template executes in.
            let parsed = Template::new(path)
                .parse(source)
                .map_err(|source| Error::Parse { template: path.clone(), source })?;
            for define in parsed.templates() {
                if let Some(tree) = parsed.lookup(define) {
                    set = set.add_parse_tree(define, tree.clone());
                }
            }
            if !is_partial(path) {
                outputs.push(path.clone());
            }
        }
        let templates = Arc::new(set);
        // The cell is new and filled once; `set` cannot fail here.
        let _ = cell.set(Arc::downgrade(&templates));
        Ok(Self { name, metadata, outputs, templates, files })
    }

    /// The chart's name (`Chart.yaml` `name`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Paths of the templates that produce output, sorted.
    pub fn templates(&self) -> &[String] {
        &self.outputs
    }

    /// Renders every template with `values` (the whole `.Values`, e.g. `{"global": ..,
    /// "<moduleKey>": ..}`) and returns the non-empty documents, in template path order.
    pub fn render(&self, values: &Json, release: &Release) -> Result<Vec<Manifest>> {
        let data = self.data(values, release)?;
        let mut out = Vec::new();
        for template in &self.outputs {
            let text = self
                .templates
                .execute_template_to_string(template, &data)
                .map_err(|source| Error::Render { template: template.clone(), source })?;
            if text.contains("<no value>") {
                return Err(Error::NoValue { template: template.clone() });
            }
            out.extend(
                split_documents(&text)
                    .map(|doc| Manifest { template: template.clone(), text: doc.to_owned() }),
            );
        }
        Ok(out)
    }

    /// The top-level object templates see as `.`.
    fn data(&self, values: &Json, release: &Release) -> Result<gotmpl::Value> {
        let meta = |key: &str| self.metadata.get(key).cloned().unwrap_or(Json::Null);
        let files: serde_json::Map<String, Json> =
            self.files.iter().map(|(k, v)| (k.clone(), Json::String(v.clone()))).collect();
        from_json(&json!({
            "Values": values,
            "Release": {
                "Name": release.name,
                "Namespace": release.namespace,
                "Service": "Helm",
                "IsInstall": true,
                "IsUpgrade": false,
                "Revision": 1,
            },
            "Chart": {
                "Name": self.name,
                "Version": meta("version"),
                "APIVersion": meta("apiVersion"),
                "Description": meta("description"),
                "AppVersion": meta("appVersion"),
            },
            "Files": files,
        }))
    }
}

/// Renders manifests as one stream the way `helm template` prints them, each document headed
/// by a `# Source:` comment naming its template.
pub fn to_stream(chart: &str, manifests: &[Manifest]) -> String {
    let mut out = String::new();
    for manifest in manifests {
        out.push_str("---\n# Source: ");
        out.push_str(chart);
        out.push('/');
        out.push_str(&manifest.template);
        out.push('\n');
        out.push_str(&manifest.text);
        out.push('\n');
    }
    out
}

/// The documents of a template's output: split at `---` lines, blank and comment-only
/// documents dropped (Helm keeps them, but they hold no object).
fn split_documents(text: &str) -> impl Iterator<Item = &str> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            docs.push(&text[start..offset]);
            start = offset + line.len();
        }
        offset += line.len();
    }
    docs.push(&text[start..]);
    docs.into_iter().map(|doc| doc.trim_matches('\n')).filter(|doc| {
        doc.lines().any(|line| {
            let line = line.trim();
            !line.is_empty() && !line.starts_with('#')
        })
    })
}

/// Partials (`_helpers.tpl`) hold defines only and produce no output; so does `NOTES.txt`.
fn is_partial(path: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    base.starts_with('_') || base == "NOTES.txt"
}

/// Files Helm reads as chart metadata rather than as `.Files`.
fn is_chart_metadata(rel: &str) -> bool {
    matches!(rel, "Chart.yaml" | "values.yaml" | "values.schema.json" | ".helmignore")
        || rel.starts_with("charts/")
}

fn read_text(path: &Path) -> Result<String> {
    let bytes =
        std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    String::from_utf8(bytes).map_err(|_| Error::NotText { path: path.to_path_buf() })
}

/// Visits every file below `dir` that `.helmignore` keeps, with its `/`-separated path
/// relative to the chart root; ignored directories are not entered (the repository root holds
/// `target/`).
fn walk(
    dir: &Path,
    prefix: &str,
    ignore: &ignore::Rules,
    visit: &mut dyn FnMut(&str, &Path) -> Result<()>,
) -> Result<()> {
    let io = |source| Error::Io { path: dir.to_path_buf(), source };
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).map_err(io)?.collect::<Result<_, _>>().map_err(io)?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let Ok(name) = entry.file_name().into_string() else { continue };
        let rel = format!("{prefix}{name}");
        let path = entry.path();
        let is_dir = path.is_dir();
        if ignore.ignores(&rel, is_dir) {
            continue;
        }
        if is_dir {
            walk(&path, &format!("{rel}/"), ignore, visit)?;
        } else {
            visit(&rel, &path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_split_at_separator_lines_only() {
        let text = "\n---\na: 1\n---\n# only a comment\n---   \nb: '---'\nc: |\n  ---x\n";
        let docs: Vec<&str> = split_documents(text).collect();
        assert_eq!(docs, ["a: 1", "b: '---'\nc: |\n  ---x"]);
    }

    #[test]
    fn partials_produce_no_output() {
        assert!(is_partial("templates/_helpers.tpl"));
        assert!(is_partial("templates/a/_x.yaml"));
        assert!(!is_partial("templates/a/x.yaml"));
    }
}
