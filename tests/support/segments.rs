//! The segment files of a journal directory, for the tests that damage or count
//! them.

use std::path::{Path, PathBuf};

/// The journal's segment files, oldest first.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cfj"))
        .collect();
    paths.sort();
    paths
}
