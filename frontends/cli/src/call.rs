//! `perch call …`: the calls perchd signals (the `call_list` action of plugin
//! XEP-0167). Media is a media frontend's business (`doc/calls.rst`); the CLI only
//! shows what happened.

use clap::Subcommand;
use perch_client::actions::NoArgs;
use serde_json::Value;

use crate::client::{CliError, Client};
use crate::{ProfileArg, output};

#[derive(Debug, Subcommand)]
pub enum CallCommand {
    /// A profile's calls, oldest first: ongoing ones and those ended since perchd
    /// started.
    List(ProfileArg),
}

pub async fn run(cmd: &CallCommand, json_out: bool, client: &Client) -> Result<(), CliError> {
    match cmd {
        CallCommand::List(p) => {
            let list = client
                .action::<perch_client::actions::calls::List>(&p.profile, &NoArgs {})
                .await?;
            let list = Value::Array(list);
            if json_out {
                output::json(&list);
            } else {
                print!("{}", table(&list));
            }
        }
    }
    Ok(())
}

/// The text table: sid, peer, direction, state, duration, end reason.
fn table(list: &Value) -> String {
    let rows = list.as_array().map(Vec::as_slice).unwrap_or_default();
    if rows.is_empty() {
        return "no calls\n".into();
    }
    let s = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let mut lines = vec![[
        "SID".to_owned(),
        "PEER".into(),
        "DIRECTION".into(),
        "STATE".into(),
        "DURATION".into(),
        "END REASON".into(),
    ]];
    for c in rows {
        let duration = c["duration_s"]
            .as_f64()
            .map_or_else(|| "-".to_owned(), |d| format!("{d:.1}s"));
        lines.push([
            s(&c["sid"]),
            s(&c["peer"]),
            s(&c["direction"]),
            s(&c["state"]),
            duration,
            s(&c["end_reason"]),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            lines
                .iter()
                .map(|l| l[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_has_the_columns_and_dashes_for_what_is_missing() {
        let t = table(&json!([
            {"sid": "a1", "peer": "bob@localhost/x", "direction": "outgoing", "state": "ended",
             "duration_s": 12.345, "end_reason": "success"},
            {"sid": "b2", "peer": "carol@localhost", "direction": "incoming", "state": "ringing"}
        ]));
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].starts_with("SID") && lines[0].ends_with("END REASON"),
            "{t}"
        );
        assert!(
            lines[1].contains("12.3s") && lines[1].ends_with("success"),
            "{t}"
        );
        assert!(
            lines[2].contains("ringing") && lines[2].ends_with('-'),
            "{t}"
        );
        assert_eq!(table(&json!([])), "no calls\n");
    }
}
