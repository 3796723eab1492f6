//! XEP-0066: Out of Band Data — links in messages as attachments, and `file_get`.
//!
//! Why it is shaped this way:
//! - **Attachments are read when the message is stored** (`message.stored`): each
//!   `<x xmlns='jabber:x:oob'><url/></x>` is one, and so is a body that is nothing
//!   but an https URL (what clients without OOB send). They go into the stored
//!   message's `extra.attachments` as `{url, name, size?, media_type?}`; nothing is
//!   downloaded unasked.
//! - **Downloads on request, to disk.** `file_get` checks the URL and the first
//!   answer at once (an unreachable server, an untrusted certificate, an HTTP error
//!   or a declared size over the cap are the action's typed errors), then the body
//!   streams to a `.part` file beside the destination, hashed on the way, as a job;
//!   past the cap the transfer stops and the part is removed. The finished file is
//!   renamed into place and its SHA-256 is the job's result.
//! - **The cap** is the action's `max_size`, else the plugin's `max_download_size`
//!   option (default 100 MiB).
//! - **Where:** `dest` (a file, or a folder to put it in), else
//!   `<data dir>/plugins/XEP-0066/<profile>/` under its URL's name, made unique.
//! - `jabber:x:oob` is announced: links we receive this way are read.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use perch_actions::files::{Attachment, Downloaded, FileGet, FileGetArgs, Transfer};
use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::message::Message;
use perch_plugin_api::points::{MessageStored, StoredMessage};
use perch_plugin_api::{
    BuildResult, Flow, Host, HostError, JobHandle, Plugin, PluginFactory, PluginInfo, Serve,
    Signals, StanzaError,
};
use tokio::io::AsyncWriteExt;

use crate::http;
use crate::transfer::{self, Digest, Meter};

pub const IMPORT_NAME: &str = "XEP-0066";
/// Out-of-band data in messages.
pub const NS: &str = "jabber:x:oob";
/// The key of a stored message's `extra` that lists its files.
pub const EXTRA_KEY: &str = "attachments";
/// The cap when neither the action nor the options give one.
pub const DEFAULT_MAX: u64 = 100 * 1024 * 1024;
/// How long the body may stay silent.
const IDLE: Duration = Duration::from_secs(60);

/// `<x xmlns='jabber:x:oob'><url>…</url></x>`.
pub fn oob(url: &str) -> Element {
    Element::builder("x", NS)
        .append(Element::builder("url", NS).append(url).build())
        .build()
}

fn is_url(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://"))
        && !s.chars().any(char::is_whitespace)
        && http::target(s).is_ok()
}

/// The files a message links: its OOB URLs, else a body that is exactly an https URL.
pub fn attachments(m: &Message) -> Vec<Attachment> {
    let mut out: Vec<Attachment> = m
        .payloads
        .iter()
        .filter(|p| p.is("x", NS))
        .filter_map(|x| x.get_child("url", NS).map(Element::text))
        .map(|u| u.trim().to_owned())
        .filter(|u| is_url(u))
        .map(|url| attachment(&url))
        .collect();
    if out.is_empty()
        && let Some((_, body)) = m.get_best_body(vec![])
    {
        let body = body.trim();
        if body.starts_with("https://") && is_url(body) {
            out.push(attachment(body));
        }
    }
    out.dedup_by(|a, b| a.url == b.url);
    out
}

fn attachment(url: &str) -> Attachment {
    let name = transfer::name_of_url(url);
    Attachment {
        url: url.to_owned(),
        media_type: Some(transfer::media_type(&name).to_owned()),
        name,
        size: None,
    }
}

/// `message.stored`: lists the message's files in its `extra.attachments`.
fn on_stored(host: Arc<dyn Host>, args: &mut StoredMessage) -> BoxFuture<'_, Flow<()>> {
    let found = attachments(&args.message);
    let (profile, id) = (args.profile.clone(), args.id.clone());
    async move {
        if found.is_empty() {
            return Flow::Continue;
        }
        let list = serde_json::to_value(&found).unwrap_or_default();
        if let Err(e) = host.set_message_extra(&profile, &id, EXTRA_KEY, list).await {
            tracing::warn!(%profile, %id, error = %e, "storing a message's attachments failed");
        }
        Flow::Continue
    }
    .boxed()
}

pub struct Links {
    host: Arc<dyn Host>,
    /// The cap when the action gives none.
    max: u64,
}

impl Plugin for Links {}

