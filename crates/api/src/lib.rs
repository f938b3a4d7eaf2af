//! Types of the metallb module's API: custom resources, ModuleConfig settings, internal
//! values, and the names of every label, annotation and condition it uses.
//!
//! No I/O lives here; the hooks, the speaker and the code generator all share these types.

pub mod names;
