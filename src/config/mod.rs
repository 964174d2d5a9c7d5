//! Reading `bitops.config.yaml` files into validated values.
//!
//! `load` reads a file and parses it (through `crate::yaml`), `reader` checks types and keys while
//! collecting every problem, `section` knows the keys of a `bitops:` section, and `settings`
//! applies precedence: flag > environment variable > environment config > repo config > default.

pub mod legacy;
pub mod load;
pub mod reader;
pub mod section;
pub mod settings;

pub use load::{load_file, CONFIG_FILE};
pub use section::{BitopsSection, DeploymentSpec, LoggingSection, MaskSpec, PluginSpec};
