//! OMEMO on a mock host: the test plays the server's PEP service (in a task) and a
//! contact, bob, whose side is the crypto crate itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use perch_codec::dom::Attr;
use perch_omemo::{DeviceKeys, Identity, Session, Version, payload};
use perch_plugin_api::HostError;
use perch_plugin_api::Outcome;
use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::message::{Lang, Message, MessageType};
use perch_plugin_api::points::{
    IncomingMessage, MessageSend, OutgoingMessage, RoomOccupant, RoomOccupants, RoomOccupantsPoint,
    RoomQuery,
};
use perch_plugin_api::{Flow, Host, Plugin, PluginError, PluginFactory, PluginInfo};
use perch_plugin_testing::{MockServer, PROFILE, SentIq, stanza_error};
use perch_plugins_e2ee::xep_0384::{self, wire};
use sea_orm::ConnectionTrait;
use serde_json::json;

const PS: &str = "http://jabber.org/protocol/pubsub";
const DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
const BOB: &str = "bob@example.org";
const ME_BARE: &str = "me@example.org";

/// A node's items: (id, payload).
type Items = Vec<(String, Element)>;

/// A PEP service: items by (owner, node).
#[derive(Default)]
struct Pep {
    nodes: Mutex<HashMap<(String, String), Items>>,
    /// disco#info features by JID (the rooms').
    disco: Mutex<HashMap<String, Vec<&'static str>>>,
}

impl Pep {
    fn put(&self, owner: &str, node: &str, id: &str, payload: Element) {
        let mut n = self.nodes.lock().unwrap();
        let items = n.entry((owner.into(), node.into())).or_default();
        items.retain(|(i, _)| i != id);
        items.push((id.into(), payload));
    }

    fn get(&self, owner: &str, node: &str, id: &str) -> Option<Element> {
        let n = self.nodes.lock().unwrap();
        n.get(&(owner.into(), node.into()))?
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, p)| p.clone())
    }

    fn answer(&self, iq: &SentIq) -> Result<Option<Element>, HostError> {
        let owner = iq
            .to
            .as_ref()
            .map_or(ME_BARE.into(), |j| j.to_bare().to_string());
        if iq.payload.is("query", DISCO_INFO) {
            let features = self.disco.lock().unwrap().get(&owner).cloned();
            let features = features.ok_or_else(|| stanza_error("item-not-found"))?;
            let mut q = Element::builder("query", DISCO_INFO);
            for f in features {
                q = q.append(Element::builder("feature", DISCO_INFO).a("var", f).build());
            }
            return Ok(Some(q.build()));
        }
        if let Some(p) = iq.payload.get_child("publish", PS) {
            let node = p.attr("node").unwrap();
            let item = p.get_child("item", PS).unwrap();
            let payload = item.children().next().unwrap().clone();
            self.put(&owner, node, item.attr("id").unwrap(), payload);
            return Ok(None);
        }
        let items = iq.payload.get_child("items", PS).expect("publish or items");
        let node = items.attr("node").unwrap();
        let wanted: Vec<&str> = items.children().filter_map(|i| i.attr("id")).collect();
        let n = self.nodes.lock().unwrap();
        let Some(all) = n.get(&(owner, node.to_owned())) else {
            return Err(stanza_error("item-not-found"));
        };
        let mut out = Element::builder("items", PS).a("node", node);
        for (id, p) in all
            .iter()
            .filter(|(id, _)| wanted.is_empty() || wanted.contains(&id.as_str()))
        {
            out = out.append(
                Element::builder("item", PS)
                    .a("id", id.as_str())
                    .append(p.clone())
                    .build(),
            );
        }
        Ok(Some(
            Element::builder("pubsub", PS).append(out.build()).build(),
        ))
    }
}

/// Bob (or another account): one device, with keys for both versions, sessions
/// with our device.
struct Bob {
    jid: &'static str,
    device: u32,
    id: Identity,
    keys: HashMap<Version, DeviceKeys>,
    sessions: HashMap<Version, Session>,
}

impl Bob {
    fn new(device: u32) -> Self {
        Self::of(BOB, device)
    }

    fn of(jid: &'static str, device: u32) -> Self {
        let id = Identity::generate();
        let keys = [Version::V03, Version::V2]
            .into_iter()
            .map(|v| (v, DeviceKeys::generate(v, &id, 5)))
            .collect();
        Bob {
            jid,
            device,
            id,
            keys,
            sessions: HashMap::new(),
        }
    }

    fn publish(&self, pep: &Pep, versions: &[Version]) {
        for v in versions {
            pep.put(
                self.jid,
                wire::devicelist_node(*v),
                "current",
                wire::devicelist(*v, &[self.device]),
            );
            self.publish_bundle(pep, *v);
        }
    }

    fn publish_bundle(&self, pep: &Pep, v: Version) {
        let (node, item) = wire::bundle_location(v, self.device);
        pep.put(
            self.jid,
            &node,
            &item,
            wire::bundle(&self.keys[&v].bundle(&self.id)),
        );
    }

    /// Reads a message we sent.
    fn read(&mut self, stanza: &Element) -> String {
        let enc = stanza
            .children()
            .find_map(wire::Encrypted::parse)
            .expect("an encrypted element")
            .expect("valid");
        let key = enc
            .keys
            .iter()
            .find(|k| k.rid == self.device)
            .expect("a key for bob");
        let km = match self.sessions.get_mut(&enc.version) {
            Some(s) if !key.kex => s.decrypt(&key.data, false).unwrap(),
            _ => {
                let r = Session::respond(&self.id, &self.keys[&enc.version], &key.data).unwrap();
                self.sessions.insert(enc.version, r.session);
                r.key_material
            }
        };
        let p = enc.payload.expect("a payload");
        match enc.version {
            Version::V03 => {
                String::from_utf8(payload::decrypt_v03(&km, &enc.iv, &p).unwrap()).unwrap()
            }
            Version::V2 => {
                let env = payload::decrypt_v2(&km, &p).unwrap();
                wire::parse_envelope(&env).unwrap().0.unwrap()
            }
        }
    }

    /// A message from bob to our device (a key exchange if no session yet).
    fn write(&mut self, pep: &Pep, our_device: u32, v: Version, text: &str) -> String {
        let enc = self.encrypt(pep, our_device, v, text, ME_BARE);
        format!(
            "<message xmlns='jabber:client' from='{}/phone' to='me@example.org/perch' type='chat' id='b{}'>\
             <body>{}</body>{}</message>",
            self.jid,
            text.len(),
            wire::FALLBACK,
            String::from(&enc.element())
        )
    }