fn too_large(url: &str, size: u64, limit: u64) -> HostError {
    HostError::Stanza(StanzaError::new(
        "not-acceptable",
        Some(format!(
            "{url} is {size} bytes or more, over the download limit of {limit} bytes"
        )),
    ))
}

/// Where the file goes: `dest` (a folder: in it), else the plugin's folder for the
/// profile; an existing file is not overwritten unless `dest` names it.
async fn destination(
    host: &dyn Host,
    profile: &str,
    dest: Option<&str>,
    name: &str,
) -> Result<PathBuf, HostError> {
    let io = |p: &Path, e: std::io::Error| HostError::BadArgument(format!("dest {p:?}: {e}"));
    let dir = match dest {
        Some(d) if !Path::new(d).is_dir() => return Ok(PathBuf::from(d)),
        Some(d) => PathBuf::from(d),
        None => host
            .files_dir()
            .ok_or_else(|| HostError::BadArgument("dest: perchd keeps no files; give one".into()))?
            .join(transfer::safe_name(profile)),
    };
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| io(&dir, e))?;
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s.to_owned(), format!(".{e}")),
        _ => (name.to_owned(), String::new()),
    };
    let mut path = dir.join(name);
    let mut n = 1;
    while tokio::fs::try_exists(&path).await.unwrap_or(false) {
        path = dir.join(format!("{stem}-{n}{ext}"));
        n += 1;
    }
    Ok(path)
}

/// Streams the body to `part`, hashing; stops past `max`.
async fn write_body(
    mut body: Incoming,
    part: &Path,
    max: u64,
    url: &str,
    meter: &Meter,
    hash: &Digest,
) -> Result<u64, HostError> {
    let io = |e: std::io::Error| HostError::Internal(format!("writing {part:?}: {e}"));
    let mut out = tokio::fs::File::create(part).await.map_err(io)?;
    let mut total = 0u64;
    loop {
        let frame = tokio::time::timeout(IDLE, body.frame())
            .await
            .map_err(|_| HostError::Timeout(format!("{url}: no data for {}s", IDLE.as_secs())))?;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| HostError::Unreachable {
            host: url.to_owned(),
            reason: format!("the download broke off: {e}"),
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total += data.len() as u64;
        if total > max {
            return Err(too_large(url, total, max));
        }
        hash.lock().unwrap_or_else(|e| e.into_inner()).update(&data);
        out.write_all(&data).await.map_err(io)?;
        meter.done.store(total, Ordering::Relaxed);
    }
    out.flush().await.map_err(io)?;
    out.sync_all().await.map_err(io)?;
    Ok(total)
}

/// One download's settled facts.
struct Fetch {
    profile: String,
    url: String,
    path: PathBuf,
    max: u64,
    media_type: Option<String>,
}

/// The job: body to disk, then renamed into place.
async fn download_job(
    host: Arc<dyn Host>,
    f: Fetch,
    body: Incoming,
    total: Option<u64>,
    job: JobHandle,
) {
    let meter = Meter::new(&f.profile, "download", &f.url, total);
    let hash = transfer::digest();
    let part = f.path.with_extension(match f.path.extension() {
        Some(e) => format!("{}.part", e.to_string_lossy()),
        None => "part".into(),
    });
    let work = write_body(body, &part, f.max, &f.url, &meter, &hash);
    let written = match meter.drive(&*host, &job, work).await {
        Ok(n) => tokio::fs::rename(&part, &f.path)
            .await
            .map(|()| n)
            .map_err(|e| HostError::Internal(format!("renaming {part:?}: {e}"))),
        Err(e) => Err(e),
    };
    match written {
        Ok(size) => {
            let done = Downloaded {
                url: f.url.clone(),
                path: f.path.display().to_string(),
                size,
                sha256: transfer::hex(&hash),
                media_type: f.media_type,
            };
            tracing::info!(profile = %f.profile, url = %f.url, size, "downloaded");
            job.finish(serde_json::to_value(&done).unwrap_or_default())
                .await;
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&part).await;
            tracing::warn!(profile = %f.profile, url = %f.url, error = %e, "download failed");
            job.fail(&e.to_string()).await;
        }
    }
}

