//! `perch message react|reply|retract`: the message actions (XEP-0444, XEP-0461,
//! XEP-0424), each one typed action (`perch_actions::messages`). Moderation is
//! `perch muc moderate`.
//!
//! MSG_ID is the message's id as `perch message history --json` lists it (`id`,
//! or its `origin_id` or, in a room, its `stanza_id`): perchd puts on the wire the
//! id the XEPs ask for.

use clap::Args;
use perch_client::actions::messages;
use serde_json::Value;

use crate::ProfileArg;
use crate::client::{CliError, Client};
use crate::output;

/// The message acted on.
#[derive(Debug, Args)]
pub struct Target {
    #[command(flatten)]
    pub profile: ProfileArg,
    /// The contact or room of the conversation.
    pub to: String,
    /// The message's id (`perch message history --json`).
    pub id: String,
    /// The message is a group chat room's.
    #[arg(long)]
    pub groupchat: bool,
}

#[derive(Debug, Args)]
pub struct ReactArgs {
    #[command(flatten)]
    pub target: Target,
    /// Our whole set of reactions (emojis), replacing our earlier one; none takes
    /// ours back.
    pub reactions: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ReplyArgs {
    #[command(flatten)]
    pub target: Target,
    /// The reply's text.
    pub text: String,
}

fn done(m: &Value, what: &str, json_out: bool) {
    if json_out {
        output::json(m);
    } else {
        println!("{what} {} queued", m["id"].as_str().unwrap_or_default());
    }
}

pub async fn react(c: &Client, a: &ReactArgs, json_out: bool) -> Result<(), CliError> {
    let t = &a.target;
    let args = messages::MessageReactArgs {
        to: t.to.clone(),
        id: t.id.clone(),
        reactions: a.reactions.clone(),
        groupchat: t.groupchat,
    };
    let m = c
        .action::<messages::MessageReact>(&t.profile.profile, &args)
        .await?;
    done(&m, "reaction", json_out);
    Ok(())
}

pub async fn reply(c: &Client, a: &ReplyArgs, json_out: bool) -> Result<(), CliError> {
    let t = &a.target;
    let args = messages::MessageReplyArgs {
        to: t.to.clone(),
        id: t.id.clone(),
        body: a.text.clone(),
        groupchat: t.groupchat,
    };
    let m = c
        .action::<messages::MessageReply>(&t.profile.profile, &args)
        .await?;
    done(&m, "reply", json_out);
    Ok(())
}

pub async fn retract(c: &Client, t: &Target, json_out: bool) -> Result<(), CliError> {
    let args = messages::MessageRetractArgs {
        to: t.to.clone(),
        id: t.id.clone(),
        groupchat: t.groupchat,
    };
    let m = c
        .action::<messages::MessageRetract>(&t.profile.profile, &args)
        .await?;
    done(&m, "retraction", json_out);
    Ok(())
}