    /// The `<encrypted/>` of `text` for our device, its envelope naming `to`.
    fn encrypt(
        &mut self,
        pep: &Pep,
        our_device: u32,
        v: Version,
        text: &str,
        to: &str,
    ) -> wire::Encrypted {
        let (ct, iv, km) = match v {
            Version::V03 => {
                let p = payload::encrypt_v03(text.as_bytes());
                (p.ciphertext, p.iv, p.key_material)
            }
            Version::V2 => {
                let env = wire::envelope(text, self.jid, to, "pad");
                let p = payload::encrypt_v2(String::from(&env).as_bytes());
                (p.ciphertext, Vec::new(), p.key_material)
            }
        };
        self.seal(pep, our_device, v, ct, iv, &km)
    }

    /// The `<encrypted/>` of an OMEMO 2 envelope for our device.
    fn encrypt_envelope(&mut self, pep: &Pep, our_device: u32, env: &Element) -> wire::Encrypted {
        let p = payload::encrypt_v2(String::from(env).as_bytes());
        self.seal(
            pep,
            our_device,
            Version::V2,
            p.ciphertext,
            Vec::new(),
            &p.key_material,
        )
    }

    /// `ct` with its key material `km` encrypted for our device.
    fn seal(
        &mut self,
        pep: &Pep,
        our_device: u32,
        v: Version,
        ct: Vec<u8>,
        iv: Vec<u8>,
        km: &[u8],
    ) -> wire::Encrypted {
        let e = match self.sessions.get_mut(&v) {
            Some(s) => s.encrypt(&self.id, km),
            None => {
                let (node, item) = wire::bundle_location(v, our_device);
                let b = wire::parse_bundle(v, &pep.get(ME_BARE, &node, &item).expect("our bundle"))
                    .unwrap();
                let (s, e) = Session::initiate(&self.id, &b, km).unwrap();
                self.sessions.insert(v, s);
                e
            }
        };
        wire::Encrypted {
            version: v,
            sid: self.device,
            keys: vec![wire::Key {
                jid: Some(ME_BARE.into()),
                rid: our_device,
                kex: e.key_exchange,
                data: e.bytes,
            }],
            iv,
            payload: Some(ct),
        }
    }
}

