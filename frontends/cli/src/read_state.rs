//! `perch message read|unread`: read state (XEP-0333 markers, XEP-0490 shared
//! with our other devices), each one typed action (`perch_actions::messages`).

use clap::Args;
use perch_client::actions::messages;

use crate::ProfileArg;
use crate::client::{CliError, Client};
use crate::output;

#[derive(Debug, Args)]
pub struct ReadArgs {
    #[command(flatten)]
    pub profile: ProfileArg,
    /// The contact or room of the conversation.
    pub with: String,
    /// The message read up to (`perch message history --json`); default: the newest.
    pub id: Option<String>,
}

#[derive(Debug, Args)]
pub struct UnreadArgs {
    #[command(flatten)]
    pub profile: ProfileArg,
    /// One conversation; default: every one.
    pub with: Option<String>,
}

fn line(u: &messages::Unread) -> String {
    format!(
        "{}\t{} unread\t{}",
        u.with,
        u.unread,
        u.last_read_id.as_deref().unwrap_or("-")
    )
}

pub async fn read(c: &Client, a: &ReadArgs, json_out: bool) -> Result<(), CliError> {
    let args = messages::MessageReadArgs {
        with: a.with.clone(),
        id: a.id.clone(),
    };
    let u = c
        .action::<messages::MessageRead>(&a.profile.profile, &args)
        .await?;
    if json_out {
        output::json(&serde_json::to_value(&u).unwrap_or_default());
    } else {
        println!("{}", line(&u));
    }
    Ok(())
}

pub async fn unread(c: &Client, a: &UnreadArgs, json_out: bool) -> Result<(), CliError> {
    let args = messages::MessageUnreadArgs {
        with: a.with.clone(),
    };
    let all = c
        .action::<messages::MessageUnread>(&a.profile.profile, &args)
        .await?;
    if json_out {
        output::json(&serde_json::to_value(&all).unwrap_or_default());
    } else {
        for u in &all {
            println!("{}", line(u));
        }
    }
    Ok(())
}
