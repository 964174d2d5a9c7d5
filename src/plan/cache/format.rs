//! The plan cache file: what a plan printed and what it looked at, in one file that is read
//! whole or not at all.
//!
//! ```text
//! MAGIC  u32 format  u16+bytes bitops version  [16] key  u64+bytes stderr
//! stdout (streamed while the plan prints it)
//! u32+bytes repo root  u64 entry count  entries  u8 exit code
//! u64 stdout length  u64 offset of the root  u64 checksum of everything before it  MAGIC
//! ```
//!
//! Entries are sorted by path; each path shares a prefix with the one before it (stored as
//! the shared length and the rest), then a flag byte and the `stat` fields or an error number.
//! Anything that does not parse, a length that does not add up, a checksum that does not match,
//! another format or another bitops version is a miss, never an error.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::discover::record::{Found, Rec, Stat};

pub const MAGIC: &[u8; 8] = b"BTPLANC\x01";
pub const FORMAT: u32 = 1;

/// A fast checksum of a stream (not cryptographic: it catches a torn or damaged file). One
/// multiply per 8 bytes: tens of MB in a few milliseconds.
#[derive(Clone)]
pub struct Sum {
    h: u64,
    pending: [u8; 8],
    n: usize,
    len: u64,
}

impl Default for Sum {
    fn default() -> Self {
        Sum {
            h: 0x243F_6A88_85A3_08D3,
            pending: [0; 8],
            n: 0,
            len: 0,
        }
    }
}

impl Sum {
    #[inline]
    fn word(&mut self, w: u64) {
        self.h = (self.h ^ w)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }

    pub fn update(&mut self, mut b: &[u8]) {
        self.len += b.len() as u64;
        if self.n > 0 {
            let take = (8 - self.n).min(b.len());
            self.pending[self.n..self.n + take].copy_from_slice(&b[..take]);
            self.n += take;
            b = &b[take..];
            if self.n < 8 {
                return;
            }
            self.word(u64::from_le_bytes(self.pending));
            self.n = 0;
        }
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.n = rest.len();
    }

    pub fn finish(mut self) -> u64 {
        let mut last = [0u8; 8];
        last[..self.n].copy_from_slice(&self.pending[..self.n]);
        self.word(u64::from_le_bytes(last));
        self.word(self.len);
        let mut h = self.h;
        h ^= h >> 33;
        h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        h ^ (h >> 33)
    }
}

/// One recorded path and what a `stat` said of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    pub follow: bool,
    pub found: Found,
}

/// The header, up to the stdout bytes.
pub fn header(key: &[u8; 16], stderr: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + stderr.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    let v = env!("CARGO_PKG_VERSION").as_bytes();
    out.extend_from_slice(&(v.len() as u16).to_le_bytes());
    out.extend_from_slice(v);
    out.extend_from_slice(key);
    out.extend_from_slice(&(stderr.len() as u64).to_le_bytes());
    out.extend_from_slice(stderr);
    out
}

/// The tail after the stdout bytes, up to (not including) the checksum, given to `emit` in
/// pieces (it is several MB for a large repo: never held whole). `at` is the file offset where
/// it starts; every entry's `found` is set.
pub fn tail(
    root: &Path,
    entries: &[Rec],
    code: u8,
    stdout_len: u64,
    at: u64,
    emit: &mut dyn FnMut(&[u8]),
) {
    let mut out = Vec::with_capacity(1 << 16);
    let r = root.as_os_str().as_bytes();
    out.extend_from_slice(&(r.len() as u32).to_le_bytes());
    out.extend_from_slice(r);
    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    let mut prev: &[u8] = &[];
    for e in entries {
        if out.len() > 60_000 {
            emit(&out);
            out.clear();
        }
        let p = e.path.as_os_str().as_bytes();
        let shared = common_prefix(p, prev);
        out.extend_from_slice(&(shared as u32).to_le_bytes());
        out.extend_from_slice(&((p.len() - shared) as u32).to_le_bytes());
        out.extend_from_slice(&p[shared..]);
        prev = p;
        match e.found.unwrap_or(Found::Error(-1)) {
            Found::Stat(s) => {
                out.push(u8::from(e.follow));
                for v in [s.dev, s.ino, s.size] {
                    out.extend_from_slice(&v.to_le_bytes());
                }
                out.extend_from_slice(&s.mtime.to_le_bytes());
                out.extend_from_slice(&s.ctime.to_le_bytes());
                out.extend_from_slice(&s.mode.to_le_bytes());
            }
            Found::Error(errno) => {
                out.push(u8::from(e.follow) | 2);
                out.extend_from_slice(&errno.to_le_bytes());
            }
        }
    }
    out.push(code);
    out.extend_from_slice(&stdout_len.to_le_bytes());
    out.extend_from_slice(&at.to_le_bytes());
    emit(&out);
}