/// A server with the plugin built and its session started (keys published), the
/// PEP service answering in a task; our device id.
async fn setup(versions: &[&str]) -> (Arc<MockServer>, Arc<Pep>, u32) {
    let server = Arc::new(MockServer::with_migrations(perch_plugins_e2ee::migrations()).await);
    server.set_options("XEP-0384", json!({"versions": versions}));
    server.build(xep_0384::factory()).await;
    let pep = Arc::new(Pep::default());
    let (s, p) = (server.clone(), pep.clone());
    tokio::spawn(async move {
        while let Some(iq) = s.next_iq_within(Duration::from_secs(600)).await {
            let answer = p.answer(&iq.iq);
            iq.answer(answer);
        }
    });
    server.session_started().await;
    let out = server.action("omemo_fingerprint", json!({})).await.unwrap();
    let device = out[0]["device_id"].as_u64().unwrap() as u32;
    let n = versions.len();
    server
        .eventually("our bundles and device lists published", |s| {
            s.iqs()
                .iter()
                .filter(|i| i.payload.get_child("publish", PS).is_some())
                .count()
                >= 2 * n
        })
        .await;
    // And our device lists stored, last of the session start's publishing (a test
    // that lists our other devices must not have them overwritten after).
    let stored = format!("SELECT COUNT(*) FROM omemo_device WHERE jid = '{ME_BARE}'");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.rows(&stored).await[0][0].as_deref() != Some(&n.to_string()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "our device lists never stored"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    (server, pep, device)
}

fn chat(text: &str) -> OutgoingMessage {
    let m = Message::new_with_type(MessageType::Chat, Some(BOB.parse().unwrap()))
        .with_body(Lang(String::new()), text.to_owned());
    let mut m = m;
    m.id = Some(perch_plugin_api::parsers::message::Id("m1".into()));
    OutgoingMessage::new(PROFILE.into(), m)
}

async fn send(server: &MockServer, text: &str) -> (Outcome<String>, OutgoingMessage) {
    let mut args = chat(text);
    let out = server.fire::<MessageSend>(&mut args).await;
    (out, args)
}

#[tokio::test]
async fn keys_are_published_open_and_the_identity_is_sealed() {
    let (server, pep, device) = setup(&["0.3", "2"]).await;
    for v in [Version::V03, Version::V2] {
        let list = pep
            .get(ME_BARE, wire::devicelist_node(v), "current")
            .expect("a device list");
        assert_eq!(wire::parse_devicelist(&list), Some((v, vec![device])));
        let (node, item) = wire::bundle_location(v, device);
        let b = wire::parse_bundle(v, &pep.get(ME_BARE, &node, &item).unwrap()).unwrap();
        b.verify().unwrap();
        assert_eq!(b.prekeys.len(), 100);
    }
    let publishes: Vec<String> = server
        .iqs()
        .iter()
        .filter(|i| i.payload.get_child("publish", PS).is_some())
        .map(|i| String::from(&i.payload))
        .collect();
    assert!(
        publishes
            .iter()
            .all(|p| p.contains("pubsub#access_model") && p.contains(">open<")),
        "{publishes:?}"
    );
    let rows = server.rows("SELECT sealed_seed FROM omemo_identity").await;
    assert!(
        rows[0][0]
            .as_deref()
            .unwrap()
            .starts_with("mock-sealed:XEP-0384:")
    );
    // Deleting the profile deletes its keys.
    server
        .db()
        .execute_unprepared("DELETE FROM profile")
        .await
        .unwrap();
    for t in [
        "omemo_identity",
        "omemo_prekeys",
        "omemo_device",
        "omemo_trust",
    ] {
        let n = server.rows(&format!("SELECT COUNT(*) FROM {t}")).await;
        assert_eq!(n[0][0].as_deref(), Some("0"), "{t}");
    }
    let features = server.features();
    assert!(
        features.contains(&"urn:xmpp:omemo:2:devices+notify".to_owned()),
        "{features:?}"
    );
    assert!(features.contains(&"eu.siacs.conversations.axolotl.devicelist+notify".to_owned()));
}

#[tokio::test]
async fn a_conversation_not_encrypted_is_left_alone() {
    let (server, _pep, _) = setup(&["0.3", "2"]).await;
    let (out, args) = send(&server, "in clear").await;
    assert!(out.proceeds());
    assert!(args.message.payloads.is_empty());
    assert!(args.history_body.is_none());
}

#[tokio::test]
async fn both_ways_in_both_versions() {
    for (versions, v) in [(vec!["0.3", "2"], Version::V2), (vec!["0.3"], Version::V03)] {
        let (server, pep, device) = setup(&versions).await;
        let mut bob = Bob::new(4242);
        bob.publish(&pep, &[Version::V03, Version::V2]);
        let st = server
            .action("encryption_start", json!({"to": BOB}))
            .await
            .unwrap();
        assert_eq!(st["namespace"], v.namespace());
        let (out, args) = send(&server, "secret one").await;
        assert!(out.proceeds(), "{out:?} {:?}", args.refused);
        assert_eq!(args.history_body.as_deref(), Some("secret one"));
        assert_eq!(args.extra["encryption"], v.namespace());
        let stanza = Element::from(args.message.clone());
        let text = String::from(&stanza);
        assert!(!text.contains("secret one"), "{text}");
        assert!(
            text.contains(wire::FALLBACK)
                && text.contains("urn:xmpp:eme:0")
                && text.contains("urn:xmpp:hints")
        );
        assert_eq!(bob.read(&stanza), "secret one");
        // Bob answers: decrypted into the body, marked.
        let (out, got) = server
            .receive(&bob.write(&pep, device, v, "bob's answer"))
            .await;
        assert!(out.proceeds());
        assert_eq!(got.message.bodies.values().next().unwrap(), "bob's answer");
        assert_eq!(got.extra["encryption"], v.namespace());
        // The session goes on without key exchanges.
        let (_, args) = send(&server, "secret two").await;
        let stanza = Element::from(args.message);
        let enc = stanza
            .children()
            .find_map(wire::Encrypted::parse)
            .unwrap()
            .unwrap();
        assert!(!enc.keys[0].kex, "answered: no key exchange any more");
        assert_eq!(bob.read(&stanza), "secret two");
    }
}

#[tokio::test]
async fn a_key_exchange_from_the_peer_is_answered_and_its_prekey_replaced() {
    let (server, pep, device) = setup(&["2"]).await;
    let mut bob = Bob::new(77);
    bob.publish(&pep, &[Version::V2]);
    let msg = bob.write(&pep, device, Version::V2, "hello first");
    let (out, got) = server.receive(&msg).await;
    assert!(out.proceeds());
    assert_eq!(got.message.bodies.values().next().unwrap(), "hello first");
    // A heartbeat: an OMEMO message without payload, to bob's device.
    let hb = server.next_sent().await;
    let enc = hb
        .children()
        .find_map(wire::Encrypted::parse)
        .unwrap()
        .unwrap();
    assert!(enc.payload.is_none());
    assert_eq!(enc.keys[0].rid, 77);
    assert_eq!(hb.attr("to"), Some(BOB));
    // Bob reads it (his session is confirmed), and the used prekey is gone.
    let key = &enc.keys[0];
    bob.sessions
        .get_mut(&Version::V2)
        .unwrap()
        .decrypt(&key.data, key.kex)
        .unwrap();
    let (node, item) = wire::bundle_location(Version::V2, device);
    server
        .eventually("the bundle republished", |s| {
            s.iqs()
                .iter()
                .filter(|i| String::from(&i.payload).contains("omemo:2:bundles"))
                .count()
                >= 2
        })
        .await;
    let b = wire::parse_bundle(Version::V2, &pep.get(ME_BARE, &node, &item).unwrap()).unwrap();
    assert_eq!(b.prekeys.len(), 100);
    // The same message again (an archive copy): no second session, not a failure
    // shown as text.
    // Its message key was used: it is recognised as a copy (history has the text
    // from the first), not signalled, and answered no more.
    let sent_before = server.sent().len();
    let (out, again) = server.receive(&msg).await;
    assert!(out.proceeds());
    assert_eq!(
        again.extra["decryption_error"],
        xep_0384::receive::COPY,
        "{:?}",
        again.extra
    );
    assert_eq!(body(&again), xep_0384::receive::PLACEHOLDER);
    assert!(server.signals_named("omemo_decryption_failed").is_empty());
    let sessions = server.rows("SELECT COUNT(*) FROM omemo_session").await;
    assert_eq!(sessions[0][0].as_deref(), Some("1"), "no second session");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(server.sent().len(), sent_before, "no second answer");
}

#[tokio::test]
async fn what_cannot_be_decrypted_is_kept_with_the_reason() {
    let (server, pep, device) = setup(&["0.3"]).await;
    let mut bob = Bob::new(5);
    bob.publish(&pep, &[Version::V03]);
    // Addressed to another device of ours.
    let msg = bob
        .write(&pep, device, Version::V03, "not for you")
        .replace(&format!("rid='{device}'"), "rid='999'");
    let (out, got) = server.receive(&msg).await;
    assert!(out.proceeds(), "kept");
    assert_eq!(
        got.message.bodies.values().next().unwrap(),
        xep_0384::receive::PLACEHOLDER
    );
    assert_eq!(got.extra["decryption_error"], "not for this device");
    let sig = server.signals_named("omemo_decryption_failed");
    assert_eq!(sig[0]["reason"], "not for this device");
    assert!(server.undeclared_signals().is_empty());
}

#[tokio::test]
async fn no_device_or_no_trust_means_not_sent_at_all() {
    let (server, pep, _) = setup(&["2"]).await;
    // No device: encryption can't start.
    let err = server
        .action("encryption_start", json!({"to": BOB}))
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("NotEncrypted"), "{err:?}");
    let bob = Bob::new(8);
    bob.publish(&pep, &[Version::V2]);
    server
        .action("encryption_start", json!({"to": BOB}))
        .await
        .unwrap();
    // Bob's key distrusted: nothing goes, in clear or otherwise.
    let devices = server
        .action("omemo_devices", json!({"jid": BOB}))
        .await
        .unwrap();
    let fp = devices[0]["fingerprint"].as_str().unwrap().to_owned();
    assert_eq!(devices[0]["trust"], "blind");
    assert_eq!(fp, bob.id.fingerprint());
    server
        .action("omemo_distrust", json!({"jid": BOB, "fingerprint": fp}))
        .await
        .unwrap();
    let (out, args) = send(&server, "must not leak").await;
    assert!(matches!(out, Outcome::Stopped { .. }), "{out:?}");
    let why = args.refused.expect("a reason");
    assert!(
        matches!(&why, HostError::NotEncrypted(m) if m.contains("distrusted")),
        "{why:?}"
    );
    // Trusted again (verified): it goes.
    server
        .action("omemo_trust", json!({"jid": BOB, "fingerprint": fp}))
        .await
        .unwrap();
    let (out, _) = send(&server, "now it goes").await;
    assert!(out.proceeds());
    // The device list emptied (a notification): refused.
    pep.put(
        BOB,
        wire::devicelist_node(Version::V2),
        "current",
        wire::devicelist(Version::V2, &[]),
    );
    let event = format!(
        "<message xmlns='jabber:client' from='{BOB}' to='me@example.org/perch' type='headline'>\
         <event xmlns='http://jabber.org/protocol/pubsub#event'><items node='urn:xmpp:omemo:2:devices'>\
         <item id='current'><devices xmlns='urn:xmpp:omemo:2'/></item></items></event></message>"
    );
    server.receive(&event).await;
    let (out, args) = send(&server, "gone").await;
    assert!(matches!(out, Outcome::Stopped { .. }));
    assert!(matches!(args.refused, Some(HostError::NotEncrypted(_))));
}

