//! `perch blog …`: XEP-0277 posts (the typed `blog_*` actions, `perch_actions::blog`). Reads go through the pubsub
//! cache, like every items request.

use std::io::Read;

use clap::Subcommand;
use perch_client::Action;
use perch_client::actions::blog;
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

/// Runs action `A` for the target's profile; its result as JSON, to print.
async fn call<A: Action>(
    client: &Client,
    target: &Target,
    args: A::Args,
) -> Result<Value, CliError> {
    let out = client.action::<A>(&target.profile.profile, &args).await?;
    Ok(serde_json::to_value(&out).unwrap_or(Value::Null))
}

pub async fn run(cmd: &BlogCommand, json_out: bool, client: &Client) -> Result<(), CliError> {
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
            let args = blog::PublishArgs {
                service: target.service.clone(),
                node: node.clone(),
                item_id: item.clone(),
                post: match post {
                    Value::Object(m) => m,
                    _ => Default::default(),
                },
            };
            let r = call::<blog::Publish>(client, target, args).await?;
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
            let args = blog::GetArgs {
                service: target.service.clone(),
                node: node.clone(),
                max: max.map(|m| i64::try_from(m).unwrap_or(i64::MAX)),
                item_ids: items.clone(),
                before: before.clone(),
                after: after.clone(),
                index: index.map(|i| i64::try_from(i).unwrap_or(i64::MAX)),
                use_cache: !no_cache,
            };
            let r = call::<blog::Get>(client, target, args).await?;
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
            let args = blog::RetractArgs {
                service: target.service.clone(),
                node: node.clone(),
                item_id: item.clone(),
            };
            let r = call::<blog::Retract>(client, target, args).await?;
            if json_out {
                output::json(&r);
            }
        }
    }
    Ok(())
}
