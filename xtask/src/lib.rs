//! Development tasks of the metallb module, as a library so tests run them too.

pub mod bench;
pub mod codegen;
pub mod demo;
pub mod docs;
pub mod lint;
pub mod test;

use std::path::{Path, PathBuf};

/// The repository root: the parent of this crate's folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the repository root")
        .to_path_buf()
}