#[tokio::test]
async fn after_a_verification_new_keys_wait_for_trust() {
    let (server, pep, _) = setup(&["2"]).await;
    let bob = Bob::new(10);
    bob.publish(&pep, &[Version::V2]);
    server
        .action("encryption_start", json!({"to": BOB}))
        .await
        .unwrap();
    // Unknown until its bundle is read: the key can't be trusted yet.
    let err = server
        .action(
            "omemo_trust",
            json!({"jid": BOB, "fingerprint": bob.id.fingerprint()}),
        )
        .await;
    assert!(matches!(err, Err(HostError::BadArgument(_))), "{err:?}");
    server
        .action("omemo_devices", json!({"jid": BOB}))
        .await
        .unwrap();
    server
        .action(
            "omemo_trust",
            json!({"jid": BOB, "fingerprint": bob.id.fingerprint()}),
        )
        .await
        .unwrap();
    // Bob's new device: undecided, signalled, not encrypted to.
    let phone = Bob::new(11);
    let (node, item) = wire::bundle_location(Version::V2, 11);
    pep.put(
        BOB,
        &node,
        &item,
        wire::bundle(&phone.keys[&Version::V2].bundle(&phone.id)),
    );
    pep.put(
        BOB,
        wire::devicelist_node(Version::V2),
        "current",
        wire::devicelist(Version::V2, &[10, 11]),
    );
    server
        .action("omemo_devices", json!({"jid": BOB}))
        .await
        .unwrap();
    let (out, args) = send(&server, "to the verified one").await;
    assert!(out.proceeds());
    let stanza = Element::from(args.message);
    let enc = stanza
        .children()
        .find_map(wire::Encrypted::parse)
        .unwrap()
        .unwrap();
    let rids: Vec<u32> = enc.keys.iter().map(|k| k.rid).collect();
    assert_eq!(rids, [10]);
    let new = server.signals_named("omemo_new_key");
    assert!(
        new.iter()
            .any(|s| s["device_id"] == 11 && s["trust"] == "undecided"),
        "{new:?}"
    );
}

// --- group chats -------------------------------------------------------------------

const ROOM: &str = "room@conf.example.org";
const CAROL: &str = "carol@example.org";

/// The rooms the test's group chat plugin knows.
type Rooms = Arc<Mutex<HashMap<String, RoomOccupants>>>;

struct FakeMuc;
impl Plugin for FakeMuc {}

/// The group chat plugin's side: answers `room.occupants` from `rooms`.
fn fake_muc(rooms: Rooms) -> PluginFactory {
    const INFO: PluginInfo = PluginInfo {
        import_name: "XEP-0045",
        name: "group chats (the test's)",
        description: "answers room.occupants",
        dependencies: &[],
        recommendations: &[],
        tables: &[],
        signals_as: None,
    };
    PluginFactory::new(INFO, move |host: Arc<dyn Host>| async move {
        let t = host.triggers();
        t.declare_shared::<RoomOccupantsPoint>()?;
        t.add::<RoomOccupantsPoint, _>(0, move |q: &mut RoomQuery| {
            let found = rooms.lock().unwrap().get(&q.room).cloned();
            async move { found.map_or(Flow::Continue, Flow::StopWith) }.boxed()
        })?;
        Ok::<Arc<dyn Plugin>, PluginError>(Arc::new(FakeMuc))
    })
}

fn occupant(nick: &str, jid: Option<&str>) -> RoomOccupant {
    RoomOccupant {
        nick: nick.into(),
        jid: jid.map(Into::into),
    }
}

fn set_anonymity(pep: &Pep, non_anonymous: bool) {
    let kind = if non_anonymous {
        "muc_nonanonymous"
    } else {
        "muc_semianonymous"
    };
    pep.disco
        .lock()
        .unwrap()
        .insert(ROOM.into(), vec!["http://jabber.org/protocol/muc", kind]);
}

/// A room with us, bob and carol, whose real JIDs it shows (`non_anonymous`) or
/// not.
async fn room_setup(
    versions: &[&str],
    non_anonymous: bool,
) -> (Arc<MockServer>, Arc<Pep>, u32, Rooms) {
    let (server, pep, device) = setup(versions).await;
    let rooms = Rooms::default();
    server.build(fake_muc(rooms.clone())).await;
    rooms.lock().unwrap().insert(
        ROOM.into(),
        RoomOccupants {
            nick: "me".into(),
            joined: true,
            occupants: vec![
                occupant("bob", Some("bob@example.org/phone")),
                occupant("carol", Some("carol@example.org/pc")),
                occupant("me", Some(perch_plugin_testing::ME)),
            ],
        },
    );
    set_anonymity(&pep, non_anonymous);
    (server, pep, device, rooms)
}

async fn say(server: &MockServer, text: &str) -> (Outcome<String>, OutgoingMessage) {
    let mut m = Message::new_with_type(MessageType::Groupchat, Some(ROOM.parse().unwrap()))
        .with_body(Lang(String::new()), text.to_owned());
    m.id = Some(perch_plugin_api::parsers::message::Id("g1".into()));
    let mut args = OutgoingMessage::new(PROFILE.into(), m);
    let out = server.fire::<MessageSend>(&mut args).await;
    (out, args)
}

