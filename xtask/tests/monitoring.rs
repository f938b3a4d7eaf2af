//! The monitoring content of the module: every alert rule and dashboard query is valid PromQL,
//! names only metrics the module exports, and every alert carries what the platform's alert
//! pipeline (plk) expects.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use metallb_api::names::metrics;
use promql_parser::parser::{self, Expr};
use promql_parser::util::{ExprVisitor, walk_expr};
use serde_json::Value;
use xtask::repo_root;

/// Series the hooks export, from the constants the hooks use.
const HOOK_METRICS: [&str; 14] = [
    metrics::CLASS_POOL_SIZE,
    metrics::CLASS_ALLOCATED_IPS,
    metrics::CLASS_SERVICES_NOT_FULLY_ASSIGNED,
    metrics::SERVICE_UNASSIGNED_IPS,
    metrics::MEMBER_NODE_WITHOUT_READY_SPEAKER,
    metrics::SKIPPED_OBJECTS,
    metrics::REFUSED_WRITES,
    metrics::POOL_SIZE,
    metrics::POOL_ALLOCATED_IPS,
    metrics::NOT_SUPPORTED_SERVICE_ANNOTATIONS,
    metrics::UPDATE_MC_VERSION_REQUIRED,
    metrics::OBSOLETE_LAYER2_POOLS_ARE_USED,
    metrics::BGP_CONFIGURATION_ISSUES,
    metrics::BGP_MEMBER_NODE_WITHOUT_READY_SPEAKER,
];

/// Prefix of every speaker metric (`metallb_speaker::metrics::PREFIX`).
const SPEAKER_PREFIX: &str = "metallb_speaker_";

/// Alerts whose names the previous implementation used; users' silences and routes refer to them.
const KEPT_ALERT_NAMES: [&str; 3] = [
    "D8MetallbUpdateMCVersionRequired",
    "D8MetallbNotSupportedServiceAnnotationsDetected",
    "D8MetallbObsoleteLayer2PoolsAreUsed",
];

fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(repo_root().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no *.{ext} in {dir}");
    out
}

fn read_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Collects the metric names of every selector of an expression.
#[derive(Default)]
struct MetricNames(BTreeSet<String>);

impl ExprVisitor for MetricNames {
    type Error = String;

    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, String> {
        let selector = match expr {
            Expr::VectorSelector(vs) => vs,
            Expr::MatrixSelector(ms) => &ms.vs,
            _ => return Ok(true),
        };
        match &selector.name {
            Some(name) => {
                self.0.insert(name.clone());
                Ok(true)
            }
            None => Err(format!("selector without a metric name: {selector}")),
        }
    }
}

fn metric_names(expr: &str) -> Result<BTreeSet<String>, String> {
    let ast = parser::parse(expr).map_err(|e| format!("`{expr}` does not parse: {e}"))?;
    let mut names = MetricNames::default();
    walk_expr(&mut names, &ast)?;
    if names.0.is_empty() {
        return Err(format!("`{expr}` reads no metric"));
    }
    Ok(names.0)
}

/// Every `*.rs` text of the speaker crate, to find the names it registers.
fn speaker_sources() -> String {
    fn collect(dir: &Path, out: &mut String) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                collect(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = String::new();
    collect(&repo_root().join("images/speaker/src"), &mut out);
    out
}

/// Whether the module exports `name`: a hook series, or a speaker series whose registered
/// name (without prefix and the `_total` counter suffix) appears in the speaker's sources.
fn is_exported(name: &str, speaker_sources: &str) -> bool {
    if HOOK_METRICS.contains(&name) {
        return true;
    }
    let Some(rest) = name.strip_prefix(SPEAKER_PREFIX) else { return false };
    let base = rest.strip_suffix("_total").unwrap_or(rest);
    speaker_sources.contains(&format!("\"{base}\""))
}

/// Every alert of every rule file, with its file name.
fn alerts() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for path in files("monitoring/prometheus-rules", "yaml") {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let groups = read_yaml(&path);
        let groups = groups.as_array().unwrap_or_else(|| panic!("{file}: not a list of groups"));
        for group in groups {
            let name = group.get("name").and_then(Value::as_str);
            assert!(name.is_some_and(|n| n.starts_with("d8.metallb")), "{file}: group {group}");
            let rules = group.get("rules").and_then(Value::as_array);
            let rules = rules.unwrap_or_else(|| panic!("{file}: group without rules"));
            assert!(!rules.is_empty(), "{file}: empty group");
            for rule in rules {
                assert!(rule.get("alert").is_some(), "{file}: only alerting rules expected");
                out.push((file.clone(), rule.clone()));
            }
        }
    }
    out
}

#[test]
fn every_alert_expression_parses_and_reads_only_exported_metrics() {
    let sources = speaker_sources();
    let mut used = BTreeSet::new();
    for (file, rule) in alerts() {
        let expr = rule["expr"].as_str().unwrap_or_else(|| panic!("{file}: no expr in {rule}"));
        let names = metric_names(expr).unwrap_or_else(|e| panic!("{file}: {e}"));
        for name in names {
            assert!(is_exported(&name, &sources), "{file}: `{name}` is not exported by the module");
            used.insert(name);
        }
    }
    // The alerts the issue asks for each have their series.
    for wanted in [
        metrics::CLASS_POOL_SIZE,
        metrics::CLASS_ALLOCATED_IPS,
        metrics::SERVICE_UNASSIGNED_IPS,
        metrics::MEMBER_NODE_WITHOUT_READY_SPEAKER,
        metrics::BGP_MEMBER_NODE_WITHOUT_READY_SPEAKER,
        metrics::NOT_SUPPORTED_SERVICE_ANNOTATIONS,
        metrics::UPDATE_MC_VERSION_REQUIRED,
        metrics::OBSOLETE_LAYER2_POOLS_ARE_USED,
    ] {
        assert!(used.contains(wanted), "no alert reads `{wanted}`");
    }
}

