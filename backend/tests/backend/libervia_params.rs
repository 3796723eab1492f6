//! Libervia's parameters on a real SQLite file: each param's round trip, clamping,
//! the profile itself changing (JID, server and port, certificate checks, autoconnect,
//! the sealed password), security levels, unknown params, and the parameters dialog's
//! XMLUI (literal for a fresh profile, parsed back after changes).

use std::sync::Arc;

use perch_backend::config::Config;
use perch_backend::daemon::Daemon;
use perch_backend::db::open_sqlite;
use perch_backend::libervia::params::{ParamChange, ParamError, Params};
use perch_backend::profiles::{NewProfile, Profiles};
use perch_backend::secret::{Password, Sealer};
use perch_plugin_api::minidom::Element;

const XMPP_PASSWORD: &str = "Xmpp-s3cret-at-rest";

struct Setup {
    dir: tempfile::TempDir,
    daemon: Arc<Daemon>,
    params: Params,
}

/// A daemon on a fresh database with one profile, `alice` (alice@example.org, no
/// server override, certificates checked, no autoconnect).
async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let db = open_sqlite(&dir.path().join("perch.db")).await.unwrap();
    let sealer = Sealer::load_or_create(&dir.path().join("secret.key")).unwrap();
    let profiles = Profiles::new(db.clone(), Arc::new(sealer));
    profiles
        .create(NewProfile {
            name: "alice".into(),
            jid: "alice@example.org".into(),
            password: Password::new(XMPP_PASSWORD.into()),
            server: None,
            ca_file: None,
            insecure: false,
            autoconnect: false,
        })
        .await
        .unwrap();
    let daemon = Daemon::new(Config::default(), db, profiles);
    let params = Params::new(daemon.clone());
    Setup {
        dir,
        daemon,
        params,
    }
}

impl Setup {
    async fn set(&self, category: &str, name: &str, value: &str) -> ParamChange {
        self.params
            .set("alice", category, name, value, -1)
            .await
            .unwrap_or_else(|e| panic!("set {category}/{name} = {value:?}: {e}"))
    }

    async fn get(&self, category: &str, name: &str) -> String {
        self.params
            .get("alice", category, name, "value", -1)
            .await
            .unwrap_or_else(|e| panic!("get {category}/{name}: {e}"))
    }

    async fn profile(&self) -> perch_backend::db::entities::profile::Model {
        self.daemon.profile("alice").await.unwrap()
    }

