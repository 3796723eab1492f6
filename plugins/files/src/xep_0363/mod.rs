//! XEP-0363: HTTP File Upload — `file_send`.
//!
//! Why it is shaped this way:
//! - **Refused before anything moves.** The action checks the file, finds the
//!   account's upload service (disco#items of the server, the item whose disco#info
//!   has `urn:xmpp:http:upload:0`), compares the size with the service's
//!   `max-file-size` and asks for a slot; each refusal is the action's typed error
//!   (an oversized file is `NotAcceptable`, naming the limit), and nothing is
//!   uploaded or sent. Only then does the upload start, as a job.
//! - **Streamed.** The PUT's body is read from disk [`CHUNK`](crate::transfer::CHUNK)
//!   by chunk, hashed on the way; the whole file is never in memory.
//! - **The stream's trust.** The PUT's TLS uses the profile's XMPP TLS configuration
//!   (`Host::tls_config`): its CA file, or no verification when it is `insecure`.
//! - **The slot's headers, and only those XEP-0363 allows** (`Authorization`,
//!   `Cookie`, `Expires`): Prosody's `http_file_share` answers 401 without its
//!   `Authorization`.
//! - **The link is an ordinary message.** With `to`, the URL goes as the body with a
//!   XEP-0066 `<x/>`, through `Host::send_message` (stored, queued like any sent
//!   message), and the stored message's `extra.attachments` lists the file.
//! - **The service is looked up once per session**, and forgotten when the session
//!   ends (another server, another service).
//! - Nothing is announced in disco: an upload client has no feature to announce
//!   (the out-of-band links it sends are `jabber:x:oob`, announced by XEP-0066).

pub mod slot;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use perch_actions::files::{Attachment, FileSend, FileSendArgs, Transfer, Uploaded};
use perch_plugin_api::action::jid_arg;
use perch_plugin_api::jid::Jid;
use perch_plugin_api::parsers::message::{Lang, Message, MessageType};
use perch_plugin_api::{
    BuildResult, Host, HostError, JobHandle, Plugin, PluginFactory, PluginInfo, Serve, Signals,
    StanzaError,
};
use tokio::io::AsyncReadExt;

use crate::http;
use crate::transfer::{self, CHUNK, Digest, Meter};
use crate::xep_0066;
pub use slot::{NS, Service, Slot};

pub const IMPORT_NAME: &str = "XEP-0363";

pub struct Upload {
    host: Arc<dyn Host>,
    /// profile → the service found in this session.
    services: Mutex<HashMap<String, Service>>,
}

/// A file to upload, checked.
#[derive(Debug, Clone)]
struct Local {
    path: std::path::PathBuf,
    name: String,
    size: u64,
    media_type: String,
}

/// An oversized file, refused naming the limit.
fn too_large(name: &str, size: u64, s: &Service, limit: u64) -> HostError {
    HostError::Stanza(StanzaError::new(
        "not-acceptable",
        Some(format!(
            "{name} is {size} bytes, over the upload service's limit of {limit} bytes ({})",
            s.jid
        )),
    ))
}

fn no_service() -> HostError {
    HostError::Stanza(StanzaError::new(
        "feature-not-implemented",
        Some(format!(
            "the server offers no HTTP File Upload service (XEP-0363, {NS})"
        )),
    ))
}

async fn local_file(path: &str, name: Option<&str>) -> Result<Local, HostError> {
    let bad = |why: String| HostError::BadArgument(format!("path {path:?}: {why}"));
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad("not a file".into()));
    }
    let own = std::path::Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = transfer::safe_name(name.unwrap_or(&own));
    Ok(Local {
        path: path.into(),
        media_type: transfer::media_type(&name).to_owned(),
        name,
        size: meta.len(),
    })
}

