//! The Libervia 0.9 bridge of perchd (`doc/libervia-compat.rst`), on a private
//! dbus-daemon and, for sessions, the harness's Prosody: the introspection frontends
//! marshal from, the error encoding they decode, the name left to a running Libervia
//! backend, and the core calls of a chat (connect, roster, message, history) with
//! their signals.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use futures::StreamExt;
use perch_backend::libervia::{self, table};
use perch_tests::{ALICE_PW, BOB_PW, DbusDaemon, Perchd, Prosody, wait_until};
use zbus::Connection;
use zbus::message::Message;

const CORE: &str = libervia::CORE_INTERFACE;
const PLUGIN: &str = libervia::PLUGIN_INTERFACE;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
}

fn wait_for_name(bus: &DbusDaemon) -> Result<()> {
    wait_until(Duration::from_secs(20), || {
        bus.name_has_owner(libervia::BUS_NAME)
    })
    .context("perchd never took org.libervia.Libervia")
}

pub(crate) async fn call<B>(
    conn: &Connection,
    iface: &str,
    method: &str,
    body: &B,
) -> zbus::Result<Message>
where
    B: serde::Serialize + zbus::DynamicType,
{
    conn.call_method(
        Some(libervia::BUS_NAME),
        libervia::PATH,
        Some(iface),
        method,
        body,
    )
    .await
}

/// The D-Bus error name and body of a failed call.
pub(crate) fn error_of(r: zbus::Result<Message>) -> Result<(String, String)> {
    match r {
        Err(zbus::Error::MethodError(name, desc, _)) => {
            Ok((name.to_string(), desc.unwrap_or_default()))
        }
        Err(zbus::Error::FDO(e)) => {
            use zbus::DBusError;
            Ok((
                e.name().to_string(),
                e.description().unwrap_or_default().to_owned(),
            ))
        }
        Err(e) => bail!("not a method error: {e}"),
        Ok(m) => bail!("the call succeeded: {:?}", m.body().signature()),
    }
}

/// `(in, out)` signatures of each method of `iface` in introspection XML.
fn methods_of(xml: &str, iface: &str) -> Result<Vec<(String, String, String)>> {
    let start = xml
        .find(&format!("<interface name=\"{iface}\">"))
        .with_context(|| format!("{iface} missing from the introspection"))?;
    let section = &xml[start..];
    let section = &section[..section.find("</interface>").context("unclosed")?];
    let mut out = Vec::new();
    for block in section.split("<method name=\"").skip(1) {
        let name = &block[..block.find('"').context("name")?];
        let block = &block[..block.find("</method>").context("unclosed method")?];
        let (mut ins, mut outs) = (String::new(), String::new());
        for arg in block.split("<arg").skip(1) {
            let t = arg.split("type=\"").nth(1).context("arg type")?;
            let t = t[..t.find('"').context("type")?]
                .replace("&lt;", "<")
                .replace("&gt;", ">");
            if arg.contains("direction=\"out\"") {
                outs.push_str(&t);
            } else {
                ins.push_str(&t);
            }
        }
        out.push((name.to_owned(), ins, outs));
    }
    Ok(out)
}

fn signals_of(xml: &str, iface: &str) -> Result<Vec<(String, String)>> {
    let start = xml
        .find(&format!("<interface name=\"{iface}\">"))
        .context("interface missing")?;
    let section = &xml[start..];
    let section = &section[..section.find("</interface>").context("unclosed")?];
    let mut out = Vec::new();
    for block in section.split("<signal name=\"").skip(1) {
        let name = &block[..block.find('"').context("name")?];
        let block = &block[..block.find("</signal>").context("unclosed signal")?];
        let sig: String = block
            .split("type=\"")
            .skip(1)
            .map(|t| t[..t.find('"').unwrap_or(0)].to_owned())
            .collect();
        out.push((name.to_owned(), sig));
    }
    Ok(out)
}

