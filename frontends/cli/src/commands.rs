//! One function per command: the D-Bus calls it makes and what it prints.

use std::collections::HashMap;
use std::io::Read;

use futures::StreamExt;
use serde_json::{Value, json};

use perch_client::Signal;
use perch_client::actions::{disco, messages};

use crate::client::{CliError, Client, json as parse};
use crate::{
    ActionCommand, Cli, Command, DebugCommand, InfoCommand, JobCommand, MessageCommand,
    MessageType, OnOff, OutboxAction, PluginCommand, PresenceCommand, ProfileCommand,
    RosterCommand, ShowArg, read_password,
};
use crate::{message_actions, output, read_state};

type Options = HashMap<String, String>;

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let json_out = cli.json;
    // Read what comes from stdin before connecting: a bad password is reported
    // without a daemon.
    let client = || async { Ok::<_, CliError>(Client::connect(&cli.target()).await?) };
    match &cli.command {
        Command::Version => version(&client().await?, json_out).await?,
        Command::Profile(cmd) => profile(cmd, json_out, client).await?,
        Command::Connect(p) => {
            client().await?.connect(&p.profile).await?;
        }
        Command::Disconnect(p) => {
            client().await?.disconnect(&p.profile).await?;
        }
        Command::Status => {
            let status = parse(client().await?.status().await?)?;
            output::status(&status, json_out);
        }
        Command::Message(cmd) => message(cmd, json_out, client).await?,
        Command::Roster(cmd) => roster(cmd, json_out, client).await?,
        Command::Presence(cmd) => presence(cmd, json_out, client).await?,
        Command::Monitor => monitor(&client().await?, json_out).await?,
        Command::Plugin(PluginCommand::List) => {
            let list = parse(client().await?.plugin_list().await?)?;
            output::plugins(&list, json_out);
        }
        Command::Muc(cmd) => crate::muc::run(cmd, json_out, &client().await?).await?,
        Command::Blog(cmd) => crate::blog::run(cmd, json_out, &client().await?).await?,
        Command::Call(cmd) => crate::call::run(cmd, json_out, &client().await?).await?,
        Command::Pubsub(cmd) => crate::pubsub::run(cmd, json_out, &client().await?).await?,
        Command::Block(cmd) => crate::block::run(cmd, json_out, &client().await?).await?,
        Command::Avatar(cmd) => crate::identity::avatar(cmd, json_out, &client().await?).await?,
        Command::Vcard(cmd) => crate::identity::vcard(cmd, json_out, &client().await?).await?,
        Command::Nick(cmd) => crate::identity::nick(cmd, json_out, &client().await?).await?,
        Command::File(cmd) => crate::file::run(cmd, json_out, &client().await?).await?,
        Command::Encryption(cmd) => {
            crate::encrypt::encryption(cmd, json_out, &client().await?).await?;
        }
        Command::Omemo(cmd) => crate::encrypt::omemo(cmd, json_out, &client().await?).await?,
        Command::Debug(DebugCommand::Triggers) => {
            let list = parse(client().await?.debug_triggers().await?)?;
            output::triggers(&list, json_out);
        }
        Command::Action(ActionCommand::List) => {
            let list = parse(client().await?.action_list().await?)?;
            output::actions(&list, json_out);
        }
        Command::Action(ActionCommand::Run {
            profile,
            name,
            args,
        }) => action_run(&client().await?, &profile.profile, name, args).await?,
        Command::Ping { profile, jid } => {
            ping(&client().await?, &profile.profile, jid, json_out).await?;
        }
        Command::Info(cmd) => info(cmd, json_out, &client().await?).await?,
        Command::Job(JobCommand::List(p)) => {
            let list = parse(client().await?.job_list(&p.profile).await?)?;
            output::jobs(&list, json_out);
        }
        Command::Job(JobCommand::Show { id, follow, log }) => {
            job_show(&client().await?, id, *follow, *log, json_out).await?;
        }
    }
    Ok(())
}

