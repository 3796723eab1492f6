//! `perch pubsub …`: the XEP-0060 actions as commands, flags as libervia-cli's
//! `li pubsub` where it has them (`-s` service, `-n` node, `-i` item, `-M` max).
//!
//! Every command is one typed `pubsub_…` action (`perch_actions::pubsub`); the service defaults to the profile's
//! own account (PEP) in perchd, so the CLI sends it only when given.

use std::io::Read;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use perch_client::Action;
use perch_client::actions::{cache as c, pubsub as p};
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
    pub(crate) fn to_object(&self) -> Option<Map<String, Value>> {
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
        Some(m)
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

fn pairs(words: &[String]) -> Option<Map<String, Value>> {
    (!words.is_empty()).then(|| {
        words
            .chunks(2)
            .map(|p| (p[0].clone(), Value::String(p[1].clone())))
            .collect()
    })
}

fn assignments(what: &str, words: &[String]) -> Result<Map<String, Value>, CliError> {
    let mut m = Map::new();
    for w in words {
        let (k, v) = w
            .split_once('=')
            .ok_or_else(|| CliError::bad_argument(format!("--set {w:?}: expected {what}")))?;
        m.insert(k.to_owned(), Value::String(v.to_owned()));
    }
    Ok(m)
}

impl NodeTarget {
    /// `{service?, node}`.
    fn args(&self) -> p::NodeArgs {
        p::NodeArgs {
            service: self.target.service.clone(),
            node: self.node.clone(),
        }
    }
}

impl Target {
    /// `{service?, node?}`.
    fn args(&self, node: Option<&String>) -> p::ServiceArgs {
        p::ServiceArgs {
            service: self.service.clone(),
            node: node.cloned(),
        }
    }
}

/// Runs action `A` for the target's profile; its result as JSON, to print.
async fn run_action<A: Action>(
    client: &Client,
    target: &Target,
    args: A::Args,
) -> Result<(A::Output, Value), CliError> {
    let out = client.action::<A>(&target.profile.profile, &args).await?;
    let shown = serde_json::to_value(&out).unwrap_or(Value::Null);
    Ok((out, shown))
}

/// `run_action`, when only the JSON is shown.
async fn shown<A: Action>(
    client: &Client,
    target: &Target,
    args: A::Args,
) -> Result<Value, CliError> {
    Ok(run_action::<A>(client, target, args).await?.1)
}

/// A count (`-M`, `--index`) as the action's integer.
fn int(n: &Option<u64>) -> Option<i64> {
    n.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
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
        } => publish(client, node, item.as_ref(), file.as_ref(), options).await?,
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
            let a = p::ItemsGetArgs {
                service: node.target.service.clone(),
                node: node.node.clone(),
                max: int(max),
                item_ids: items.clone(),
                before: before.clone(),
                after: after.clone(),
                index: int(index),
                all: *all,
                use_cache: !no_cache,
            };
            let r = shown::<p::ItemsGet>(client, &node.target, a).await?;
            let text = payloads(&r["items"]);
            (r, Some(text))
        }
        PubsubCommand::Retract {
            node,
            items,
            no_notify,
        } => {
            let a = p::RetractArgs {
                service: node.target.service.clone(),
                node: node.node.clone(),
                item_ids: items.clone(),
                notify: !no_notify,
            };
            (
                shown::<p::Retract>(client, &node.target, a).await?,
                Some(String::new()),
            )
        }
        PubsubCommand::Subscribe { node, jid, options } => {
            let a = p::SubscribeArgs {
                service: node.target.service.clone(),
                node: node.node.clone(),
                jid: jid.clone(),
                options: pairs(options),
            };
            let r = shown::<p::Subscribe>(client, &node.target, a).await?;
            let line = subscription_line(&r["subscription"]);
            (r, Some(line))
        }
        PubsubCommand::Unsubscribe { node, jid, subid } => {
            let a = p::UnsubscribeArgs {
                service: node.target.service.clone(),
                node: node.node.clone(),
                jid: jid.clone(),
                subid: subid.clone(),
            };
            (
                shown::<p::Unsubscribe>(client, &node.target, a).await?,
                Some(String::new()),
            )
        }
        PubsubCommand::Subscriptions { target, node } => {
            let a = target.args(node.as_ref());
            let r = shown::<p::SubscriptionsGet>(client, target, a).await?;
            let text = table(
                &r["subscriptions"],
                &["node", "jid", "subscription", "subid"],
            );
            (r, Some(text))
        }
        PubsubCommand::Affiliations { target, node } => {
            let a = target.args(node.as_ref());
            let r = shown::<p::AffiliationsGet>(client, target, a).await?;
            let text = table(&r["affiliations"], &["node", "affiliation"]);
            (r, Some(text))
        }
    };
    print(json_out, &result, shown);
    Ok(())
}