#[test]
fn libervia_introspection_lists_every_method_and_signal_exactly() {
    let perchd = Perchd::start().expect("starting perchd");
    let r = (|| -> Result<()> {
        wait_for_name(perchd.bus())?;
        runtime().block_on(async {
            let conn = perchd.bus().connection().await?;
            let proxy = zbus::fdo::IntrospectableProxy::builder(&conn)
                .destination(libervia::BUS_NAME)
                .path(libervia::PATH)
                .build()
                .await?;
            let xml = proxy.introspect().await?;
            let core = methods_of(&xml, CORE)?;
            let plugin = methods_of(&xml, PLUGIN)?;
            ensure!(core.len() == 66, "{} core methods", core.len());
            ensure!(plugin.len() == 194, "{} plugin methods", plugin.len());
            for (rows, got) in [
                (table::CORE_METHODS, &core),
                (table::PLUGIN_METHODS, &plugin),
            ] {
                for (name, ins, outs, _) in rows {
                    let m = got
                        .iter()
                        .find(|m| m.0 == *name)
                        .with_context(|| format!("{name} not introspected"))?;
                    ensure!(
                        (m.1.as_str(), m.2.as_str()) == (*ins, *outs),
                        "{name}: {m:?}"
                    );
                }
            }
            // Signatures the frontends depend on, written out independently of the table.
            for (name, ins, outs) in [
                ("messageSend", "sa{ss}a{ss}sss", ""),
                ("historyGet", "ssiba{ss}s", "a(sdssa{ss}a{ss}ss)"),
                ("getContacts", "s", "a(sa{ss}as)"),
                ("discoInfos", "ssbs", "(asa(sss)a{sa(a{ss}as)})"),
                ("connect", "ssa{ss}", "b"),
            ] {
                ensure!(
                    core.contains(&(name.into(), ins.into(), outs.into())),
                    "{name}"
                );
            }
            for (name, ins, outs) in [
                ("psItemsGet", "ssiassss", "s"),
                ("psCacheSearch", "s", "s"),
                ("mbSend", "ssss", "s"),
                ("ping", "ss", "d"),
            ] {
                ensure!(
                    plugin.contains(&(name.into(), ins.into(), outs.into())),
                    "{name}"
                );
            }
            let core_signals = signals_of(&xml, CORE)?;
            let plugin_signals = signals_of(&xml, PLUGIN)?;
            ensure!(
                core_signals.len() == 16,
                "{} core signals",
                core_signals.len()
            );
            ensure!(
                plugin_signals.len() == 37,
                "{} plugin signals",
                plugin_signals.len()
            );
            ensure!(core_signals.contains(&("messageNew".into(), "sdssa{ss}a{ss}sss".into())));
            ensure!(plugin_signals.contains(&("psEvent".into(), "ssssss".into())));
            // Core arguments are named as in Libervia's generated bridge.
            ensure!(
                xml.contains("<arg name=\"profile_key\" type=\"s\" direction=\"in\"/>"),
                "core arguments are not named"
            );
            Ok(())
        })
    })();
    r.unwrap_or_else(|e| panic!("{e:#}\n{}", perchd.diagnostics()));
}