    /// The bytes of the database and its write-ahead log.
    fn db_bytes(&self) -> Vec<u8> {
        let mut all = std::fs::read(self.dir.path().join("perch.db")).unwrap();
        if let Ok(wal) = std::fs::read(self.dir.path().join("perch.db-wal")) {
            all.extend(wal);
        }
        all
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// What Debian's libervia-backend 0.9 (`paramsXML2XMLUI`) produces for this schema
/// and these values.
const FRESH_UI: &str = concat!(
    r#"<?xml version="1.0" ?><sat_xmlui type="param"><container type="tabs">"#,
    r#"<tab name="General" label="General"><container type="label">"#,
    r#"<widget type="label" value="Password"/><widget name="General_XMLUI_PARAM_Password" type="password"/>"#,
    r#"<widget type="label" value="Chat history limit"/><widget name="General_XMLUI_PARAM_History" type="int"><value>20</value></widget>"#,
    r#"<widget type="label" value="Show offline contacts"/><widget name="General_XMLUI_PARAM_Offline contacts" type="bool" value="false"/>"#,
    r#"<widget type="label" value="Show empty groups"/><widget name="General_XMLUI_PARAM_Empty groups" type="bool" value="true"/>"#,
    r#"</container></tab><tab name="Connection" label="Connection"><container type="label">"#,
    r#"<widget type="label" value="JabberID"/><widget name="Connection_XMLUI_PARAM_JabberID" type="string"><value>alice@example.org</value></widget>"#,
    r#"<widget type="label" value="Password"/><widget name="Connection_XMLUI_PARAM_Password" type="password"/>"#,
    r#"<widget type="label" value="Priority"/><widget name="Connection_XMLUI_PARAM_Priority" type="int"><value>50</value></widget>"#,
    r#"<widget type="label" value="Force server"/><widget name="Connection_XMLUI_PARAM_Force server" type="string"/>"#,
    r#"<widget type="label" value="Force port"/><widget name="Connection_XMLUI_PARAM_Force port" type="int"/>"#,
    r#"<widget type="label" value="Connect on backend startup"/><widget name="Connection_XMLUI_PARAM_autoconnect_backend" type="bool" value="false"/>"#,
    r#"<widget type="label" value="Connect on frontend startup"/><widget name="Connection_XMLUI_PARAM_autoconnect" type="bool" value="true"/>"#,
    r#"<widget type="label" value="Disconnect on frontend closure"/><widget name="Connection_XMLUI_PARAM_autodisconnect" type="bool" value="false"/>"#,
    r#"<widget type="label" value="Check certificate (don't uncheck if unsure)"/><widget name="Connection_XMLUI_PARAM_check_certificate" type="bool" value="true"/>"#,
    r#"</container></tab><tab name="Composition" label="Composition"><container type="label">"#,
    r#"<widget type="label" value="Syntax"/><widget name="Composition_XMLUI_PARAM_Syntax" type="list" extensible="yes"><option value="markdown" label="markdown" selected="true"/><option value="xhtml" label="xhtml"/></widget>"#,
    r#"</container></tab></container></sat_xmlui>"#,
);

/// The same dialog (Libervia 0.9's output for the same values) after every
/// param was changed: passwords stay empty.
const CHANGED_UI: &str = concat!(
    r#"<?xml version="1.0" ?><sat_xmlui type="param"><container type="tabs"><tab name="General" label="General"><container type="label">"#,
    r#"<widget type="label" value="Password"/><widget name="General_XMLUI_PARAM_Password" type="password"/>"#,
    r#"<widget type="label" value="Chat history limit"/><widget name="General_XMLUI_PARAM_History" type="int"><value>42</value></widget>"#,
    r#"<widget type="label" value="Show offline contacts"/><widget name="General_XMLUI_PARAM_Offline contacts" type="bool" value="true"/>"#,
    r#"<widget type="label" value="Show empty groups"/><widget name="General_XMLUI_PARAM_Empty groups" type="bool" value="false"/>"#,
    r#"</container></tab><tab name="Connection" label="Connection"><container type="label">"#,
    r#"<widget type="label" value="JabberID"/><widget name="Connection_XMLUI_PARAM_JabberID" type="string"><value>alice2@example.net</value></widget>"#,
    r#"<widget type="label" value="Password"/><widget name="Connection_XMLUI_PARAM_Password" type="password"/>"#,
    r#"<widget type="label" value="Priority"/><widget name="Connection_XMLUI_PARAM_Priority" type="int"><value>-3</value></widget>"#,
    r#"<widget type="label" value="Force server"/><widget name="Connection_XMLUI_PARAM_Force server" type="string"><value>xmpp.example.net</value></widget>"#,
    r#"<widget type="label" value="Force port"/><widget name="Connection_XMLUI_PARAM_Force port" type="int"><value>15222</value></widget>"#,
    r#"<widget type="label" value="Connect on backend startup"/><widget name="Connection_XMLUI_PARAM_autoconnect_backend" type="bool" value="true"/>"#,
    r#"<widget type="label" value="Connect on frontend startup"/><widget name="Connection_XMLUI_PARAM_autoconnect" type="bool" value="false"/>"#,
    r#"<widget type="label" value="Disconnect on frontend closure"/><widget name="Connection_XMLUI_PARAM_autodisconnect" type="bool" value="true"/>"#,
    r#"<widget type="label" value="Check certificate (don't uncheck if unsure)"/><widget name="Connection_XMLUI_PARAM_check_certificate" type="bool" value="false"/>"#,
    r#"</container></tab><tab name="Composition" label="Composition"><container type="label">"#,
    r#"<widget type="label" value="Syntax"/><widget name="Composition_XMLUI_PARAM_Syntax" type="list" extensible="yes"><option value="markdown" label="markdown"/><option value="xhtml" label="xhtml" selected="true"/></widget>"#,
    r#"</container></tab></container></sat_xmlui>"#,
);

#[tokio::test]
async fn fresh_profile_dialog_is_libervias_xmlui() {
    let t = setup().await;
    assert_eq!(
        t.params.ui_xml("alice", -1, "", "").await.unwrap(),
        FRESH_UI
    );
    // The TUI asks for its own app's params: none is tagged, so all come.
    assert_eq!(
        t.params
            .ui_xml("alice", -1, "Libervia TUI", "")
            .await
            .unwrap(),
        FRESH_UI
    );
    assert_eq!(
        Params::categories(),
        ["General", "Connection", "Composition"]
    );
}

/// The dialog's controls, by name: (type, value or selected option or "").
fn controls(xml: &str) -> Vec<(String, String, String)> {
    let body = xml
        .strip_prefix(r#"<?xml version="1.0" ?>"#)
        .expect("XML declaration");
    assert!(!body.contains('\n'), "one line");
    // minidom wants a namespace; Libervia's XMLUI has none.
    let body = body.replacen("<sat_xmlui ", "<sat_xmlui xmlns='urn:test' ", 1);
    let root: Element = body.parse().unwrap();
    assert_eq!(root.name(), "sat_xmlui");
    assert_eq!(root.attr("type"), Some("param"));
    let tabs = root.children().next().unwrap();
    assert_eq!(
        (tabs.name(), tabs.attr("type")),
        ("container", Some("tabs"))
    );
    let mut out = Vec::new();
    for tab in tabs.children() {
        assert_eq!(tab.name(), "tab");
        let cat = tab.attr("name").unwrap();
        let widgets: Vec<&Element> = tab.children().next().unwrap().children().collect();
        assert_eq!(widgets.len() % 2, 0, "label, control pairs");
        for pair in widgets.chunks(2) {
            assert_eq!(pair[0].attr("type"), Some("label"));
            let w = pair[1];
            let name = w.attr("name").unwrap();
            let (c, n) = name.split_once("_XMLUI_PARAM_").unwrap();
            assert_eq!(c, cat);
            let value = match w.attr("type").unwrap() {
                "bool" => w.attr("value").unwrap().to_owned(),
                "list" => w
                    .children()
                    .filter(|o| o.attr("selected") == Some("true"))
                    .map(|o| o.attr("value").unwrap().to_owned())
                    .collect(),
                _ => w
                    .children()
                    .find(|v| v.name() == "value")
                    .map(Element::text)
                    .unwrap_or_default(),
            };
            out.push((
                format!("{c}/{n}"),
                w.attr("type").unwrap().to_owned(),
                value,
            ));
        }
    }
    out
}

#[tokio::test]
async fn every_param_round_trips_and_signals_its_stored_value() {
    let t = setup().await;
    for (cat, name, value, stored) in [
        ("General", "History", "42", "42"),
        ("General", "Offline contacts", "true", "true"),
        ("General", "Empty groups", "false", "false"),
        (
            "Connection",
            "JabberID",
            "alice2@example.net",
            "alice2@example.net",
        ),
        ("Connection", "Priority", "-3", "-3"),
        (
            "Connection",
            "Force server",
            "xmpp.example.net",
            "xmpp.example.net",
        ),
        ("Connection", "Force port", "15222", "15222"),
        ("Connection", "autoconnect_backend", "true", "true"),
        ("Connection", "autoconnect", "false", "false"),
        ("Connection", "autodisconnect", "true", "true"),
        ("Connection", "check_certificate", "false", "false"),
        ("Composition", "Syntax", "xhtml", "xhtml"),
    ] {
        let change = t.set(cat, name, value).await;
        assert_eq!(
            change,
            ParamChange {
                name: name.into(),
                category: cat.into(),
                value: stored.into()
            }
        );
        assert_eq!(t.get(cat, name).await, stored, "{cat}/{name}");
    }
    // Passwords: signalled as "", the XMPP one read back in clear only by `get`.
    let change = t.set("Connection", "Password", "new-xmpp-pw").await;
    assert_eq!(change.value, "");
    assert_eq!(t.get("Connection", "Password").await, "new-xmpp-pw");
    let change = t.set("General", "Password", "profile-pw").await;
    assert_eq!(change.value, "");
    assert_eq!(
        t.get("General", "Password").await,
        "",
        "the hash is not handed out"
    );
    assert!(
        t.params
            .profile_password_ok("alice", "profile-pw")
            .await
            .unwrap()
    );
    assert!(!t.params.profile_password_ok("alice", "").await.unwrap());
    assert!(
        !t.params
            .profile_password_ok("alice", "wrong")
            .await
            .unwrap()
    );

    // Values survive a new Params (they are stored, not cached).
    let again = Params::new(t.daemon.clone());
    assert_eq!(again.history_limit("alice").await.unwrap(), 42);
    assert_eq!(again.priority("alice").await.unwrap(), -3);
    assert_eq!(
        again
            .get_sync("alice", "Composition", "Syntax", "value")
            .await
            .unwrap(),
        "xhtml"
    );
    // "" is the default profile.
    assert_eq!(
        again
            .get("", "General", "Offline contacts", "value", -1)
            .await
            .unwrap(),
        "true"
    );

    let values = t
        .params
        .category_values("alice", "Connection", -1, "")
        .await
        .unwrap();
    let expected: Vec<(&str, &str)> = vec![
        ("JabberID", "alice2@example.net"),
        ("Password", ""),
        ("Priority", "-3"),
        ("Force port", "15222"),
        ("Force server", "xmpp.example.net"),
        ("autoconnect", "false"),
        ("autoconnect_backend", "true"),
        ("autodisconnect", "true"),
        ("check_certificate", "false"),
    ];
    let mut expected: Vec<(String, String)> = expected
        .into_iter()
        .map(|(a, b)| (a.into(), b.into()))
        .collect();
    expected.sort();
    assert_eq!(values.into_iter().collect::<Vec<_>>(), expected);

    // The dialog shows the new values and no password.
    let ui = t.params.ui_xml("alice", -1, "", "").await.unwrap();
    assert!(
        !ui.contains("new-xmpp-pw") && !ui.contains("pbkdf2"),
        "{ui}"
    );
    assert_eq!(ui, CHANGED_UI);
    let got = controls(&ui);
    let want: Vec<(&str, &str, &str)> = vec![
        ("General/Password", "password", ""),
        ("General/History", "int", "42"),
        ("General/Offline contacts", "bool", "true"),
        ("General/Empty groups", "bool", "false"),
        ("Connection/JabberID", "string", "alice2@example.net"),
        ("Connection/Password", "password", ""),
        ("Connection/Priority", "int", "-3"),
        ("Connection/Force server", "string", "xmpp.example.net"),
        ("Connection/Force port", "int", "15222"),
        ("Connection/autoconnect_backend", "bool", "true"),
        ("Connection/autoconnect", "bool", "false"),
        ("Connection/autodisconnect", "bool", "true"),
        ("Connection/check_certificate", "bool", "false"),
        ("Composition/Syntax", "list", "xhtml"),
    ];
    let want: Vec<(String, String, String)> = want
        .into_iter()
        .map(|(a, b, c)| (a.into(), b.into(), c.into()))
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn ints_are_clamped_empty_is_default_and_garbage_refused() {
    let t = setup().await;
    assert_eq!(
        t.set("Connection", "Force port", "99999").await.value,
        "65535"
    );
    assert_eq!(t.get("Connection", "Force port").await, "65535");
    assert_eq!(
        t.profile().await.server.as_deref(),
        Some("example.org:65535")
    );
    assert_eq!(t.set("Connection", "Force port", "0").await.value, "1");
    assert_eq!(t.set("General", "History", "1000").await.value, "100");
    assert_eq!(t.set("General", "History", "-1").await.value, "0");
    assert_eq!(t.set("General", "History", "").await.value, "20");
    assert_eq!(t.set("Connection", "Priority", "-1000").await.value, "-128");
    assert_eq!(t.set("Connection", "Priority", "1000").await.value, "127");
    assert_eq!(t.set("Connection", "Priority", "").await.value, "50");
    for (cat, name, bad) in [
        ("Connection", "Priority", "high"),
        ("Connection", "Force port", "15222x"),
        ("General", "Offline contacts", "perhaps"),
        ("Composition", "Syntax", "rst"),
        ("General", "History", "2\u{0}"),
    ] {
        let e = t.params.set("alice", cat, name, bad, -1).await.unwrap_err();
        assert!(
            matches!(&e, ParamError::Invalid { category, name: n, .. } if category == cat && n == name),
            "{cat}/{name} = {bad:?}: {e:?}"
        );
    }
    // Refused values changed nothing.
    assert_eq!(t.get("Connection", "Priority").await, "50");
    assert_eq!(t.get("Connection", "Force port").await, "1");
    assert_eq!(t.get("General", "Offline contacts").await, "false");
}

#[tokio::test]
async fn connection_params_are_the_profile_itself() {
    let t = setup().await;
    // JID: the profile's, and the sealed password still opens (sealed anew).
    t.set("Connection", "JabberID", "alice@example.net").await;
    let m = t.profile().await;
    assert_eq!(m.jid, "alice@example.net");
    let creds = t.daemon.credentials(&m).unwrap();
    assert_eq!(creds.password.expose(), XMPP_PASSWORD);
    for bad in ["example.net", "a@b@c", "alice@example.net/res", ""] {
        assert!(
            matches!(
                t.params
                    .set("alice", "Connection", "JabberID", bad, -1)
                    .await,
                Err(ParamError::Invalid { .. })
            ),
            "{bad:?}"
        );
    }
    assert_eq!(t.profile().await.jid, "alice@example.net");

    // A JID is stored (and signalled) as perchd normalises it.
    let change = t.set("Connection", "JabberID", "alice@EXAMPLE.net").await;
    assert_eq!(change.value, t.profile().await.jid);
    assert_eq!(t.get("Connection", "JabberID").await, change.value);

    // Server and port: a port alone is the JID's domain with that port.
    t.set("Connection", "Force port", "15222").await;
    assert_eq!(
        t.profile().await.server.as_deref(),
        Some("example.net:15222")
    );
    assert_eq!(t.get("Connection", "Force server").await, "");
    // The domain itself as the server reads back (and is signalled) as "".
    assert_eq!(
        t.set("Connection", "Force server", "example.net")
            .await
            .value,
        ""
    );
    t.set("Connection", "Force server", "127.0.0.1").await;
    assert_eq!(t.profile().await.server.as_deref(), Some("127.0.0.1:15222"));
    let creds = t.daemon.credentials(&t.profile().await).unwrap();
    assert_eq!(
        creds.server.map(|e| (e.host, e.port, e.direct_tls)),
        Some(("127.0.0.1".into(), 15222, false))
    );
    assert_eq!(creds.password.expose(), XMPP_PASSWORD);
    t.set("Connection", "Force port", "").await;
    assert_eq!(t.profile().await.server.as_deref(), Some("127.0.0.1:5222"));
    assert_eq!(t.get("Connection", "Force port").await, "");
    t.set("Connection", "Force server", "::1").await;
    assert_eq!(t.profile().await.server.as_deref(), Some("[::1]:5222"));
    assert_eq!(t.get("Connection", "Force server").await, "::1");
    t.set("Connection", "Force server", "").await;
    assert_eq!(t.profile().await.server, None, "empty: no override");
    for bad in ["host:5222", "bad host", "-x.example"] {
        assert!(
            matches!(
                t.params
                    .set("alice", "Connection", "Force server", bad, -1)
                    .await,
                Err(ParamError::Invalid { .. })
            ),
            "{bad:?}"
        );
    }
    assert_eq!(t.profile().await.server, None);

    // Certificates and autoconnect.
    t.set("Connection", "check_certificate", "false").await;
    assert!(t.profile().await.insecure);
    let creds = t.daemon.credentials(&t.profile().await).unwrap();
    assert!(creds.insecure);
    assert_eq!(creds.password.expose(), XMPP_PASSWORD);
    t.set("Connection", "check_certificate", "true").await;
    assert!(!t.profile().await.insecure);
    t.set("Connection", "autoconnect_backend", "true").await;
    assert!(t.profile().await.autoconnect);
    t.set("Connection", "autoconnect_backend", "false").await;
    assert!(!t.profile().await.autoconnect);

    // The XMPP password: sealed, never in clear in the database.
    t.set("Connection", "Password", "Brand-new-xmpp-pw").await;
    let m = t.profile().await;
    assert!(m.password.starts_with("v1:"));
    assert_eq!(
        t.daemon.credentials(&m).unwrap().password.expose(),
        "Brand-new-xmpp-pw"
    );
    assert!(matches!(
        t.params
            .set("alice", "Connection", "Password", "", -1)
            .await,
        Err(ParamError::Invalid { .. })
    ));
    t.set("General", "Password", "Profile-pw-in-clear").await;
    let bytes = t.db_bytes();
    for clear in [XMPP_PASSWORD, "Brand-new-xmpp-pw", "Profile-pw-in-clear"] {
        assert!(!contains(&bytes, clear), "{clear} is in the database");
    }
    assert!(contains(&bytes, "pbkdf2-sha256$"), "the hash is stored");
}

#[tokio::test]
async fn security_levels_and_unknown_params() {
    let t = setup().await;
    // check_certificate is level 4, JabberID 10, Force server 50, History 0.
    assert_eq!(
        t.params
            .get("alice", "Connection", "check_certificate", "value", 4)
            .await
            .unwrap(),
        "true"
    );
    for (cat, name, limit) in [
        ("Connection", "JabberID", 9),
        ("Connection", "Force server", 10),
        ("Connection", "check_certificate", 0),
        ("General", "Password", 1000),
    ] {
        let e = t
            .params
            .get("alice", cat, name, "value", limit)
            .await
            .unwrap_err();
        assert!(
            matches!(e, ParamError::Permission { .. }),
            "{cat}/{name}: {e:?}"
        );
        let e = t
            .params
            .set("alice", cat, name, "x", limit)
            .await
            .unwrap_err();
        assert!(
            matches!(e, ParamError::Permission { .. }),
            "{cat}/{name}: {e:?}"
        );
    }
    assert_eq!(
        t.profile().await.jid,
        "alice@example.org",
        "nothing changed"
    );
    t.params
        .set("alice", "General", "History", "5", 0)
        .await
        .unwrap();

    // With a limit, the dialog and a category hold only what it allows.
    let ui = t.params.ui_xml("alice", 4, "", "").await.unwrap();
    let names: Vec<String> = controls(&ui).into_iter().map(|c| c.0).collect();
    assert_eq!(
        names,
        [
            "General/History",
            "General/Offline contacts",
            "General/Empty groups",
            "Connection/check_certificate",
            "Composition/Syntax"
        ]
    );
    let values = t
        .params
        .category_values("alice", "Connection", 10, "")
        .await
        .unwrap();
    assert_eq!(
        values.keys().collect::<Vec<_>>(),
        ["JabberID", "Password", "Priority", "check_certificate"]
    );
    // extra's ignore list drops params, and a category left empty.
    let ui = t
        .params
        .ui_xml(
            "alice",
            -1,
            "",
            r#"{"ignore": [["Composition", "Syntax"], ["General", "History"]]}"#,
        )
        .await
        .unwrap();
    assert!(
        !ui.contains("Composition") && !ui.contains("History"),
        "{ui}"
    );
    assert!(matches!(
        t.params.ui_xml("alice", -1, "", "{not json").await,
        Err(ParamError::Invalid { .. })
    ));

    // Attributes other than the value come from the schema.
    assert_eq!(
        t.params
            .get("alice", "Connection", "Force port", "type", -1)
            .await
            .unwrap(),
        "int"
    );
    assert_eq!(
        t.params
            .get("alice", "General", "History", "constraint", -1)
            .await
            .unwrap(),
        "0;100"
    );

    // Unknown params, passwords through the sync call, unknown profiles.
    for (cat, name) in [
        ("Connection", "Nope"),
        ("Nope", "JabberID"),
        ("general", "History"),
    ] {
        assert!(matches!(
            t.params.get("alice", cat, name, "value", -1).await,
            Err(ParamError::UnknownParam { .. })
        ));
        assert!(matches!(
            t.params.set("alice", cat, name, "1", -1).await,
            Err(ParamError::UnknownParam { .. })
        ));
    }
    for cat in ["Connection", "General"] {
        assert!(matches!(
            t.params.get_sync("alice", cat, "Password", "value").await,
            Err(ParamError::PasswordNeedsAsync)
        ));
    }
    assert_eq!(
        t.params
            .get_sync("alice", "Connection", "Password", "type")
            .await
            .unwrap(),
        "password"
    );
    match t.params.get("bob", "General", "History", "value", -1).await {
        Err(ParamError::Perch(e)) => assert_eq!(e.name(), "UnknownProfile"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        t.params.category_values("alice", "Blog page", -1, "").await,
        Err(ParamError::UnknownParam { .. })
    ));
}

#[tokio::test]
async fn a_deleted_profile_takes_its_params_along() {
    let t = setup().await;
    t.set("General", "History", "7").await;
    t.daemon.delete_profile("alice").await.unwrap();
    use sea_orm::{ConnectionTrait, Statement};
    let db = t.daemon.database();
    let n = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM libervia_param",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(n, 0);
}

/// The one test here with an XMPP server (Prosody, started by the harness on a
/// loopback port): a Priority set through the params is the priority of the
/// profile's first presence, as its contact sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_is_announced_in_the_first_presence() {
    use perch_tests::{ALICE_PW, BOB_PW, DOMAIN, Prosody};
    let prosody = Prosody::start().expect("Prosody (apt-get install prosody)");
    let dir = tempfile::tempdir().unwrap();
    let db = open_sqlite(&dir.path().join("perch.db")).await.unwrap();
    let sealer = Sealer::load_or_create(&dir.path().join("secret.key")).unwrap();
    let profiles = Profiles::new(db.clone(), Arc::new(sealer));
    for (user, pw) in [("alice", ALICE_PW), ("bob", BOB_PW)] {
        profiles
            .create(NewProfile {
                name: user.into(),
                jid: format!("{user}@{DOMAIN}"),
                password: Password::new(pw.into()),
                server: Some(prosody.server_arg()),
                ca_file: Some(prosody.ca_file().display().to_string()),
                insecure: false,
                autoconnect: false,
            })
            .await
            .unwrap();
    }
    let daemon = Daemon::new(Config::default(), db, profiles);
    let params = Params::new(daemon.clone());
    params
        .set("alice", "Connection", "Priority", "7", -1)
        .await
        .unwrap();
    // A CA file and no certificate check exclude each other: refused, named.
    let e = params
        .set("alice", "Connection", "check_certificate", "false", -1)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ParamError::Invalid { why, .. } if why.contains("ca_file")),
        "{e:?}"
    );
    daemon.connect("alice").await.unwrap();
    daemon.connect("bob").await.unwrap();
    // Alice approves bob in advance, bob asks: the server answers with alice's presence.
    daemon
        .subscription("alice", "subscribed", &format!("bob@{DOMAIN}"))
        .await
        .unwrap();
    daemon
        .subscription("bob", "subscribe", &format!("alice@{DOMAIN}"))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let seen = loop {
        let seen: Vec<_> = daemon
            .presences("bob")
            .await
            .unwrap()
            .into_iter()
            .filter(|p| p.jid.starts_with(&format!("alice@{DOMAIN}/")))
            .collect();
        if !seen.is_empty() || std::time::Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(
        seen.iter().map(|p| p.priority).collect::<Vec<_>>(),
        [7],
        "alice's presence as bob sees it: {seen:?}"
    );
    daemon.shutdown().await;
}

/// A profile made without an XMPP password (Libervia's profileCreate) seals nothing,
/// reads back `""`, survives connection-setting changes, refuses to connect with a
/// typed error naming the missing param, and gets a working sealed password from
/// `setParam`. Perch's own create still requires one.
#[tokio::test]
async fn a_profile_without_xmpp_password_until_one_is_set() {
    let s = setup().await;
    let new = |password: &str| NewProfile {
        name: "carol".into(),
        jid: "carol@example.org".into(),
        password: Password::new(password.into()),
        server: None,
        ca_file: None,
        insecure: false,
        autoconnect: false,
    };
    let e = s.daemon.create_profile(new("")).await.unwrap_err();
    assert_eq!(e.name(), "BadArgument", "{e}");
    let e = s
        .daemon
        .create_profile_without_password(new("given"))
        .await
        .unwrap_err();
    assert_eq!(e.name(), "BadArgument", "{e}");
    s.daemon
        .create_profile_without_password(new(""))
        .await
        .unwrap();
    let m = s.daemon.profile("carol").await.unwrap();
    assert_eq!(m.password, perch_backend::profiles::NO_PASSWORD);
    let read = |name: &'static str| {
        let p = &s.params;
        async move {
            p.get("carol", "Connection", name, "value", -1)
                .await
                .unwrap()
        }
    };
    assert_eq!(read("Password").await, "");
    // Settings a sealed password is bound to change without one to re-seal.
    s.params
        .set("carol", "Connection", "check_certificate", "false", -1)
        .await
        .unwrap();
    s.params
        .set("carol", "Connection", "Force server", "127.0.0.1", -1)
        .await
        .unwrap();
    assert_eq!(read("Password").await, "");
    let e = s.daemon.connect("carol").await.unwrap_err();
    assert!(
        matches!(&e, perch_backend::error::Error::NoPassword(p) if p == "carol"),
        "{e:?}"
    );
    assert!(e.to_string().contains("Connection/Password"), "{e}");
    s.params
        .set("carol", "Connection", "Password", "now-set", -1)
        .await
        .unwrap();
    assert_eq!(read("Password").await, "now-set");
    let m = s.daemon.profile("carol").await.unwrap();
    assert!(m.password.starts_with("v1:"), "sealed");
    assert!(!s.db_bytes().windows(7).any(|w| w == b"now-set"));
}
