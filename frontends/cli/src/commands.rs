//! One function per command: the D-Bus calls it makes and what it prints.

use std::collections::HashMap;
use std::io::Read;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::client::{CliError, Client, INTERFACE, PATH};
use crate::output;
use crate::{
    ActionCommand, Cli, Command, DebugCommand, InfoCommand, JobCommand, MessageCommand,
    MessageType, OnOff, PluginCommand, PresenceCommand, ProfileCommand, RosterCommand, ShowArg,
    read_password,
};

type Options = HashMap<String, String>;

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let json_out = cli.json;
    // Read what comes from stdin before connecting: a bad password is reported
    // without a daemon.
    let client = || async { Client::connect(&cli.target()).await };
    match &cli.command {
        Command::Version => {
            let daemon: String = client().await?.call("Version", &()).await?;
            if json_out {
                output::json(&json!({"perchd": daemon, "perch": env!("CARGO_PKG_VERSION")}));
            } else {
                println!("perchd {daemon}\nperch {}", env!("CARGO_PKG_VERSION"));
            }
        }
        Command::Profile(cmd) => profile(cmd, json_out, client).await?,
        Command::Connect(p) => {
            client()
                .await?
                .call::<_, ()>("Connect", &(&p.profile,))
                .await?;
        }
        Command::Disconnect(p) => {
            client()
                .await?
                .call::<_, ()>("Disconnect", &(&p.profile,))
                .await?;
        }
        Command::Status => {
            let status = client().await?.call_json("Status", &()).await?;
            output::status(&status, json_out);
        }
        Command::Message(cmd) => message(cmd, json_out, client).await?,
        Command::Roster(cmd) => roster(cmd, json_out, client).await?,
        Command::Presence(cmd) => presence(cmd, json_out, client).await?,
        Command::Monitor => monitor(&client().await?, json_out).await?,
        Command::Plugin(PluginCommand::List) => {
            let list = client().await?.call_json("PluginList", &()).await?;
            output::plugins(&list, json_out);
        }
        Command::Blog(cmd) => crate::blog::run(cmd, json_out, &client().await?).await?,
        Command::Pubsub(cmd) => crate::pubsub::run(cmd, json_out, &client().await?).await?,
        Command::Debug(DebugCommand::Triggers) => {
            let list = client().await?.call_json("DebugTriggers", &()).await?;
            output::triggers(&list, json_out);
        }
        Command::Action(ActionCommand::List) => {
            let list = client().await?.call_json("ActionList", &()).await?;
            output::actions(&list, json_out);
        }
        Command::Action(ActionCommand::Run {
            profile,
            name,
            args,
        }) => {
            let c = client().await?;
            let list = c.call_json("ActionList", &()).await?;
            let args = action_args(&list, name, args)?;
            let result = c
                .call_json("ActionRun", &(&profile.profile, name, args.to_string()))
                .await?;
            output::json(&result);
        }
        Command::Ping { profile, jid } => {
            let args = json!({ "jid": jid }).to_string();
            let r = client()
                .await?
                .call_json("ActionRun", &(&profile.profile, "ping", args))
                .await?;
            if json_out {
                output::json(&r);
            } else {
                println!(
                    "pong from {}: {:.2} ms",
                    r["jid"].as_str().unwrap_or(jid),
                    r["rtt_ms"].as_f64().unwrap_or(f64::NAN)
                );
            }
        }
        Command::Info(InfoCommand::Version { profile, jid }) => {
            let args = json!({ "jid": jid }).to_string();
            let r = client()
                .await?
                .call_json("ActionRun", &(&profile.profile, "version", args))
                .await?;
            if json_out {
                output::json(&r);
            } else {
                let os = r["os"]
                    .as_str()
                    .map(|o| format!(" ({o})"))
                    .unwrap_or_default();
                println!(
                    "{}: {} {}{os}",
                    jid,
                    r["name"].as_str().unwrap_or("?"),
                    r["version"].as_str().unwrap_or("?")
                );
            }
        }
        Command::Info(InfoCommand::Disco {
            profile,
            jid,
            node,
            no_cache,
        }) => {
            let c = client().await?;
            let args = json!({ "jid": jid, "node": node, "use_cache": !no_cache }).to_string();
            let info = c
                .call_json("ActionRun", &(&profile.profile, "disco_info", &args))
                .await?;
            let items = c
                .call_json("ActionRun", &(&profile.profile, "disco_items", &args))
                .await?;
            output::disco(&info, &items, json_out);
        }
        Command::Job(JobCommand::List(p)) => {
            let list = client().await?.call_json("JobList", &(&p.profile,)).await?;
            output::jobs(&list, json_out);
        }
        Command::Job(JobCommand::Show { id, follow, log }) => {
            let c = client().await?;
            if *follow {
                follow_job(&c, id, json_out).await?;
            }
            let job = c.call_json("JobGet", &(id,)).await?;
            let records = if *log {
                Some(c.call_json("JobLog", &(id,)).await?)
            } else {
                None
            };
            output::job(&job, records.as_ref(), json_out);
            if job["state"] == "error" || job["state"] == "interrupted" {
                return Err(CliError::new(
                    "JobFailed",
                    format!(
                        "job {id} {}: {}",
                        job["state"].as_str().unwrap_or(""),
                        job["error"].as_str().unwrap_or("")
                    ),
                ));
            }
        }
    }
    Ok(())
}