#[test]
fn libervia_errors_are_named_and_encoded_as_libervia_does() {
    let perchd = Perchd::start().expect("starting perchd");
    let r = (|| -> Result<()> {
        wait_for_name(perchd.bus())?;
        runtime().block_on(async {
            let conn = perchd.bus().connection().await?;
            // getReady answers at once: the name is only taken when all is served.
            tokio::time::timeout(Duration::from_secs(2), call(&conn, CORE, "getReady", &()))
                .await
                .context("getReady did not answer at once")??;
            let (name, body) = error_of(call(&conn, CORE, "isConnected", &("nosuch",)).await)?;
            ensure!(
                name == "org.libervia.Libervia.error.sat.core.exceptions.ProfileUnknownError",
                "{name}"
            );
            ensure!(body == r#"("nosuch", "")"#, "{body}");
            // Unknown profile in profileNameGet: "" (both frontends exit cleanly on it).
            let m = call(&conn, CORE, "profileNameGet", &("nosuch",)).await?;
            ensure!(m.body().deserialize::<String>()?.is_empty());
            let (name, body) =
                error_of(call(&conn, PLUGIN, "tarotGameCreate", &("r", vec!["a"], "p")).await)?;
            ensure!(
                name == "org.libervia.Libervia.error.MethodNotRegistered",
                "{name}"
            );
            ensure!(
                body == r#"("not supported yet by perchd: tarotGameCreate", "")"#,
                "{body}"
            );
            let (name, _) = error_of(call(&conn, CORE, "noSuchMethod", &()).await)?;
            ensure!(name == "org.freedesktop.DBus.Error.UnknownMethod", "{name}");
            // A plugin method asked on the core interface is unknown there.
            let (name, _) = error_of(call(&conn, CORE, "psItemsGet", &()).await)?;
            ensure!(name == "org.freedesktop.DBus.Error.UnknownMethod", "{name}");
            let (name, body) = error_of(call(&conn, CORE, "isConnected", &(5i32,)).await)?;
            ensure!(name == "org.freedesktop.DBus.Error.InvalidArgs", "{name}");
            ensure!(body.contains("isConnected takes (s), not (i)"), "{body}");
            let (name, _) = error_of(call(&conn, CORE, "getVersion", &("extra",)).await)?;
            ensure!(name == "org.freedesktop.DBus.Error.InvalidArgs", "{name}");
            // @NONE@ is ProfileNotSetError.
            let (name, _) = error_of(call(&conn, CORE, "isConnected", &("@NONE@",)).await)?;
            ensure!(name.ends_with(".ProfileNotSetError"), "{name}");
            // Profile sessions: launchAction with the TUI's fixed id.
            const AUTH: &str = "b03bbfa8-a4ae-4734-a248-06ce6c7cf562";
            type Map = std::collections::HashMap<String, String>;
            let none = Map::new();
            call(&conn, CORE, "profileCreate", &("dora", "", "")).await?;
            let m = call(&conn, CORE, "launchAction", &(AUTH, &none, "dora")).await?;
            ensure!(m.body().deserialize::<Map>()?["validated"] == "true");
            let m = call(&conn, CORE, "profileIsSessionStarted", &("dora",)).await?;
            ensure!(m.body().deserialize::<bool>()?);
            call(&conn, CORE, "profileCreate", &("eve", "eve-pw", "")).await?;
            let m = call(&conn, CORE, "launchAction", &(AUTH, &none, "eve")).await?;
            let a = m.body().deserialize::<Map>()?;
            ensure!(
                a.get("xmlui")
                    .is_some_and(|x| x.contains("type=\"password\"")),
                "{a:?}"
            );
            let mut form = Map::new();
            form.insert("SAT_FORM_profile_password".into(), "wrong".into());
            let m = call(&conn, CORE, "launchAction", &(AUTH, &form, "eve")).await?;
            ensure!(m.body().deserialize::<Map>()?["validated"] == "false");
            let (name, _) =
                error_of(call(&conn, CORE, "profileStartSession", &("wrong", "eve")).await)?;
            ensure!(name.ends_with(".PasswordError"), "{name}");
            form.insert("SAT_FORM_profile_password".into(), "eve-pw".into());
            let m = call(&conn, CORE, "launchAction", &(AUTH, &form, "eve")).await?;
            ensure!(m.body().deserialize::<Map>()?["validated"] == "true");
            // The daemon is still there after all that.
            let v = call(&conn, CORE, "getVersion", &()).await?;
            ensure!(v.body().deserialize::<String>()?.starts_with("0.9.0a0"));
            Ok(())
        })
    })();
    r.unwrap_or_else(|e| panic!("{e:#}\n{}", perchd.diagnostics()));
}

#[test]
fn libervia_name_owned_by_a_running_backend_is_left_to_it() {
    let other = DbusDaemon::start().expect("a second bus");
    let rt = runtime();
    // The "running Libervia backend": a connection that owns the name.
    let owner = rt
        .block_on(async {
            let c = other.connection().await?;
            c.request_name(libervia::BUS_NAME).await?;
            anyhow::Ok(c)
        })
        .expect("owning the name");
    let config = format!("[libervia]\nbus = \"{}\"\n", other.address());
    let perchd = Perchd::start_with_config(&config).expect("starting perchd");
    let r = (|| -> Result<()> {
        wait_until(Duration::from_secs(20), || {
            Ok(perchd.log_text()?.contains("owns the Libervia bus name"))
        })
        .context("no warning about the name in the log")?;
        // Still ours, and perchd's own bridge serves on.
        let unique = owner.unique_name().context("unique name")?.to_string();
        let now = rt.block_on(async {
            let c = other.connection().await?;
            let dbus = zbus::fdo::DBusProxy::new(&c).await?;
            let name = zbus::names::BusName::try_from(libervia::BUS_NAME)?;
            anyhow::Ok(dbus.get_name_owner(name).await?.to_string())
        })?;
        ensure!(now == unique, "the name moved to {now}");
        perchd.cli_ok(&["status"])?;
        Ok(())
    })();
    r.unwrap_or_else(|e| panic!("{e:#}\n{}", perchd.diagnostics()));
}

#[test]
fn libervia_connect_roster_message_and_history_with_their_signals() {
    let prosody = Prosody::start().expect("starting Prosody");
    let perchd = Perchd::start().expect("starting perchd");
    let r = (|| -> Result<()> {
        perchd.create_profile(&prosody, "alice", "alice", ALICE_PW, &[])?;
        perchd.create_profile(&prosody, "bob", "bob", BOB_PW, &[])?;
        wait_for_name(perchd.bus())?;
        runtime().block_on(async {
            let conn = perchd.bus().connection().await?;
            let rule = zbus::MatchRule::builder()
                .msg_type(zbus::message::Type::Signal)
                .path(libervia::PATH)
                .build()?;
            let mut signals = zbus::MessageStream::for_match_rule(rule, &conn, None).await?;
            let m = call(&conn, CORE, "profilesListGet", &(true, false)).await?;
            ensure!(m.body().deserialize::<Vec<String>>()? == ["alice", "bob"]);
            let m = call(&conn, CORE, "profileNameGet", &("@DEFAULT@",)).await?;
            ensure!(m.body().deserialize::<String>()? == "alice");

            // connect: `connected` comes before the reply; false = this call connected.
            let empty = std::collections::HashMap::<String, String>::new();
            let reply = call(&conn, CORE, "connect", &("alice", "", &empty)).await?;
            ensure!(!reply.body().deserialize::<bool>()?);
            let first = next_signal(&mut signals, "connected").await?;
            let (jid, profile): (String, String) = first.body().deserialize()?;
            ensure!(
                jid.starts_with("alice@localhost/") && profile == "alice",
                "{jid}"
            );
            ensure!(
                first.primary_header().serial_num() < reply.primary_header().serial_num(),
                "connected came after the reply"
            );
            let again = call(&conn, CORE, "connect", &("alice", "", &empty)).await?;
            ensure!(
                again.body().deserialize::<bool>()?,
                "second connect not 'already'"
            );
            call(&conn, CORE, "connect", &("bob", "", &empty)).await?;
            let m = call(&conn, CORE, "isConnected", &("bob",)).await?;
            ensure!(m.body().deserialize::<bool>()?);

            // Deleting a connected profile is refused with ProfileConnected.
            let (name, _) = error_of(call(&conn, CORE, "asyncDeleteProfile", &("bob",)).await)?;
            ensure!(name.ends_with(".ProfileConnected"), "{name}");

            // getContacts: a(sa{ss}as), here empty.
            let m = call(&conn, CORE, "getContacts", &("alice",)).await?;
            ensure!(m.body().signature().to_string_no_parens() == "a(sa{ss}as)");
            // updateContact: a roster push, announced as newContact.
            call(
                &conn,
                CORE,
                "updateContact",
                &("bob@localhost", "Bobby", vec!["Friends"], "alice"),
            )
            .await?;
            let s = next_signal(&mut signals, "newContact").await?;
            type NewContact = (
                String,
                std::collections::HashMap<String, String>,
                Vec<String>,
                String,
            );
            let c: NewContact = s.body().deserialize()?;
            ensure!(
                c.0 == "bob@localhost"
                    && c.1["name"] == "Bobby"
                    && c.2 == ["Friends"]
                    && c.3 == "alice",
                "{c:?}"
            );
            ensure!(c.1["to"].eq_ignore_ascii_case("false"), "{c:?}");
            let no_jids: Vec<String> = Vec::new();
            let m = call(
                &conn,
                CORE,
                "getEntitiesData",
                &(&no_jids, vec!["avatar", "nicknames"], "alice"),
            )
            .await?;
            type Data =
                std::collections::HashMap<String, std::collections::HashMap<String, String>>;
            let data: Data = m.body().deserialize()?;
            ensure!(
                data["bob@localhost"]["nicknames"] == "[\"Bobby\"]",
                "{data:?}"
            );

            // messageSend (auto → chat), messageNew for our copy and bob's.
            let mut text = std::collections::HashMap::new();
            text.insert(String::new(), "hi bob\n".to_owned());
            call(
                &conn,
                CORE,
                "messageSend",
                &("bob@localhost", &text, &empty, "auto", "{}", "alice"),
            )
            .await?;
            let mut seen = Vec::new();
            while seen.len() < 2 {
                let s = next_signal(&mut signals, "messageNew").await?;
                ensure!(s.body().signature().to_string_no_parens() == "sdssa{ss}a{ss}sss");
                type New = (
                    String,
                    f64,
                    String,
                    String,
                    std::collections::HashMap<String, String>,
                    std::collections::HashMap<String, String>,
                    String,
                    String,
                    String,
                );
                let n: New = s.body().deserialize()?;
                ensure!(n.4.get("").map(String::as_str) == Some("hi bob\n"), "{n:?}");
                ensure!(n.6 == "chat", "{n:?}");
                serde_json::from_str::<serde_json::Value>(&n.7).context("extra is JSON")?;
                seen.push(n.8);
            }
            seen.sort();
            ensure!(seen == ["alice", "bob"], "{seen:?}");

            // bob's history of the conversation, -1 = the History param.
            type Row = (
                String,
                f64,
                String,
                String,
                std::collections::HashMap<String, String>,
                std::collections::HashMap<String, String>,
                String,
                String,
            );
            let m = call(
                &conn,
                CORE,
                "historyGet",
                &(
                    "bob@localhost",
                    "alice@localhost",
                    -1i32,
                    true,
                    &empty,
                    "bob",
                ),
            )
            .await?;
            let rows: Vec<Row> = m.body().deserialize()?;
            ensure!(rows.len() == 1 && rows[0].4[""] == "hi bob\n", "{rows:?}");
            ensure!(rows[0].2.starts_with("alice@localhost"), "{rows:?}");

            // Unknown profile: an error, never a hang.
            let (name, _) = error_of(
                tokio::time::timeout(
                    Duration::from_secs(5),
                    call(&conn, CORE, "getContacts", &("nosuch",)),
                )
                .await
                .context("getContacts of an unknown profile hung")?,
            )?;
            ensure!(name.ends_with(".ProfileUnknownError"), "{name}");

            // disconnect: `disconnected(profile)`.
            call(&conn, CORE, "disconnect", &("bob",)).await?;
            let d = next_signal(&mut signals, "disconnected").await?;
            ensure!(d.body().deserialize::<String>()? == "bob");
            let m = call(&conn, CORE, "isConnected", &("bob",)).await?;
            ensure!(!m.body().deserialize::<bool>()?);
            Ok(())
        })
    })();
    r.unwrap_or_else(|e| panic!("{e:#}\n{}\n{}", perchd.diagnostics(), prosody.diagnostics()));
}

async fn next_signal(stream: &mut zbus::MessageStream, member: &str) -> Result<Message> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let m = tokio::time::timeout_at(deadline, stream.next())
            .await
            .with_context(|| format!("no {member} signal"))?
            .context("stream ended")??;
        if m.header().member().is_some_and(|n| n.as_str() == member) {
            return Ok(m);
        }
    }
}

