//! What can stop a call, typed: every failure prints as one line
//! `perch-call: <Name>: <message>` and the process exits with 1.

use std::time::Duration;

/// Why `perch-call` could not place, answer or carry a call.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// GStreamer could not be initialised or an element is missing.
    #[error(
        "GStreamer element {0:?} is missing (install gstreamer1.0-plugins-base, \
         gstreamer1.0-plugins-good, gstreamer1.0-plugins-bad and gstreamer1.0-nice)"
    )]
    MissingElement(String),
    /// The media pipeline failed (an element error, a refused description).
    #[error("{0}")]
    Pipeline(String),
    /// libnice could not be told to use the `--local-address`.
    #[error("cannot use local address {address:?} for ICE: {why}")]
    LocalAddress { address: String, why: String },
    /// perchd answered an error (its stable error name is kept).
    #[error("{name}: {message}")]
    Daemon { name: String, message: String },
    /// perchd's reply to an action was not what the call contract says.
    #[error("perchd's reply to {action} is not what was expected: {why}")]
    BadReply { action: &'static str, why: String },
    /// An SDP that does not parse.
    #[error("invalid SDP ({0})")]
    BadSdp(String),
    /// The peer (or perchd) ended the call before it connected.
    #[error("the call ended before it connected: {reason}{}", text.as_deref().map(|t| format!(" ({t})")).unwrap_or_default())]
    Ended {
        reason: String,
        text: Option<String>,
    },
    /// ICE or DTLS did not connect in time, or failed.
    #[error("the media did not connect: {0}")]
    NotConnected(String),
    /// `listen` saw no acceptable incoming call in time.
    #[error("no incoming call within {0:?}")]
    NoIncomingCall(Duration),
    /// perchd went away while the call was running.
    #[error("perchd closed the connection")]
    DaemonGone,
}

impl CallError {
    /// The short name printed before the message.
    pub fn name(&self) -> &str {
        match self {
            CallError::MissingElement(_) => "MissingElement",
            CallError::Pipeline(_) => "Pipeline",
            CallError::LocalAddress { .. } => "LocalAddress",
            CallError::Daemon { name, .. } => name,
            CallError::BadReply { .. } => "BadReply",
            CallError::BadSdp(_) => "BadSdp",
            CallError::Ended { .. } => "CallEnded",
            CallError::NotConnected(_) => "NotConnected",
            CallError::NoIncomingCall(_) => "NoIncomingCall",
            CallError::DaemonGone => "DaemonGone",
        }
    }

    /// The message on one line (for `Daemon`, without repeating the name).
    pub fn one_line(&self) -> String {
        let text = match self {
            CallError::Daemon { message, .. } => message.clone(),
            other => other.to_string(),
        };
        text.replace('\n', " ").trim().to_owned()
    }
}

impl From<perch_client::Error> for CallError {
    fn from(e: perch_client::Error) -> Self {
        CallError::Daemon {
            name: e.name().to_owned(),
            message: e.message(),
        }
    }
}

impl From<zbus::Error> for CallError {
    fn from(e: zbus::Error) -> Self {
        perch_client::Error::from(e).into()
    }
}

impl From<gstreamer::glib::BoolError> for CallError {
    fn from(e: gstreamer::glib::BoolError) -> Self {
        CallError::Pipeline(e.to_string())
    }
}

pub type Result<T, E = CallError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ended_names_reason_and_text_on_one_line() {
        let e = CallError::Ended {
            reason: "decline".into(),
            text: Some("not now\nsorry".into()),
        };
        assert_eq!(e.name(), "CallEnded");
        assert_eq!(
            e.one_line(),
            "the call ended before it connected: decline (not now sorry)"
        );
    }

    #[test]
    fn daemon_errors_keep_their_name() {
        let e = CallError::Daemon {
            name: "NotFound".into(),
            message: "no such profile".into(),
        };
        assert_eq!(e.name(), "NotFound");
        assert_eq!(e.one_line(), "no such profile");
    }
}
