//! XEP-0084: User Avatar, over PEP, with XEP-0153 (the avatar's hash in presences,
//! the image in the vCard) for clients that only have that.
//!
//! Why it is shaped this way:
//! - **Files, named by hash.** An avatar's id is the SHA-1 of its image; the image is
//!   kept once under that name (`store`), and each profile's table row says which
//!   hash a JID shows. A frontend gets a path, never base64 over D-Bus.
//! - **Checked, not trusted.** What a contact publishes is kept only when its bytes
//!   hash to the id it was announced with, are at most [`image::MAX_BYTES`] and
//!   start as an image; anything else is logged and dropped.
//! - **Off the inbox.** A notification (PEP `+notify`) or a presence hash that names
//!   an image we lack starts a task that asks for it: the session's inbox never
//!   waits for an IQ answer.
//! - **Ours, published open.** `avatar_set` publishes the data then the metadata
//!   node with `access_model=open` (anyone may see an avatar, as other clients
//!   publish it), and our broadcast presences carry its hash (XEP-0153).

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use futures::FutureExt;
use futures::future::BoxFuture;
use perch_actions::identity::{
    Avatar, AvatarChange, AvatarChanged, AvatarGet, AvatarGetArgs, AvatarSet, AvatarSetArgs,
};
use perch_codec::dom::Attr;
use perch_codec::xep_0060::xml as pubsub;
use perch_plugin_api::action::jid_arg;
use perch_plugin_api::jid::{BareJid, Jid};
use perch_plugin_api::minidom::Element;
use perch_plugin_api::points::{
    IncomingMessage, IncomingPresence, MessageReceived, OutgoingPresence, PresenceReceived,
    PresenceSend,
};
use perch_plugin_api::{
    BuildResult, Flow, Host, HostError, Plugin, PluginFactory, PluginInfo, Serve, Signals,
};
use serde_json::{Map, Value, json};

use crate::store::{self, Kept};
use crate::{image, xep_0054};

pub const IMPORT_NAME: &str = "XEP-0084";
pub const NS_DATA: &str = "urn:xmpp:avatar:data";
pub const NS_METADATA: &str = "urn:xmpp:avatar:metadata";
/// XEP-0153's presence payload.
pub const NS_UPDATE: &str = "vcard-temp:x:update";
const NS_EVENT: &str = "http://jabber.org/protocol/pubsub#event";

/// Before the pubsub plugin (50), which takes every notification.
const PRIORITY: i32 = 60;

pub struct Avatars {
    host: Arc<dyn Host>,
    /// (profile, bare JID) → the hash kept for it, as last seen: a presence
    /// repeating it (most of them) costs no database read.
    seen: std::sync::Mutex<std::collections::HashMap<(String, String), String>>,
}

impl Plugin for Avatars {}

pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "User Avatar",
    description: "Avatars: ours published (XEP-0084), contacts' fetched and kept by hash \
                  (XEP-0084, XEP-0153)",
    dependencies: &[xep_0054::IMPORT_NAME],
    recommendations: &["XEP-0115"],
    tables: &["avatar"],
    signals_as: None,
};

pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, build)
}

async fn build(host: Arc<dyn Host>) -> BuildResult {
    let me = Arc::new(Avatars {
        host: host.clone(),
        seen: std::sync::Mutex::default(),
    });
    host.add_feature(NS_METADATA);
    host.add_feature(&format!("{NS_METADATA}+notify"));
    host.declare(AvatarChanged);
    host.serve(AvatarSet, me.clone(), avatar_set);
    host.serve(AvatarGet, me.clone(), avatar_get);
    let t = host.triggers();
    t.add_with::<MessageReceived, _>(PRIORITY, me.clone(), |me, args| {
        me.on_message(args);
        async { Flow::Continue }.boxed()
    })?;
    t.add_with::<PresenceReceived, _>(PRIORITY, me.clone(), |me, args| {
        me.on_presence(args);
        async { Flow::Continue }.boxed()
    })?;
    t.add_with::<PresenceSend, _>(0, me.clone(), on_send)?;
    Ok(me)
}

/// What a metadata item says: `Some(id, type)`, or `None` (avatar disabled).
pub fn read_metadata(metadata: &Element) -> Option<(String, String)> {
    let info = metadata.get_child("info", NS_METADATA)?;
    let id = info.attr("id").filter(|id| image::is_hash(id))?;
    Some((
        id.to_ascii_lowercase(),
        info.attr("type").unwrap_or("image/png").to_owned(),
    ))
}