/// Libervia's own way to a connected profile (profileCreate, then setParam for the
/// account and the server), a wrong XMPP password, then pubsub through the bridge:
/// node creation, publication, items as Libervia's JSON with XML strings, a missing
/// node as `item-not-found`, and the cache search.
#[test]
fn libervia_profile_by_params_wrong_password_and_pubsub() {
    let prosody = Prosody::start().expect("starting Prosody");
    let perchd = Perchd::start().expect("starting perchd");
    let r = (|| -> Result<()> {
        wait_for_name(perchd.bus())?;
        let port = prosody.port().to_string();
        runtime().block_on(async {
            let conn = perchd.bus().connection().await?;
            let rule = zbus::MatchRule::builder()
                .msg_type(zbus::message::Type::Signal)
                .path(libervia::PATH)
                .build()?;
            let mut signals = zbus::MessageStream::for_match_rule(rule, &conn, None).await?;
            call(&conn, CORE, "profileCreate", &("carol", "", "")).await?;
            let (name, _) =
                error_of(call(&conn, CORE, "profileCreate", &("carol", "", "")).await)?;
            ensure!(name.ends_with(".ConflictError"), "{name}");
            let (name, _) = error_of(call(&conn, CORE, "profileCreate", &("@x", "", "")).await)?;
            ensure!(name.ends_with("builtins.ValueError"), "{name}");
            // No XMPP password is invented: it reads back empty, and connecting is
            // refused as the frontends expect (not-authorized), naming the param.
            let m = call(
                &conn,
                CORE,
                "asyncGetParamA",
                &("Password", "Connection", "value", -1i32, "carol"),
            )
            .await?;
            ensure!(m.body().deserialize::<String>()?.is_empty(), "a password was invented");
            let m = call(&conn, CORE, "profileStartSession", &("", "carol")).await?;
            ensure!(!m.body().deserialize::<bool>()?, "session reported already started");
            let m = call(&conn, CORE, "profileStartSession", &("", "carol")).await?;
            ensure!(m.body().deserialize::<bool>()?, "second start not 'already'");
            let no_opts = std::collections::HashMap::<String, String>::new();
            let (name, body) =
                error_of(call(&conn, CORE, "connect", &("carol", "", &no_opts)).await)?;
            ensure!(name.ends_with(".sasl.SASLAuthError"), "{name}");
            ensure!(
                body.contains("Connection/Password") && body.ends_with(", \"not-authorized\")"),
                "{body}"
            );
            for (name, value) in [
                ("JabberID", "alice@localhost"),
                ("Password", "not-the-password"),
                ("Force server", "127.0.0.1"),
                ("Force port", port.as_str()),
                ("check_certificate", "false"),
            ] {
                call(&conn, CORE, "setParam", &(name, value, "Connection", -1i32, "carol"))
                    .await
                    .with_context(|| format!("setParam {name}"))?;
            }
            // paramUpdate for each, never with a password in it.
            let mut updates = Vec::new();
            while updates.len() < 6 {
                let s = next_signal(&mut signals, "paramUpdate").await?;
                updates.push(s.body().deserialize::<(String, String, String, String)>()?);
            }
            ensure!(
                updates.contains(&("Password".into(), String::new(), "General".into(), "carol".into())),
                "{updates:?}"
            );
            ensure!(
                updates.contains(&("Password".into(), String::new(), "Connection".into(), "carol".into())),
                "{updates:?}"
            );
            ensure!(
                updates.iter().any(|u| u.0 == "JabberID" && u.1 == "alice@localhost"),
                "{updates:?}"
            );
            let empty = std::collections::HashMap::<String, String>::new();
            let (name, body) =
                error_of(call(&conn, CORE, "connect", &("carol", "", &empty)).await)?;
            ensure!(
                name == "org.libervia.Libervia.error.twisted.words.protocols.jabber.sasl.SASLAuthError",
                "{name}"
            );
            ensure!(body.ends_with(", \"not-authorized\")"), "{body}");
            // The TUI's answer to not-authorized: the XMPP password form, submitted to
            // the same id; a wrong password gives the form again, the right one connects.
            const CHANGE: &str = "878b9387-de2b-413b-950f-e424a147bcd0";
            let m = call(&conn, CORE, "launchAction", &(CHANGE, &empty, "carol")).await?;
            let a: std::collections::HashMap<String, String> = m.body().deserialize()?;
            let form = a.get("xmlui").context("no xmlui")?;
            ensure!(
                form.contains(&format!("submit=\"{CHANGE}\""))
                    && form.contains("name=\"xmpp_password\" type=\"password\""),
                "{form}"
            );
            let mut answer = std::collections::HashMap::new();
            answer.insert("xmpp_password".to_owned(), "still-wrong".to_owned());
            let m = call(&conn, CORE, "launchAction", &(CHANGE, &answer, "carol")).await?;
            let a: std::collections::HashMap<String, String> = m.body().deserialize()?;
            ensure!(a.get("xmlui").is_some_and(|x| x.contains("xmpp_password")), "{a:?}");
            // As frontends submit forms: the field name prefixed.
            answer.clear();
            answer.insert("SAT_FORM_xmpp_password".to_owned(), ALICE_PW.to_owned());
            let m = call(&conn, CORE, "launchAction", &(CHANGE, &answer, "carol")).await?;
            let a: std::collections::HashMap<String, String> = m.body().deserialize()?;
            ensure!(a.is_empty(), "{a:?}");
            let m = call(&conn, CORE, "isConnected", &("carol",)).await?;
            ensure!(m.body().deserialize::<bool>()?, "the form's password did not connect");
            // check_certificate is false: the security notice came with the connection,
            // and stays pending for actionsGet until answered.
            let s = next_signal(&mut signals, "actionNew").await?;
            let (data, id, limit, profile): (
                std::collections::HashMap<String, String>,
                String,
                i32,
                String,
            ) = s.body().deserialize()?;
            ensure!(profile == "carol" && limit == -1 && id.len() == 36, "{id} {limit}");
            let x = data.get("xmlui").context("no xmlui")?;
            ensure!(
                x.contains("title=\"Security notice\" type=\"dialog\"")
                    && x.contains("<dialog level=\"warning\" type=\"note\">"),
                "{x}"
            );
            type Pending = (std::collections::HashMap<String, String>, String, i32);
            let m = call(&conn, CORE, "actionsGet", &("carol",)).await?;
            let pending: Vec<Pending> = m.body().deserialize()?;
            ensure!(pending.len() == 1 && pending[0].1 == id, "{pending:?}");
            call(&conn, CORE, "launchAction", &(id.as_str(), &empty, "carol")).await?;
            let m = call(&conn, CORE, "actionsGet", &("carol",)).await?;
            ensure!(m.body().deserialize::<Vec<Pending>>()?.is_empty());
            let m = call(&conn, CORE, "connect", &("carol", "", &empty)).await?;
            ensure!(m.body().deserialize::<bool>()?, "already connected");

            let m = call(&conn, PLUGIN, "psNodeCreate", &("", "notes", &no_opts, "carol")).await?;
            ensure!(m.body().deserialize::<String>()? == "notes");
            let m = call(
                &conn,
                PLUGIN,
                "psItemSend",
                &("", "notes", "<note xmlns='urn:example:note'>first</note>", "item1", "", "carol"),
            )
            .await?;
            ensure!(m.body().deserialize::<String>()? == "item1");
            let no_ids: Vec<String> = Vec::new();
            let m = call(
                &conn,
                PLUGIN,
                "psItemsGet",
                &("", "notes", 10i32, &no_ids, "", "{}", "carol"),
            )
            .await?;
            let v: serde_json::Value = serde_json::from_str(&m.body().deserialize::<String>()?)?;
            ensure!(v["service"] == "alice@localhost" && v["node"] == "notes", "{v}");
            ensure!(v["uri"] == "xmpp:alice@localhost?;node=notes", "{v}");
            let item = v["items"][0].as_str().context("items are XML strings")?;
            ensure!(
                item.starts_with("<item xmlns='http://jabber.org/protocol/pubsub' id='item1'")
                    && item.contains("urn:example:note")
                    && item.contains(">first</note>"),
                "{item}"
            );
            let (name, body) = error_of(
                call(
                    &conn,
                    PLUGIN,
                    "psItemsGet",
                    &("", "no-such-node", 10i32, &no_ids, "", "{}", "carol"),
                )
                .await,
            )?;
            ensure!(name.ends_with(".StanzaError"), "{name}");
            ensure!(body.ends_with(", \"item-not-found\")"), "{body}");
            // psCacheSync answers once the node is cached: psCacheGet finds it then.
            call(&conn, PLUGIN, "psCacheSync", &("", "notes", "carol")).await?;
            let m = call(
                &conn,
                PLUGIN,
                "psCacheGet",
                &("", "notes", 10i32, &no_ids, "", "{}", "carol"),
            )
            .await?;
            let v: serde_json::Value = serde_json::from_str(&m.body().deserialize::<String>()?)?;
            ensure!(v["items"].as_array().map(Vec::len) == Some(1), "{v}");
            let (name, _) = error_of(
                call(
                    &conn,
                    PLUGIN,
                    "psCacheGet",
                    &("", "not-cached", 10i32, &no_ids, "", "{}", "carol"),
                )
                .await,
            )?;
            ensure!(name.ends_with(".NotFound"), "{name}");
            let m = call(&conn, PLUGIN, "psCacheSearch", &("{\"fts\": \"zebracorn\"}",))
                .await?;
            ensure!(m.body().deserialize::<String>()? == "[]");
            let m = call(&conn, PLUGIN, "psNodeAffiliationsGet", &("", "notes", "carol")).await?;
            let affs: std::collections::HashMap<String, String> = m.body().deserialize()?;
            ensure!(affs.get("alice@localhost").map(String::as_str) == Some("owner"), "{affs:?}");
            call(&conn, PLUGIN, "psNodeDelete", &("", "notes", "carol")).await?;

            // Composition syntaxes: `blog set -S markdown`'s calls, then mbSend with
            // content_rich in the profile's syntax (markdown by default).
            let m = call(&conn, PLUGIN, "syntaxGet", &("Markdown",)).await?;
            ensure!(m.body().deserialize::<String>()? == "markdown");
            let (name, body) = error_of(call(&conn, PLUGIN, "syntaxGet", &("nope",)).await)?;
            ensure!(name.ends_with(".NotFound") && body.contains("nope"), "{name} {body}");
            let m = call(
                &conn,
                PLUGIN,
                "syntaxConvert",
                &("Hi *there*\n", "markdown", "xhtml", true, "carol"),
            )
            .await?;
            ensure!(m.body().deserialize::<String>()? == "<p>Hi <em>there</em></p>");
            let m = call(
                &conn,
                PLUGIN,
                "syntaxConvert",
                &("a <b>", "@CURRENT@", "text", true, "carol"),
            )
            .await?;
            ensure!(m.body().deserialize::<String>()? == "a <b>", "raw HTML must stay text");
            let mb = r#"{"title": "Rich", "content_rich": "Some **bold**\nnext line"}"#;
            let m = call(&conn, PLUGIN, "mbSend", &("", "", mb, "carol")).await?;
            let id = m.body().deserialize::<String>()?;
            ensure!(!id.is_empty());
            let m = call(
                &conn,
                PLUGIN,
                "mbGet",
                &("", "", 10i32, vec![id.clone()], "{}", "carol"),
            )
            .await?;
            let v: serde_json::Value = serde_json::from_str(&m.body().deserialize::<String>()?)?;
            let post = &v["items"][0];
            ensure!(post["id"] == id.as_str(), "{v}");
            ensure!(post["content"] == "Some bold\nnext line", "{v}");
            let x = post["content_xhtml"].as_str().context("no content_xhtml")?;
            // As 0.9 sends it: the root `<div>` without its namespace declaration.
            ensure!(
                x.starts_with("<div><p>")
                    && x.contains("<strong>bold</strong>")
                    && x.contains("<br"),
                "{x}"
            );
            Ok(())
        })
    })();
    r.unwrap_or_else(|e| panic!("{e:#}\n{}\n{}", perchd.diagnostics(), prosody.diagnostics()));
}

