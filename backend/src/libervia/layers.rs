//! Keeps the bridge's modules in layers: each module uses only modules of a lower
//! layer, so their imports form no circle and the direction stays the one
//! `mod.rs` describes (table and handlers over dispatch helpers over error and
//! signal types). The test reads the modules' sources and resolves every
//! `super::…` and `crate::libervia::…` path outside their tests.

use std::collections::BTreeSet;
use std::path::Path;

/// The modules, bottom layer first; a module may use only modules of the layers
/// before its own. `""` is `mod.rs`. A new module must be placed here.
const LAYERS: &[&[&str]] = &[
    &["errors"],
    &["reply", "syntax"],
    &["params", "shapes", "pubsub_json"],
    &["rooms"],
    &["context"],
    &["actions"],
    &["trust_ui", "room_config"],
    &["room_events", "room_commands", "encryption"],
    &["signals", "encryption_menu"],
    &["handlers"],
    &[
        "handlers::blocking",
        "handlers::bookmarks",
        "handlers::blog",
        "handlers::cache",
        "handlers::files",
        "handlers::identity",
        "handlers::messages",
        "handlers::misc",
        "handlers::muc",
        "handlers::params",
        "handlers::profiles",
        "handlers::pubsub",
        "handlers::roster",
    ],
    &["table"],
    &["dispatch"],
    &[""],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// A source file's module path (`handlers/pubsub.rs` → `handlers::pubsub`,
/// `handlers/mod.rs` → `handlers`).
fn module_of(rel: &Path) -> String {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// The code of a file without its `#[cfg(test)]` tail and without comments.
fn code(src: &str) -> String {
    let end = src.find("#[cfg(test)]\nmod tests").unwrap_or(src.len());
    src[..end]
        .lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The identifier at the start of `s`, and the rest.
fn ident(s: &str) -> (&str, &str) {
    let n = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    s.split_at(n)
}

/// The paths named at the start of `s`: `a::b`, or each item of `a::{b, c::d}`.
fn paths(s: &str) -> Vec<Vec<String>> {
    let (first, rest) = ident(s);
    if first.is_empty() {
        if let Some(group) = s.strip_prefix('{') {
            let mut out = Vec::new();
            let mut depth = 0;
            let mut start = 0;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.extend(paths(group[start..i].trim()));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.extend(paths(group[start..i].trim()));
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            return out;
        }
        // `*`: the module itself.
        return vec![Vec::new()];
    }
    match rest.strip_prefix("::") {
        Some(more) => paths(more)
            .into_iter()
            .map(|mut p| {
                p.insert(0, first.to_owned());
                p
            })
            .collect(),
        None => vec![vec![first.to_owned()]],
    }
}

/// The bridge's modules a file uses (its own module left out).
fn edges(module: &str, src: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let own: Vec<&str> = module.split("::").filter(|p| !p.is_empty()).collect();
    let code = code(src);
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(i) = rest
        .find("super::")
        .into_iter()
        .chain(rest.find("crate::libervia::"))
        .min()
    {
        let at = &rest[i..];
        let boundary =
            i == 0 || !rest[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':');
        let (base, tail): (Vec<&str>, &str) = match at.strip_prefix("crate::libervia::") {
            Some(t) => (Vec::new(), t),
            None => {
                // `super` is the parent of the file's module; each more one goes up
                // again.
                let mut base = own.clone();
                base.pop();
                let mut tail = at.strip_prefix("super::").unwrap_or(at);
                while let Some(t) = tail.strip_prefix("super::") {
                    base.pop();
                    tail = t;
                }
                (base, tail)
            }
        };
        if boundary {
            for p in paths(tail) {
                let mut full: Vec<String> = base.iter().map(|s| (*s).to_owned()).collect();
                full.extend(p.into_iter().filter(|s| s != "self"));
                let target = (0..=full.len())
                    .rev()
                    .map(|n| full[..n].join("::"))
                    .find(|m| known.contains(m))
                    .unwrap_or_default();
                if target != module {
                    found.insert(target);
                }
            }
        }
        rest = &rest[i + 1..];
    }
    found
}

fn sources() -> Vec<(String, String)> {
    let root = Path::new(
        &std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR"),
    )
    .join("src/libervia");
    let mut out = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).expect("reading src/libervia") {
            let path = e.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let rel = path.strip_prefix(&root).expect("under src/libervia");
                let module = module_of(rel);
                if module != "layers" {
                    let src = std::fs::read_to_string(&path).expect("reading a source");
                    out.push((module, src));
                }
            }
        }
    }
    out
}

#[test]
fn every_module_uses_only_lower_layers() {
    let files = sources();
    let known: BTreeSet<String> = files.iter().map(|(m, _)| m.clone()).collect();
    let listed: BTreeSet<String> = LAYERS
        .iter()
        .flat_map(|l| l.iter().map(|m| (*m).to_owned()))
        .collect();
    assert_eq!(
        known, listed,
        "every module, and only those, is placed in LAYERS"
    );
    let mut problems = Vec::new();
    let mut count = 0;
    for (module, src) in &files {
        for target in edges(module, src, &known) {
            count += 1;
            if layer(&target) >= layer(module) {
                problems.push(format!("{module:?} uses {target:?}, which is not below it"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(count > 40, "only {count} uses found: the scan is broken");
}

#[test]
fn uses_are_resolved_relative_to_the_file() {
    let known: BTreeSet<String> = [
        "",
        "context",
        "errors",
        "handlers",
        "handlers::pubsub",
        "reply",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    let src = "use super::{ItemsArgs, action};\n\
               use crate::libervia::context::Lib;\n\
               // use crate::libervia::table;\n\
               fn f() { super::super::errors::x(); crate::libervia::reply::out(1) }\n\
               #[cfg(test)]\nmod tests {\n    use super::*;\n}\n";
    let got = edges("handlers::pubsub", src, &known);
    let want: BTreeSet<String> = ["context", "errors", "handlers", "reply"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(got, want);
    let got = edges(
        "signals",
        "use super::{self, context::{Lib, lock}};",
        &known,
    );
    assert_eq!(
        got,
        ["", "context"].into_iter().map(str::to_owned).collect()
    );
}