/// A room's message from `nick`, carrying `enc` (and `more`).
fn in_room(nick: &str, enc: &wire::Encrypted, more: &str) -> String {
    format!(
        "<message xmlns='jabber:client' from='{ROOM}/{nick}' to='{}' type='groupchat' id='g-{nick}'>\
         <body>{}</body>{}{more}</message>",
        perch_plugin_testing::ME,
        wire::FALLBACK,
        String::from(&enc.element())
    )
}

fn body(m: &IncomingMessage) -> &str {
    m.message.bodies.values().next().map_or("", String::as_str)
}

#[tokio::test]
async fn a_rooms_messages_reach_every_occupant_and_read_as_theirs() {
    // Carol speaks 0.3 only: with both versions on, the room gets 0.3; with 2 only,
    // she publishes 2 too.
    for (versions, carols, v) in [
        (vec!["0.3", "2"], Version::V03, Version::V03),
        (vec!["2"], Version::V2, Version::V2),
    ] {
        let (server, pep, device, _rooms) = room_setup(&versions, true).await;
        let mut bob = Bob::new(21);
        bob.publish(&pep, &[Version::V03, Version::V2]);
        let mut carol = Bob::of(CAROL, 22);
        carol.publish(&pep, &[carols]);
        let st = server
            .action("encryption_start", json!({"to": ROOM}))
            .await
            .unwrap();
        assert_eq!(st["namespace"], v.namespace());
        assert_eq!(st["encrypted"], true);
        let (out, args) = say(&server, "to the room").await;
        assert!(out.proceeds(), "{out:?} {:?}", args.refused);
        assert_eq!(args.history_body.as_deref(), Some("to the room"));
        assert_eq!(args.extra["encryption"], v.namespace());
        let sent = Element::from(args.message.clone());
        assert!(!String::from(&sent).contains("to the room"));
        assert_eq!(bob.read(&sent), "to the room");
        assert_eq!(carol.read(&sent), "to the room");

        // Carol writes to the room: read as hers.
        let enc = carol.encrypt(&pep, device, v, "carol to all", ROOM);
        let (out, got) = server.receive(&in_room("carol", &enc, "")).await;
        assert!(out.proceeds());
        assert_eq!(body(&got), "carol to all");
        assert_eq!(got.extra["encryption"], v.namespace());

        // Our own message, reflected by the room: not ours to decrypt (history has
        // its text from when it was sent), and nothing signalled.
        let mut echo = args.message.clone();
        echo.from = Some(format!("{ROOM}/me").parse().unwrap());
        echo.to = Some(perch_plugin_testing::ME.parse().unwrap());
        let echo = Element::from(echo);
        let (out, got) = server.receive(&String::from(&echo)).await;
        assert!(out.proceeds());
        assert_eq!(got.extra["decryption_error"], xep_0384::receive::SENT_BY_US);

        // Someone who left, in the room's history: the room names the real JID.
        let mut dave = Bob::of("dave@example.org", 23);
        dave.publish(&pep, &[v]);
        let enc = dave.encrypt(&pep, device, v, "dave, earlier", ROOM);
        let item = "<x xmlns='http://jabber.org/protocol/muc#user'>\
                    <item jid='dave@example.org/laptop' role='participant'/></x>";
        let (_, got) = server.receive(&in_room("dave", &enc, item)).await;
        assert_eq!(body(&got), "dave, earlier");
        // His key exchange is answered to his real JID.
        let heartbeat = server.next_sent().await;
        assert_eq!(heartbeat.attr("to"), Some("dave@example.org"));
        // Without it, whose it is can't be told.
        let enc = dave.encrypt(&pep, device, v, "dave, unnamed", ROOM);
        let (_, got) = server.receive(&in_room("dave", &enc, "")).await;
        assert_eq!(body(&got), xep_0384::receive::PLACEHOLDER);
        let why = got.extra["decryption_error"].as_str().unwrap();
        assert!(why.contains("real JID"), "{why}");
        assert!(
            server
                .signals_named("omemo_decryption_failed")
                .iter()
                .all(|s| s["reason"] == why),
            "only dave's unnamed message is signalled"
        );
    }
}

#[tokio::test]
async fn a_room_that_hides_real_jids_is_refused() {
    let (server, pep, _, rooms) = room_setup(&["2"], false).await;
    Bob::new(21).publish(&pep, &[Version::V2]);
    Bob::of(CAROL, 22).publish(&pep, &[Version::V2]);
    let err = server
        .action("encryption_start", json!({"to": ROOM}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HostError::NotEncrypted(m) if m.contains("non-anonymous")),
        "{err:?}"
    );
    // Encrypted while it showed them, then reconfigured: nothing leaves.
    set_anonymity(&pep, true);
    server
        .action("encryption_start", json!({"to": ROOM}))
        .await
        .unwrap();
    set_anonymity(&pep, false);
    let (out, args) = say(&server, "must not leak").await;
    assert!(matches!(out, Outcome::Stopped { .. }), "{out:?}");
    assert!(
        matches!(&args.refused, Some(HostError::NotEncrypted(m)) if m.contains(ROOM)),
        "{:?}",
        args.refused
    );
    // An occupant whose real JID the room does not tell: refused, named.
    set_anonymity(&pep, true);
    rooms
        .lock()
        .unwrap()
        .get_mut(ROOM)
        .unwrap()
        .occupants
        .push(occupant("eve", None));
    let (out, args) = say(&server, "must not leak either").await;
    assert!(matches!(out, Outcome::Stopped { .. }));
    assert!(
        matches!(&args.refused, Some(HostError::NotEncrypted(m)) if m.contains("eve")),
        "{:?}",
        args.refused
    );
}

#[tokio::test]
async fn occupants_without_a_common_version_are_named() {
    let (server, pep, _, _rooms) = room_setup(&["0.3", "2"], true).await;
    Bob::new(21).publish(&pep, &[Version::V2]);
    Bob::of(CAROL, 22).publish(&pep, &[Version::V03]);
    let err = server
        .action("encryption_start", json!({"to": ROOM}))
        .await
        .unwrap_err();
    let HostError::NotEncrypted(why) = &err else {
        panic!("{err:?}");
    };
    assert!(
        why.contains("bob@example.org: 2") && why.contains("carol@example.org: 0.3"),
        "{why}"
    );
}

