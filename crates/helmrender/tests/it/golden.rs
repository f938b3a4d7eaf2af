//! Golden manifests: the whole rendered output of every scenario, compared with
//! `tests/golden/<scenario>.yaml`. After an intended template change, rewrite them with
//! `UPDATE_GOLDEN=1 cargo nextest run -p helmrender` and review the diff.

use std::path::PathBuf;

use crate::{SCENARIOS, chart};

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{name}.yaml"))
}

/// The first line where `actual` and `expected` differ, with its number, for the failure
/// message (the full diff is one `git diff` away after an update).
fn first_difference(expected: &str, actual: &str) -> String {
    let mut expected_lines = expected.lines();
    let mut actual_lines = actual.lines();
    for number in 1.. {
        match (expected_lines.next(), actual_lines.next()) {
            (Some(e), Some(a)) if e == a => {}
            (None, None) => break,
            (e, a) => {
                return format!(
                    "line {number}:\n  golden:   {}\n  rendered: {}",
                    e.unwrap_or("<end>"),
                    a.unwrap_or("<end>")
                );
            }
        }
    }
    "only line endings differ".into()
}

#[test]
fn rendered_manifests_match_the_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut drift = Vec::new();
    for scenario in SCENARIOS {
        let rendered = helmrender::to_stream(chart().name(), &scenario.render());
        let path = golden_path(scenario.name);
        if update {
            std::fs::write(&path, &rendered).unwrap();
            continue;
        }
        let golden = std::fs::read_to_string(&path).unwrap_or_default();
        if golden != rendered {
            drift.push(format!("{}: {}", path.display(), first_difference(&golden, &rendered)));
        }
    }
    assert!(
        drift.is_empty(),
        "rendered manifests differ from the golden files:\n{}\n\nIf the change is intended, \
         run `UPDATE_GOLDEN=1 cargo nextest run -p helmrender` and review the diff of \
         crates/helmrender/tests/golden/.",
        drift.join("\n")
    );
}

#[test]
fn first_difference_names_the_line() {
    assert_eq!(first_difference("a\nb\n", "a\nc\n"), "line 2:\n  golden:   b\n  rendered: c");
    assert_eq!(first_difference("a\n", "a\nb\n"), "line 2:\n  golden:   <end>\n  rendered: b");
}
