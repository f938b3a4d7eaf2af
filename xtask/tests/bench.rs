//! The pure parts of `cargo xtask bench --quick`: binding contexts for 1k Services built from
//! the hook binary's own `hook config`, real `hook run`s through the measuring wrapper and the
//! baseline, outputs the framework accepts, and both reports rendered. No timing is asserted:
//! benchmarks measure, tests check that the measuring works.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use xtask::bench::jq::Program;
use xtask::bench::report::{self, Lang};
use xtask::bench::{Tools, hook, target_dir};

/// The debug `metallb-hooks`, built if needed (tests of this crate do not build other crates'
/// binaries). Built together with the speaker, as the demo test builds them, so the two tests
/// share one build.
fn hooks_binary() -> PathBuf {
    let root = xtask::repo_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .args(["build", "-j2"])
        .args(xtask::demo::DEV_BUILD_PACKAGES)
        .current_dir(&root)
        .status()
        .expect("run cargo");
    assert!(status.success(), "cargo build of the hooks and the speaker failed");
    target_dir(&root).join("debug").join("metallb-hooks")
}

#[test]
fn quick_hook_bench_runs_and_the_report_renders() {
    let tools = Tools {
        hooks: hooks_binary(),
        speaker: PathBuf::from("/nonexistent/metallb-speaker"),
        xtask: PathBuf::from(env!("CARGO_BIN_EXE_xtask")),
        meter: PathBuf::from(env!("CARGO_BIN_EXE_bench-exec")),
    };
    let work = tempfile::tempdir().unwrap();
    let scale = hook::Scale { services: 1_000, repeats: 1 };
    let results = hook::run(&tools, work.path(), &[scale], false).unwrap();
    let r = &results[0];
    // Every IP becomes a child with its status, plus the Services' and classes' status.
    assert!(r.first.kube_ops >= 1_000 * hook::IPS_PER_SERVICE, "{}", r.first.kube_ops);
    assert_eq!(r.steady.kube_ops, 0, "a second run over the applied outputs changes nothing");
    for case in [&r.first, &r.steady] {
        assert_eq!((case.hook.len(), case.baseline.len()), (1, 1));
        assert!(case.input_bytes > 0);
        assert!(case.hook[0].max_rss_kib > 0 && case.baseline[0].max_rss_kib > 0);
    }
    assert!(r.first.output.kubernetes > 0 && r.steady.output.metrics > 0);

    let mut all = report::Results::new("cargo xtask bench --quick".to_owned(), true);
    all.hook = results;
    let en = report::render(&all, Lang::En);
    let ru = report::render(&all, Lang::Ru);
    for doc in [&en, &ru] {
        assert!(doc.starts_with("---\ntitle: "), "front matter");
        assert!(doc.contains("## 1. "), "{doc}");
        assert!(doc.contains("| 1000 |"), "{doc}");
        assert!(doc.contains("cargo xtask bench --quick"));
    }
    assert!(!en.chars().any(|c| ('\u{0400}'..='\u{04FF}').contains(&c)), "no Cyrillic in English");
    assert!(ru.contains("Цели"));
}

#[test]
fn compiled_filters_answer_like_the_test_kit() {
    let out = Command::new(hooks_binary()).args(["hook", "config"]).output().unwrap();
    assert!(out.status.success());
    let defs = testkit::hooks::parse_batch_config(
        &String::from_utf8_lossy(&out.stdout),
        "metallb",
        "hooks/batchhooks",
    )
    .unwrap();
    // A few objects of every generated kind: the test kit compiles its program per object.
    let cluster = hook::cluster(3).unwrap();
    let mut per_kind = std::collections::BTreeMap::<&str, Vec<&Value>>::new();
    for (key, object) in cluster.objects() {
        let list = per_kind.entry(key.kind.as_str()).or_default();
        if list.len() < 3 {
            list.push(object);
        }
    }
    let mut compared = 0;
    for def in &defs {
        for filter in def.config.kubernetes.iter().filter_map(|b| b.jq_filter.as_deref()) {
            let program = Program::compile(filter).unwrap();
            for object in per_kind.values().flatten() {
                let expected = testkit::jq::run(filter, object).unwrap();
                assert_eq!(program.run(object).unwrap(), expected, "{filter} on {object}");
                compared += 1;
            }
        }
    }
    assert!(compared > 100, "only {compared} comparisons");
}