async fn version(c: &Client, json_out: bool) -> Result<(), CliError> {
    let daemon = c.version().await?;
    if json_out {
        output::json(&json!({"perchd": daemon, "perch": env!("CARGO_PKG_VERSION")}));
    } else {
        println!("perchd {daemon}\nperch {}", env!("CARGO_PKG_VERSION"));
    }
    Ok(())
}

async fn action_run(
    c: &Client,
    profile: &str,
    name: &str,
    words: &[String],
) -> Result<(), CliError> {
    let list = parse(c.action_list().await?)?;
    let args = action_args(&list, name, words)?;
    let result = parse(c.action_run(profile, name, &args.to_string()).await?)?;
    output::json(&result);
    Ok(())
}

async fn ping(c: &Client, profile: &str, jid: &str, json_out: bool) -> Result<(), CliError> {
    let args = disco::PingArgs {
        jid: jid.to_owned(),
    };
    let r = c.action::<disco::Ping>(profile, &args).await?;
    if json_out {
        output::typed(&r);
    } else {
        println!("pong from {}: {:.2} ms", r.jid, r.rtt_ms);
    }
    Ok(())
}

async fn info(cmd: &InfoCommand, json_out: bool, c: &Client) -> Result<(), CliError> {
    match cmd {
        InfoCommand::Version { profile, jid } => {
            let args = disco::PingArgs { jid: jid.clone() };
            let r = c.action::<disco::Version>(&profile.profile, &args).await?;
            if json_out {
                output::typed(&r);
            } else {
                let os = r.os.map(|o| format!(" ({o})")).unwrap_or_default();
                println!("{}: {} {}{os}", jid, r.name, r.version);
            }
        }
        InfoCommand::Disco {
            profile,
            jid,
            node,
            no_cache,
        } => {
            let args = disco::DiscoArgs {
                jid: jid.clone(),
                node: node.clone(),
                use_cache: !no_cache,
            };
            let info = c
                .action::<disco::DiscoInfo>(&profile.profile, &args)
                .await?;
            let items = c
                .action::<disco::DiscoItems>(&profile.profile, &args)
                .await?;
            output::disco(&info, &items, json_out);
        }
    }
    Ok(())
}

async fn job_show(
    c: &Client,
    id: &str,
    follow: bool,
    log: bool,
    json_out: bool,
) -> Result<(), CliError> {
    if follow {
        follow_job(c, id, json_out).await?;
    }
    let job = parse(c.job_get(id).await?)?;
    let records = if log {
        Some(parse(c.job_log(id).await?)?)
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
                .profile_create(name, jid, &password, &options)
                .await?;
        }
        ProfileCommand::List => {
            let list = parse(client().await?.profile_list().await?)?;
            output::profiles(&list, json_out);
        }
        ProfileCommand::Show { name } => {
            let p = parse(client().await?.profile_get(name).await?)?;
            output::profile(&p, json_out);
        }
        ProfileCommand::Delete { name } => {
            client().await?.profile_delete(name).await?;
        }
        ProfileCommand::Default { name } => {
            client().await?.profile_set_default(name).await?;
        }
        ProfileCommand::Autoconnect { name, value } => {
            let on = matches!(value, OnOff::On);
            client().await?.profile_set_autoconnect(name, on).await?;
        }
        ProfileCommand::Password { name, password } => {
            let password = read_password(password, &format!("profile {name}"))?;
            client()
                .await?
                .profile_set_password(name, &password)
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
            encrypt,
        } => {
            // Read before connecting: an empty text is reported without a daemon.
            let body = message_body(text.as_deref())?;
            let c = client().await?;
            if *encrypt {
                crate::encrypt::start(&c, &profile.profile, to).await?;
            }
            message_send(&c, &profile.profile, to, &body, *kind, json_out).await?;
        }
        MessageCommand::Outbox { profile, action } => {
            outbox(
                &client().await?,
                &profile.profile,
                action.as_ref(),
                json_out,
            )
            .await?;
        }
        MessageCommand::Correct {
            profile,
            to,
            id,
            text,
            groupchat,
        } => {
            let args = messages::MessageCorrectArgs {
                to: to.clone(),
                id: id.clone(),
                body: text.clone(),
                groupchat: *groupchat,
            };
            message_correct(&client().await?, &profile.profile, &args, json_out).await?;
        }
        MessageCommand::React(a) => message_actions::react(&client().await?, a, json_out).await?,
        MessageCommand::Reply(a) => message_actions::reply(&client().await?, a, json_out).await?,
        MessageCommand::Retract(t) => {
            message_actions::retract(&client().await?, t, json_out).await?;
        }
        MessageCommand::Read(a) => read_state::read(&client().await?, a, json_out).await?,
        MessageCommand::Unread(a) => read_state::unread(&client().await?, a, json_out).await?,
        MessageCommand::State { profile, to, state } => {
            let args = messages::ChatState {
                to: to.clone(),
                state: state.clone(),
            };
            let r = client()
                .await?
                .action::<messages::ChatStateSend>(&profile.profile, &args)
                .await?;
            if json_out {
                output::typed(&r);
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
            let history = parse(
                client()
                    .await?
                    .history_get(&profile.profile, &filters)
                    .await?,
            )?;
            output::history(&history, json_out);
        }
    }
    Ok(())
}