#[tokio::test]
async fn our_other_devices_get_every_message_and_theirs_decrypt() {
    let (server, pep, device) = setup(&["2"]).await;
    let mut bob = Bob::new(31);
    bob.publish(&pep, &[Version::V2]);
    // Our phone: another device of our account.
    let mut phone = Bob::of(ME_BARE, 32);
    phone.publish_bundle(&pep, Version::V2);
    pep.put(
        ME_BARE,
        wire::devicelist_node(Version::V2),
        "current",
        wire::devicelist(Version::V2, &[device, 32]),
    );
    server
        .action("omemo_devices", json!({"jid": ME_BARE}))
        .await
        .unwrap();
    server
        .action("encryption_start", json!({"to": BOB}))
        .await
        .unwrap();
    let (out, args) = send(&server, "for bob and my phone").await;
    assert!(out.proceeds(), "{:?}", args.refused);
    let sent = Element::from(args.message);
    assert_eq!(bob.read(&sent), "for bob and my phone");
    assert_eq!(phone.read(&sent), "for bob and my phone");
    // What the phone sent bob comes back as a carbon (unwrapped): read.
    let enc = phone.encrypt(&pep, device, Version::V2, "from my phone", BOB);
    let carbon = format!(
        "<message xmlns='jabber:client' from='{ME_BARE}/phone' to='{BOB}' type='chat' id='c1'>\
         <body>{}</body>{}</message>",
        wire::FALLBACK,
        String::from(&enc.element())
    );
    let (out, got) = server.receive(&carbon).await;
    assert!(out.proceeds());
    assert_eq!(body(&got), "from my phone");
    assert_eq!(got.extra["encryption"], Version::V2.namespace());
    // The phone's answer to someone else's key exchange (no payload, not for us):
    // nothing to keep.
    let mut heartbeat = phone.encrypt(&pep, device, Version::V2, "", BOB);
    heartbeat.payload = None;
    heartbeat.keys[0].rid = 999;
    let stanza = format!(
        "<message xmlns='jabber:client' from='{ME_BARE}/phone' to='{BOB}' type='chat' id='c2'>{}</message>",
        String::from(&heartbeat.element())
    );
    let (out, _) = server.receive(&stanza).await;
    assert!(matches!(out, Outcome::Stopped { .. }), "{out:?}");
}

#[tokio::test]
async fn a_private_message_in_an_encrypted_room_goes_to_the_occupants_real_jid() {
    let (server, pep, device, _rooms) = room_setup(&["2"], true).await;
    let mut bob = Bob::new(21);
    bob.publish(&pep, &[Version::V2]);
    Bob::of(CAROL, 22).publish(&pep, &[Version::V2]);
    server
        .action("encryption_start", json!({"to": ROOM}))
        .await
        .unwrap();
    let mut m = Message::new_with_type(
        MessageType::Chat,
        Some(format!("{ROOM}/bob").parse().unwrap()),
    )
    .with_body(Lang(String::new()), "psst".to_owned());
    m.id = Some(perch_plugin_api::parsers::message::Id("pm1".into()));
    let mut args = OutgoingMessage::new(PROFILE.into(), m);
    let out = server.fire::<MessageSend>(&mut args).await;
    assert!(out.proceeds(), "{:?}", args.refused);
    let sent = Element::from(args.message);
    let enc = sent
        .children()
        .find_map(wire::Encrypted::parse)
        .unwrap()
        .unwrap();
    let to: Vec<Option<&str>> = enc.keys.iter().map(|k| k.jid.as_deref()).collect();
    assert_eq!(to, [Some(BOB)], "bob's devices only");
    assert_eq!(bob.read(&sent), "psst");
    // His answer, from his nick: read as his.
    let enc = bob.encrypt(&pep, device, Version::V2, "psst back", ROOM);
    let answer = format!(
        "<message xmlns='jabber:client' from='{ROOM}/bob' to='{}' type='chat' id='pm2'>\
         <body>{}</body>{}<x xmlns='http://jabber.org/protocol/muc#user'/></message>",
        perch_plugin_testing::ME,
        wire::FALLBACK,
        String::from(&enc.element())
    );
    let (_, got) = server.receive(&answer).await;
    assert_eq!(body(&got), "psst back");
}

// --- what stays in clear ---------------------------------------------------------------

#[tokio::test]
async fn a_reaction_in_an_encrypted_conversation_is_refused_not_sent_in_clear() {
    let (server, pep, _) = setup(&["0.3", "2"]).await;
    Bob::new(40).publish(&pep, &[Version::V03, Version::V2]);
    server
        .action("encryption_start", json!({"to": BOB}))
        .await
        .unwrap();
    let reaction = |id: &str| {
        let mut m = Message::new_with_type(MessageType::Chat, Some(BOB.parse().unwrap()));
        m.id = Some(perch_plugin_api::parsers::message::Id(id.into()));
        m.payloads.push(
            perch_codec::xep_0444::Reactions {
                id: "m1".into(),
                reactions: vec!["👍".into()],
            }
            .to_element(),
        );
        m.payloads.push(perch_codec::xep_0444::store_hint());
        OutgoingMessage::new(PROFILE.into(), m)
    };
    let mut args = reaction("r1");
    let out = server.fire::<MessageSend>(&mut args).await;
    assert!(matches!(out, Outcome::Stopped { .. }), "{out:?}");
    assert!(
        matches!(&args.refused, Some(HostError::NotEncrypted(m)) if m.starts_with("a reaction can't be encrypted")),
        "{:?}",
        args.refused
    );
    // A displayed marker is metadata: it goes as it is, as other clients send it.
    let mut m = Message::new_with_type(MessageType::Chat, Some(BOB.parse().unwrap()));
    m.payloads.push(
        "<displayed xmlns='urn:xmpp:chat-markers:0' id='m1'/>"
            .parse()
            .unwrap(),
    );
    let mut marker = OutgoingMessage::new(PROFILE.into(), m);
    let out = server.fire::<MessageSend>(&mut marker).await;
    assert!(out.proceeds(), "{out:?}");
    assert_eq!(marker.message.payloads.len(), 1, "left alone");
    assert!(marker.extra.is_empty());
    // Encryption stopped: the reaction goes (in clear, as the user chose).
    let st = server
        .action("encryption_stop", json!({"to": BOB}))
        .await
        .unwrap();
    assert_eq!(st["encrypted"], false, "{st}");
    let mut args = reaction("r2");
    let out = server.fire::<MessageSend>(&mut args).await;
    assert!(out.proceeds(), "{out:?}");
    assert!(args.refused.is_none());
    let (out, args) = send(&server, "plain again").await;
    assert!(out.proceeds());
    assert!(args.message.payloads.is_empty(), "not encrypted");
    assert!(args.history_body.is_none());
}

