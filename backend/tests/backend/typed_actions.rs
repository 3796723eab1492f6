//! The typed actions of `perch-actions` against the plugins that serve them: every
//! action a built-in plugin registers is declared there with the same parameters (and
//! nothing is declared that no plugin serves), and a typed call in process round-trips
//! its arguments and result.

use std::collections::BTreeSet;
use std::sync::Arc;

use perch_actions::{Empty, NoArgs, cache, calls};
use perch_backend::config::Config;
use perch_backend::daemon::Daemon;
use perch_backend::db::open_sqlite;
use perch_backend::profiles::{NewProfile, Profiles};
use perch_backend::secret::{Password, Sealer};

async fn daemon(dir: &tempfile::TempDir) -> Arc<Daemon> {
    let db = open_sqlite(&dir.path().join("perch.db")).await.unwrap();
    let sealer = Sealer::load_or_create(&dir.path().join("secret.key")).unwrap();
    let profiles = Profiles::new(db.clone(), Arc::new(sealer));
    profiles
        .create(NewProfile {
            name: "alice".into(),
            jid: "alice@example.org".into(),
            password: Password::new("pw".into()),
            server: None,
            ca_file: None,
            insecure: false,
            autoconnect: false,
        })
        .await
        .unwrap();
    let daemon = Daemon::new(Config::default(), db, profiles);
    daemon
        .start_plugins(perch_backend::plugins::builtin(), |info| {
            perch_backend::host::DaemonHost::new(&daemon, info)
        })
        .await
        .unwrap();
    daemon
}

#[tokio::test]
async fn every_registered_action_is_declared_with_its_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(&dir).await;
    let specs = d.action_specs();
    let declared = perch_actions::all();
    let registered: BTreeSet<&str> = specs.iter().map(|s| s.name).collect();
    let typed: BTreeSet<&str> = declared.iter().map(|a| a.name).collect();
    assert_eq!(
        registered, typed,
        "registered by plugins (left) and declared in perch-actions (right) differ"
    );
    let mut wrong = Vec::new();
    for spec in &specs {
        let info = declared.iter().find(|a| a.name == spec.name).unwrap();
        let mut params: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
        let mut fields = info.args.to_vec();
        params.sort_unstable();
        fields.sort_unstable();
        if params != fields {
            wrong.push(format!("{}: {params:?} vs {fields:?}", spec.name));
        }
    }
    assert!(wrong.is_empty(), "parameters differ: {wrong:#?}");
}

#[tokio::test]
async fn typed_calls_in_process_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(&dir).await;
    let purged = d
        .action::<cache::Purge>(
            "",
            &cache::PurgeArgs {
                nodes: vec!["nothing-here".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(purged, cache::Purged { deleted: 0 });
    assert_eq!(
        d.action::<cache::Reset>("", &NoArgs {}).await.unwrap(),
        Empty {}
    );
    let calls = d.action::<calls::List>("alice", &NoArgs {}).await.unwrap();
    assert!(calls.is_empty(), "{calls:?}");
    let found = d
        .action::<cache::Search>("", &cache::SearchArgs::default())
        .await
        .unwrap();
    assert_eq!(found["items"], serde_json::json!([]), "{found}");
    // Still checked against the declaration: a wrong type is refused, naming it.
    let e = d
        .run_action("", "pubsub_cache_purge", serde_json::json!({"nodes": "n"}))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("\"nodes\""), "{e}");
}

/// The wire contract of `ActionList`: every action's name, plugin, doc, session need
/// and parameters (names, types, required, defaults, docs), exactly as frontends have
/// read them since before the parameters were derived from `perch-actions`.
#[tokio::test]
async fn the_action_list_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let d = daemon(&dir).await;
    let listed = serde_json::to_value(d.action_specs()).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/action_list.json")).unwrap();
    if listed != expected {
        let (l, e) = (listed.as_array().unwrap(), expected.as_array().unwrap());
        let differ: Vec<_> = l
            .iter()
            .zip(e)
            .filter(|(a, b)| a != b)
            .map(|(a, b)| format!("listed {a}\nexpected {b}"))
            .collect();
        panic!(
            "ActionList changed ({} listed, {} expected):\n{}",
            l.len(),
            e.len(),
            differ.join("\n\n")
        );
    }
}
