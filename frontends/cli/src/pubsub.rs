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
    profile: ProfileArg,
    /// The pubsub service (default: the profile's own account, PEP).
    #[arg(short, long, value_name = "JID")]
    service: Option<String>,
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
    client
        .call_json(
            "ActionRun",
            &(&target.profile.profile, action, args.to_string()),
        )
        .await
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
