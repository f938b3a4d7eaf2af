//! Development tasks of the metallb module: `cargo xtask <task>`.

use anyhow::Result;
use clap::{Parser, Subcommand};
use xtask::{codegen, lint, test};

#[derive(Parser)]
#[command(about = "Development tasks of the metallb module")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Write the generated files (CRDs) from the Rust types.
    Codegen {
        /// Only compare; fail naming every file that differs from what would be generated.
        #[arg(long)]
        check: bool,
    },
    /// Check the module's conventions (bilingual docs, CRD labels, enum spelling, ...).
    Lint,
    /// Run every check and test (fmt, clippy, codegen --check, lint, all tests).
    Test,
}

fn main() -> Result<()> {
    let root = xtask::repo_root();
    match Cli::parse().task {
        Task::Codegen { check } => {
            let mode = if check { codegen::Mode::Check } else { codegen::Mode::Write };
            codegen::run(&root, mode)
        }
        Task::Lint => {
            let findings = lint::run(&root)?;
            lint::report(&findings)
        }
        Task::Test => test::run(&root),
    }
}
