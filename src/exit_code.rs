//! Every exit code bitops uses, in one place (DESIGN §3.3).

/// All selected deployments succeeded (or, for `plan --run --detailed-exitcode`, no changes).
pub const SUCCESS: u8 = 0;
/// A deployment failed, timed out, or was skipped because of a failure.
pub const FAILED: u8 = 1;
/// Bad configuration or usage; nothing ran. (`plan --run --detailed-exitcode`: changes present.)
pub const CONFIG: u8 = 2;
/// A bug or an environment bitops cannot work in (its own files unwritable, …).
pub const INTERNAL: u8 = 3;
/// Another run holds the lock of an environment this run needs.
pub const LOCKED: u8 = 4;
/// Stopped by SIGINT (128 + 2).
pub const INTERRUPTED: u8 = 130;
/// Stopped by SIGTERM (128 + 15).
pub const TERMINATED: u8 = 143;
/// Stopped by SIGHUP (128 + 1); handled exactly like SIGTERM otherwise.
pub const HANGUP: u8 = 129;
/// Stopped by SIGQUIT (128 + 3); handled exactly like SIGTERM otherwise (no core dump).
pub const QUIT: u8 = 131;