/// `perchd --install-libervia-service` writes the activation file; a session bus that
/// finds it (the per-user services dir of its `XDG_DATA_HOME`) starts perchd on the
/// first call to `org.libervia.Libervia`, as Libervia's frontends do.
#[test]
fn libervia_activation_file_lets_the_bus_start_perchd() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let d = dir.path();
    for sub in ["home", "xdg-data", "data", "config", "state", "run"] {
        std::fs::create_dir_all(d.join(sub)).expect("mkdir");
    }
    let config = d.join("perchd.toml");
    std::fs::write(
        &config,
        format!(
            "[daemon]\nallow_root = true\n[bridge]\nsocket = \"none\"\n\
             [storage]\ndata_dir = \"{}\"\n[log]\nfile = \"{}\"\n",
            d.join("data").display(),
            d.join("perchd.log").display()
        ),
    )
    .expect("config");
    let perchd = env!("CARGO_BIN_EXE_perchd");
    let out = std::process::Command::new(perchd)
        .arg("--install-libervia-service")
        .arg("--config")
        .arg(&config)
        .env("HOME", d.join("home"))
        .env("XDG_DATA_HOME", d.join("xdg-data"))
        .output()
        .expect("running perchd --install-libervia-service");
    assert!(out.status.success(), "{out:?}");
    let service = d.join("xdg-data/dbus-1/services/org.libervia.Libervia.service");
    let text = std::fs::read_to_string(&service).expect("the service file");
    assert!(
        text.contains("Name=org.libervia.Libervia\n") && text.contains(perchd),
        "{text}"
    );

    let exe = perch_tests::find_program("dbus-daemon", "dbus-daemon", "dbus-daemon")
        .expect("dbus-daemon");
    let address = format!("unix:path={}", d.join("bus").display());
    let mut bus = std::process::Command::new(exe)
        .args(["--session", "--nofork", "--print-address=1"])
        .arg(format!("--address={address}"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", d.join("home"))
        .env("XDG_DATA_HOME", d.join("xdg-data"))
        .env("XDG_CONFIG_HOME", d.join("config"))
        .env("XDG_STATE_HOME", d.join("state"))
        .env("XDG_RUNTIME_DIR", d.join("run"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starting dbus-daemon");
    let r = runtime().block_on(async {
        wait_until(Duration::from_secs(10), || Ok(d.join("bus").exists()))?;
        let conn = zbus::connection::Builder::address(address.as_str())
            .build()
            .await?;
        // Nothing owns the name: the bus starts perchd from the file.
        let v = tokio::time::timeout(
            Duration::from_secs(30),
            call(&conn, CORE, "getVersion", &()),
        )
        .await
        .context("no answer from an activated perchd")??;
        let version = v.body().deserialize::<String>()?;
        ensure!(version.contains("(perchd "), "not perchd: {version}");
        let dbus = zbus::fdo::DBusProxy::new(&conn).await?;
        let name = zbus::names::BusName::try_from(libervia::BUS_NAME)?;
        anyhow::Ok(dbus.get_connection_unix_process_id(name).await?)
    });
    // Stop the perchd the bus started (by its pid), then the bus.
    if let Ok(pid) = &r {
        let _ = std::process::Command::new("kill")
            .arg(pid.to_string())
            .status();
        let _ = wait_until(Duration::from_secs(10), || {
            Ok(!std::path::Path::new(&format!("/proc/{pid}")).exists())
        });
    }
    let _ = bus.kill();
    let _ = bus.wait();
    if let Err(e) = r {
        let log = std::fs::read_to_string(d.join("perchd.log")).unwrap_or_default();
        panic!("{e:#}\nperchd.log:\n{log}");
    }
}