/// The text to send: TEXT, or stdin without its trailing line break; never empty.
fn message_body(text: Option<&str>) -> Result<String, CliError> {
    let body = match text {
        Some(t) => t.to_owned(),
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
    Ok(body)
}

async fn message_send(
    c: &Client,
    profile: &str,
    to: &str,
    body: &str,
    kind: MessageType,
    json_out: bool,
) -> Result<(), CliError> {
    let kind = match kind {
        MessageType::Chat => "chat",
        MessageType::Normal => "normal",
        MessageType::Headline => "headline",
        MessageType::Groupchat => "groupchat",
    };
    let id = c.message_send(profile, to, body, kind).await?;
    // Stored and queued either way; it goes out now only when connected.
    let name = parse(c.profile_get(profile).await?)?["name"].clone();
    let status = parse(c.status().await?)?;
    let connected = status.as_array().is_some_and(|list| {
        list.iter()
            .any(|e| e["state"] == "connected" && e["profile"] == name)
    });
    let state = if connected { "sent" } else { "queued" };
    if json_out {
        output::json(&json!({ "id": id, "state": state }));
    } else if connected {
        println!("sent {id}");
    } else {
        println!(
            "queued {id}: the profile is not connected; it goes out when it connects \
             (see `perch message outbox`)"
        );
    }
    Ok(())
}

async fn outbox(
    c: &Client,
    profile: &str,
    action: Option<&OutboxAction>,
    json_out: bool,
) -> Result<(), CliError> {
    match action {
        None => {
            let list = parse(c.message_outbox(profile).await?)?;
            output::history(&list, json_out);
        }
        Some(OutboxAction::Cancel { id }) => {
            let m = parse(c.message_cancel(profile, id).await?)?;
            if json_out {
                output::json(&m);
            } else {
                println!("cancelled {id}");
            }
        }
    }
    Ok(())
}

async fn message_correct(
    c: &Client,
    profile: &str,
    args: &messages::MessageCorrectArgs,
    json_out: bool,
) -> Result<(), CliError> {
    let m = c.action::<messages::MessageCorrect>(profile, args).await?;
    if json_out {
        output::json(&m);
    } else {
        println!(
            "correction {} of {id} queued",
            m["id"].as_str().unwrap_or_default(),
            id = args.id
        );
    }
    Ok(())
}

async fn roster<F, Fut>(cmd: &RosterCommand, json_out: bool, client: F) -> Result<(), CliError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Client, CliError>>,
{
    match cmd {
        RosterCommand::List(p) => {
            let roster = parse(client().await?.roster_get(&p.profile).await?)?;
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
                .roster_add(&profile.profile, jid, &name, groups)
                .await?;
        }
        RosterCommand::Remove { profile, jid } => {
            client().await?.roster_remove(&profile.profile, jid).await?;
        }
        RosterCommand::Approve { profile, jid } => {
            client()
                .await?
                .subscription(&profile.profile, "subscribed", jid)
                .await?;
        }
        RosterCommand::Deny { profile, jid } => {
            client()
                .await?
                .subscription(&profile.profile, "unsubscribed", jid)
                .await?;
        }
        RosterCommand::Subscribe { profile, jid } => {
            client()
                .await?
                .subscription(&profile.profile, "subscribe", jid)
                .await?;
        }
        RosterCommand::Unsubscribe { profile, jid } => {
            client()
                .await?
                .subscription(&profile.profile, "unsubscribe", jid)
                .await?;
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
                .presence_set(&profile.profile, show, status, i32::from(*priority))
                .await?;
        }
        PresenceCommand::List(p) => {
            let list = parse(client().await?.presence_get(&p.profile).await?)?;
            output::presences(&list, json_out);
        }
    }
    Ok(())
}

/// Prints every signal of perchd's interface, one per line, until interrupted or
/// until perchd goes away.
async fn monitor(client: &Client, json_out: bool) -> Result<(), CliError> {
    let mut stream = client.signals().await?;
    // One round trip before saying so: the daemon is there and knows this connection.
    client.version().await?;
    eprintln!("listening to perchd's signals (Ctrl-C stops)");
    loop {
        let signal = tokio::select! {
            s = stream.next() => s,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let Some(signal) = signal else {
            return Err(CliError::new("NoDaemon", "perchd went away"));
        };
        let (member, event) = match signal {
            Ok(signal) => (signal.member().to_owned(), signal_args(signal)),
            Err(e) => (
                "Undecodable".to_owned(),
                json!({ "undecodable": e.to_string() }),
            ),
        };
        output::signal(&member, &event, json_out);
    }
}

/// A JSON payload of a signal, parsed when it is JSON.
fn payload(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// A signal's arguments as a JSON object named after the bridge's documentation.
fn signal_args(signal: Signal) -> Value {
    match signal {
        Signal::ConnectionState {
            profile,
            state,
            jid,
            reason,
        } => json!({"profile": profile, "state": state, "jid": jid, "reason": reason}),
        Signal::MessageReceived { profile, message }
        | Signal::MessageUpdated { profile, message } => {
            json!({"profile": profile, "message": payload(message)})
        }
        Signal::PresenceUpdate {
            profile,
            jid,
            show,
            status,
            priority,
        } => json!({"profile": profile, "jid": jid, "show": show, "status": status,
                    "priority": priority}),
        Signal::RosterChanged {
            profile,
            jid,
            subscription,
            name,
            groups,
        } => json!({"profile": profile, "jid": jid, "subscription": subscription,
                    "name": name, "groups": groups}),
        Signal::SubscriptionRequest {
            profile,
            action,
            jid,
        } => json!({"profile": profile, "action": action, "jid": jid}),
        Signal::PluginSignal {
            plugin,
            name,
            profile,
            data,
        } => json!({"plugin": plugin, "name": name, "profile": profile, "data": payload(data)}),
        Signal::ProgressStarted { id, profile, data }
        | Signal::Progress { id, profile, data }
        | Signal::ProgressFinished { id, profile, data }
        | Signal::ProgressError { id, profile, data } => {
            json!({"id": id, "profile": profile, "data": payload(data)})
        }
        Signal::Other { signature, .. } => json!({ "signature": signature }),
    }
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
            "array" => serde_json::from_str::<Value>(value)
                .ok()
                .filter(Value::is_array),
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
    let mut stream = client.signals().await?;
    // Subscribed first, then read the state: no record can fall in between.
    let job = parse(client.job_get(id).await?)?;
    if job["state"] != "running" {
        return Ok(());
    }
    let tty = std::io::stderr().is_terminal() && !json_out;
    loop {
        let Some(signal) = stream.next().await else {
            return Err(CliError::new("NoDaemon", "perchd went away"));
        };
        let signal = match signal {
            Ok(s) => s,
            Err(perch_client::Error::DBus(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let member = signal.member().to_owned();
        let (job_id, data, last) = match signal {
            Signal::Progress { id, data, .. } | Signal::ProgressStarted { id, data, .. } => {
                (id, data, false)
            }
            Signal::ProgressFinished { id, data, .. } | Signal::ProgressError { id, data, .. } => {
                (id, data, true)
            }
            _ => continue,
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
        if last {
            if tty {
                eprintln!();
            }
            return Ok(());
        }
    }
}