async fn profile<F, Fut>(cmd: &ProfileCommand, json_out: bool, client: F) -> Result<(), CliError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Client, CliError>>,
{
    match cmd {
        ProfileCommand::Create {
            name,
            jid,
            password,
            server,
            ca_file,
            insecure,
            autoconnect,
        } => {
            let password = read_password(password, &format!("profile {name}"))?;
            let mut options = Options::new();
            if let Some(server) = server {
                options.insert("server".into(), server.clone());
            }
            if let Some(ca) = ca_file {
                // perchd runs elsewhere: hand it an absolute path.
                let ca = std::path::absolute(ca).map_err(|e| {
                    CliError::bad_argument(format!("--ca-file {}: {e}", ca.display()))
                })?;
                options.insert("ca_file".into(), ca.display().to_string());
            }
            if *insecure {
                options.insert("insecure".into(), "true".into());
            }
            if *autoconnect {
                options.insert("autoconnect".into(), "true".into());
            }
            client()
                .await?
                .call::<_, ()>("ProfileCreate", &(name, jid, password, options))
                .await?;
        }
        ProfileCommand::List => {
            let list = client().await?.call_json("ProfileList", &()).await?;
            output::profiles(&list, json_out);
        }
        ProfileCommand::Show { name } => {
            let p = client().await?.call_json("ProfileGet", &(name,)).await?;
            output::profile(&p, json_out);
        }
        ProfileCommand::Delete { name } => {
            client()
                .await?
                .call::<_, ()>("ProfileDelete", &(name,))
                .await?;
        }
        ProfileCommand::Default { name } => {
            client()
                .await?
                .call::<_, ()>("ProfileSetDefault", &(name,))
                .await?;
        }
        ProfileCommand::Autoconnect { name, value } => {
            let on = matches!(value, OnOff::On);
            client()
                .await?
                .call::<_, ()>("ProfileSetAutoconnect", &(name, on))
                .await?;
        }
        ProfileCommand::Password { name, password } => {
            let password = read_password(password, &format!("profile {name}"))?;
            client()
                .await?
                .call::<_, ()>("ProfileSetPassword", &(name, password))
                .await?;
        }
    }
    Ok(())
}