impl Upload {
    /// The account's upload service: disco#items of the server, then each item's
    /// disco#info, until one has the feature.
    async fn service(&self, profile: &str) -> Result<Service, HostError> {
        if let Some(s) = self.cached(profile) {
            return Ok(s);
        }
        let items = self
            .host
            .iq(
                profile,
                domain(&*self.host, profile).await,
                false,
                slot::items_query(),
            )
            .await?
            .map(|e| slot::item_jids(&e))
            .unwrap_or_default();
        for jid in items {
            let Ok(to) = Jid::new(&jid) else { continue };
            match self
                .host
                .iq(profile, Some(to), false, slot::info_query())
                .await
            {
                Ok(Some(info)) => {
                    if let Some(s) = slot::service(&jid, &info) {
                        tracing::info!(%profile, service = %s.jid, max = ?s.max_size, "upload service found");
                        self.services
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(profile.to_owned(), s.clone());
                        return Ok(s);
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(%profile, %jid, error = %e, "disco#info of a server item failed")
                }
            }
        }
        Err(no_service())
    }

    fn cached(&self, profile: &str) -> Option<Service> {
        self.services
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(profile)
            .cloned()
    }

    /// Asks `service` for a slot for `file`.
    async fn slot(&self, profile: &str, s: &Service, file: &Local) -> Result<Slot, HostError> {
        let to = jid_arg("service", &s.jid)?;
        let req = slot::request(&file.name, file.size, &file.media_type);
        let answer = self.host.iq(profile, Some(to), false, req).await?;
        slot::parse(&answer.ok_or_else(|| HostError::Xmpp("the slot answer is empty".into()))?)
    }
}

/// Our server's domain (`None`: let the session address our own account's server).
async fn domain(host: &dyn Host, profile: &str) -> Option<Jid> {
    let bound = host.bound_jid(profile).await?;
    Jid::new(bound.domain().as_str()).ok()
}

/// The file as a streamed body: read by chunks, counted and hashed on the way.
fn file_body(file: tokio::fs::File, meter: &Meter, hash: Digest) -> http::Body {
    let done = meter.done.clone();
    let chunks = futures::stream::unfold(Some(file), move |state| {
        let (done, hash) = (done.clone(), hash.clone());
        async move {
            let mut file = state?;
            let mut buf = vec![0u8; CHUNK];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    hash.lock().unwrap_or_else(|e| e.into_inner()).update(&buf);
                    done.fetch_add(n as u64, Ordering::Relaxed);
                    Some((Ok(Frame::data(Bytes::from(buf))), Some(file)))
                }
                Err(e) => Some((Err(e), None)),
            }
        }
    });
    StreamBody::new(chunks).boxed()
}

/// PUTs the file to the slot.
async fn put(
    host: &dyn Host,
    profile: &str,
    file: &Local,
    slot: &Slot,
    meter: &Meter,
    hash: Digest,
) -> Result<(), HostError> {
    let t = http::target(&slot.put)?;
    let tls = host.tls_config(profile).await?;
    let f = tokio::fs::File::open(&file.path)
        .await
        .map_err(|e| HostError::BadArgument(format!("path {:?}: {e}", file.path)))?;
    let mut req = hyper::Request::put(http::origin(&t))
        .header(hyper::header::HOST, http::authority(&t))
        .header(hyper::header::CONTENT_LENGTH, file.size)
        .header(hyper::header::CONTENT_TYPE, file.media_type.as_str());
    for (name, value) in &slot.headers {
        req = req.header(name.as_str(), value.as_str());
    }
    let req = req
        .body(file_body(f, meter, hash))
        .map_err(|e| HostError::Xmpp(format!("the slot's PUT request: {e}")))?;
    let resp = http::send(tls, &t, req).await?;
    let status = resp.status();
    // Read the answer to its end: the connection closes cleanly.
    let _ = resp.into_body().collect().await;
    if !status.is_success() {
        return Err(http::status_error(status, &slot.put));
    }
    Ok(())
}

/// The link's message: the URL as body, with XEP-0066's `<x/>`.
fn link_message(to: Jid, url: &str, groupchat: bool) -> Message {
    let kind = if groupchat {
        MessageType::Groupchat
    } else {
        MessageType::Chat
    };
    let mut m =
        Message::new_with_type(kind, Some(to)).with_body(Lang(String::new()), url.to_owned());
    m.payloads.push(xep_0066::oob(url));
    m
}