#[tokio::test]
async fn a_file_link_keeps_its_url_inside_the_encryption_only() {
    for versions in [vec!["0.3"], vec!["2"]] {
        let (server, pep, _) = setup(&versions).await;
        let mut bob = Bob::new(41);
        bob.publish(&pep, &[Version::V03, Version::V2]);
        server
            .action("encryption_start", json!({"to": BOB}))
            .await
            .unwrap();
        let url = "https://upload.example.org/a1b2/holiday.jpg";
        let mut args = chat(url);
        args.message.payloads.push(
            format!("<x xmlns='jabber:x:oob'><url>{url}</url></x>")
                .parse()
                .unwrap(),
        );
        args.message.payloads.push(
            "<html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><a href='https://upload.example.org/a1b2/holiday.jpg'>holiday</a></body></html>"
                .parse()
                .unwrap(),
        );
        let out = server.fire::<MessageSend>(&mut args).await;
        assert!(out.proceeds(), "{out:?} {:?}", args.refused);
        assert_eq!(args.history_body.as_deref(), Some(url));
        let stanza = Element::from(args.message.clone());
        let text = String::from(&stanza);
        assert!(!text.contains("jabber:x:oob"), "{text}");
        assert!(!text.contains("xhtml-im"), "{text}");
        assert!(!text.contains("upload.example.org"), "{text}");
        assert_eq!(bob.read(&stanza), url);
    }
}

// --- signed prekey rotation ------------------------------------------------------------

/// Makes the stored signed prekey of version `v` look `days` old.
async fn age_signed_prekey(server: &MockServer, v: &str, days: u64) {
    let rows = server
        .rows(&format!(
            "SELECT keys FROM omemo_prekeys WHERE version = '{v}'"
        ))
        .await;
    let mut keys: serde_json::Value = serde_json::from_str(rows[0][0].as_deref().unwrap()).unwrap();
    let created = keys["signed_prekey"]["created"].as_u64().unwrap();
    keys["signed_prekey"]["created"] = (created - days * 24 * 3600).into();
    let sql = format!(
        "UPDATE omemo_prekeys SET keys = '{}' WHERE version = '{v}'",
        keys.to_string().replace('\'', "''")
    );
    server.db().execute_unprepared(&sql).await.unwrap();
}

/// The signed prekey id of our published bundle.
fn published_spk(pep: &Pep, device: u32) -> u32 {
    let (node, item) = wire::bundle_location(Version::V2, device);
    wire::parse_bundle(Version::V2, &pep.get(ME_BARE, &node, &item).unwrap())
        .unwrap()
        .signed_prekey_id
}

/// The signed prekey ids of the OMEMO 2 bundles published since IQ number `from`.
fn spks_published_since(server: &MockServer, from: usize) -> Vec<u32> {
    server.iqs()[from..]
        .iter()
        .filter_map(|i| i.payload.get_child("publish", PS))
        .filter(|p| p.attr("node") == Some("urn:xmpp:omemo:2:bundles"))
        .filter_map(|p| p.get_child("item", PS)?.children().next().cloned())
        .map(|b| {
            wire::parse_bundle(Version::V2, &b)
                .unwrap()
                .signed_prekey_id
        })
        .collect()
}

/// Ends the session and starts it again; the signed prekey id of the bundle it
/// publishes.
async fn restart_session(server: &MockServer) -> u32 {
    server.session_ended().await;
    let from = server.iqs().len();
    server.session_started().await;
    server
        .eventually("the bundle published again", |s| {
            !spks_published_since(s, from).is_empty()
        })
        .await;
    spks_published_since(server, from)[0]
}

#[tokio::test]
async fn an_old_signed_prekey_is_rotated_and_the_previous_one_still_opens() {
    let (server, pep, device) = setup(&["2"]).await;
    let first = published_spk(&pep, device);
    // Bob made a key exchange against the current bundle; it is late.
    let mut bob = Bob::new(50);
    bob.publish(&pep, &[Version::V2]);
    let late = bob.write(&pep, device, Version::V2, "made before the rotation");
    // Not due: a restart keeps it.
    assert_eq!(restart_session(&server).await, first);
    // A week and a day later, the session starts again: a new signed prekey.
    let lifetime_days = xep_0384::SIGNED_PREKEY_LIFETIME / (24 * 3600);
    age_signed_prekey(&server, "2", lifetime_days + 1).await;
    let second = restart_session(&server).await;
    assert_ne!(second, first, "a new signed prekey id is published");
    // Not due again: the next start keeps the new one.
    assert_eq!(restart_session(&server).await, second);
    // The key exchange made against the previous one still opens.
    let (out, got) = server.receive(&late).await;
    assert!(out.proceeds());
    assert!(
        got.extra.get("decryption_error").is_none(),
        "{:?}",
        got.extra
    );
    assert_eq!(body(&got), "made before the rotation");
}

#[tokio::test]
async fn a_key_exchange_on_a_long_lived_connection_rotates_an_old_signed_prekey() {
    let (server, pep, device) = setup(&["2"]).await;
    let first = published_spk(&pep, device);
    let mut bob = Bob::new(51);
    bob.publish(&pep, &[Version::V2]);
    let msg = bob.write(&pep, device, Version::V2, "while connected for weeks");
    age_signed_prekey(&server, "2", 30).await;
    let (_, got) = server.receive(&msg).await;
    assert_eq!(body(&got), "while connected for weeks");
    server
        .eventually("a new signed prekey published", |_| {
            published_spk(&pep, device) != first
        })
        .await;
}

// --- undecryptable -----------------------------------------------------------------------