/// The metadata item of an avatar.
pub fn metadata(hash: &str, media_type: &str, bytes: usize) -> Element {
    Element::builder("metadata", NS_METADATA)
        .append(
            Element::builder("info", NS_METADATA)
                .a("id", hash)
                .a("bytes", bytes.to_string())
                .a("type", media_type)
                .build(),
        )
        .build()
}

fn open_access() -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("pubsub#access_model".into(), json!("open"));
    o
}

/// An image as received or read: checked (type, size, hash).
fn checked(data: &[u8], expected: Option<&str>) -> Result<(String, &'static str), String> {
    if data.len() > image::MAX_BYTES {
        return Err(format!(
            "{} bytes, more than the {} an avatar may have",
            data.len(),
            image::MAX_BYTES
        ));
    }
    let kind = image::media_type(data).ok_or("not a PNG, JPEG, GIF or WebP image")?;
    let hash = image::sha1_hex(data);
    match expected {
        Some(e) if !e.eq_ignore_ascii_case(&hash) => {
            Err(format!("its SHA-1 is {hash}, not the announced {e}"))
        }
        _ => Ok((hash, kind)),
    }
}

impl Avatars {
    fn dir(&self) -> Result<PathBuf, HostError> {
        self.host
            .files_dir()
            .ok_or_else(|| HostError::Internal("no directory for avatar files".into()))
    }

    /// A contact's metadata notification: its avatar changed (or was disabled).
    fn on_message(self: &Arc<Self>, args: &IncomingMessage) {
        let Some(from) = args.message.from.as_ref().map(Jid::to_bare) else {
            return;
        };
        let items = args
            .message
            .payloads
            .iter()
            .filter(|p| p.is("event", NS_EVENT))
            .flat_map(Element::children)
            .find(|i| i.is("items", NS_EVENT) && i.attr("node") == Some(NS_METADATA));
        let Some(items) = items else {
            return;
        };
        let Some(m) = items
            .children()
            .filter_map(|i| i.get_child("metadata", NS_METADATA))
            .last()
        else {
            return;
        };
        let hash = read_metadata(m).map(|(h, _)| h);
        self.spawn_refresh(args.profile.clone(), from, hash, Source::Pep);
    }

    /// A presence with an XEP-0153 hash we have not kept for its sender.
    fn on_presence(self: &Arc<Self>, args: &IncomingPresence) {
        let Some(from) = args.presence.from.as_ref().map(Jid::to_bare) else {
            return;
        };
        let photo = args
            .presence
            .payloads
            .iter()
            .find(|p| p.is("x", NS_UPDATE))
            .and_then(|x| x.get_child("photo", NS_UPDATE))
            .map(Element::text);
        // No `<photo/>`: the client is not telling; empty: no avatar; else its hash.
        match photo.as_deref().map(str::trim) {
            Some(h) if image::is_hash(h) => {
                let h = h.to_ascii_lowercase();
                if self.known(&args.profile, from.as_str()) == Some(h.clone()) {
                    return;
                }
                self.spawn_refresh(args.profile.clone(), from, Some(h), Source::Vcard);
            }
            _ => {}
        }
    }