/// What the job does once the slot is there: upload, then send the link.
async fn upload_job(
    host: Arc<dyn Host>,
    profile: String,
    file: Local,
    slot: Slot,
    to: Option<(Jid, bool)>,
    job: JobHandle,
) {
    let meter = Meter::new(&profile, "upload", &slot.get, Some(file.size));
    let hash = transfer::digest();
    let work = put(&*host, &profile, &file, &slot, &meter, hash.clone());
    if let Err(e) = meter.drive(&*host, &job, work).await {
        tracing::warn!(%profile, file = %file.name, error = %e, "upload failed");
        job.fail(&e.to_string()).await;
        return;
    }
    let mut done = Uploaded {
        url: slot.get.clone(),
        name: file.name.clone(),
        size: file.size,
        media_type: file.media_type.clone(),
        sha256: transfer::hex(&hash),
        message: None,
    };
    tracing::info!(%profile, file = %file.name, size = file.size, "uploaded");
    if let Some((to, groupchat)) = to {
        match send_link(&*host, &profile, to, &done, groupchat).await {
            Ok(id) => done.message = Some(id),
            Err(e) => {
                job.fail(&format!(
                    "uploaded to {}, but sending the link failed: {e}",
                    done.url
                ))
                .await;
                return;
            }
        }
    }
    job.finish(serde_json::to_value(&done).unwrap_or_default())
        .await;
}

/// Sends the link and lists the file in the stored message's `extra.attachments`.
async fn send_link(
    host: &dyn Host,
    profile: &str,
    to: Jid,
    up: &Uploaded,
    groupchat: bool,
) -> Result<String, HostError> {
    let sent = host
        .send_message(profile, link_message(to, &up.url, groupchat))
        .await?;
    let att = Attachment {
        url: up.url.clone(),
        name: up.name.clone(),
        size: Some(up.size),
        media_type: Some(up.media_type.clone()),
    };
    let list = serde_json::to_value([att]).unwrap_or_default();
    host.set_message_extra(profile, &sent.id, xep_0066::EXTRA_KEY, list)
        .await?;
    Ok(sent.id)
}

/// `file_send`.
async fn file_send(
    u: Arc<Upload>,
    profile: String,
    a: FileSendArgs,
) -> Result<Transfer, HostError> {
    let to = a.to.as_deref().map(|t| jid_arg("to", t)).transpose()?;
    let file = local_file(&a.path, a.name.as_deref()).await?;
    let service = u.service(&profile).await?;
    if let Some(limit) = service.max_size.filter(|l| file.size > *l) {
        return Err(too_large(&file.name, file.size, &service, limit));
    }
    let slot = u.slot(&profile, &service, &file).await?;
    let job = u
        .host
        .start_job(&profile, "upload", &format!("uploading {}", file.name))
        .await?;
    let answer = Transfer {
        job: job.id().to_owned(),
        url: slot.get.clone(),
        name: file.name.clone(),
        size: Some(file.size),
        path: None,
    };
    tokio::spawn(upload_job(
        u.host.clone(),
        profile,
        file,
        slot,
        to.map(|t| (t, a.groupchat)),
        job,
    ));
    Ok(answer)
}

impl Plugin for Upload {
    fn session_ended(self: Arc<Self>, profile: String) -> BoxFuture<'static, ()> {
        async move {
            self.services
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&profile);
        }
        .boxed()
    }
}

/// What the daemon knows of it before building it.
pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "HTTP File Upload",
    description: "Uploads files to the account's upload service and sends their links",
    dependencies: &[],
    recommendations: &["XEP-0030", xep_0066::IMPORT_NAME],
    tables: &[],
    signals_as: None,
};

/// The plugin, built by the daemon with its host.
pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, build)
}

