//! Filled by its issue.
