//! `perch avatar …`, `perch vcard …` and `perch nick …`: who a contact is, each
//! command one typed action (`perch_actions::identity`).
//!
//! Avatars are files on perchd's machine, the CLI's too: `avatar set` hands perchd
//! the image's absolute path, `avatar get -o PATH` copies perchd's kept copy.

use std::path::PathBuf;

use clap::Subcommand;
use perch_client::actions::identity::{
    AvatarGet, AvatarGetArgs, AvatarSet, AvatarSetArgs, NickGet, NickGetArgs, NickSet, NickSetArgs,
    VcardGet, VcardGetArgs, VcardSet, VcardSetArgs,
};
use serde_json::{Map, Value};

use crate::ProfileArg;
use crate::client::{CliError, Client};
use crate::output;

#[derive(Debug, Subcommand)]
pub enum AvatarCommand {
    /// Publish the account's avatar (PNG, JPEG, GIF or WebP, at most 1 MiB).
    Set {
        #[command(flatten)]
        profile: ProfileArg,
        image: PathBuf,
    },
    /// A contact's avatar (ours: our JID): where perchd keeps it, or a copy at -o.
    Get {
        #[command(flatten)]
        profile: ProfileArg,
        jid: String,
        /// Copy the image here.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Ask the network even when perchd keeps a copy.
        #[arg(long)]
        refresh: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum VcardCommand {
    /// A vCard (ours without JID).
    Get {
        #[command(flatten)]
        profile: ProfileArg,
        jid: Option<String>,
    },
    /// Change fields of our vCard: FIELD=VALUE… (FN, NICKNAME, EMAIL, URL, DESC,
    /// BDAY…; an empty VALUE removes the field).
    Set {
        #[command(flatten)]
        profile: ProfileArg,
        #[arg(required = true, value_name = "FIELD=VALUE")]
        fields: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum NickCommand {
    /// Publish the account's nickname (XEP-0172); "" clears it.
    Set {
        #[command(flatten)]
        profile: ProfileArg,
        nick: String,
    },
    /// A contact's own nickname (ours without JID): the one kept, else fetched.
    Get {
        #[command(flatten)]
        profile: ProfileArg,
        jid: Option<String>,
        /// Ask the network even when perchd keeps one.
        #[arg(long)]
        refresh: bool,
    },
}

pub async fn nick(cmd: &NickCommand, json_out: bool, client: &Client) -> Result<(), CliError> {
    let shown = match cmd {
        NickCommand::Set { profile, nick } => {
            let args = NickSetArgs { nick: nick.clone() };
            client.action::<NickSet>(&profile.profile, &args).await?
        }
        NickCommand::Get {
            profile,
            jid,
            refresh,
        } => {
            let args = NickGetArgs {
                jid: jid.clone(),
                refresh: *refresh,
            };
            client.action::<NickGet>(&profile.profile, &args).await?
        }
    };
    if json_out {
        output::typed(&shown);
    } else {
        match &shown.nick {
            Some(n) => println!("{}\t{n}", shown.jid),
            None => println!("{}\tno nickname", shown.jid),
        }
    }
    Ok(())
}

pub async fn avatar(cmd: &AvatarCommand, json_out: bool, client: &Client) -> Result<(), CliError> {
    let shown = match cmd {
        AvatarCommand::Set { profile, image } => {
            let path = std::path::absolute(image)
                .map_err(|e| CliError::bad_argument(format!("{}: {e}", image.display())))?;
            let args = AvatarSetArgs {
                path: path.display().to_string(),
            };
            Some(client.action::<AvatarSet>(&profile.profile, &args).await?)
        }
        AvatarCommand::Get {
            profile,
            jid,
            output: out,
            refresh,
        } => {
            let args = AvatarGetArgs {
                jid: jid.clone(),
                refresh: *refresh,
            };
            let got = client.action::<AvatarGet>(&profile.profile, &args).await?;
            if let (Some(a), Some(to)) = (&got, out) {
                std::fs::copy(&a.path, to).map_err(|e| {
                    CliError::bad_argument(format!("copying the avatar to {}: {e}", to.display()))
                })?;
            }
            got
        }
    };
    if json_out {
        output::typed(&shown);
    } else {
        match shown {
            Some(a) => println!(
                "{}\t{}\t{} bytes\t{}",
                a.hash, a.media_type, a.bytes, a.path
            ),
            None => println!("no avatar"),
        }
    }
    Ok(())
}

pub async fn vcard(cmd: &VcardCommand, json_out: bool, client: &Client) -> Result<(), CliError> {
    let card = match cmd {
        VcardCommand::Get { profile, jid } => {
            let args = VcardGetArgs { jid: jid.clone() };
            client.action::<VcardGet>(&profile.profile, &args).await?
        }
        VcardCommand::Set { profile, fields } => {
            let mut map = Map::new();
            for f in fields {
                let (k, v) = f.split_once('=').ok_or_else(|| {
                    CliError::bad_argument(format!("{f:?}: fields are FIELD=VALUE"))
                })?;
                map.insert(k.to_ascii_uppercase(), Value::String(v.to_owned()));
            }
            let args = VcardSetArgs { fields: map };
            client.action::<VcardSet>(&profile.profile, &args).await?
        }
    };
    if json_out {
        output::json(&card);
    } else {
        for (k, v) in card.as_object().into_iter().flatten() {
            match v {
                Value::String(s) => println!("{k}: {s}"),
                other => println!("{k}: {other}"),
            }
        }
    }
    Ok(())
}
