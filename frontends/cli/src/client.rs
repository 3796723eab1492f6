//! Finding perchd and calling it, through `perch-client`, and how failures print.
//!
//! Why so little here: perch-client finds perchd (session bus or peer-to-peer socket),
//! refuses a socket or a daemon of another user before sending anything, and gives the
//! typed proxy every command calls. What stays is the CLI's promise that every
//! failure — no daemon, an unsafe socket, a typed daemon error, a bad reply — comes out
//! as one line `perch: <Name>: <message>`.

use serde_json::Value;

pub use perch_client::{Client, Target};

/// A failure shown to the user as `perch: <name>: <message>`.
#[derive(Debug)]
pub struct CliError {
    pub name: String,
    pub message: String,
}

impl CliError {
    pub fn new(name: &str, message: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            message: message.into(),
        }
    }

    pub fn bad_argument(message: impl Into<String>) -> Self {
        Self::new("BadArgument", message)
    }
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // One line, whatever the daemon put in the message.
        let message = self.message.replace('\n', " ");
        write!(f, "{}: {}", self.name, message.trim())
    }
}

impl From<perch_client::Error> for CliError {
    fn from(e: perch_client::Error) -> Self {
        Self::new(e.name(), e.message())
    }
}

impl From<zbus::Error> for CliError {
    fn from(e: zbus::Error) -> Self {
        perch_client::Error::from(e).into()
    }
}

/// Parses the JSON text a method of perchd returned.
pub fn json(text: String) -> Result<Value, CliError> {
    serde_json::from_str(&text).map_err(|e| {
        CliError::new(
            "DBus",
            format!("perchd returned invalid JSON (is it the same version?): {e}"),
        )
    })
}
