//! The crate graph's invariants (`doc/architecture.rst`, "Invariants"), checked from
//! `cargo metadata` so that a dependency that turns back fails a test instead of only
//! contradicting a document.
//!
//! Why here: `perch-tests` already runs the real binaries, and a test of the whole
//! workspace belongs to no single crate. The rules are stated on folders, not crate
//! names, so a new plugin crate under `plugins/` or frontend under `frontends/` is held
//! to them without editing this file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// One workspace member: its folder (relative to the workspace root) and the
/// workspace members and external crates it depends on (normal and build
/// dependencies; dev-dependencies are test scaffolding and are checked apart).
#[derive(Debug)]
struct Member {
    folder: String,
    perch: BTreeSet<String>,
    external: BTreeSet<String>,
    dev_perch: BTreeSet<String>,
}

fn workspace() -> BTreeMap<String, Member> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let root = Path::new(&crate::manifest_dir()).join("..");
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(&root)
        .output()
        .expect("running cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata's JSON");
    let root_dir = meta["workspace_root"].as_str().expect("workspace_root");
    let packages = meta["packages"].as_array().expect("packages");
    let names: BTreeSet<String> = packages
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    packages
        .iter()
        .map(|p| member(p, root_dir, &names))
        .collect()
}

fn member(package: &Value, root_dir: &str, names: &BTreeSet<String>) -> (String, Member) {
    let name = package["name"].as_str().expect("name").to_owned();
    let manifest = package["manifest_path"].as_str().expect("manifest_path");
    let folder = Path::new(manifest)
        .parent()
        .and_then(|d| d.strip_prefix(root_dir).ok())
        .map(|d| d.to_string_lossy().into_owned())
        .expect("a member inside the workspace");
    let mut m = Member {
        folder,
        perch: BTreeSet::new(),
        external: BTreeSet::new(),
        dev_perch: BTreeSet::new(),
    };
    for dep in package["dependencies"].as_array().expect("dependencies") {
        let dep_name = dep["name"].as_str().expect("dependency name").to_owned();
        let dev = dep["kind"].as_str() == Some("dev");
        match (names.contains(&dep_name), dev) {
            (true, false) => m.perch.insert(dep_name),
            (true, true) => m.dev_perch.insert(dep_name),
            (false, false) => m.external.insert(dep_name),
            (false, true) => false,
        };
    }
    (name, m)
}

fn in_folder<'a>(
    ws: &'a BTreeMap<String, Member>,
    prefix: &'a str,
) -> impl Iterator<Item = (&'a String, &'a Member)> {
    ws.iter().filter(move |(_, m)| m.folder.starts_with(prefix))
}

/// The plugin API stands on the codec as tokio-xmpp stands on xmpp-parsers (it
/// re-exports the codec's `StanzaError` and ids), and on the action declarations it
/// builds action specs from; the codec, the declarations and the migrations stand on
/// nothing of Perch's.
#[test]
fn the_plugin_api_and_the_migrations_depend_on_no_other_perch_crate() {
    let ws = workspace();
    let named = |folder: &str| {
        ws.iter()
            .find(|(_, m)| m.folder == folder)
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| panic!("the crate in {folder}"))
    };
    let (codec, actions) = (named("plugins/codec"), named("plugins/actions"));
    for (name, m) in ws.iter().filter(|(_, m)| {
        [
            "plugins/api",
            "plugins/codec",
            "plugins/actions",
            "migration",
        ]
        .contains(&m.folder.as_str())
    }) {
        let beyond: BTreeSet<&String> = m
            .perch
            .iter()
            .filter(|d| !(m.folder == "plugins/api" && (**d == codec || **d == actions)))
            .collect();
        assert!(
            beyond.is_empty(),
            "{name} ({}) must depend on no Perch crate (the plugin API on the codec \
             and the action declarations only), but depends on {:?}",
            m.folder,
            beyond
        );
    }
}

/// The crypto crates (`crypto/`, perch-omemo) are protocol code on bytes: they
/// depend on no Perch crate and no XMPP crate, so that they are tested against their
/// reference implementations alone and a plugin only moves bytes between stanzas
/// and them.
#[test]
fn crypto_crates_depend_on_no_perch_crate_and_no_xmpp_crate() {
    let ws = workspace();
    let crypto: Vec<(&String, &Member)> = in_folder(&ws, "crypto/").collect();
    assert!(!crypto.is_empty(), "no crypto crate found under crypto/");
    for (name, m) in crypto {
        assert!(
            m.perch.is_empty(),
            "{name} ({}) depends on {:?}: a crypto crate depends on no Perch crate",
            m.folder,
            m.perch
        );
        let xmpp: Vec<&String> = m
            .external
            .iter()
            .filter(|d| d.contains("xmpp") || ["minidom", "jid", "sasl"].contains(&d.as_str()))
            .collect();
        assert!(
            xmpp.is_empty(),
            "{name} ({}) depends on {xmpp:?}: a crypto crate has no XMPP in it",
            m.folder
        );
    }
}

