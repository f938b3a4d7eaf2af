//! The generated files and the module conventions, checked on the repository itself and on
//! broken copies of it.

mod common;

use std::path::Path;

use common::copy_recursively;
use xtask::{codegen, lint, repo_root};

/// Copies the module files the checks read into `dest`.
fn copy_module(dest: &Path) {
    let root = repo_root();
    for entry in ["module.yaml", "Chart.yaml", ".helmignore", ".dmtlint.yaml", "crds", "openapi"] {
        copy_recursively(&root.join(entry), &dest.join(entry));
    }
    // The generated reference documents, which `codegen --check` compares like the CRDs.
    std::fs::create_dir_all(dest.join("docs")).unwrap();
    for doc in GENERATED_DOCS {
        copy_recursively(&root.join(doc), &dest.join(doc));
    }
}

/// Documents `cargo xtask codegen` writes from the schemas.
const GENERATED_DOCS: [&str; 4] =
    ["docs/CONFIGURATION.md", "docs/CONFIGURATION.ru.md", "docs/CR.md", "docs/CR.ru.md"];

fn messages(root: &Path) -> Vec<String> {
    lint::run(root).unwrap().iter().map(ToString::to_string).collect()
}

#[test]
fn generated_files_match_the_rust_types() {
    codegen::run(&repo_root(), codegen::Mode::Check).unwrap();
}

#[test]
fn a_hand_edit_of_a_crd_fails_the_check_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    copy_module(dir.path());
    codegen::run(dir.path(), codegen::Mode::Check).unwrap();

    let edited = dir.path().join("crds/metalloadbalancerclasses.yaml");
    let text = std::fs::read_to_string(&edited).unwrap();
    std::fs::write(&edited, text.replace("minItems: 1", "minItems: 0")).unwrap();
    let error = codegen::run(dir.path(), codegen::Mode::Check).unwrap_err().to_string();
    assert!(error.contains("crds/metalloadbalancerclasses.yaml"), "{error}");
    assert!(!error.contains("sdninternall2lbservices"), "{error}");

    codegen::run(dir.path(), codegen::Mode::Write).unwrap();
    codegen::run(dir.path(), codegen::Mode::Check).unwrap();
}

#[test]
fn the_repository_follows_the_module_conventions() {
    assert_eq!(messages(&repo_root()), Vec::<String>::new());
}

#[test]
fn broken_conventions_are_each_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    copy_module(root);
    assert_eq!(messages(root), Vec::<String>::new());

    std::fs::remove_file(root.join("crds/internal/doc-ru-sdninternall2lbservices.yaml")).unwrap();
    let class = root.join("crds/metalloadbalancerclasses.yaml");
    let text = std::fs::read_to_string(&class).unwrap();
    std::fs::write(&class, text.replace("Layer 2 settings.", "Настройки Layer 2.")).unwrap();
    let ru = root.join("crds/doc-ru-metalloadbalancerclasses.yaml");
    let text = std::fs::read_to_string(&ru).unwrap();
    std::fs::write(
        &ru,
        text.replace("                nodeSelector:\n", "                nodeSelectorz:\n"),
    )
    .unwrap();
    let config = root.join("openapi/config-values.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replacen("enum: [Exists, Equal]", "enum: [exists, Equal]", 1))
        .unwrap();
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::write(root.join("docs/FAQ.md"), "# FAQ\n").unwrap();
    std::fs::create_dir(root.join("stray")).unwrap();
    std::fs::write(root.join("openapi/conversions/v3.yaml"), "version: 3\n").unwrap();

    let found = messages(root);
    let expected = [
        "crds/internal/sdninternall2lbservices.yaml: has no doc-ru- twin",
        "crds/metalloadbalancerclasses.yaml: line",
        "crds/doc-ru-metalloadbalancerclasses.yaml: `properties.spec.properties.nodeSelectorz` does not exist",
        "openapi/config-values.yaml: enum value `exists`",
        "docs/FAQ.md: has no Russian version FAQ.ru.md",
        ".helmignore: `stray` is neither chart content nor ignored",
        "openapi/conversions/v3.yaml: not a conversion to a version in 2..=2",
    ];
    for prefix in expected {
        assert!(found.iter().any(|f| f.starts_with(prefix)), "missing `{prefix}` in {found:#?}");
    }
    assert_eq!(found.len(), expected.len(), "{found:#?}");
}

#[test]
fn a_hand_edit_of_a_generated_document_fails_the_check_naming_it() {
    let generated: Vec<_> = codegen::generate().unwrap().into_iter().map(|g| g.path).collect();
    for doc in GENERATED_DOCS {
        assert!(generated.contains(&doc), "`{doc}` is not generated");
    }

    let dir = tempfile::tempdir().unwrap();
    copy_module(dir.path());
    codegen::run(dir.path(), codegen::Mode::Check).unwrap();

    let edited = dir.path().join("docs/CR.ru.md");
    let text = std::fs::read_to_string(&edited).unwrap();
    assert!(text.contains("### `spec`"), "{text}");
    std::fs::write(&edited, text.replace("### `spec`", "### `spec` (edited)")).unwrap();
    std::fs::remove_file(dir.path().join("docs/CONFIGURATION.md")).unwrap();
    let error = codegen::run(dir.path(), codegen::Mode::Check).unwrap_err().to_string();
    assert!(error.contains("docs/CR.ru.md"), "{error}");
    assert!(error.contains("docs/CONFIGURATION.md"), "{error}");
    assert!(!error.contains("docs/CR.md,"), "{error}");
    assert!(!error.contains("docs/CONFIGURATION.ru.md"), "{error}");

    codegen::run(dir.path(), codegen::Mode::Write).unwrap();
    codegen::run(dir.path(), codegen::Mode::Check).unwrap();
}
