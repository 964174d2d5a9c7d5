//! Finding the operations repo and what is in it: environments, their tool folders, hooks and
//! configs. Folder reads and config parsing run in parallel (rayon); results are sorted so
//! everything downstream is deterministic.

pub mod files;
pub mod record;
pub mod root;
pub mod scan;

pub use root::{find_ops_repo, CONTAINER_REPO};
pub use scan::{scan, Input};