#[test]
fn plugins_see_the_plugin_api_and_each_other_never_the_backend() {
    let ws = workspace();
    let plugins: BTreeSet<&String> = in_folder(&ws, "plugins/").map(|(n, _)| n).collect();
    assert!(plugins.len() >= 2, "no plugin crates found under plugins/");
    // Pure protocol libraries (crypto/) are open to plugins too.
    let crypto: BTreeSet<&String> = in_folder(&ws, "crypto/").map(|(n, _)| n).collect();
    for (name, m) in in_folder(&ws, "plugins/") {
        if m.folder == "plugins/testing" {
            // The mock host: test support, checked below to be a dev-dependency only.
            continue;
        }
        for dep in &m.perch {
            assert!(
                plugins.contains(dep) || crypto.contains(dep),
                "plugin crate {name} depends on {dep}, which is under neither plugins/ \
                 nor crypto/: a plugin sees the plugin API, the codec, the plugins it \
                 declares and the crypto crates, never the backend, the migrations or a \
                 frontend"
            );
        }
    }
}

#[test]
fn nothing_but_the_benches_links_the_backend() {
    let ws = workspace();
    let backend = ws
        .iter()
        .find(|(_, m)| m.folder == "backend")
        .map(|(n, _)| n.clone())
        .expect("the backend crate");
    for (name, m) in &ws {
        if m.perch.contains(&backend) {
            assert_eq!(
                m.folder, "bench",
                "{name} ({}) depends on {backend}: only the composition root's own \
                 benches may; frontends and tests go through D-Bus",
                m.folder
            );
        }
    }
}

#[test]
fn frontends_link_only_the_typed_client_and_shared_declarations() {
    let ws = workspace();
    let allowed: BTreeSet<&String> = ws
        .iter()
        .filter(|(_, m)| {
            m.folder.starts_with("frontends/")
                || m.folder == "plugins/actions"
                || m.folder == "plugins/codec"
        })
        .map(|(n, _)| n)
        .collect();
    for (name, m) in in_folder(&ws, "frontends/") {
        for dep in &m.perch {
            assert!(
                allowed.contains(dep),
                "frontend {name} depends on {dep}: frontends talk to perchd over D-Bus \
                 through the typed client and never link the backend or a plugin"
            );
        }
    }
}

#[test]
fn only_the_call_frontend_links_gstreamer() {
    let ws = workspace();
    for (name, m) in &ws {
        let gst: Vec<&String> = m
            .external
            .iter()
            .filter(|d| d.starts_with("gstreamer"))
            .collect();
        if !gst.is_empty() {
            assert_eq!(
                m.folder, "frontends/call",
                "{name} depends on {gst:?}: GStreamer stays in perch-call so nothing \
                 else needs it to build"
            );
        }
    }
}

#[test]
fn test_only_links_stay_dev_dependencies_of_the_tests_and_benches() {
    let ws = workspace();
    let harness = ws
        .iter()
        .find(|(_, m)| m.folder == "tests")
        .map(|(n, _)| n.clone())
        .expect("the test harness crate");
    for (name, m) in &ws {
        if m.perch.contains(&harness) {
            assert_eq!(
                m.folder, "bench",
                "{name} ({}) links the test harness {harness} outside its tests: only \
                 dev-dependencies (and the bench binary) may",
                m.folder
            );
        }
    }
    assert!(
        ws.values().any(|m| m.dev_perch.contains(&harness)),
        "no crate's tests use the harness: the rule above checks nothing"
    );
}

#[test]
fn the_mock_host_is_only_ever_a_dev_dependency() {
    let ws = workspace();
    let mock = ws
        .iter()
        .find(|(_, m)| m.folder == "plugins/testing")
        .map(|(n, _)| n.clone())
        .expect("the mock host crate");
    for (name, m) in &ws {
        assert!(
            !m.perch.contains(&mock),
            "{name} ({}) links the mock host {mock} outside its tests",
            m.folder
        );
    }
    assert!(
        ws.values().any(|m| m.dev_perch.contains(&mock)),
        "no plugin's tests use the mock host"
    );
}

/// HTTP (file upload and download) is the files plugins' alone: the HTTP client
/// stays out of the other plugin crates, the backend and the frontends.
#[test]
fn only_the_files_plugins_link_the_http_client() {
    let ws = workspace();
    let http = ["hyper", "hyper-util", "http-body-util", "reqwest"];
    let mut found = false;
    for (name, m) in &ws {
        let linked: Vec<&String> = m
            .external
            .iter()
            .filter(|d| http.contains(&d.as_str()))
            .collect();
        if linked.is_empty() {
            continue;
        }
        found = true;
        assert_eq!(
            m.folder, "plugins/files",
            "{name} depends on {linked:?}: HTTP stays in the files plugins"
        );
    }
    assert!(found, "no crate links hyper: the rule above checks nothing");
}
