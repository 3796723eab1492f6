//! `perch block …`: blocking (XEP-0191), each command one typed `blocking_…` action
//! (`perch_actions::blocking`). The server drops what a blocked JID sends; `add`
//! may also report it as spam or abuse (XEP-0377).

use clap::{Subcommand, ValueEnum};
use perch_client::actions::NoArgs;
use perch_client::actions::blocking::{self, BlockArgs, Report, UnblockArgs};

use crate::ProfileArg;
use crate::client::{CliError, Client};
use crate::output;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportArg {
    Spam,
    Abuse,
}

#[derive(Debug, Subcommand)]
pub enum BlockCommand {
    /// Block JIDs (bare, full or a domain); prints the blocklist after it.
    Add {
        #[command(flatten)]
        profile: ProfileArg,
        #[arg(required = true)]
        jids: Vec<String>,
        /// Also report them to the server (XEP-0377).
        #[arg(long, value_enum)]
        report: Option<ReportArg>,
    },
    /// Unblock JIDs; with none, unblock every JID. Prints the blocklist after it.
    Remove {
        #[command(flatten)]
        profile: ProfileArg,
        jids: Vec<String>,
    },
    /// The blocked JIDs.
    List(ProfileArg),
}

pub async fn run(cmd: &BlockCommand, json_out: bool, client: &Client) -> Result<(), CliError> {
    let list = match cmd {
        BlockCommand::Add {
            profile,
            jids,
            report,
        } => {
            let args = BlockArgs {
                jids: jids.clone(),
                report: report.map(|r| match r {
                    ReportArg::Spam => Report::Spam,
                    ReportArg::Abuse => Report::Abuse,
                }),
            };
            client
                .action::<blocking::Block>(&profile.profile, &args)
                .await?
        }
        BlockCommand::Remove { profile, jids } => {
            let args = UnblockArgs { jids: jids.clone() };
            client
                .action::<blocking::Unblock>(&profile.profile, &args)
                .await?
        }
        BlockCommand::List(profile) => {
            client
                .action::<blocking::List>(&profile.profile, &NoArgs {})
                .await?
        }
    };
    if json_out {
        output::typed(&list);
    } else {
        for jid in &list {
            println!("{jid}");
        }
    }
    Ok(())
}