/// How many leading bytes `a` and `b` share (8 at a time while they can).
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n && a[i..i + 8] == b[i..i + 8] {
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

/// The end of the file, after the checksum of everything before it.
pub fn end(sum: u64) -> Vec<u8> {
    let mut out = sum.to_le_bytes().to_vec();
    out.extend_from_slice(MAGIC);
    out
}

/// A cache file, parsed.
#[derive(Debug)]
pub struct Parsed<'a> {
    pub key: [u8; 16],
    pub stderr: &'a [u8],
    pub stdout: &'a [u8],
    pub root: PathBuf,
    pub entries: Vec<Entry>,
    pub code: u8,
}

struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let s = self.data.get(self.at..end)?;
        self.at = end;
        Some(s)
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).map(|s| s.try_into().expect("N bytes"))
    }
    fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|a| a[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.array().map(i64::from_le_bytes)
    }
    fn len(&mut self) -> Option<usize> {
        usize::try_from(self.u64()?).ok()
    }
}

/// Parses a whole cache file; `Err` says why it is not one this bitops can use.
pub fn parse(data: &[u8]) -> Result<Parsed<'_>, &'static str> {
    const TRAILER: usize = 8 + 8 + 8 + 8 + 8;
    if data.len() < MAGIC.len() + TRAILER || !data.starts_with(MAGIC) || !data.ends_with(MAGIC) {
        return Err("not a plan cache file (or cut short)");
    }
    let sum_at = data.len() - 16;
    let stored = u64::from_le_bytes(data[sum_at..sum_at + 8].try_into().expect("8 bytes"));
    let mut sum = Sum::default();
    sum.update(&data[..sum_at]);
    if sum.finish() != stored {
        return Err("damaged (checksum)");
    }
    let mut c = Cursor { data, at: 8 };
    let bad = "damaged (lengths)";
    if c.u32().ok_or(bad)? != FORMAT {
        return Err("another cache format");
    }
    let vlen = c.u16().ok_or(bad)? as usize;
    if c.take(vlen).ok_or(bad)? != env!("CARGO_PKG_VERSION").as_bytes() {
        return Err("written by another bitops version");
    }
    let key = c.array::<16>().ok_or(bad)?;
    let elen = c.len().ok_or(bad)?;
    let stderr = c.take(elen).ok_or(bad)?;
    let stdout_start = c.at;
    let mut t = Cursor {
        data: &data[..sum_at],
        at: sum_at - 16,
    };
    let stdout_len = t.len().ok_or(bad)?;
    let tail_at = t.len().ok_or(bad)?;
    if stdout_start.checked_add(stdout_len) != Some(tail_at) || tail_at > sum_at - 16 {
        return Err(bad);
    }
    let stdout = &data[stdout_start..tail_at];
    let mut c = Cursor {
        data: &data[..sum_at - 16],
        at: tail_at,
    };
    let rlen = c.u32().ok_or(bad)? as usize;
    let root = PathBuf::from(OsStr::from_bytes(c.take(rlen).ok_or(bad)?));
    let count = c.len().ok_or(bad)?;
    // Each entry takes at least 13 bytes: a count beyond that is damage, not a reason to
    // allocate.
    if count > data.len() / 13 {
        return Err(bad);
    }
    let mut entries = Vec::with_capacity(count);
    let mut prev: Vec<u8> = Vec::new();
    for _ in 0..count {
        let shared = c.u32().ok_or(bad)? as usize;
        let rest = c.u32().ok_or(bad)? as usize;
        if shared > prev.len() {
            return Err(bad);
        }
        prev.truncate(shared);
        prev.extend_from_slice(c.take(rest).ok_or(bad)?);
        let flags = c.u8().ok_or(bad)?;
        let found = if flags & 2 == 0 {
            let (dev, ino, size) = (
                c.u64().ok_or(bad)?,
                c.u64().ok_or(bad)?,
                c.u64().ok_or(bad)?,
            );
            let mtime = c.i64().ok_or(bad)?;
            let ctime = c.i64().ok_or(bad)?;
            let mode = c.u32().ok_or(bad)?;
            Found::Stat(Stat {
                dev,
                ino,
                size,
                mtime,
                ctime,
                mode,
            })
        } else {
            Found::Error(i32::from_le_bytes(c.array().ok_or(bad)?))
        };
        entries.push(Entry {
            path: PathBuf::from(OsStr::from_bytes(&prev)),
            follow: flags & 1 == 1,
            found,
        });
    }
    let code = c.u8().ok_or(bad)?;
    if c.at != c.data.len() {
        return Err(bad);
    }
    Ok(Parsed {
        key,
        stderr,
        stdout,
        root,
        entries,
        code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(entries: &[Entry]) -> Vec<u8> {
        let mut data = header(&[7; 16], b"warning: x\n");
        let stdout = b"{\"plan\": 1}\n";
        let at = data.len() as u64 + stdout.len() as u64;
        data.extend_from_slice(stdout);
        let recs = as_recs(entries);
        tail(
            Path::new("/r"),
            &recs,
            0,
            stdout.len() as u64,
            at,
            &mut |b| data.extend_from_slice(b),
        );
        let mut s = Sum::default();
        s.update(&data);
        data.extend(end(s.finish()));
        data
    }

    fn as_recs(entries: &[Entry]) -> Vec<Rec> {
        entries
            .iter()
            .map(|e| Rec {
                path: e.path.clone().into_boxed_path(),
                follow: e.follow,
                found: Some(e.found),
                file: false,
            })
            .collect()
    }

    fn entries() -> Vec<Entry> {
        let stat = Stat {
            dev: 1,
            ino: 2,
            size: 3,
            mtime: 4_000_000_005,
            ctime: -6_000_000_007,
            mode: 0o100644,
        };
        vec![
            Entry {
                path: "/r/a/bitops.config.yaml".into(),
                follow: true,
                found: Found::Stat(stat),
            },
            Entry {
                path: "/r/a/bitops.config.yml".into(),
                follow: false,
                found: Found::Error(libc::ENOENT),
            },
            Entry {
                path: "/r/b".into(),
                follow: false,
                found: Found::Stat(stat),
            },
        ]
    }

    #[test]
    fn a_file_reads_back_as_written() {
        let data = file(&entries());
        let p = parse(&data).unwrap();
        assert_eq!(p.key, [7; 16]);
        assert_eq!(p.stderr, b"warning: x\n");
        assert_eq!(p.stdout, b"{\"plan\": 1}\n");
        assert_eq!(p.root, Path::new("/r"));
        assert_eq!(p.entries, entries());
        assert_eq!(p.code, 0);
    }

    #[test]
    fn every_cut_and_every_flipped_byte_is_refused() {
        let data = file(&entries());
        for n in 0..data.len() {
            assert!(parse(&data[..n]).is_err(), "cut at {n}");
            let mut bad = data.clone();
            bad[n] ^= 0x10;
            assert!(parse(&bad).is_err(), "byte {n} flipped");
        }
        let mut longer = data.clone();
        longer.extend_from_slice(MAGIC);
        assert!(parse(&longer).is_err());
    }

    #[test]
    fn a_file_of_another_version_or_format_is_refused() {
        for (format, version) in [
            (FORMAT, "0.0.0-other"),
            (FORMAT + 1, env!("CARGO_PKG_VERSION")),
        ] {
            let mut data = MAGIC.to_vec();
            data.extend_from_slice(&format.to_le_bytes());
            data.extend_from_slice(&(version.len() as u16).to_le_bytes());
            data.extend_from_slice(version.as_bytes());
            let good = header(&[7; 16], b"");
            let skip = MAGIC.len() + 4 + 2 + env!("CARGO_PKG_VERSION").len();
            data.extend_from_slice(&good[skip..]);
            let at = data.len() as u64;
            tail(Path::new("/r"), &as_recs(&entries()), 0, 0, at, &mut |b| {
                data.extend_from_slice(b)
            });
            let mut s = Sum::default();
            s.update(&data);
            data.extend(end(s.finish()));
            let err = parse(&data).unwrap_err();
            assert!(err.contains("another"), "{err}");
        }
    }

    #[test]
    fn the_checksum_does_not_depend_on_how_the_stream_was_cut() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut whole = Sum::default();
        whole.update(&data);
        for step in [1, 3, 7, 8, 13, 999] {
            let mut s = Sum::default();
            data.chunks(step).for_each(|c| s.update(c));
            assert_eq!(s.finish(), whole.clone().finish(), "step {step}");
        }
    }
}
