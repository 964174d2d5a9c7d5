//! What a cached plan is keyed by: everything about the invocation its output may depend on,
//! apart from the files it read (those are checked one by one, see `super`).
//!
//! No attempt to be clever: the binary (version and the executable's identity, so a rebuild
//! is a new key), every argument, the working folder, the whole environment (plugins and
//! configs read variables; which ones is not worth guessing), who runs it (file access
//! depends on it) and which of stdin/stdout/stderr are terminals (colors).

use std::hash::Hasher;
use std::io::IsTerminal;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

/// Feeds both halves of the 128-bit key.
struct Two(std::hash::DefaultHasher, std::hash::DefaultHasher);

impl Two {
    fn bytes(&mut self, b: &[u8]) {
        // Length first: ("ab", "c") and ("a", "bc") are different keys.
        self.0.write_u64(b.len() as u64);
        self.0.write(b);
        self.1.write_u64(b.len() as u64);
        self.1.write(b);
    }
    fn num(&mut self, n: i128) {
        self.bytes(&n.to_le_bytes());
    }
}

/// The key of this process's plan, or `None` when the executable cannot be identified.
/// (`DefaultHasher` is only stable within one build of Rust's std: the key includes the
/// executable's identity, so a key is never compared across builds.)
pub fn of_this_process() -> Option<[u8; 16]> {
    let mut h = Two(Default::default(), Default::default());
    h.1.write_u8(1);
    h.bytes(b"bitops plan cache");
    h.num(i128::from(super::format::FORMAT));
    h.bytes(env!("CARGO_PKG_VERSION").as_bytes());
    let exe = std::env::current_exe().ok()?;
    let m = std::fs::metadata(&exe).ok()?;
    h.bytes(exe.as_os_str().as_bytes());
    for n in [
        i128::from(m.dev()),
        i128::from(m.ino()),
        i128::from(m.size()),
        i128::from(m.mtime()),
        i128::from(m.mtime_nsec()),
        i128::from(m.ctime()),
        i128::from(m.ctime_nsec()),
    ] {
        h.num(n);
    }
    h.bytes(b"args");
    for a in std::env::args_os() {
        h.bytes(a.as_bytes());
    }
    h.bytes(b"cwd");
    h.bytes(std::env::current_dir().ok()?.as_os_str().as_bytes());
    h.bytes(b"env");
    let mut vars: Vec<_> = std::env::vars_os().collect();
    vars.sort();
    for (k, v) in &vars {
        h.bytes(k.as_bytes());
        h.bytes(v.as_bytes());
    }
    h.bytes(b"ids");
    // User and groups (real, effective, saved, file system), from the kernel's own account.
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    for line in status.lines() {
        if ["Uid:", "Gid:", "Groups:"]
            .iter()
            .any(|k| line.starts_with(k))
        {
            h.bytes(line.as_bytes());
        }
    }
    h.bytes(b"ttys");
    h.num(i128::from(std::io::stdin().is_terminal()));
    h.num(i128::from(std::io::stdout().is_terminal()));
    h.num(i128::from(std::io::stderr().is_terminal()));
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&h.0.finish().to_le_bytes());
    key[8..].copy_from_slice(&h.1.finish().to_le_bytes());
    Some(key)
}

/// The key as a file name.
pub fn hex(key: &[u8; 16]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}
