//! Running the graph: the scheduler, one deployment's steps, and the processes they start.
//!
//! The engine never prints: everything the user sees leaves this module as a `RunEvent`.

pub mod deployment;
pub mod events;
pub mod lifetime;
pub mod live_feed;
pub mod log_sink;
pub mod outputs;
pub mod plain_output;
pub mod process;
pub mod refresh;
pub mod run;
pub mod scheduler;
pub mod signals;
mod spawn;
pub mod upstream;
pub mod workspace;