#[test]
fn every_alert_has_the_labels_and_annotations_of_the_platform() {
    let mut names = BTreeSet::new();
    for (file, rule) in alerts() {
        let name = rule["alert"].as_str().unwrap().to_owned();
        assert!(name.starts_with("D8Metallb"), "{file}: `{name}` must start with D8Metallb");
        assert!(names.insert(name.clone()), "{file}: `{name}` defined twice");
        let for_ = rule.get("for").and_then(Value::as_str);
        assert!(
            for_.is_some_and(|f| promql_parser::util::parse_duration(f).is_ok()),
            "{file}: `{name}` needs a valid `for`"
        );
        let level = rule.pointer("/labels/severity_level").and_then(Value::as_str);
        assert!(
            level.and_then(|l| l.parse::<u8>().ok()).is_some_and(|l| (1..=9).contains(&l)),
            "{file}: `{name}` severity_level must be a quoted number 1..=9"
        );
        let tier = rule.pointer("/labels/tier").and_then(Value::as_str);
        assert!(matches!(tier, Some("cluster" | "application")), "{file}: `{name}` tier");
        let annotation = |key: &str| rule.pointer(&format!("/annotations/{key}"))?.as_str();
        assert_eq!(annotation("plk_protocol_version"), Some("1"), "{file}: `{name}`");
        assert_eq!(annotation("plk_markup_format"), Some("markdown"), "{file}: `{name}`");
        for key in ["summary", "description"] {
            let text = annotation(key).unwrap_or_default();
            assert!(!text.trim().is_empty(), "{file}: `{name}` has no {key}");
            assert!(!text.chars().any(is_cyrillic), "{file}: `{name}` {key}");
        }
        assert!(
            annotation("description").unwrap_or_default().contains("kubectl "),
            "{file}: `{name}` must tell how to investigate with kubectl"
        );
    }
    for kept in KEPT_ALERT_NAMES {
        assert!(names.contains(kept), "alert `{kept}` of the previous implementation is missing");
    }
}

fn is_cyrillic(c: char) -> bool {
    ('\u{0400}'..='\u{04FF}').contains(&c)
}

/// Replaces the Grafana variables of a query with values PromQL accepts.
fn expand_grafana_variables(query: &str) -> String {
    query
        .replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("${node}", ".*")
        .replace("$node", ".*")
}

/// Every panel of a dashboard, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(panel);
        out.extend(panel.get("panels").and_then(Value::as_array).into_iter().flatten());
    }
    out
}

#[test]
fn every_dashboard_parses_and_its_queries_read_exported_metrics() {
    let sources = speaker_sources();
    for path in files("monitoring/grafana-dashboards", "json") {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()), "{file}: title");
        assert!(dashboard["uid"].as_str().is_some_and(|t| !t.is_empty()), "{file}: uid");

        let mut ids = BTreeSet::new();
        let mut queries = 0;
        let mut used = BTreeSet::new();
        for panel in panels(&dashboard) {
            let id = panel["id"].as_u64().unwrap_or_else(|| panic!("{file}: panel without id"));
            assert!(ids.insert(id), "{file}: panel id {id} used twice");
            let title = panel["title"].as_str().unwrap_or_default();
            if panel["type"] == "row" {
                continue;
            }
            let targets = panel["targets"].as_array();
            let targets =
                targets.unwrap_or_else(|| panic!("{file}: panel `{title}` has no targets"));
            assert!(!targets.is_empty(), "{file}: panel `{title}` has no targets");
            for target in targets {
                let expr = target["expr"].as_str().unwrap_or_default();
                let names = metric_names(&expand_grafana_variables(expr))
                    .unwrap_or_else(|e| panic!("{file}: panel `{title}`: {e}"));
                for name in names {
                    assert!(
                        is_exported(&name, &sources),
                        "{file}: panel `{title}` reads `{name}`, which the module does not export"
                    );
                    used.insert(name);
                }
                queries += 1;
            }
        }
        assert!(queries > 0, "{file}: no queries");

        // The views the issue asks for: pool usage, IPs per node, ARP/NDP rates, gratuitous
        // sends, drops and take-overs.
        for wanted in [
            metrics::CLASS_ALLOCATED_IPS,
            metrics::CLASS_POOL_SIZE,
            "metallb_speaker_owned_ips",
            "metallb_speaker_requests_received_total",
            "metallb_speaker_replies_sent_total",
            "metallb_speaker_gratuitous_sent_total",
            "metallb_speaker_drops_total",
            "metallb_speaker_takeovers_total",
        ] {
            assert!(used.contains(wanted), "{file}: no panel reads `{wanted}`");
        }
    }
}

#[test]
fn the_metric_name_check_rejects_what_the_module_does_not_export() {
    let sources = speaker_sources();
    assert!(is_exported(metrics::CLASS_POOL_SIZE, &sources));
    assert!(is_exported("metallb_speaker_replies_sent_total", &sources));
    assert!(!is_exported("metallb_speaker_no_such_metric_total", &sources));
    assert!(!is_exported("metallb_allocator_addresses_total", &sources));
    assert!(metric_names("sum(rate(up[5m])) by (job").is_err());
    assert!(metric_names("1 + 1").is_err());
    assert_eq!(
        metric_names("a_total / on (x) b").unwrap().into_iter().collect::<Vec<_>>(),
        ["a_total", "b"]
    );
}
