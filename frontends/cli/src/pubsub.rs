//! `perch pubsub …`: the XEP-0060 actions as commands, flags as libervia-cli's
//! `li pubsub` where it has them (`-s` service, `-n` node, `-i` item, `-M` max).
//!
//! Every command is one `ActionRun("pubsub_…")`; the service defaults to the profile's
//! own account (PEP) in perchd, so the CLI sends it only when given.

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use crate::ProfileArg;
use crate::client::{CliError, Client};
use crate::output;

#[derive(Debug, Args)]
pub struct Target {
    #[command(flatten)]
    pub(crate) profile: ProfileArg,
    /// The pubsub service (default: the profile's own account, PEP).
    #[arg(short, long, value_name = "JID")]
    pub(crate) service: Option<String>,
}

#[derive(Debug, Args)]
pub struct NodeTarget {
    #[command(flatten)]
    target: Target,
    /// The node.
    #[arg(short, long)]
    node: String,
}

/// `-f KEY VALUE`, repeatable; a key given twice makes a list.
#[derive(Debug, Args)]
pub struct Fields {
    /// A form field: -f pubsub#max_items 100 (repeat a key for several values).
    #[arg(short = 'f', long = "field", num_args = 2, value_names = ["KEY", "VALUE"])]
    fields: Vec<String>,
}

impl Fields {
    fn to_object(&self) -> Option<Value> {
        if self.fields.is_empty() {
            return None;
        }
        let mut m = Map::new();
        for pair in self.fields.chunks(2) {
            let (k, v) = (pair[0].clone(), Value::String(pair[1].clone()));
            match m.remove(&k) {
                None => m.insert(k, v),
                Some(Value::Array(mut a)) => {
                    a.push(v);
                    m.insert(k, Value::Array(a))
                }
                Some(first) => m.insert(k, json!([first, v])),
            };
        }
        Some(Value::Object(m))
    }
}

