//! Fuzzing the YAML loader and the config reader: arbitrary bytes, token soups, and generated
//! deep and aliased structures. Every case runs on a thread with a small stack (smaller than
//! any thread bitops parses on) under a time limit, so a stack overflow, a panic or a hang all
//! fail the test instead of passing unnoticed; the case count keeps `cargo test` bounded.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use crate::diagnostic::{Diagnostics, SourceFile};

/// Smaller than the 2 MiB of Rust's spawned threads (and rayon's workers).
const STACK: usize = 512 * 1024;
/// Far above what any case needs; a case that takes longer is a hang.
const LIMIT: Duration = Duration::from_secs(20);

/// Runs `f` on a small-stack thread; fails on a panic or when it does not finish in time.
fn contained(what: &str, f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || {
            f();
            let _ = tx.send(());
        })
        .expect("spawn a fuzz thread");
    match rx.recv_timeout(LIMIT) {
        Ok(()) => handle.join().expect("finished"),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("hang: {what} took over {LIMIT:?}")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            panic!("panic in {what}: {:?}", handle.join().err())
        }
    }
}

/// Everything bitops does with a config file's text: parse (with duplicates), read the
/// `bitops:` section, merge it as `_default` would, render it back, and read numbers, names
/// and outputs from its strings.
fn exercise(text: String) {
    let file: Arc<SourceFile> = SourceFile::new(
        "/r/e/bitops.config.yaml".into(),
        "e/bitops.config.yaml".into(),
        text,
    );
    let mut diags = Diagnostics::default();
    if let Ok((root, _dups)) = crate::yaml::parse_with_duplicates(&file.text) {
        let _ = crate::config::section::read_file_section(&file, root.as_ref(), &mut diags);
        if let Some(root) = &root {
            let _ = root.to_python_str();
            let _ = crate::yaml::node_to_string(&crate::yaml::merge(root, root));
        }
    }
    // Every problem renders (spans stay inside the text).
    for p in diags.problems() {
        let _ = p.to_string();
        if let Some(loc) = &p.loc {
            assert!(loc.span.offset <= file.text.len(), "{p}");
        }
    }
    let _ = crate::yaml::merge_text(&file.text, "k: v\n");
    let _ = crate::yaml::merge_text("k: v\n", &file.text);
    for word in file.text.split_whitespace().take(50) {
        let _ = crate::config::reader::parse_duration(word);
        let _ = crate::names::check(crate::names::Kind::OutputKey, word);
    }
    let _ = crate::exec::outputs::parse_bytes(file.text.as_bytes());
}

/// Pieces of YAML that make parsers work: collections, anchors, aliases, merges, tags, scalars
/// that resolve to numbers and durations.
fn token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "[",
        "]",
        "{",
        "}",
        ", ",
        ": ",
        "\n",
        "\n  ",
        "\n    ",
        "- ",
        "&a ",
        "*a",
        "&b ",
        "*b",
        "<<: ",
        "bitops",
        "timeout",
        "jobs",
        "retries",
        "deployments",
        "pools",
        "plugins",
        "depends_on",
        "logging",
        "masks",
        "'",
        "\"",
        "!!str ",
        "!!map ",
        "#",
        "|\n",
        ">\n",
        "? ",
        "~",
        "yes",
        "0x1f",
        "1:30",
        "99999999999999999999",
        "500000000000y",
        "-1",
        ".inf",
        "é",
        "---\n",
        "...\n",
        "%YAML 1.1\n",
        "\t",
        "\\",
        "\0",
    ])
}

/// `lines` lines, each nesting `depth` levels and the previous line through an alias.
fn alias_tower(lines: usize, depth: usize, flow: bool) -> String {
    let open = |d: usize| {
        if flow {
            "[".repeat(d)
        } else {
            "{k: ".repeat(d)
        }
    };
    let close = |d: usize| {
        if flow {
            "]".repeat(d)
        } else {
            "}".repeat(d)
        }
    };
    let mut text = format!(
        "bitops:\n  jobs: 2\nz0: &a0 {}x{}\n",
        open(depth),
        close(depth)
    );
    for i in 1..lines {
        text.push_str(&format!(
            "z{i}: &a{i} {}*a{}{}\n",
            open(depth),
            i - 1,
            close(depth)
        ));
    }
    text
}

/// Block-style nesting: by indentation, or `- - - x` on one line (thousands of levels in a
/// few KB; the YAML crate's own loader recursed once per level).
fn block_nesting(depth: usize, one_line: bool) -> String {
    if one_line {
        return format!("bitops:\n  x:\n    {}x\n", "- ".repeat(depth));
    }
    let mut text = String::from("bitops:\n");
    for i in 0..depth {
        text.push_str(&" ".repeat(i + 1));
        text.push_str("k:\n");
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        contained("arbitrary bytes", move || exercise(text));
    }

    #[test]
    fn token_soup(tokens in prop::collection::vec(token(), 0..400)) {
        let text: String = tokens.concat();
        contained("token soup", move || exercise(text));
    }

    #[test]
    fn deep_and_aliased(lines in 1usize..80, depth in 1usize..300, flow in any::<bool>()) {
        let text = alias_tower(lines, depth, flow);
        contained("alias tower", move || exercise(text));
    }

    #[test]
    fn deep_blocks(depth in 1usize..40_000, one_line in any::<bool>()) {
        let text = block_nesting(depth.min(if one_line { 40_000 } else { 3_000 }), one_line);
        contained("block nesting", move || exercise(text));
    }
}

#[test]
fn the_limit_is_exactly_the_documented_one() {
    // 128 levels parse; 129 do not, whether written out or reached through an alias.
    let ok = format!(
        "{}x{}",
        "[".repeat(crate::yaml::MAX_DEPTH),
        "]".repeat(crate::yaml::MAX_DEPTH)
    );
    assert!(crate::yaml::parse(&ok).is_ok());
    let deep = format!("[{ok}]");
    assert!(crate::yaml::parse(&deep).unwrap_err().limit);
    // Under a mapping (one level), an anchored 127 levels fit; one more list around it not.
    let d = crate::yaml::MAX_DEPTH - 1;
    let inner = format!("{}x{}", "[".repeat(d), "]".repeat(d));
    assert!(crate::yaml::parse(&format!("a: &a {inner}\nb: *a\n")).is_ok());
    let via_alias = format!("a: &a {inner}\nb: [*a]\n");
    assert!(crate::yaml::parse(&via_alias).unwrap_err().limit);
}