async fn build(host: Arc<dyn Host>) -> BuildResult {
    let u = Arc::new(Upload {
        host: host.clone(),
        services: Mutex::new(HashMap::new()),
    });
    host.declare(perch_actions::files::FileProgress);
    host.serve(FileSend, u.clone(), file_send);
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;
    use perch_plugin_api::minidom::Element;

    #[test]
    fn the_link_message_carries_the_url_twice() {
        let m = link_message("b@x".parse().expect("jid"), "https://h/a.png", false);
        let xml = String::from(&Element::from(m));
        assert!(xml.contains("<body>https://h/a.png</body>"), "{xml}");
        assert!(
            xml.contains("<x xmlns='jabber:x:oob'><url>https://h/a.png</url></x>"),
            "{xml}"
        );
    }

    #[test]
    fn an_oversized_file_names_the_limit() {
        let s = Service {
            jid: "upload.localhost".into(),
            max_size: Some(10),
        };
        let e = too_large("a.bin", 11, &s, 10);
        let text = e.to_string();
        assert!(text.contains("limit of 10 bytes"), "{text}");
        assert!(matches!(e, HostError::Stanza(s) if s.condition == "not-acceptable"));
    }

    const ITEMS: &str = "<query xmlns='http://jabber.org/protocol/disco#items'>\
                           <item jid='muc.example.org'/><item jid='upload.example.org'/></query>";
    const MUC: &str = "<query xmlns='http://jabber.org/protocol/disco#info'>\
                         <feature var='http://jabber.org/protocol/muc'/></query>";
    const UPLOAD: &str = "<query xmlns='http://jabber.org/protocol/disco#info'>\
         <feature var='urn:xmpp:http:upload:0'/>\
         <x xmlns='jabber:x:data' type='result'>\
           <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:http:upload:0</value></field>\
           <field var='max-file-size'><value>10</value></field></x></query>";

    #[tokio::test]
    async fn a_file_over_the_limit_is_refused_before_any_slot() {
        let host = perch_plugin_testing::MockServer::new().await;
        host.build(factory()).await;
        host.script_iq("query", "http://jabber.org/protocol/disco#items", ITEMS);
        host.script_iq("query", "http://jabber.org/protocol/disco#info", MUC);
        host.script_iq("query", "http://jabber.org/protocol/disco#info", UPLOAD);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("eleven.bin");
        std::fs::write(&path, [0u8; 11]).expect("written");
        let e = host
            .action(
                "file_send",
                serde_json::json!({"path": path.display().to_string(), "to": "b@example.org"}),
            )
            .await
            .expect_err("refused");
        assert!(
            matches!(&e, HostError::Stanza(s) if s.condition == "not-acceptable"),
            "{e:?}"
        );
        assert!(
            e.to_string().contains(
                "11 bytes, over the upload service's limit of 10 bytes (upload.example.org)"
            ),
            "{e}"
        );
        assert!(
            host.iqs().iter().all(|iq| !iq.payload.is("request", NS)),
            "a slot was asked for"
        );
        assert!(host.jobs().is_empty() && host.sent().is_empty());
    }

    #[tokio::test]
    async fn no_upload_service_is_feature_not_implemented() {
        let host = perch_plugin_testing::MockServer::new().await;
        host.build(factory()).await;
        host.script_iq(
            "query",
            "http://jabber.org/protocol/disco#items",
            "<query xmlns='http://jabber.org/protocol/disco#items'><item jid='muc.example.org'/></query>",
        );
        host.script_iq("query", "http://jabber.org/protocol/disco#info", MUC);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.txt");
        std::fs::write(&path, b"hi").expect("written");
        let e = host
            .action(
                "file_send",
                serde_json::json!({"path": path.display().to_string()}),
            )
            .await
            .expect_err("refused");
        assert!(
            matches!(&e, HostError::Stanza(s) if s.condition == "feature-not-implemented"),
            "{e:?}"
        );
        let missing = host
            .action("file_send", serde_json::json!({"path": "/nonexistent/x"}))
            .await
            .expect_err("refused");
        assert!(matches!(missing, HostError::BadArgument(m) if m.contains("/nonexistent/x")));
    }
}
