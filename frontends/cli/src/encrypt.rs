//! `perch encryption …` and `perch omemo …`: end-to-end encryption (OMEMO), each
//! command one typed action (`perch_actions::encryption`). Once a conversation is
//! encrypted, perchd never sends to it in clear: a message it can't encrypt fails
//! with `NotEncrypted`.

use clap::Subcommand;
use perch_client::actions::encryption::{
    self, ConversationArgs, Device, DevicesArgs, EncryptionState, FingerprintArgs, StartArgs,
    TrustArgs,
};

use crate::ProfileArg;
use crate::client::{CliError, Client};
use crate::output;

#[derive(Debug, Subcommand)]
pub enum EncryptionCommand {
    /// Encrypt the conversation with a contact from now on.
    Start {
        #[command(flatten)]
        profile: ProfileArg,
        jid: String,
        /// The OMEMO version to use (default: the best the contact publishes).
        #[arg(long, value_parser = ["0.3", "2"])]
        version: Option<String>,
    },
    /// Stop encrypting the conversation with a contact.
    Stop {
        #[command(flatten)]
        profile: ProfileArg,
        jid: String,
    },
    /// Whether the conversation with a contact is encrypted.
    Status {
        #[command(flatten)]
        profile: ProfileArg,
        jid: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum OmemoCommand {
    /// Our own device's fingerprint, or a contact's devices'.
    Fingerprint {
        #[command(flatten)]
        profile: ProfileArg,
        jid: Option<String>,
    },
    /// A contact's devices, with fingerprints and trust.
    Devices {
        #[command(flatten)]
        profile: ProfileArg,
        jid: String,
    },
    /// Mark a contact's key as verified (after comparing the fingerprint).
    Trust {
        #[command(flatten)]
        profile: ProfileArg,
        jid: String,
        fingerprint: String,
    },
    /// Distrust a contact's key: its devices never get message keys.
    Distrust {
        #[command(flatten)]
        profile: ProfileArg,
        jid: String,
        fingerprint: String,
    },
}

fn print_state(s: &EncryptionState, json_out: bool) {
    if json_out {
        output::typed(s);
    } else {
        let how = s.namespace.as_deref().unwrap_or("no OMEMO device");
        let on = if s.encrypted {
            "encrypted"
        } else {
            "not encrypted"
        };
        println!("{}: {on} ({how})", s.to);
    }
}

fn print_devices(d: &[Device], json_out: bool) {
    if json_out {
        output::typed(&d);
        return;
    }
    for d in d {
        let fp = d
            .fingerprint
            .as_deref()
            .map_or_else(|| "(fingerprint unknown)".to_owned(), encryption::group);
        println!(
            "{} {} [{}] {} {}",
            d.jid,
            d.device_id,
            d.versions.join(","),
            d.trust.as_deref().unwrap_or("-"),
            fp
        );
    }
}

pub async fn encryption(
    cmd: &EncryptionCommand,
    json_out: bool,
    client: &Client,
) -> Result<(), CliError> {
    let s = match cmd {
        EncryptionCommand::Start {
            profile,
            jid,
            version,
        } => {
            let namespace = version.as_deref().map(|v| match v {
                "0.3" => "eu.siacs.conversations.axolotl".to_owned(),
                _ => "urn:xmpp:omemo:2".to_owned(),
            });
            let args = StartArgs {
                to: jid.clone(),
                namespace,
            };
            client
                .action::<encryption::Start>(&profile.profile, &args)
                .await?
        }
        EncryptionCommand::Stop { profile, jid } => {
            let args = ConversationArgs { to: jid.clone() };
            client
                .action::<encryption::Stop>(&profile.profile, &args)
                .await?
        }
        EncryptionCommand::Status { profile, jid } => {
            let args = ConversationArgs { to: jid.clone() };
            client
                .action::<encryption::Status>(&profile.profile, &args)
                .await?
        }
    };
    print_state(&s, json_out);
    Ok(())
}

/// Starts encrypting the conversation with `jid` (`message send --encrypt` too).
pub async fn start(client: &Client, profile: &str, jid: &str) -> Result<EncryptionState, CliError> {
    let args = StartArgs {
        to: jid.to_owned(),
        namespace: None,
    };
    Ok(client.action::<encryption::Start>(profile, &args).await?)
}

pub async fn omemo(cmd: &OmemoCommand, json_out: bool, client: &Client) -> Result<(), CliError> {
    let devices = match cmd {
        OmemoCommand::Fingerprint { profile, jid } => {
            let args = FingerprintArgs { jid: jid.clone() };
            client
                .action::<encryption::Fingerprint>(&profile.profile, &args)
                .await?
        }
        OmemoCommand::Devices { profile, jid } => {
            let args = DevicesArgs { jid: jid.clone() };
            client
                .action::<encryption::Devices>(&profile.profile, &args)
                .await?
        }
        OmemoCommand::Trust {
            profile,
            jid,
            fingerprint,
        } => {
            let args = TrustArgs {
                jid: jid.clone(),
                fingerprint: fingerprint.clone(),
            };
            client
                .action::<encryption::Trust>(&profile.profile, &args)
                .await?
        }
        OmemoCommand::Distrust {
            profile,
            jid,
            fingerprint,
        } => {
            let args = TrustArgs {
                jid: jid.clone(),
                fingerprint: fingerprint.clone(),
            };
            client
                .action::<encryption::Distrust>(&profile.profile, &args)
                .await?
        }
    };
    print_devices(&devices, json_out);
    Ok(())
}
