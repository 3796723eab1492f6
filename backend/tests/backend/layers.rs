//! The layers inside perch-backend, enforced (`doc/architecture.rst`, "Inside
//! perch-backend").
//!
//! Why a test: Cargo keeps the crates apart, but not the modules of one crate. The
//! rule "a layer uses the ones below it and never calls up" held only in prose and
//! was broken (the session called the daemon, the daemon and the host imported each
//! other). This reads every source file of `backend/src` and checks that each path
//! into the crate (`crate::x`, `use crate::{x, y}`, `super::x` at the top) names a
//! module of the same layer or a lower one. Comments are skipped: a doc link to an
//! upper layer is no dependency.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, bottom first: a module may use its own layer and those before it.
const LAYERS: &[(&str, &[&str])] = &[
    // Shared by all: the error type, events, settings, checks, helpers.
    (
        "support",
        &[
            "error",
            "validate",
            "events",
            "config",
            "paths",
            "logging",
            "time",
            "certs",
            "memory",
            "frontends",
            "testing",
        ],
    ),
    // The database and what lives in it.
    (
        "storage",
        &[
            "db",
            "cluster",
            "secret",
            "profiles",
            "history",
            "jobs",
            "libervia_params",
            "roster",
        ],
    ),
    // Administration while no daemon runs (perch-admin): storage and nothing above.
    ("admin", &["admin"]),
    // Sessions: connections, the stream task, stanza conversions.
    ("xmpp", &["xmpp"]),
    // The registry of what plugins registered (no daemon in it).
    ("plugins", &["plugins"]),
    // The receive pipeline: triggers, store, signal.
    ("receive", &["receive"]),
    // The core every request goes through.
    ("daemon", &["daemon"]),
    // The plugins' view of the daemon.
    ("host", &["host"]),
    // The D-Bus edges.
    ("bridge", &["bridge", "libervia"]),
    // The composition root.
    ("root", &["lib", "run", "bin"]),
];

fn layer_of(module: &str) -> Option<(usize, &'static str)> {
    LAYERS
        .iter()
        .enumerate()
        .find(|(_, (_, mods))| mods.contains(&module))
        .map(|(i, (name, _))| (i, *name))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The crate's top-level module a file belongs to (`xmpp/session.rs` -> `xmpp`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The code of a file with comments blanked out (line numbers kept).
fn code_lines(text: &str) -> Vec<String> {
    let mut in_block = false;
    text.lines()
        .map(|line| {
            let mut out = String::new();
            let mut rest = line;
            loop {
                if in_block {
                    match rest.find("*/") {
                        Some(i) => {
                            in_block = false;
                            rest = &rest[i + 2..];
                        }
                        None => break,
                    }
                } else {
                    let line_c = rest.find("//");
                    let block_c = rest.find("/*");
                    match (line_c, block_c) {
                        (Some(l), b) if b.is_none_or(|b| l < b) => {
                            out.push_str(&rest[..l]);
                            break;
                        }
                        (_, Some(b)) => {
                            out.push_str(&rest[..b]);
                            in_block = true;
                            rest = &rest[b + 2..];
                        }
                        _ => {
                            out.push_str(rest);
                            break;
                        }
                    }
                }
            }
            out
        })
        .collect()
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level names in a `{ ... }` group starting at `code[start]`, possibly
/// spanning lines: `{a, b::c, d::{e, f}}` gives `a`, `b`, `d`.
fn group_names(code: &[String], line: usize, col: usize) -> Vec<String> {
    let mut names = Vec::new();
    let mut depth = 0;
    let mut expect_name = true;
    for (n, text) in code.iter().enumerate().skip(line) {
        let s = if n == line { &text[col..] } else { &text[..] };
        let mut i = 0;
        while i < s.len() {
            let rest = &s[i..];
            let c = rest.chars().next().unwrap();
            match c {
                '{' => {
                    depth += 1;
                    expect_name = depth == 1;
                }
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return names;
                    }
                }
                ',' if depth == 1 => expect_name = true,
                c if (c.is_ascii_alphabetic() || c == '_') && expect_name && depth == 1 => {
                    let id = ident_at(rest);
                    names.push(id.to_owned());
                    expect_name = false;
                    i += id.len();
                    continue;
                }
                _ => {}
            }
            i += c.len_utf8();
        }
    }
    names
}