async fn message<F, Fut>(cmd: &MessageCommand, json_out: bool, client: F) -> Result<(), CliError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Client, CliError>>,
{
    match cmd {
        MessageCommand::Send {
            profile,
            to,
            text,
            kind,
        } => {
            let body = match text {
                Some(t) => t.clone(),
                None => {
                    let mut s = String::new();
                    std::io::stdin().read_to_string(&mut s).map_err(|e| {
                        CliError::bad_argument(format!("reading the message from stdin: {e}"))
                    })?;
                    s.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            if body.is_empty() {
                return Err(CliError::bad_argument("the message text is empty"));
            }
            let kind = match kind {
                MessageType::Chat => "chat",
                MessageType::Normal => "normal",
                MessageType::Headline => "headline",
            };
            let id: String = client()
                .await?
                .call("MessageSend", &(&profile.profile, to, body, kind))
                .await?;
            if json_out {
                output::json(&json!({ "id": id }));
            }
        }
        MessageCommand::History {
            profile,
            with,
            limit,
            after,
            before,
        } => {
            let mut filters = Options::new();
            filters.insert("limit".into(), limit.to_string());
            for (key, value) in [("with", with), ("after", after), ("before", before)] {
                if let Some(v) = value {
                    filters.insert(key.into(), v.clone());
                }
            }
            let history = client()
                .await?
                .call_json("HistoryGet", &(&profile.profile, filters))
                .await?;
            output::history(&history, json_out);
        }
    }
    Ok(())
}

async fn roster<F, Fut>(cmd: &RosterCommand, json_out: bool, client: F) -> Result<(), CliError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Client, CliError>>,
{
    let subscription = |profile: &str, action: &'static str, jid: &str| {
        (profile.to_owned(), action, jid.to_owned())
    };
    match cmd {
        RosterCommand::List(p) => {
            let roster = client()
                .await?
                .call_json("RosterGet", &(&p.profile,))
                .await?;
            output::roster(&roster, json_out);
        }
        RosterCommand::Add {
            profile,
            jid,
            name,
            groups,
        } => {
            let name = name.clone().unwrap_or_default();
            client()
                .await?
                .call::<_, ()>("RosterAdd", &(&profile.profile, jid, name, groups))
                .await?;
        }
        RosterCommand::Remove { profile, jid } => {
            client()
                .await?
                .call::<_, ()>("RosterRemove", &(&profile.profile, jid))
                .await?;
        }
        RosterCommand::Approve { profile, jid } => {
            let args = subscription(&profile.profile, "subscribed", jid);
            client().await?.call::<_, ()>("Subscription", &args).await?;
        }
        RosterCommand::Deny { profile, jid } => {
            let args = subscription(&profile.profile, "unsubscribed", jid);
            client().await?.call::<_, ()>("Subscription", &args).await?;
        }
        RosterCommand::Subscribe { profile, jid } => {
            let args = subscription(&profile.profile, "subscribe", jid);
            client().await?.call::<_, ()>("Subscription", &args).await?;
        }
        RosterCommand::Unsubscribe { profile, jid } => {
            let args = subscription(&profile.profile, "unsubscribe", jid);
            client().await?.call::<_, ()>("Subscription", &args).await?;
        }
    }
    Ok(())
}

async fn presence<F, Fut>(cmd: &PresenceCommand, json_out: bool, client: F) -> Result<(), CliError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Client, CliError>>,
{
    match cmd {
        PresenceCommand::Set {
            profile,
            show,
            status,
            priority,
        } => {
            let show = match show {
                ShowArg::Available => "",
                ShowArg::Away => "away",
                ShowArg::Xa => "xa",
                ShowArg::Dnd => "dnd",
                ShowArg::Chat => "chat",
            };
            client()
                .await?
                .call::<_, ()>(
                    "PresenceSet",
                    &(&profile.profile, show, status, i32::from(*priority)),
                )
                .await?;
        }
        PresenceCommand::List(p) => {
            let list = client()
                .await?
                .call_json("PresenceGet", &(&p.profile,))
                .await?;
            output::presences(&list, json_out);
        }
    }
    Ok(())
}

/// Prints every signal of perchd's interface, one per line, until interrupted or
/// until perchd goes away.
async fn monitor(client: &Client, json_out: bool) -> Result<(), CliError> {
    let mut stream = signal_stream(client).await?;
    // One round trip before saying so: the daemon is there and knows this connection.
    let _: String = client.call("Version", &()).await?;
    eprintln!("listening to perchd's signals (Ctrl-C stops)");
    loop {
        let msg = tokio::select! {
            m = stream.next() => m,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let Some(msg) = msg else {
            return Err(CliError::new("NoDaemon", "perchd went away"));
        };
        let msg = msg?;
        let header = msg.header();
        if header.message_type() != zbus::message::Type::Signal
            || header.interface().map(|i| i.as_str()) != Some(INTERFACE)
        {
            continue;
        }
        let Some(member) = header.member().map(|m| m.to_string()) else {
            continue;
        };
        let args = signal_args(&member, &msg);
        let event = match args {
            Ok(v) => v,
            Err(e) => json!({ "undecodable": e.to_string() }),
        };
        output::signal(&member, &event, json_out);
    }
}

/// A signal's arguments as a JSON object named after the bridge's documentation.
fn signal_args(member: &str, msg: &zbus::Message) -> Result<Value, zbus::Error> {
    let body = msg.body();
    Ok(match member {
        "ConnectionState" => {
            let (profile, state, jid, reason): (String, String, String, String) =
                body.deserialize()?;
            json!({"profile": profile, "state": state, "jid": jid, "reason": reason})
        }
        "MessageReceived" => {
            let (profile, message): (String, String) = body.deserialize()?;
            let message: Value = serde_json::from_str(&message).unwrap_or(Value::String(message));
            json!({"profile": profile, "message": message})
        }
        "PresenceUpdate" => {
            let (profile, jid, show, status, priority): (String, String, String, String, i32) =
                body.deserialize()?;
            json!({"profile": profile, "jid": jid, "show": show, "status": status,
                   "priority": priority})
        }
        "RosterChanged" => {
            let (profile, jid, subscription, name, groups): (
                String,
                String,
                String,
                String,
                Vec<String>,
            ) = body.deserialize()?;
            json!({"profile": profile, "jid": jid, "subscription": subscription,
                   "name": name, "groups": groups})
        }
        "SubscriptionRequest" => {
            let (profile, action, jid): (String, String, String) = body.deserialize()?;
            json!({"profile": profile, "action": action, "jid": jid})
        }
        "PluginSignal" => {
            let (plugin, name, profile, data): (String, String, String, String) =
                body.deserialize()?;
            let data: Value = serde_json::from_str(&data).unwrap_or(Value::String(data));
            json!({"plugin": plugin, "name": name, "profile": profile, "data": data})
        }
        "ProgressStarted" | "Progress" | "ProgressFinished" | "ProgressError" => {
            let (id, profile, data): (String, String, String) = body.deserialize()?;
            let data: Value = serde_json::from_str(&data).unwrap_or(Value::String(data));
            json!({"id": id, "profile": profile, "data": data})
        }
        _ => json!({ "signature": msg.body().signature().to_string() }),
    })
}

/// Turns `KEY=VALUE` words into the JSON object of an action's arguments, typed by
/// the action's declaration (a value that does not fit its type is sent as a string,
/// and perchd names the parameter).
fn action_args(list: &Value, name: &str, words: &[String]) -> Result<Value, CliError> {
    let spec = list
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name))
        .ok_or_else(|| {
            CliError::new(
                "UnknownAction",
                format!("no action named {name:?} (see `perch action list`)"),
            )
        })?;
    let mut args = serde_json::Map::new();
    for word in words {
        let (key, value) = word
            .split_once('=')
            .ok_or_else(|| CliError::bad_argument(format!("{word:?}: arguments are KEY=VALUE")))?;
        let kind = spec["params"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == key))
            .and_then(|p| p["type"].as_str())
            .unwrap_or("string");
        let typed = match kind {
            "integer" => value.parse::<i64>().map(Value::from).ok(),
            "number" => value.parse::<f64>().ok().map(Value::from),
            "boolean" => match value {
                "true" | "yes" | "on" | "1" => Some(Value::Bool(true)),
                "false" | "no" | "off" | "0" => Some(Value::Bool(false)),
                _ => None,
            },
            // KEY=a,b or KEY=["a","b"]; a repeated KEY adds to the list.
            "list" => {
                let mut items: Vec<Value> = serde_json::from_str::<Vec<String>>(value)
                    .unwrap_or_else(|_| value.split(',').map(str::to_owned).collect())
                    .into_iter()
                    .map(Value::String)
                    .collect();
                if let Some(Value::Array(before)) = args.remove(key) {
                    items.splice(0..0, before);
                }
                Some(Value::Array(items))
            }
            "object" => serde_json::from_str::<Value>(value)
                .ok()
                .filter(Value::is_object),
            _ => None,
        };
        args.insert(
            key.to_owned(),
            typed.unwrap_or_else(|| Value::String(value.to_owned())),
        );
    }
    Ok(Value::Object(args))
}