/// `file_get`.
async fn file_get(l: Arc<Links>, profile: String, a: FileGetArgs) -> Result<Transfer, HostError> {
    let t = http::target(&a.url)?;
    let max = a.max_size.unwrap_or(l.max);
    let tls = l.host.tls_config(&profile).await?;
    let req = hyper::Request::get(http::origin(&t))
        .header(hyper::header::HOST, http::authority(&t))
        .body(Empty::new().map_err(|never| match never {}).boxed())
        .map_err(|e| HostError::BadArgument(format!("url {:?}: {e}", a.url)))?;
    let resp = http::send(tls, &t, req).await?;
    if !resp.status().is_success() {
        return Err(http::status_error(resp.status(), &a.url));
    }
    let total = resp
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(size) = total.filter(|s| *s > max) {
        return Err(too_large(&a.url, size, max));
    }
    let media_type = resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let name = transfer::name_of_url(&a.url);
    let path = destination(&*l.host, &profile, a.dest.as_deref(), &name).await?;
    let job = l
        .host
        .start_job(&profile, "download", &format!("downloading {}", a.url))
        .await?;
    let answer = Transfer {
        job: job.id().to_owned(),
        url: a.url.clone(),
        name,
        size: total,
        path: Some(path.display().to_string()),
    };
    let fetch = Fetch {
        profile,
        url: a.url,
        path,
        max,
        media_type,
    };
    tokio::spawn(download_job(
        l.host.clone(),
        fetch,
        resp.into_body(),
        total,
        job,
    ));
    Ok(answer)
}

/// What the daemon knows of it before building it.
pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "Out of Band Data",
    description: "Lists the files messages link as attachments; downloads them on request",
    dependencies: &[],
    recommendations: &["XEP-0030"],
    tables: &[],
    signals_as: None,
};

/// The plugin, built by the daemon with its host.
pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, build)
}

async fn build(host: Arc<dyn Host>) -> BuildResult {
    let max = host
        .options()
        .get("max_download_size")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(DEFAULT_MAX);
    let l = Arc::new(Links {
        host: host.clone(),
        max,
    });
    host.add_feature(NS);
    host.declare(perch_actions::files::FileProgress);
    host.triggers()
        .add_with::<MessageStored, _>(0, host.clone(), on_stored)?;
    host.serve(FileGet, l.clone(), file_get);
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(xml: &str) -> Message {
        let e: Element = xml.parse().expect("XML");
        Message::try_from(e).expect("a message")
    }

    #[test]
    fn oob_links_are_attachments() {
        let m = msg(
            "<message xmlns='jabber:client' from='a@x/r' to='b@x' type='chat'>\
               <body>look https://h/a.png</body>\
               <x xmlns='jabber:x:oob'><url>https://h/a.png</url></x>\
             </message>",
        );
        let found = attachments(&m);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].url, "https://h/a.png");
        assert_eq!(found[0].name, "a.png");
        assert_eq!(found[0].media_type.as_deref(), Some("image/png"));
        assert_eq!(
            String::from(&oob("https://h/a.png")),
            "<x xmlns='jabber:x:oob'><url>https://h/a.png</url></x>"
        );
    }

    #[test]
    fn a_bare_https_body_is_an_attachment_and_prose_is_not() {
        let bare = msg(
            "<message xmlns='jabber:client' from='a@x/r' type='chat'><body> https://h/s/f%20g.pdf </body></message>",
        );
        let found = attachments(&bare);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "f g.pdf");
        for body in ["see https://h/a.png", "http://h/a.png", "https://", "hello"] {
            let m = msg(&format!(
                "<message xmlns='jabber:client' from='a@x/r' type='chat'><body>{body}</body></message>"
            ));
            assert!(attachments(&m).is_empty(), "{body}");
        }
    }

    #[tokio::test]
    async fn a_stored_message_gets_its_attachments() {
        let host = perch_plugin_testing::MockServer::new().await;
        host.build(factory()).await;
        assert!(host.features().iter().any(|f| f == NS));
        let mut stored = StoredMessage {
            profile: perch_plugin_testing::PROFILE.into(),
            message: msg(
                "<message xmlns='jabber:client' from='a@x/r' type='chat' id='m1'>\
                   <body>https://h/a.png</body></message>",
            ),
            id: "m1".into(),
            source: perch_plugin_api::Source::Live,
        };
        host.fire::<MessageStored>(&mut stored).await;
        let calls = host.extra_calls();
        assert_eq!(calls.len(), 1, "{calls:?}");
        assert_eq!(calls[0].1, "m1");
        assert_eq!(calls[0].2, EXTRA_KEY);
        assert_eq!(
            calls[0].3,
            serde_json::json!([{"url": "https://h/a.png", "name": "a.png", "media_type": "image/png"}])
        );
    }
}
