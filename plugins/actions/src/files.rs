//! Files: HTTP File Upload (XEP-0363), out-of-band links (XEP-0066) as attachments,
//! and downloads.
//!
//! Both transfers are jobs: the action checks what can be checked at once (the file,
//! the upload service and its size limit, the slot; the download's first answer) and
//! answers a [`Transfer`] with the job's id, then the bytes move in the background,
//! with [`FileProgress`] signals and the job's progress records. The job's result is
//! an [`Uploaded`] or a [`Downloaded`].

use serde::{Deserialize, Serialize};

use crate::signals::signal;
use crate::{ActionInfo, action, info};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSendArgs {
    /// The file to upload (a path perchd can read).
    pub path: String,
    /// Whom to send the link to, once uploaded; none: upload only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `to` is a room.
    #[serde(default)]
    pub groupchat: bool,
    /// The name to upload it under; none: the file's own name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileGetArgs {
    /// The file's URL (https, or http).
    pub url: String,
    /// Where to write it; none: under perchd's data dir (`files/<profile>/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest: Option<String>,
    /// The most bytes to accept; none: the plugin's `max_download_size` option
    /// (default 100 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
}

/// A transfer under way: its job, and what is known of the file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// The job to follow (`JobGet`, `Progress*` signals, [`FileProgress`]).
    pub job: String,
    /// The file's URL (for an upload: where it will be downloadable).
    pub url: String,
    /// The file's name.
    pub name: String,
    /// Its size in bytes, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Where it is written to (downloads only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

action!(
    /// Uploads a file to the account's upload service (XEP-0363) and, with `to`, sends
    /// its link (body and XEP-0066 `<x/>`). A file over the service's limit is refused
    /// before anything is sent, as `NotAcceptable` naming the limit.
    FileSend = "file_send", FileSendArgs => Transfer,
    "Uploads a file over HTTP File Upload (XEP-0363) as a job; with to, then sends its URL (XEP-0066). Answers {job, url, name, size}; the job's result: {url, name, size, media_type, sha256, message}",
    [
        req("path", String, "the file to upload"),
        opt("to", Jid, "the contact or room to send the link to (none: upload only)"),
        opt("groupchat", Boolean, "to is a room").or("false"),
        opt("name", String, "the name to upload it under (none: the file's name)"),
    ]
);

action!(
    /// Downloads a file to disk as a job, streamed, with its SHA-256 in the result; a
    /// file larger than `max_size` is refused (`NotAcceptable`), a part written is
    /// removed.
    FileGet = "file_get", FileGetArgs => Transfer,
    "Downloads a file (https, verified as the profile's XMPP stream is) to dest or under the data dir, as a job with a size cap. Answers {job, url, name, size?, path}; the job's result: {url, path, size, sha256, media_type}",
    [
        req("url", String, "the file's URL"),
        opt("dest", String, "where to write it (none: under the data dir)"),
        opt("max_size", Integer, "the most bytes to accept (none: the plugin's max_download_size, 100 MiB)"),
    ],
    no_session
);

pub(crate) fn all() -> Vec<ActionInfo> {
    vec![info::<FileSend>(), info::<FileGet>()]
}

/// A file linked from a message: what `extra.attachments` lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub url: String,
    /// The file's name (the URL's last segment when nothing better is known).
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

/// The result of a finished upload job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uploaded {
    pub url: String,
    pub name: String,
    pub size: u64,
    pub media_type: String,
    /// Hex SHA-256 of what was sent.
    pub sha256: String,
    /// The id of the message that carried the link, when one was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The result of a finished download job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Downloaded {
    pub url: String,
    pub path: String,
    pub size: u64,
    /// Hex SHA-256 of what was written.
    pub sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

/// How far a transfer is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub job: String,
    /// `upload` or `download`.
    pub direction: String,
    pub url: String,
    /// Bytes moved so far.
    pub done: u64,
    /// The file's size, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

signal!(
    /// A transfer moved on (at most a few times a second, and at its end).
    FileProgress = "file_progress", Progress,
    "an upload or download moved on: {job, direction: upload|download, url, done, total?}"
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_options_stay_off_the_wire() {
        let a = FileSendArgs {
            path: "/tmp/a.png".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&a).expect("serialises"),
            json!({"path": "/tmp/a.png", "groupchat": false})
        );
        let g: FileGetArgs =
            serde_json::from_value(json!({"url": "https://x/a", "max_size": 10})).expect("parses");
        assert_eq!(g.max_size, Some(10));
        let att = Attachment {
            url: "https://x/a.png".into(),
            name: "a.png".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(att).expect("serialises"),
            json!({"url": "https://x/a.png", "name": "a.png"})
        );
    }
}