/// Every module of the crate a line of code names, with its line number.
fn references(code: &[String], top_level: bool) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let prefixes: &[&str] = if top_level {
        &["crate::", "super::"]
    } else {
        &["crate::"]
    };
    for (n, line) in code.iter().enumerate() {
        for prefix in prefixes {
            let mut from = 0;
            while let Some(i) = line[from..].find(prefix) {
                let at = from + i;
                from = at + prefix.len();
                let before = line[..at].chars().next_back();
                if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
                    continue;
                }
                let rest = &line[from..];
                if rest.starts_with('{') {
                    for name in group_names(code, n, from) {
                        found.push((n, name));
                    }
                } else {
                    let id = ident_at(rest);
                    if !id.is_empty() {
                        found.push((n, id.to_owned()));
                    }
                }
            }
        }
    }
    found
}

#[test]
fn lower_layers_never_name_upper_ones() {
    let src = Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
    )
    .join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut offences = Vec::new();
    let mut unplaced = BTreeSet::new();
    let mut seen = 0;
    for file in &files {
        let module = module_of(&src, file);
        let Some((mine, my_layer)) = layer_of(&module) else {
            unplaced.insert(module);
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        let code = code_lines(&text);
        let top_level = file.parent() == Some(src.as_path());
        for (n, name) in references(&code, top_level) {
            seen += 1;
            match layer_of(&name) {
                Some((theirs, their_layer)) if theirs > mine => offences.push(format!(
                    "{}:{}: {module} ({my_layer}) names {name} ({their_layer}), a layer above: {}",
                    file.strip_prefix(&src).unwrap().display(),
                    n + 1,
                    text.lines().nth(n).unwrap_or("").trim()
                )),
                Some(_) => {}
                // Items of the crate root itself (none today) or a macro path.
                None if name == "self" || name == "super" => {}
                None => {
                    unplaced.insert(name);
                }
            }
        }
    }
    assert!(
        seen > 100,
        "the scan found only {seen} paths: is it reading the sources?"
    );
    assert!(
        unplaced.is_empty(),
        "modules with no layer in LAYERS (place them, and in doc/architecture.rst): {unplaced:?}"
    );
    assert!(
        offences.is_empty(),
        "lower layers must not name upper ones (doc/architecture.rst, \"Inside perch-backend\"):\n{}",
        offences.join("\n")
    );
}

#[test]
fn the_scanner_sees_grouped_and_split_paths() {
    let code = code_lines(
        "use crate::{daemon::Daemon,\n    xmpp::{a, b}, error};\n// crate::bridge\nlet x = crate::host::f(); /* crate::run */",
    );
    let names: Vec<String> = references(&code, false)
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(names, ["daemon", "xmpp", "error", "host"]);
}

/// Only `profiles.rs` touches the profile table and only `history.rs` the message
/// table (`doc/architecture.rst`, "What is never done where"): elsewhere their rows
/// may be read as values (`profile::Model`), never queried or written.
#[test]
fn each_table_has_one_owner() {
    let src = Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
    )
    .join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let owners = [("profile", "profiles.rs"), ("message", "history.rs")];
    let mut offences = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap();
        if rel.starts_with("db") {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in code_lines(&text).iter().enumerate() {
            for (table, owner) in owners {
                if rel == Path::new(owner) {
                    continue;
                }
                for item in ["Entity", "Column", "ActiveModel"] {
                    let path = format!("{table}::{item}");
                    let hit = line.match_indices(&path).any(|(at, _)| {
                        !line[..at]
                            .chars()
                            .next_back()
                            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                    });
                    if hit {
                        offences.push(format!(
                            "{}:{}: the {table} table belongs to {owner}: {}",
                            rel.display(),
                            n + 1,
                            line.trim()
                        ));
                    }
                }
            }
        }
    }
    assert!(offences.is_empty(), "{}", offences.join("\n"));
}
