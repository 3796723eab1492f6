//! `perch file …`: HTTP File Upload and downloads, each one typed action
//! (`perch_actions::files`) that starts a job, then followed to its end.
//!
//! On a terminal the job draws a progress bar (on stderr), elsewhere plain progress
//! lines; with `--json` only the job's result is printed (one JSON object), so
//! scripts read one value. A job that fails exits with `JobFailed` and its error.

use std::path::Path;
use std::time::Duration;

use clap::Subcommand;
use perch_client::actions::files::{self, FileGetArgs, FileSendArgs, Transfer};
use serde_json::{Value, json};

use crate::ProfileArg;
use crate::client::{CliError, Client, json as parse};
use crate::output;

#[derive(Debug, Subcommand)]
pub enum FileCommand {
    /// Upload a file (XEP-0363) and send its link to a contact or room.
    Send {
        #[command(flatten)]
        profile: ProfileArg,
        /// The contact or room.
        jid: String,
        /// The file.
        path: String,
        /// The JID is a room.
        #[arg(long)]
        groupchat: bool,
        /// Upload it under this name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Download a file to PATH (or under perchd's data dir), with a size cap.
    Get {
        #[command(flatten)]
        profile: ProfileArg,
        url: String,
        /// Where to write it (a file, or a folder to put it in).
        #[arg(short = 'o', long = "output")]
        output: Option<String>,
        /// The most bytes to accept.
        #[arg(long)]
        max_size: Option<u64>,
    },
}

/// A path as perchd must see it: absolute (perchd runs elsewhere).
fn absolute(path: &str) -> Result<String, CliError> {
    std::path::absolute(Path::new(path))
        .map(|p| p.display().to_string())
        .map_err(|e| CliError::bad_argument(format!("{path}: {e}")))
}

pub async fn run(cmd: &FileCommand, json_out: bool, client: &Client) -> Result<(), CliError> {
    let started = match cmd {
        FileCommand::Send {
            profile,
            jid,
            path,
            groupchat,
            name,
        } => {
            let args = FileSendArgs {
                path: absolute(path)?,
                to: Some(jid.clone()),
                groupchat: *groupchat,
                name: name.clone(),
            };
            client
                .action::<files::FileSend>(&profile.profile, &args)
                .await?
        }
        FileCommand::Get {
            profile,
            url,
            output,
            max_size,
        } => {
            let args = FileGetArgs {
                url: url.clone(),
                dest: output.as_deref().map(absolute).transpose()?,
                max_size: *max_size,
            };
            client
                .action::<files::FileGet>(&profile.profile, &args)
                .await?
        }
    };
    let result = finish(client, &started, json_out).await?;
    if json_out {
        let mut out = result;
        if let Some(o) = out.as_object_mut() {
            o.insert("job".into(), json!(started.job));
        }
        output::json(&out);
    } else {
        println!("{}", human(&result));
    }
    Ok(())
}

/// What a finished transfer printed for people.
fn human(r: &Value) -> String {
    let s = |k: &str| r[k].as_str().unwrap_or("").to_owned();
    match r.get("path") {
        Some(_) => format!(
            "{} ({} bytes, sha256 {})",
            s("path"),
            r["size"],
            s("sha256")
        ),
        None => format!("{} ({} bytes, sha256 {})", s("url"), r["size"], s("sha256")),
    }
}

/// Follows the job to its end (a bar or lines, unless JSON is asked for); answers
/// its result.
async fn finish(client: &Client, t: &Transfer, json_out: bool) -> Result<Value, CliError> {
    if !json_out {
        crate::commands::follow_job(client, &t.job, false).await?;
    }
    loop {
        let job = parse(client.job_get(&t.job).await?)?;
        match job["state"].as_str() {
            Some("finished") => return Ok(job["result"].clone()),
            Some("running") => tokio::time::sleep(Duration::from_millis(100)).await,
            _ => {
                return Err(CliError::new(
                    "JobFailed",
                    format!("job {}: {}", t.job, job["error"].as_str().unwrap_or("")),
                ));
            }
        }
    }
}
