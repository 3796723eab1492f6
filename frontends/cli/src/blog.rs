//! `perch blog …`: XEP-0277 posts (the `blog_*` actions). Reads go through the pubsub
//! cache, like every items request.

use std::io::Read;

use clap::Subcommand;
use serde_json::{Value, json};

use crate::client::{CliError, Client};
use crate::output;
use crate::pubsub::Target;

#[derive(Debug, Subcommand)]
pub enum BlogCommand {
    /// Publish a post (or edit one with -i); CONTENT, else stdin.
    Set {
        #[command(flatten)]
        target: Target,
        /// The blog node (default urn:xmpp:microblog:0).
        #[arg(short, long)]
        node: Option<String>,
        /// The post to edit.
        #[arg(short = 'i', long = "item")]
        item: Option<String>,
        #[arg(short, long)]
        title: Option<String>,
        /// A tag (repeatable).
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[arg(long)]
        lang: Option<String>,
        /// The content as XHTML (beside the text).
        #[arg(long)]
        xhtml: Option<String>,
        /// The post's comments node, as an xmpp: URI.
        #[arg(long, value_name = "URI")]
        comments: Option<String>,
        content: Option<String>,
    },
    /// Show posts, newest first.
    Get {
        #[command(flatten)]
        target: Target,
        #[arg(short, long)]
        node: Option<String>,
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
        /// Ask the service even if the cache could answer.
        #[arg(long)]
        no_cache: bool,
    },
    /// Delete a post.
    Delete {
        #[command(flatten)]
        target: Target,
        #[arg(short, long)]
        node: Option<String>,
        #[arg(short = 'i', long = "item", required = true)]
        item: String,
    },
}

fn clean(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        other => other,
    }
}

pub async fn run(cmd: &BlogCommand, json_out: bool, client: &Client) -> Result<(), CliError> {
    let call = |target: &Target, action: &'static str, mut args: Value| {
        if let (Some(s), Some(m)) = (&target.service, args.as_object_mut()) {
            m.insert("service".into(), json!(s));
        }
        let profile = target.profile.profile.clone();
        async move {
            crate::client::json(
                client
                    .action_run(&profile, action, &clean(args).to_string())
                    .await?,
            )
        }
    };
    match cmd {
        BlogCommand::Set {
            target,
            node,
            item,
            title,
            tags,
            lang,
            xhtml,
            comments,
            content,
        } => {
            let content = match content {
                Some(c) => Some(c.clone()),
                None => {
                    let mut s = String::new();
                    std::io::stdin()
                        .read_to_string(&mut s)
                        .map_err(|e| CliError::bad_argument(format!("content from stdin: {e}")))?;
                    let s = s.trim_end_matches('\n').to_owned();
                    (!s.is_empty()).then_some(s)
                }
            };
            let post = clean(json!({
                "title": title, "content": content, "content_xhtml": xhtml,
                "tags": (!tags.is_empty()).then_some(tags), "language": lang,
                "comments": comments.as_ref().map(|c| json!([{"uri": c}])),
            }));
            let r = call(
                target,
                "blog_publish",
                json!({"node": node, "item_id": item, "post": post}),
            )
            .await?;
            if json_out {
                output::json(&r);
            } else {
                println!("{}", r["item_id"].as_str().unwrap_or_default());
            }
        }
        BlogCommand::Get {
            target,
            node,
            max,
            items,
            before,
            after,
            index,
            no_cache,
        } => {
            let r = call(
                target,
                "blog_get",
                json!({
                    "node": node, "max": max, "before": before, "after": after, "index": index,
                    "item_ids": (!items.is_empty()).then_some(items), "use_cache": !no_cache,
                }),
            )
            .await?;
            if json_out {
                output::json(&r);
            } else {
                for p in r["posts"].as_array().into_iter().flatten() {
                    println!(
                        "{} — {} ({})",
                        p["title"].as_str().unwrap_or(""),
                        p["published"].as_str().unwrap_or(""),
                        p["item_id"].as_str().unwrap_or("")
                    );
                    if let Some(c) = p["content"].as_str() {
                        println!("{c}");
                    }
                    println!();
                }
            }
        }
        BlogCommand::Delete { target, node, item } => {
            let r = call(
                target,
                "blog_retract",
                json!({"node": node, "item_id": item}),
            )
            .await?;
            if json_out {
                output::json(&r);
            }
        }
    }
    Ok(())
}