#[derive(Debug, Subcommand)]
pub enum PubsubCommand {
    /// Nodes: create, delete, configure, purge, list, inspect.
    #[command(subcommand)]
    Node(NodeCommand),
    /// The pubsub cache: status, cached reads, sync, purge, reset, search.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Publish an item (payload: one XML element, from stdin or --file).
    Set {
        #[command(flatten)]
        node: NodeTarget,
        /// The item id (default: the service picks one).
        #[arg(short = 'i', long = "item")]
        item: Option<String>,
        /// Read the payload from this file instead of stdin.
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// A publish-option (precondition): -o pubsub#access_model open.
        #[arg(short = 'o', long = "option", num_args = 2, value_names = ["KEY", "VALUE"])]
        options: Vec<String>,
    },
    /// Get items: the newest -M, given ids, an RSM page, or --all.
    Get {
        #[command(flatten)]
        node: NodeTarget,
        /// The newest N items (with --before/--after/--index: the page size).
        #[arg(short = 'M', long = "max")]
        max: Option<u64>,
        /// Only these items (repeatable).
        #[arg(short = 'i', long = "item")]
        items: Vec<String>,
        /// RSM: the page before this id ("" for the last page).
        #[arg(long, group = "rsm")]
        before: Option<String>,
        /// RSM: the page after this id.
        #[arg(long, group = "rsm")]
        after: Option<String>,
        /// RSM: the page starting at this position.
        #[arg(long, group = "rsm")]
        index: Option<u64>,
        /// Every item of the node (paged where the service allows).
        #[arg(long, conflicts_with_all = ["items", "rsm"])]
        all: bool,
        /// Ask the service even if a cache could answer.
        #[arg(long)]
        no_cache: bool,
    },
    /// Retract items.
    Retract {
        #[command(flatten)]
        node: NodeTarget,
        /// The items to retract (repeatable).
        #[arg(short = 'i', long = "item", required = true)]
        items: Vec<String>,
        /// Do not notify subscribers.
        #[arg(long)]
        no_notify: bool,
    },
    /// Subscribe to a node.
    Subscribe {
        #[command(flatten)]
        node: NodeTarget,
        /// Subscribe this JID (default: the profile's bare JID).
        #[arg(long)]
        jid: Option<String>,
        /// A subscription option: -o pubsub#deliver true.
        #[arg(short = 'o', long = "option", num_args = 2, value_names = ["KEY", "VALUE"])]
        options: Vec<String>,
    },
    /// Unsubscribe from a node.
    Unsubscribe {
        #[command(flatten)]
        node: NodeTarget,
        #[arg(long)]
        jid: Option<String>,
        /// The subscription id, when there are several.
        #[arg(long)]
        subid: Option<String>,
    },
    /// The profile's subscriptions on a service.
    Subscriptions {
        #[command(flatten)]
        target: Target,
        #[arg(short, long)]
        node: Option<String>,
    },
    /// The profile's affiliations on a service.
    Affiliations {
        #[command(flatten)]
        target: Target,
        #[arg(short, long)]
        node: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Cached nodes of the profile: analysis, sync state and why, coherence, items.
    Status {
        #[command(flatten)]
        target: Target,
        #[arg(short, long)]
        node: Option<String>,
    },
    /// Items from the cache only (flags as `pubsub get`).
    Get {
        #[command(flatten)]
        node: NodeTarget,
        #[arg(short = 'M', long = "max")]
        max: Option<u64>,
        #[arg(short = 'i', long = "item")]
        items: Vec<String>,
        #[arg(long, group = "rsm")]
        before: Option<String>,
        #[arg(long, group = "rsm")]
        after: Option<String>,
        #[arg(long, group = "rsm")]
        index: Option<u64>,
    },
    /// (Re)synchronise a node now, with a progress bar.
    Sync {
        #[command(flatten)]
        node: NodeTarget,
        /// Print the job id and return at once.
        #[arg(long)]
        no_follow: bool,
    },
    /// Delete cached items (the nodes they came from are synced again on next read).
    Purge {
        /// Node type (repeatable).
        #[arg(short = 't', long = "type")]
        types: Vec<String>,
        /// Node subtype (repeatable).
        #[arg(short = 'S', long = "subtype")]
        subtypes: Vec<String>,
        /// Profile (repeatable).
        #[arg(short = 'p', long = "profile")]
        profiles: Vec<String>,
        /// Service (repeatable).
        #[arg(short = 's', long = "service")]
        services: Vec<String>,
        /// Node (repeatable).
        #[arg(short = 'n', long = "node")]
        nodes: Vec<String>,
        /// Items created before this time (RFC 3339 or Unix seconds).
        #[arg(short = 'C', long)]
        created_before: Option<String>,
        /// Items updated before this time (RFC 3339 or Unix seconds).
        #[arg(short = 'U', long)]
        updated_before: Option<String>,
    },
    /// Drop the whole cache (it refills as nodes are read).
    Reset {
        /// Really do it.
        #[arg(short, long)]
        force: bool,
    },
    /// Search cached items.
    Search {
        /// Full-text query (SQLite FTS5 syntax).
        #[arg(short = 'f', long = "fts")]
        fts: Option<String>,
        #[arg(short = 'p', long = "profile")]
        profiles: Vec<String>,
        #[arg(short = 's', long = "service")]
        services: Vec<String>,
        #[arg(short = 'n', long = "node")]
        nodes: Vec<String>,
        #[arg(short = 't', long = "type")]
        types: Vec<String>,
        #[arg(short = 'S', long = "subtype")]
        subtypes: Vec<String>,
        /// Item id (repeatable).
        #[arg(long = "item-id")]
        item_ids: Vec<String>,
        /// Filter on a parsed field: -F author.name eq Alice (VALUE is JSON when it
        /// parses: 3, ["a","b"], true; else a string).
        #[arg(short = 'F', long = "field", num_args = 3, value_names = ["PATH", "OP", "VALUE"])]
        filters: Vec<String>,
        /// Order: creation, modification, item_id, rank, or path:FIELD; add :desc or
        /// :asc (repeatable; default: creation:desc).
        #[arg(short = 'o', long = "order-by")]
        order: Vec<String>,
        #[arg(short = 'l', long)]
        limit: Option<u64>,
        #[arg(short = 'i', long)]
        index: Option<u64>,
        /// Include each item's XML.
        #[arg(long)]
        with_xml: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Create a node (without -n: an instant node), configured with -f.
    Create {
        #[command(flatten)]
        target: Target,
        #[arg(short, long)]
        node: Option<String>,
        #[command(flatten)]
        fields: Fields,
    },
    /// Delete a node.
    Delete {
        #[command(flatten)]
        node: NodeTarget,
        /// Send subscribers to this xmpp: URI.
        #[arg(long, value_name = "URI")]
        redirect: Option<String>,
    },
    /// Node info (disco#info of the node: identity, meta-data).
    Info {
        #[command(flatten)]
        node: NodeTarget,
    },
    /// Show the configuration, or change it with -f KEY VALUE.
    Config {
        #[command(flatten)]
        node: NodeTarget,
        #[command(flatten)]
        fields: Fields,
    },
    /// The default configuration of new nodes on a service.
    Default {
        #[command(flatten)]
        target: Target,
    },
    /// Remove every item of a node.
    Purge {
        #[command(flatten)]
        node: NodeTarget,
    },
    /// The nodes of a service (or children of a collection with -n).
    List {
        #[command(flatten)]
        target: Target,
        #[arg(short, long)]
        node: Option<String>,
    },
    /// Show a node's subscriptions (owner), or change them with --set JID=STATE.
    Subscriptions {
        #[command(flatten)]
        node: NodeTarget,
        #[arg(long = "set", value_name = "JID=STATE")]
        set: Vec<String>,
    },
    /// Show a node's affiliations (owner), or change them with --set JID=AFFILIATION.
    Affiliations {
        #[command(flatten)]
        node: NodeTarget,
        #[arg(long = "set", value_name = "JID=AFFILIATION")]
        set: Vec<String>,
    },
}

fn pairs(words: &[String]) -> Option<Value> {
    (!words.is_empty()).then(|| {
        Value::Object(
            words
                .chunks(2)
                .map(|p| (p[0].clone(), Value::String(p[1].clone())))
                .collect(),
        )
    })
}

fn assignments(what: &str, words: &[String]) -> Result<Value, CliError> {
    let mut m = Map::new();
    for w in words {
        let (k, v) = w
            .split_once('=')
            .ok_or_else(|| CliError::bad_argument(format!("--set {w:?}: expected {what}")))?;
        m.insert(k.to_owned(), Value::String(v.to_owned()));
    }
    Ok(Value::Object(m))
}

/// The arguments object with the target, dropping absent (null) values.
fn args(target: &Target, node: Option<&str>, rest: Value) -> Value {
    let mut m = Map::new();
    if let Some(s) = &target.service {
        m.insert("service".into(), json!(s));
    }
    if let Some(n) = node {
        m.insert("node".into(), json!(n));
    }
    if let Value::Object(r) = rest {
        m.extend(r.into_iter().filter(|(_, v)| !v.is_null()));
    }
    Value::Object(m)
}

async fn run_action(
    client: &Client,
    target: &Target,
    action: &str,
    args: Value,
) -> Result<Value, CliError> {
    crate::client::json(
        client
            .action_run(&target.profile.profile, action, &args.to_string())
            .await?,
    )
}

fn read_payload(file: Option<&PathBuf>) -> Result<String, CliError> {
    let mut s = String::new();
    match file {
        Some(f) => {
            s = std::fs::read_to_string(f)
                .map_err(|e| CliError::bad_argument(format!("--file {}: {e}", f.display())))?;
        }
        None => {
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| CliError::bad_argument(format!("payload from stdin: {e}")))?;
        }
    }
    if s.trim().is_empty() {
        return Err(CliError::bad_argument(
            "payload: empty (give one XML element on stdin or with --file)",
        ));
    }
    Ok(s)
}

pub async fn run(cmd: &PubsubCommand, json_out: bool, client: &Client) -> Result<(), CliError> {
    let (result, shown) = match cmd {
        PubsubCommand::Node(n) => node(n, client).await?,
        PubsubCommand::Cache(c) => match cache(c, client, json_out).await? {
            Some(r) => r,
            None => return Ok(()),
        },
        PubsubCommand::Set {
            node,
            item,
            file,
            options,
        } => {
            // Read before anything goes out: a bad payload sends nothing.
            let payload = read_payload(file.as_ref())?;
            let a = args(
                &node.target,
                Some(&node.node),
                json!({"item_id": item, "payload": payload, "options": pairs(options)}),
            );
            let r = run_action(client, &node.target, "pubsub_publish", a).await?;
            let line = r["item_id"].as_str().unwrap_or_default().to_owned();
            (r, Some(line))
        }
        PubsubCommand::Get {
            node,
            max,
            items,
            before,
            after,
            index,
            all,
            no_cache,
        } => {
            let a = args(
                &node.target,
                Some(&node.node),
                json!({
                    "max": max, "before": before, "after": after, "index": index,
                    "item_ids": (!items.is_empty()).then_some(items), "all": all,
                    "use_cache": !no_cache,
                }),
            );
            let r = run_action(client, &node.target, "pubsub_items_get", a).await?;
            let text = r["items"]
                .as_array()
                .map(|items| {
                    items
                        .iter()
                        .map(|i| i["payload"].as_str().unwrap_or_default().to_owned())
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default();
            (r, Some(text))
        }
        PubsubCommand::Retract {
            node,
            items,
            no_notify,
        } => {
            let a = args(
                &node.target,
                Some(&node.node),
                json!({"item_ids": items, "notify": !no_notify}),
            );
            (
                run_action(client, &node.target, "pubsub_retract", a).await?,
                Some(String::new()),
            )
        }
        PubsubCommand::Subscribe { node, jid, options } => {
            let a = args(
                &node.target,
                Some(&node.node),
                json!({"jid": jid, "options": pairs(options)}),
            );
            let r = run_action(client, &node.target, "pubsub_subscribe", a).await?;
            let s = &r["subscription"];
            let line = format!(
                "{} ({}{})",
                s["subscription"].as_str().unwrap_or("?"),
                s["jid"].as_str().unwrap_or("?"),
                s["subid"]
                    .as_str()
                    .map(|i| format!(", subid {i}"))
                    .unwrap_or_default()
            );
            (r, Some(line))
        }
        PubsubCommand::Unsubscribe { node, jid, subid } => {
            let a = args(
                &node.target,
                Some(&node.node),
                json!({"jid": jid, "subid": subid}),
            );
            (
                run_action(client, &node.target, "pubsub_unsubscribe", a).await?,
                Some(String::new()),
            )
        }
        PubsubCommand::Subscriptions { target, node } => {
            let a = args(target, node.as_deref(), Value::Null);
            let r = run_action(client, target, "pubsub_subscriptions", a).await?;
            let text = table(
                &r["subscriptions"],
                &["node", "jid", "subscription", "subid"],
            );
            (r, Some(text))
        }
        PubsubCommand::Affiliations { target, node } => {
            let a = args(target, node.as_deref(), Value::Null);
            let r = run_action(client, target, "pubsub_affiliations", a).await?;
            let text = table(&r["affiliations"], &["node", "affiliation"]);
            (r, Some(text))
        }
    };
    match (json_out, shown) {
        (false, Some(text)) => {
            if !text.is_empty() {
                println!("{text}");
            }
        }
        _ => output::json(&result),
    }
    Ok(())
}

/// Rows of `keys`, tab-separated.
fn table(list: &Value, keys: &[&str]) -> String {
    list.as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    keys.iter()
                        .map(|k| r[*k].as_str().unwrap_or("").to_owned())
                        .collect::<Vec<_>>()
                        .join("\t")
                        .trim_end()
                        .to_owned()
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// Form values as `var: value` lines.
fn form_lines(form: &Value) -> String {
    form["values"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}: {s}"),
                    Value::Null => format!("{k}:"),
                    other => format!("{k}: {other}"),
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

async fn node(cmd: &NodeCommand, client: &Client) -> Result<(Value, Option<String>), CliError> {
    Ok(match cmd {
        NodeCommand::Create {
            target,
            node,
            fields,
        } => {
            let a = args(
                target,
                node.as_deref(),
                json!({"config": fields.to_object()}),
            );
            let r = run_action(client, target, "pubsub_node_create", a).await?;
            let line = r["node"].as_str().unwrap_or_default().to_owned();
            (r, Some(line))
        }
        NodeCommand::Delete { node, redirect } => {
            let a = args(
                &node.target,
                Some(&node.node),
                json!({"redirect": redirect}),
            );
            (
                run_action(client, &node.target, "pubsub_node_delete", a).await?,
                Some(String::new()),
            )
        }
        NodeCommand::Info { node } => {
            let a = args(&node.target, Some(&node.node), Value::Null);
            let r = run_action(client, &node.target, "pubsub_node_info", a).await?;
            let mut lines: Vec<String> = r["identities"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| {
                    format!(
                        "identity: {}/{}",
                        i["category"].as_str().unwrap_or("?"),
                        i["type"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            lines.extend(
                r["meta"].as_object().into_iter().flatten().map(|(k, v)| {
                    format!("{k}: {}", v.as_str().map_or(v.to_string(), str::to_owned))
                }),
            );
            (r, Some(lines.join("\n")))
        }
        NodeCommand::Config { node, fields } => match fields.to_object() {
            None => {
                let a = args(&node.target, Some(&node.node), Value::Null);
                let r = run_action(client, &node.target, "pubsub_node_config_get", a).await?;
                let text = form_lines(&r["config"]);
                (r, Some(text))
            }
            Some(config) => {
                let a = args(&node.target, Some(&node.node), json!({"config": config}));
                (
                    run_action(client, &node.target, "pubsub_node_config_set", a).await?,
                    Some(String::new()),
                )
            }
        },
        NodeCommand::Default { target } => {
            let a = args(target, None, Value::Null);
            let r = run_action(client, target, "pubsub_node_default_config", a).await?;
            let text = form_lines(&r["config"]);
            (r, Some(text))
        }
        NodeCommand::Purge { node } => {
            let a = args(&node.target, Some(&node.node), Value::Null);
            (
                run_action(client, &node.target, "pubsub_node_purge", a).await?,
                Some(String::new()),
            )
        }
        NodeCommand::List { target, node } => {
            let a = args(target, node.as_deref(), Value::Null);
            let r = run_action(client, target, "pubsub_node_list", a).await?;
            let text = table(&r["nodes"], &["node", "name"]);
            (r, Some(text))
        }
        NodeCommand::Subscriptions { node, set } => {
            if set.is_empty() {
                let a = args(&node.target, Some(&node.node), Value::Null);
                let r =
                    run_action(client, &node.target, "pubsub_node_subscriptions_get", a).await?;
                let text = table(&r["subscriptions"], &["jid", "subscription", "subid"]);
                (r, Some(text))
            } else {
                let a = args(
                    &node.target,
                    Some(&node.node),
                    json!({"subscriptions": assignments("JID=STATE", set)?}),
                );
                (
                    run_action(client, &node.target, "pubsub_node_subscriptions_set", a).await?,
                    Some(String::new()),
                )
            }
        }
        NodeCommand::Affiliations { node, set } => {
            if set.is_empty() {
                let a = args(&node.target, Some(&node.node), Value::Null);
                let r = run_action(client, &node.target, "pubsub_node_affiliations_get", a).await?;
                let text = table(&r["affiliations"], &["jid", "affiliation"]);
                (r, Some(text))
            } else {
                let a = args(
                    &node.target,
                    Some(&node.node),
                    json!({"affiliations": assignments("JID=AFFILIATION", set)?}),
                );
                (
                    run_action(client, &node.target, "pubsub_node_affiliations_set", a).await?,
                    Some(String::new()),
                )
            }
        }
    })
}

/// `-o KEY[:asc|:desc]`, `path:a.b[:desc]`.
fn order(word: &str) -> Value {
    let (rest, desc) = match word.rsplit_once(':') {
        Some((r, "desc")) => (r, true),
        Some((r, "asc")) => (r, false),
        _ => (word, false),
    };
    match rest.strip_prefix("path:") {
        Some(p) => json!({"key": "path", "path": p, "desc": desc}),
        None => json!({"key": rest, "desc": desc}),
    }
}

async fn cache(
    cmd: &CacheCommand,
    client: &Client,
    json_out: bool,
) -> Result<Option<(Value, Option<String>)>, CliError> {
    let run = |action: &'static str, profile: String, args: Value| async move {
        crate::client::json(
            client
                .action_run(&profile, action, &args.to_string())
                .await?,
        )
    };
    Ok(Some(match cmd {
        CacheCommand::Status { target, node } => {
            let a = args(target, node.as_deref(), Value::Null);
            let r = run("pubsub_cache_status", target.profile.profile.clone(), a).await?;
            let text = r["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| {
                    let why = n["sync_error"]
                        .as_str()
                        .or(n["incoherent_reason"].as_str())
                        .map(|w| format!(" ({w})"))
                        .unwrap_or_default();
                    format!(
                        "{}\t{}\t{}\t{} items\t{}{}{why}",
                        n["service"].as_str().unwrap_or(""),
                        n["node"].as_str().unwrap_or(""),
                        n["type"].as_str().unwrap_or("-"),
                        n["items"],
                        n["sync_state"].as_str().unwrap_or(""),
                        if n["served"] == true { ", served" } else { "" },
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            (r, Some(text))
        }
        CacheCommand::Get {
            node,
            max,
            items,
            before,
            after,
            index,
        } => {
            let a = args(
                &node.target,
                Some(&node.node),
                json!({
                    "max": max, "before": before, "after": after, "index": index,
                    "item_ids": (!items.is_empty()).then_some(items),
                }),
            );
            let r = run("pubsub_cache_get", node.target.profile.profile.clone(), a).await?;
            let text = r["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| i["payload"].as_str().unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
                .join("\n");
            (r, Some(text))
        }
        CacheCommand::Sync { node, no_follow } => {
            let a = args(&node.target, Some(&node.node), Value::Null);
            let r = run("pubsub_cache_sync", node.target.profile.profile.clone(), a).await?;
            let id = r["job"].as_str().unwrap_or_default().to_owned();
            if *no_follow {
                (r, Some(id))
            } else {
                crate::commands::follow_job(client, &id, json_out).await?;
                let job = crate::client::json(client.job_get(&id).await?)?;
                if job["state"] != "finished" {
                    return Err(CliError::new(
                        "JobFailed",
                        format!(
                            "sync of {}: {}",
                            node.node,
                            job["error"].as_str().unwrap_or("failed")
                        ),
                    ));
                }
                let line = format!("{} items cached", job["result"]["items"]);
                (job, Some(line))
            }
        }
        CacheCommand::Purge {
            types,
            subtypes,
            profiles,
            services,
            nodes,
            created_before,
            updated_before,
        } => {
            let a = json!({
                "types": types, "subtypes": subtypes, "profiles": profiles,
                "services": services, "nodes": nodes,
                "created_before": created_before, "updated_before": updated_before,
            });
            let a = Value::Object(
                a.as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            );
            let r = run("pubsub_cache_purge", String::new(), a).await?;
            let line = format!("{} items deleted", r["deleted"]);
            (r, Some(line))
        }
        CacheCommand::Reset { force } => {
            if !force {
                return Err(CliError::bad_argument(
                    "reset drops the whole cache: add --force to do it",
                ));
            }
            (
                run("pubsub_cache_reset", String::new(), json!({})).await?,
                Some(String::new()),
            )
        }
        CacheCommand::Search {
            fts,
            profiles,
            services,
            nodes,
            types,
            subtypes,
            item_ids,
            filters,
            order: orders,
            limit,
            index,
            with_xml,
        } => {
            let filters: Vec<Value> = filters
                .chunks(3)
                .map(|f| {
                    let value = serde_json::from_str::<Value>(&f[2])
                        .unwrap_or_else(|_| Value::String(f[2].clone()));
                    json!({"path": f[0], "op": f[1], "value": value})
                })
                .collect();
            let mut q = json!({
                "fts": fts, "profiles": profiles, "services": services, "nodes": nodes,
                "types": types, "subtypes": subtypes, "item_ids": item_ids,
                "filters": filters, "order_by": orders.iter().map(|o| order(o)).collect::<Vec<_>>(),
                "limit": limit, "index": index, "with_xml": with_xml,
            });
            if let Some(o) = q.as_object_mut() {
                o.retain(|_, v| !v.is_null());
            }
            let r = run("pubsub_cache_search", String::new(), json!({"query": q})).await?;
            let text = r["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| {
                    format!(
                        "{}\t{}\t{}\t{}",
                        i["service"].as_str().unwrap_or(""),
                        i["node"].as_str().unwrap_or(""),
                        i["item_id"].as_str().unwrap_or(""),
                        i["parsed"]
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            (r, Some(text))
        }
    }))
}