    fn spawn_refresh(
        self: &Arc<Self>,
        profile: String,
        jid: BareJid,
        hash: Option<String>,
        from: Source,
    ) {
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.refresh(&profile, &jid, hash.as_deref(), from).await {
                tracing::info!(%profile, %jid, error = %e, "a contact's avatar was not kept");
            }
        });
    }

    /// Makes `jid`'s kept avatar the one of `hash` (`None`: none), fetching it when
    /// it is not the one kept.
    async fn refresh(
        &self,
        profile: &str,
        jid: &BareJid,
        hash: Option<&str>,
        from: Source,
    ) -> Result<(), HostError> {
        let pid = self.host.profile_id(profile).await?;
        let kept = store::get(self.host.store(), pid, jid.as_str()).await?;
        self.remember(profile, jid.as_str(), kept.as_ref().map(|k| k.hash.clone()));
        let Some(hash) = hash else {
            if from == Source::Pep && store::remove(self.host.store(), pid, jid.as_str()).await? {
                self.remember(profile, jid.as_str(), None);
                self.changed(profile, jid, None);
            }
            return Ok(());
        };
        if kept.as_ref().is_some_and(|k| k.hash == hash) {
            return Ok(());
        }
        let data = match from {
            Source::Pep => self.pep_data(profile, jid, hash).await?,
            Source::Vcard => self.vcard_data(profile, jid).await?,
        };
        self.keep(profile, pid, jid, &data, Some(hash)).await?;
        self.remember(profile, jid.as_str(), Some(hash.to_owned()));
        Ok(())
    }

    /// The hash last seen kept for `jid`, if any.
    fn known(&self, profile: &str, jid: &str) -> Option<String> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(&(profile.to_owned(), jid.to_owned())).cloned()
    }

    fn remember(&self, profile: &str, jid: &str, hash: Option<String>) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let key = (profile.to_owned(), jid.to_owned());
        match hash {
            Some(h) => seen.insert(key, h),
            None => seen.remove(&key),
        };
    }

    /// The image of item `hash` of `jid`'s data node.
    async fn pep_data(
        &self,
        profile: &str,
        jid: &BareJid,
        hash: &str,
    ) -> Result<Vec<u8>, HostError> {
        let request = pubsub::items(NS_DATA, None, &[hash.to_owned()], None);
        let reply = self
            .host
            .iq(profile, Some(jid.clone().into()), false, request)
            .await?;
        let text: String = reply
            .as_ref()
            .and_then(|p| p.get_child("items", pubsub::NS))
            .and_then(|i| i.get_child("item", pubsub::NS))
            .and_then(|i| i.get_child("data", NS_DATA))
            .map(Element::text)
            .ok_or_else(|| HostError::Xmpp(format!("{jid} sent no avatar data for {hash}")))?
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|e| HostError::Xmpp(format!("{jid}'s avatar data is not base64: {e}")))
    }

    /// The photo of `jid`'s vCard.
    async fn vcard_data(&self, profile: &str, jid: &BareJid) -> Result<Vec<u8>, HostError> {
        let vcard = xep_0054::fetch(&*self.host, profile, Some(jid.clone().into())).await?;
        vcard
            .as_ref()
            .and_then(xep_0054::photo)
            .map(|(data, _)| data)
            .ok_or_else(|| HostError::Xmpp(format!("{jid}'s vCard has no photo")))
    }

    /// Checks and keeps an image as `jid`'s avatar, and says so.
    async fn keep(
        &self,
        profile: &str,
        pid: i32,
        jid: &BareJid,
        data: &[u8],
        expected: Option<&str>,
    ) -> Result<Avatar, HostError> {
        let (hash, kind) = checked(data, expected)
            .map_err(|why| HostError::BadArgument(format!("{jid}'s avatar: {why}")))?;
        let dir = self.dir()?;
        let path = store::write_file(&dir, &hash, data).await?;
        let kept = Kept {
            hash: hash.clone(),
            media_type: kind.to_owned(),
            bytes: data.len() as u64,
        };
        store::put(self.host.store(), pid, jid.as_str(), &kept).await?;
        let avatar = shown(jid, &kept, path);
        tracing::debug!(%profile, %jid, %hash, "avatar kept");
        self.changed(profile, jid, Some(avatar.clone()));
        Ok(avatar)
    }

    fn changed(&self, profile: &str, jid: &BareJid, avatar: Option<Avatar>) {
        self.host.signal(
            AvatarChanged,
            profile,
            &AvatarChange {
                jid: jid.to_string(),
                avatar,
            },
        );
    }

    /// Our avatar's hash, for our presences.
    async fn own_hash(&self, profile: &str) -> Option<String> {
        let own = self.host.bound_jid(profile).await?.to_bare();
        let pid = self.host.profile_id(profile).await.ok()?;
        store::get(self.host.store(), pid, own.as_str())
            .await
            .ok()
            .flatten()
            .map(|k| k.hash)
    }
}

/// Where an announced avatar is to be fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Pep,
    Vcard,
}

fn shown(jid: &BareJid, k: &Kept, path: PathBuf) -> Avatar {
    Avatar {
        jid: jid.to_string(),
        hash: k.hash.clone(),
        media_type: k.media_type.clone(),
        bytes: k.bytes,
        path: path.display().to_string(),
    }
}

/// `presence.send`: our broadcast presence carries our avatar's hash (XEP-0153).
fn on_send(me: Arc<Avatars>, args: &mut OutgoingPresence) -> BoxFuture<'_, Flow<()>> {
    async move {
        use perch_plugin_api::parsers::presence::Type;
        if args.presence.type_ != Type::None || args.presence.to.is_some() {
            return Flow::Continue;
        }
        if let Some(hash) = me.own_hash(&args.profile).await {
            args.presence.payloads.push(
                Element::builder("x", NS_UPDATE)
                    .append(Element::builder("photo", NS_UPDATE).append(hash).build())
                    .build(),
            );
        }
        Flow::Continue
    }
    .boxed()
}