/// The text of a command when there is one and no --json, else its JSON result.
fn print(json_out: bool, result: &Value, shown: Option<String>) {
    match (json_out, shown) {
        (false, Some(text)) => {
            if !text.is_empty() {
                println!("{text}");
            }
        }
        _ => output::json(result),
    }
}

/// A command's JSON result and, when it has one, its text form.
type Shown = (Value, Option<String>);

async fn publish(
    client: &Client,
    node: &NodeTarget,
    item: Option<&String>,
    file: Option<&PathBuf>,
    options: &[String],
) -> Result<Shown, CliError> {
    // Read before anything goes out: a bad payload sends nothing.
    let payload = read_payload(file)?;
    let a = p::PublishArgs {
        service: node.target.service.clone(),
        node: node.node.clone(),
        item_id: item.cloned(),
        payload,
        options: pairs(options),
    };
    let (r, v) = run_action::<p::Publish>(client, &node.target, a).await?;
    Ok((v, Some(r.item_id.unwrap_or_default())))
}

/// Items' payloads, one a line.
fn payloads(items: &Value) -> String {
    items
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| i["payload"].as_str().unwrap_or_default().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `STATE (JID[, subid ID])`.
fn subscription_line(s: &Value) -> String {
    format!(
        "{} ({}{})",
        s["subscription"].as_str().unwrap_or("?"),
        s["jid"].as_str().unwrap_or("?"),
        s["subid"]
            .as_str()
            .map(|i| format!(", subid {i}"))
            .unwrap_or_default()
    )
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
pub(crate) fn form_lines(form: &Value) -> String {
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

async fn node(cmd: &NodeCommand, client: &Client) -> Result<Shown, CliError> {
    Ok(match cmd {
        NodeCommand::Create {
            target,
            node,
            fields,
        } => {
            let a = p::NodeCreateArgs {
                service: target.service.clone(),
                node: node.clone(),
                config: fields.to_object(),
            };
            let (r, v) = run_action::<p::NodeCreate>(client, target, a).await?;
            (v, Some(r.node))
        }
        NodeCommand::Delete { node, redirect } => {
            let a = p::NodeDeleteArgs {
                service: node.target.service.clone(),
                node: node.node.clone(),
                redirect: redirect.clone(),
            };
            (
                shown::<p::NodeDelete>(client, &node.target, a).await?,
                Some(String::new()),
            )
        }
        NodeCommand::Info { node } => {
            let r = shown::<p::NodeInfo>(client, &node.target, node.args()).await?;
            let text = node_info_lines(&r);
            (r, Some(text))
        }
        NodeCommand::Config { node, fields } => match fields.to_object() {
            None => {
                let r = shown::<p::NodeConfigGet>(client, &node.target, node.args()).await?;
                let text = form_lines(&r["config"]);
                (r, Some(text))
            }
            Some(config) => {
                let a = p::NodeConfigSetArgs {
                    service: node.target.service.clone(),
                    node: node.node.clone(),
                    config,
                };
                (
                    shown::<p::NodeConfigSet>(client, &node.target, a).await?,
                    Some(String::new()),
                )
            }
        },
        NodeCommand::Default { target } => {
            let a = p::OnlyServiceArgs {
                service: target.service.clone(),
            };
            let r = shown::<p::NodeDefaultConfig>(client, target, a).await?;
            let text = form_lines(&r["config"]);
            (r, Some(text))
        }
        NodeCommand::Purge { node } => (
            shown::<p::NodePurge>(client, &node.target, node.args()).await?,
            Some(String::new()),
        ),
        NodeCommand::List { target, node } => {
            let a = target.args(node.as_ref());
            let r = shown::<p::NodeListGet>(client, target, a).await?;
            let text = table(&r["nodes"], &["node", "name"]);
            (r, Some(text))
        }
        NodeCommand::Subscriptions { node, set } => node_subscriptions(client, node, set).await?,
        NodeCommand::Affiliations { node, set } => node_affiliations(client, node, set).await?,
    })
}

/// A node's identities and metadata, one a line.
fn node_info_lines(r: &Value) -> String {
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
        r["meta"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}: {}", v.as_str().map_or(v.to_string(), str::to_owned))),
    );
    lines.join("\n")
}

/// A node's subscriptions, or sets them when `set` has `JID=STATE` words.
async fn node_subscriptions(
    client: &Client,
    node: &NodeTarget,
    set: &[String],
) -> Result<Shown, CliError> {
    if set.is_empty() {
        let r = shown::<p::NodeSubscriptionsGet>(client, &node.target, node.args()).await?;
        let text = table(&r["subscriptions"], &["jid", "subscription", "subid"]);
        return Ok((r, Some(text)));
    }
    let a = p::NodeSubscriptionsSetArgs {
        service: node.target.service.clone(),
        node: node.node.clone(),
        subscriptions: assignments("JID=STATE", set)?,
    };
    Ok((
        shown::<p::NodeSubscriptionsSet>(client, &node.target, a).await?,
        Some(String::new()),
    ))
}

/// A node's affiliations, or sets them when `set` has `JID=AFFILIATION` words.
async fn node_affiliations(
    client: &Client,
    node: &NodeTarget,
    set: &[String],
) -> Result<Shown, CliError> {
    if set.is_empty() {
        let r = shown::<p::NodeAffiliationsGet>(client, &node.target, node.args()).await?;
        let text = table(&r["affiliations"], &["jid", "affiliation"]);
        return Ok((r, Some(text)));
    }
    let a = p::NodeAffiliationsSetArgs {
        service: node.target.service.clone(),
        node: node.node.clone(),
        affiliations: assignments("JID=AFFILIATION", set)?,
    };
    Ok((
        shown::<p::NodeAffiliationsSet>(client, &node.target, a).await?,
        Some(String::new()),
    ))
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
) -> Result<Option<Shown>, CliError> {
    let any = no_profile();
    Ok(Some(match cmd {
        CacheCommand::Status { target, node } => {
            let r = shown::<c::Status>(client, target, target.args(node.as_ref())).await?;
            let text = cache_status_lines(&r["nodes"]);
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
            let a = c::GetArgs {
                service: node.target.service.clone(),
                node: node.node.clone(),
                max: int(max),
                item_ids: items.clone(),
                before: before.clone(),
                after: after.clone(),
                index: int(index),
            };
            let r = shown::<c::Get>(client, &node.target, a).await?;
            let text = payloads(&r["items"]);
            (r, Some(text))
        }
        CacheCommand::Sync { node, no_follow } => {
            cache_sync(client, node, *no_follow, json_out).await?
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
            let a = c::PurgeArgs {
                types: types.clone(),
                subtypes: subtypes.clone(),
                profiles: profiles.clone(),
                services: services.clone(),
                nodes: nodes.clone(),
                created_before: created_before.clone(),
                updated_before: updated_before.clone(),
            };
            let (r, v) = run_action::<c::Purge>(client, &any, a).await?;
            (v, Some(format!("{} items deleted", r.deleted)))
        }
        CacheCommand::Reset { force } => {
            if !force {
                return Err(CliError::bad_argument(
                    "reset drops the whole cache: add --force to do it",
                ));
            }
            (
                shown::<c::Reset>(client, &any, perch_client::actions::NoArgs {}).await?,
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
            let filters = search_filters(filters);
            let q = json!({
                "fts": fts, "profiles": profiles, "services": services, "nodes": nodes,
                "types": types, "subtypes": subtypes, "item_ids": item_ids,
                "filters": filters, "order_by": orders.iter().map(|o| order(o)).collect::<Vec<_>>(),
                "limit": limit, "index": index, "with_xml": with_xml,
            });
            let query = without_nulls(q);
            let r = shown::<c::Search>(client, &any, c::SearchArgs { query }).await?;
            let text = search_lines(&r["items"]);
            (r, Some(text))
        }
    }))
}

/// Purge, reset and search act for no profile: perchd's default is not asked.
fn no_profile() -> Target {
    Target {
        profile: ProfileArg {
            profile: String::new(),
        },
        service: None,
    }
}

/// One line per cached node: service, node, type, items, sync state and why.
fn cache_status_lines(nodes: &Value) -> String {
    nodes
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
        .join("\n")
}

/// Starts a node's sync job and, unless `no_follow`, follows it to its end.
async fn cache_sync(
    client: &Client,
    node: &NodeTarget,
    no_follow: bool,
    json_out: bool,
) -> Result<Shown, CliError> {
    let (r, v) = run_action::<c::Sync>(client, &node.target, node.args()).await?;
    let (r, id) = (v, r.job);
    if no_follow {
        return Ok((r, Some(id)));
    }
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
    Ok((job, Some(line)))
}

/// `-F PATH OP VALUE` triples as the query's filters; VALUE is JSON when it parses.
fn search_filters(words: &[String]) -> Vec<Value> {
    words
        .chunks(3)
        .map(|f| {
            let value = serde_json::from_str::<Value>(&f[2])
                .unwrap_or_else(|_| Value::String(f[2].clone()));
            json!({"path": f[0], "op": f[1], "value": value})
        })
        .collect()
}

/// The object's members that are not null (options not given).
fn without_nulls(mut q: Value) -> Map<String, Value> {
    if let Some(o) = q.as_object_mut() {
        o.retain(|_, v| !v.is_null());
    }
    match q {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// One line per search hit: service, node, item id and the parsed payload.
fn search_lines(items: &Value) -> String {
    items
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
        .join("\n")
}