#[tokio::test]
async fn a_message_without_a_session_is_kept_with_the_reason_no_session() {
    let (server, pep, device) = setup(&["2"]).await;
    let mut bob = Bob::new(60);
    bob.publish(&pep, &[Version::V2]);
    let (_, got) = server
        .receive(&bob.write(&pep, device, Version::V2, "opens the session"))
        .await;
    assert_eq!(body(&got), "opens the session");
    // Bob reads our answer: his next messages are no key exchanges.
    let hb = server.next_sent().await;
    let enc = hb
        .children()
        .find_map(wire::Encrypted::parse)
        .unwrap()
        .unwrap();
    let key = &enc.keys[0];
    bob.sessions
        .get_mut(&Version::V2)
        .unwrap()
        .decrypt(&key.data, key.kex)
        .unwrap();
    // Our session is lost (a restored backup, say).
    server
        .db()
        .execute_unprepared("DELETE FROM omemo_session")
        .await
        .unwrap();
    let msg = bob.write(&pep, device, Version::V2, "nobody can read this");
    assert!(!msg.contains("kex="), "not a key exchange: {msg}");
    let (out, got) = server.receive(&msg).await;
    assert!(out.proceeds(), "kept");
    assert_eq!(body(&got), xep_0384::receive::PLACEHOLDER);
    assert_eq!(got.extra["decryption_error"], "no session");
    assert_eq!(got.extra["encryption"], Version::V2.namespace());
    let sig = server.signals_named("omemo_decryption_failed");
    assert_eq!(sig.len(), 1, "{sig:?}");
    assert_eq!(sig[0]["reason"], "no session");
    assert_eq!(sig[0]["from"], format!("{BOB}/phone"));
    assert!(server.undeclared_signals().is_empty());
}

#[tokio::test]
async fn what_omemo_2_carries_beside_the_body_joins_the_message() {
    let (server, pep, device) = setup(&["2"]).await;
    let mut bob = Bob::new(42);
    bob.publish(&pep, &[Version::V2]);
    // A reaction, as Libervia sends it in OMEMO 2: inside the envelope, no body.
    let sce = wire::NS_SCE;
    let env: Element = format!(
        "<envelope xmlns='{sce}'><content>\
         <reactions xmlns='urn:xmpp:reactions:0' id='m1'><reaction>🎉</reaction></reactions>\
         <store xmlns='urn:xmpp:hints'/></content>\
         <rpad>xyz</rpad><from jid='{BOB}'/></envelope>"
    )
    .parse()
    .unwrap();
    let enc = bob.encrypt_envelope(&pep, device, &env);
    let stanza = format!(
        "<message xmlns='jabber:client' from='{BOB}/phone' to='{ME_BARE}/perch' type='chat' id='r1'>\
         <body>{}</body>{}</message>",
        wire::FALLBACK,
        String::from(&enc.element())
    );
    let (out, got) = server.receive(&stanza).await;
    assert!(out.proceeds(), "kept");
    assert!(
        got.message.bodies.is_empty(),
        "the fallback is not the message"
    );
    let r = perch_codec::xep_0444::Reactions::find(&got.message.payloads).expect("the reaction");
    assert_eq!((r.id.as_str(), r.reactions), ("m1", vec!["🎉".to_owned()]));
    assert!(
        !got.message
            .payloads
            .iter()
            .any(|p| p.is("store", "urn:xmpp:hints")),
        "hints are not read from an envelope"
    );
    assert_eq!(got.extra["encryption"], Version::V2.namespace());
}

// --- starting and stopping -----------------------------------------------------------

/// A version asked for is the conversation's until it is started again, whatever the
/// contact publishes best; starting and stopping signal once per change, stopping
/// naming the version that was used.
#[tokio::test]
async fn a_version_asked_for_is_kept_and_changes_are_signalled() {
    let (server, pep, _) = setup(&["0.3", "2"]).await;
    let mut bob = Bob::new(4242);
    bob.publish(&pep, &[Version::V03, Version::V2]);
    let start = |ns: Option<&str>| {
        let mut args = json!({"to": BOB});
        if let Some(ns) = ns {
            args["namespace"] = json!(ns);
        }
        server.action("encryption_start", args)
    };
    let st = start(Some(Version::V03.namespace())).await.unwrap();
    assert_eq!(st["namespace"], Version::V03.namespace());
    let (out, args) = send(&server, "in 0.3").await;
    assert!(out.proceeds(), "{:?}", args.refused);
    assert_eq!(args.extra["encryption"], Version::V03.namespace());
    assert_eq!(bob.read(&Element::from(args.message)), "in 0.3");
    let status = server
        .action("encryption_status", json!({"to": BOB}))
        .await
        .unwrap();
    assert_eq!(status["namespace"], Version::V03.namespace());
    // The same again: no change, no signal.
    start(Some(Version::V03.namespace())).await.unwrap();
    assert_eq!(server.signals_named("encryption_started").len(), 1);
    // None asked: the best one from now on.
    let st = start(None).await.unwrap();
    assert_eq!(st["namespace"], Version::V2.namespace());
    let (_, args) = send(&server, "in 2").await;
    assert_eq!(args.extra["encryption"], Version::V2.namespace());
    let started = server.signals_named("encryption_started");
    let namespaces: Vec<&serde_json::Value> = started.iter().map(|s| &s["namespace"]).collect();
    assert_eq!(
        namespaces,
        [Version::V03.namespace(), Version::V2.namespace()]
    );
    assert!(
        started
            .iter()
            .all(|s| s["to"] == BOB && s["encrypted"] == true)
    );
    let st = server
        .action("encryption_stop", json!({"to": BOB}))
        .await
        .unwrap();
    assert_eq!(st["encrypted"], false);
    server
        .action("encryption_stop", json!({"to": BOB}))
        .await
        .unwrap();
    let stopped = server.signals_named("encryption_stopped");
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert_eq!(stopped[0]["namespace"], Version::V2.namespace());
    assert_eq!(stopped[0]["encrypted"], false);
    let (out, args) = send(&server, "in clear").await;
    assert!(out.proceeds() && args.message.payloads.is_empty());
    // A namespace that is no OMEMO version.
    let e = start(Some("urn:example:nosuch")).await.unwrap_err();
    assert!(e.to_string().contains("urn:example:nosuch"), "{e}");
    assert!(server.undeclared_signals().is_empty());
}

/// A version this perchd does not speak (plugin option `versions`) is refused.
#[tokio::test]
async fn a_version_not_spoken_is_refused() {
    let (server, pep, _) = setup(&["2"]).await;
    let bob = Bob::new(4242);
    bob.publish(&pep, &[Version::V03, Version::V2]);
    let e = server
        .action(
            "encryption_start",
            json!({"to": BOB, "namespace": Version::V03.namespace()}),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("0.3"), "{e}");
    assert!(server.signals_named("encryption_started").is_empty());
}