/// `avatar_set`.
async fn avatar_set(
    me: Arc<Avatars>,
    profile: String,
    a: AvatarSetArgs,
) -> Result<Avatar, HostError> {
    let bad = |why: String| HostError::BadArgument(format!("path: {}: {why}", a.path));
    let size = tokio::fs::metadata(&a.path)
        .await
        .map_err(|e| bad(e.to_string()))?
        .len();
    if size > image::MAX_BYTES as u64 {
        return Err(bad(format!(
            "{size} bytes, more than the {} an avatar may have",
            image::MAX_BYTES
        )));
    }
    let data = tokio::fs::read(&a.path)
        .await
        .map_err(|e| bad(e.to_string()))?;
    let (hash, kind) = checked(&data, None).map_err(bad)?;
    let own = me
        .host
        .bound_jid(&profile)
        .await
        .ok_or_else(|| HostError::NotConnected(profile.clone()))?
        .to_bare();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
    let payload = Element::builder("data", NS_DATA).append(b64).build();
    let options = open_access();
    let host = &me.host;
    host.iq(
        &profile,
        None,
        true,
        pubsub::publish(NS_DATA, Some(&hash), payload, Some(&options)),
    )
    .await?;
    let meta = metadata(&hash, kind, data.len());
    host.iq(
        &profile,
        None,
        true,
        pubsub::publish(NS_METADATA, Some(&hash), meta, Some(&options)),
    )
    .await?;
    tracing::info!(%profile, %hash, bytes = data.len(), "avatar published");
    let pid = host.profile_id(&profile).await?;
    me.keep(&profile, pid, &own, &data, Some(&hash)).await
}

/// `avatar_get`.
async fn avatar_get(
    me: Arc<Avatars>,
    profile: String,
    a: AvatarGetArgs,
) -> Result<Option<Avatar>, HostError> {
    let jid = jid_arg("jid", &a.jid)?.to_bare();
    let pid = me.host.profile_id(&profile).await?;
    let dir = me.dir()?;
    if !a.refresh
        && let Some(k) = store::get(me.host.store(), pid, jid.as_str()).await?
    {
        let path = store::path(&dir, &k.hash);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(Some(shown(&jid, &k, path)));
        }
    }
    fetch_any(&me, &profile, pid, &jid).await
}

/// A JID's avatar from the network: its PEP metadata and data, else its vCard.
async fn fetch_any(
    me: &Avatars,
    profile: &str,
    pid: i32,
    jid: &BareJid,
) -> Result<Option<Avatar>, HostError> {
    let request = pubsub::items(NS_METADATA, Some(1), &[], None);
    let announced = match me
        .host
        .iq(profile, Some(jid.clone().into()), false, request)
        .await
    {
        Ok(reply) => reply
            .as_ref()
            .and_then(|p| p.get_child("items", pubsub::NS))
            .and_then(|i| i.children().last())
            .and_then(|i| i.get_child("metadata", NS_METADATA))
            .and_then(read_metadata),
        Err(HostError::Stanza(e)) => {
            tracing::debug!(%profile, %jid, error = %e, "no PEP avatar; trying the vCard");
            None
        }
        Err(e) => return Err(e),
    };
    if let Some((hash, _)) = announced {
        let data = me.pep_data(profile, jid, &hash).await?;
        return me
            .keep(profile, pid, jid, &data, Some(&hash))
            .await
            .map(Some);
    }
    match me.vcard_data(profile, jid).await {
        Ok(data) => me.keep(profile, pid, jid, &data, None).await.map(Some),
        Err(HostError::Xmpp(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_both_ways() {
        let m = metadata("a9993e364706816aba3e25717850c26c9cd0d89d", "image/png", 3);
        assert_eq!(
            String::from(&m),
            "<metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='3' \
             id='a9993e364706816aba3e25717850c26c9cd0d89d' type='image/png'/></metadata>"
        );
        assert_eq!(
            read_metadata(&m),
            Some((
                "a9993e364706816aba3e25717850c26c9cd0d89d".into(),
                "image/png".into()
            ))
        );
        let disabled: Element = "<metadata xmlns='urn:xmpp:avatar:metadata'/>"
            .parse()
            .unwrap();
        assert_eq!(read_metadata(&disabled), None);
        let hostile: Element = "<metadata xmlns='urn:xmpp:avatar:metadata'><info id='../../x' \
            bytes='1' type='image/png'/></metadata>"
            .parse()
            .unwrap();
        assert_eq!(read_metadata(&hostile), None);
    }

    #[test]
    fn images_are_checked() {
        let png = b"\x89PNG\r\n\x1a\nrest";
        let (hash, kind) = checked(png, None).unwrap();
        assert_eq!(kind, "image/png");
        assert!(checked(png, Some(&hash.to_uppercase())).is_ok());
        assert!(checked(png, Some("a9993e364706816aba3e25717850c26c9cd0d89d")).is_err());
        assert!(checked(b"plain text", None).is_err());
        assert!(checked(&vec![0u8; image::MAX_BYTES + 1], None).is_err());
    }
}
