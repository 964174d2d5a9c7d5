//! Per-deployment log files: `logging.masks` applied, terminal escape sequences removed, every
//! line on disk as soon as it is written, and a bounded tail kept for the final summary.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::mask::{apply_masks, Mask};

/// One deployment's log file and the last lines written to it.
#[derive(Debug)]
pub struct LogSink {
    path: PathBuf,
    file: File,
    masks: Arc<[Mask]>,
    tail: VecDeque<String>,
    tail_lines: usize,
    write_error: Option<io::Error>,
    scratch: Vec<u8>,
    /// Whether the line returned for display keeps the tool's colours.
    display_color: bool,
}

impl LogSink {
    /// Opens the log at `path`, creating it (mode 0600: output may hold secrets the masks
    /// missed) and its parent folders. An existing log is appended to, so every attempt of a
    /// retried deployment ends up in one file; it keeps the mode it already has.
    pub fn create(path: &Path, masks: Arc<[Mask]>, tail_lines: usize) -> io::Result<LogSink> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::state::fsutil::private_dir(parent)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        Ok(LogSink {
            path: path.to_owned(),
            file,
            masks,
            tail: VecDeque::with_capacity(tail_lines.min(1024)),
            tail_lines,
            write_error: None,
            scratch: Vec::new(),
            display_color: false,
        })
    }

    /// Lines returned for display keep their colour codes (a colour terminal shows them); the
    /// file and the tail never have them.
    pub fn display_color(mut self, on: bool) -> Self {
        self.display_color = on;
        self
    }

    /// Removes escape sequences from one output line, masks it, appends it to the file and the
    /// tail, and returns the masked line for display. The file is written before this returns
    /// (no user-space buffer), so a SIGKILL of bitops loses nothing already reported. A failed
    /// write is remembered, not raised: the deployment itself must not fail because its log
    /// could not be written.
    pub fn write_line(&mut self, line: &str) -> String {
        // Escapes are removed before masking: a colour code inside a secret must not let it
        // slip past a mask.
        let has_escape = line.contains('\x1b');
        let plain = if has_escape {
            std::borrow::Cow::Owned(crate::ansi::strip_ansi(line))
        } else {
            std::borrow::Cow::Borrowed(line)
        };
        let masked = apply_masks(&self.masks, &plain);
        self.scratch.clear();
        self.scratch.extend_from_slice(masked.as_bytes());
        self.scratch.push(b'\n');
        // One write per line: with O_APPEND the line lands whole even if another process
        // appends to the same file.
        if let Err(err) = self.file.write_all(&self.scratch) {
            self.write_error.get_or_insert(err);
        }
        if self.tail_lines > 0 {
            if self.tail.len() == self.tail_lines {
                self.tail.pop_front();
            }
            self.tail.push_back(masked.clone());
        }
        if has_escape && self.display_color {
            let coloured = apply_masks(&self.masks, line);
            // Only if the colours changed nothing the masks hide.
            if crate::ansi::strip_ansi(&coloured) == masked {
                return coloured;
            }
        }
        masked
    }

    /// A line of bitops' own (`--- attempt 2 of 3 ---`), handled exactly like process output so
    /// that masks cannot be bypassed by the engine either.
    pub fn note(&mut self, text: &str) -> String {
        self.write_line(text)
    }

    /// The last `tail_lines` lines written, oldest first.
    pub fn tail(&self) -> Vec<String> {
        self.tail.iter().cloned().collect()
    }

    /// Where the log is, for the final summary to point at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The first error writing the file hit, if any; writing went on after it.
    pub fn write_error(&self) -> Option<&io::Error> {
        self.write_error.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn masks(entries: &[(&str, &str)]) -> Arc<[Mask]> {
        entries
            .iter()
            .map(|(s, r)| Mask::new(s, r).unwrap())
            .collect()
    }

    #[test]
    fn log_file_is_private_and_written_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs/1/backend-test/terraform.log");
        let mut sink = LogSink::create(&path, masks(&[(r"(token=)\w+", r"\1***")]), 10).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        assert_eq!(sink.write_line("token=abc123 ok"), "token=*** ok");
        assert_eq!(fs::read_to_string(&path).unwrap(), "token=*** ok\n");
        sink.note("--- attempt 2 of 3 ---");
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "token=*** ok\n--- attempt 2 of 3 ---\n"
        );
        assert!(sink.write_error().is_none());
        assert_eq!(sink.path(), path);
        drop(sink);

        let mut again = LogSink::create(&path, masks(&[]), 10).unwrap();
        again.write_line("retry");
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "token=*** ok\n--- attempt 2 of 3 ---\nretry\n"
        );
    }

    #[test]
    fn tail_keeps_only_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = LogSink::create(&dir.path().join("log"), masks(&[]), 3).unwrap();
        for i in 0..10 {
            sink.write_line(&format!("line {i}"));
        }
        assert_eq!(sink.tail(), ["line 7", "line 8", "line 9"]);

        let mut none = LogSink::create(&dir.path().join("log2"), masks(&[]), 0).unwrap();
        none.write_line("x");
        assert!(none.tail().is_empty());
    }

    #[test]
    fn escapes_never_reach_the_file_and_never_split_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let m = masks(&[("hunter2", "***")]);
        let mut sink = LogSink::create(&path, Arc::clone(&m), 5).unwrap();
        assert_eq!(
            sink.write_line("\x1b[1mPlan:\x1b[0m 1 to add"),
            "Plan: 1 to add"
        );
        assert_eq!(sink.write_line("pw hun\x1b[0mter2"), "pw ***");
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "Plan: 1 to add\npw ***\n"
        );
        assert_eq!(sink.tail(), ["Plan: 1 to add", "pw ***"]);

        let mut colour = LogSink::create(&path, m, 5).unwrap().display_color(true);
        assert_eq!(
            colour.write_line("\x1b[1mPlan:\x1b[0m hunter2"),
            "\x1b[1mPlan:\x1b[0m ***"
        );
        // Colours that split a secret: the display gets the plain, masked line.
        assert_eq!(colour.write_line("pw hun\x1b[0mter2"), "pw ***");
        assert!(!fs::read_to_string(&path).unwrap().contains('\x1b'));
    }

    #[test]
    fn write_errors_are_remembered_not_raised() {
        // /dev/full accepts the open and fails every write with ENOSPC.
        let mut sink = LogSink::create(Path::new("/dev/full"), masks(&[]), 2).unwrap();
        assert_eq!(sink.write_line("first"), "first");
        sink.write_line("second");
        let err = sink.write_error().expect("the failed write is reported");
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(sink.tail(), ["first", "second"]);
    }
}
