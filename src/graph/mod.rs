//! The dependency graph: building it from the repo, validating it, and selecting from it.

pub mod build;
pub mod changed;
pub mod inputs;
pub mod lint;
pub mod select;

pub use build::{build, Edge, EdgeKind, Graph, Node, NodeKind};
pub use select::{check_guards, select, SelectOptions, Selection};