/// Shows a job's progress until it ends: a bar on a terminal, JSON lines with --json.
pub(crate) async fn follow_job(client: &Client, id: &str, json_out: bool) -> Result<(), CliError> {
    use std::io::IsTerminal;
    let mut stream = signal_stream(client).await?;
    // Subscribed first, then read the state: no record can fall in between.
    let job = client.call_json("JobGet", &(id,)).await?;
    if job["state"] != "running" {
        return Ok(());
    }
    let tty = std::io::stderr().is_terminal() && !json_out;
    loop {
        let Some(msg) = stream.next().await else {
            return Err(CliError::new("NoDaemon", "perchd went away"));
        };
        let msg = msg?;
        let header = msg.header();
        let member = header.member().map(|m| m.to_string()).unwrap_or_default();
        if header.message_type() != zbus::message::Type::Signal || !member.starts_with("Progress") {
            continue;
        }
        let Ok((job_id, _profile, data)) = msg.body().deserialize::<(String, String, String)>()
        else {
            continue;
        };
        if job_id != id {
            continue;
        }
        let data: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
        if json_out {
            println!("{}", json!({"signal": member, "id": job_id, "data": data}));
        } else if member == "Progress" {
            output::progress_line(&data, tty);
        }
        if member == "ProgressFinished" || member == "ProgressError" {
            if tty {
                eprintln!();
            }
            return Ok(());
        }
    }
}

/// perchd's signals: on a bus through a match rule, peer to peer every message.
async fn signal_stream(client: &Client) -> Result<zbus::MessageStream, CliError> {
    let conn = client.connection();
    Ok(if client.on_bus() {
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .interface(INTERFACE)
            .path(PATH)
            .build()?;
        zbus::MessageStream::for_match_rule(rule, conn, None).await?
    } else {
        zbus::MessageStream::from(conn)
    })
}
