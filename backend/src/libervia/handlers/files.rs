//! Files as Libervia 0.9 offers them: `fileUpload` (plugin `UPLOAD`, here over
//! XEP-0363 only) and `fileDownload` (plugin `DOWNLOAD`, an attachment's `uri`), on
//! the plugin interface, over perchd's `file_send` and `file_get` actions.
//!
//! 0.9's semantics, kept: both answer at once with `{"progress": id}` (the job's id;
//! its `progressStarted`, `progressFinished` and `progressError` follow, the upload's
//! finished metadata carrying the `url`; `progressGet` gives `{position, size}` while
//! it runs), and a failure is not an error but
//! `{"xmlui": …}`, a note saying why. `fileUpload` only uploads: no message is sent.
//! Not kept: the upload JID argument (the account's service is found by disco) and
//! the `ignore_tls_errors` option (the profile's TLS rules apply, as for its stream);
//! `fileDownload` without a destination writes under perchd's data dir, not
//! Libervia's cache.

use std::collections::HashMap;

use perch_actions::files::{FileGet, FileGetArgs, FileSend, FileSendArgs, Transfer};
use serde_json::Value;

use crate::libervia::actions::note;
use crate::libervia::context::Lib;
use crate::libervia::errors::LibError;
use crate::libervia::reply::{Answer, out};

use super::typed;

/// `{"progress": job}`, or `{"xmlui": note}` saying why it failed.
fn answer(started: Result<Transfer, LibError>, what: &str) -> HashMap<String, String> {
    match started {
        Ok(t) => HashMap::from([("progress".to_owned(), t.job)]),
        Err(e) => {
            let msg = format!("Can't {what} file: {}", e.body());
            tracing::warn!("{msg}");
            HashMap::from([(
                "xmlui".to_owned(),
                note(&format!("Can't {what} file"), "warning", &msg),
            )])
        }
    }
}

/// `fileUpload(filepath, filename, upload_jid, options, profile_key)`.
pub async fn upload(
    lib: &Lib,
    (path, name, _upload_jid, _options, key): (String, String, String, String, String),
) -> Answer {
    let p = lib.profile(&key).await?;
    let args = FileSendArgs {
        path,
        to: None,
        groupchat: false,
        name: (!name.is_empty()).then_some(name),
    };
    out(answer(typed::<FileSend>(lib, &p, args).await, "upload"))
}

/// `fileDownload(attachment, dest_path, extra, profile_key)`: the attachment's
/// `uri`; the answer is serialised JSON.
pub async fn download(
    lib: &Lib,
    (attachment, dest, _extra, key): (String, String, String, String),
) -> Answer {
    let p = lib.profile(&key).await?;
    let att: Value = serde_json::from_str(&attachment).unwrap_or(Value::Null);
    let started = match att["uri"].as_str() {
        Some(uri) => {
            let args = FileGetArgs {
                url: uri.to_owned(),
                dest: (!dest.is_empty()).then_some(dest),
                max_size: None,
            };
            typed::<FileGet>(lib, &p, args).await
        }
        None => Err(LibError::exc(
            crate::libervia::errors::DATA,
            "the attachment has no uri",
            "",
        )),
    };
    let a = answer(started, "download");
    out(serde_json::to_string(&a).unwrap_or_default())
}

/// `progressGet(id, profile)`: a running file job's `{position, size}` (bytes moved,
/// and the file's size when known), from its last progress record; `{}` for any
/// other id, as 0.9 answers for a progress it does not know.
pub async fn progress_get(lib: &Lib, (id, _profile): (String, String)) -> Answer {
    let mut data = HashMap::new();
    let running = match lib.daemon.job(&id).await {
        Ok(j) => j.state == "running" && (j.plugin == "XEP-0363" || j.plugin == "XEP-0066"),
        Err(_) => false,
    };
    if running && let Ok(log) = lib.daemon.job_log(&id).await {
        let last = log.last().map(|r| r.data.clone()).unwrap_or(Value::Null);
        data.insert(
            "position".to_owned(),
            last["done"].as_u64().unwrap_or(0).to_string(),
        );
        if let Some(size) = last["total"].as_u64() {
            data.insert("size".to_owned(), size.to_string());
        }
    }
    out(data)
}
