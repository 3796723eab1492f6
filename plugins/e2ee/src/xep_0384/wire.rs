//! The XML of both OMEMO versions: device lists, bundles, encrypted messages, and
//! OMEMO 2's SCE envelope (XEP-0420). Pure functions over elements, tested on
//! literal XML, so the plugin's handlers only glue them to the host and the crypto
//! crate.
//!
//! Why by hand: xmpp-parsers has 0.3's elements only, and the two versions differ
//! in every name (`<list>`/`<devices>`, `<signedPreKeyPublic>`/`<spk>`,
//! `prekey`/`kex`, keys grouped by JID in 2).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use perch_codec::dom::Attr;
use perch_omemo::{Bundle, Version};
use perch_plugin_api::minidom::Element;

/// OMEMO 0.3's namespace.
pub const NS_03: &str = "eu.siacs.conversations.axolotl";
/// OMEMO 2's namespace.
pub const NS_2: &str = "urn:xmpp:omemo:2";
/// Explicit message encryption (XEP-0380).
pub const NS_EME: &str = "urn:xmpp:eme:0";
/// Message processing hints (XEP-0334).
pub const NS_HINTS: &str = "urn:xmpp:hints";
/// Stanza content encryption (XEP-0420).
pub const NS_SCE: &str = "urn:xmpp:sce:1";
/// The body every encrypted message carries for clients without OMEMO.
pub const FALLBACK: &str = "This message is OMEMO encrypted";
/// The pubsub item id of a device list (and of a 0.3 bundle).
pub const CURRENT: &str = "current";

/// The version of a namespace.
pub fn version_of(ns: &str) -> Option<Version> {
    match ns {
        NS_03 => Some(Version::V03),
        NS_2 => Some(Version::V2),
        _ => None,
    }
}

/// The PEP node of a version's device list.
pub fn devicelist_node(v: Version) -> &'static str {
    match v {
        Version::V03 => "eu.siacs.conversations.axolotl.devicelist",
        Version::V2 => "urn:xmpp:omemo:2:devices",
    }
}

/// The PEP node and item id of a device's bundle: one node per device in 0.3, one
/// item per device in 2.
pub fn bundle_location(v: Version, device: u32) -> (String, String) {
    match v {
        Version::V03 => (
            format!("eu.siacs.conversations.axolotl.bundles:{device}"),
            CURRENT.to_owned(),
        ),
        Version::V2 => ("urn:xmpp:omemo:2:bundles".to_owned(), device.to_string()),
    }
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn unb64(e: &Element) -> Result<Vec<u8>, String> {
    let text: String = e.text().chars().filter(|c| !c.is_whitespace()).collect();
    B64.decode(text)
        .map_err(|err| format!("<{}/> is not base64: {err}", e.name()))
}

fn id_attr(e: &Element, name: &str) -> Result<u32, String> {
    e.attr(name)
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("<{}/> without a numeric {name}", e.name()))
}

/// A device list.
pub fn devicelist(v: Version, devices: &[u32]) -> Element {
    let (root, ns) = match v {
        Version::V03 => ("list", NS_03),
        Version::V2 => ("devices", NS_2),
    };
    Element::builder(root, ns)
        .append_all(devices.iter().map(|d| {
            Element::builder("device", ns)
                .a("id", d.to_string())
                .build()
        }))
        .build()
}

/// The devices of a device list (`<list/>` or `<devices/>`); ids that are not
/// numbers are skipped.
pub fn parse_devicelist(e: &Element) -> Option<(Version, Vec<u32>)> {
    let v = match (e.name(), e.ns().as_str()) {
        ("list", NS_03) => Version::V03,
        ("devices", NS_2) => Version::V2,
        _ => return None,
    };
    let ids = e
        .children()
        .filter(|d| d.name() == "device")
        .filter_map(|d| d.attr("id")?.parse().ok())
        .filter(|id| *id != 0)
        .collect();
    Some((v, ids))
}

/// A bundle's element.
pub fn bundle(b: &Bundle) -> Element {
    let leaf =
        |name: &str, ns: &str, bytes: &[u8]| Element::builder(name, ns).append(b64(bytes)).build();
    match b.version {
        Version::V03 => {
            let ns = NS_03;
            Element::builder("bundle", ns)
                .append(
                    Element::builder("signedPreKeyPublic", ns)
                        .a("signedPreKeyId", b.signed_prekey_id.to_string())
                        .append(b64(&b.wire_signed_prekey()))
                        .build(),
                )
                .append(leaf("signedPreKeySignature", ns, &b.signature))
                .append(leaf("identityKey", ns, &b.wire_identity_key()))
                .append(
                    Element::builder("prekeys", ns)
                        .append_all(b.wire_prekeys().iter().map(|(id, k)| {
                            Element::builder("preKeyPublic", ns)
                                .a("preKeyId", id.to_string())
                                .append(b64(k))
                                .build()
                        }))
                        .build(),
                )
                .build()
        }
        Version::V2 => {
            let ns = NS_2;
            Element::builder("bundle", ns)
                .append(
                    Element::builder("spk", ns)
                        .a("id", b.signed_prekey_id.to_string())
                        .append(b64(&b.wire_signed_prekey()))
                        .build(),
                )
                .append(leaf("spks", ns, &b.signature))
                .append(leaf("ik", ns, &b.wire_identity_key()))
                .append(
                    Element::builder("prekeys", ns)
                        .append_all(b.wire_prekeys().iter().map(|(id, k)| {
                            Element::builder("pk", ns)
                                .a("id", id.to_string())
                                .append(b64(k))
                                .build()
                        }))
                        .build(),
                )
                .build()
        }
    }
}

/// A bundle read from its element (its signature is not checked here).
pub fn parse_bundle(v: Version, e: &Element) -> Result<Bundle, String> {
    let (ns, spk, spk_id, sig, ik, pk, pk_id) = match v {
        Version::V03 => (
            NS_03,
            "signedPreKeyPublic",
            "signedPreKeyId",
            "signedPreKeySignature",
            "identityKey",
            "preKeyPublic",
            "preKeyId",
        ),
        Version::V2 => (NS_2, "spk", "id", "spks", "ik", "pk", "id"),
    };
    if !e.is("bundle", ns) {
        return Err(format!("not a bundle of {}", v.namespace()));
    }
    let child = |name: &str| {
        e.get_child(name, ns)
            .ok_or_else(|| format!("bundle without <{name}/>"))
    };
    let spk_el = child(spk)?;
    let prekeys = child("prekeys")?
        .children()
        .filter(|p| p.is(pk, ns))
        .map(|p| Ok((id_attr(p, pk_id)?, unb64(p)?)))
        .collect::<Result<Vec<_>, String>>()?;
    Bundle::from_wire(
        v,
        &unb64(child(ik)?)?,
        id_attr(spk_el, spk_id)?,
        &unb64(spk_el)?,
        &unb64(child(sig)?)?,
        &prekeys,
    )
    .map_err(|e| e.to_string())
}

/// One `<key/>` of an encrypted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// Whose device it is for (2 groups keys by JID; 0.3 does not say).
    pub jid: Option<String>,
    pub rid: u32,
    /// A key exchange (`prekey` in 0.3, `kex` in 2).
    pub kex: bool,
    pub data: Vec<u8>,
}

/// An `<encrypted/>` element of either version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encrypted {
    pub version: Version,
    /// The sender's device.
    pub sid: u32,
    pub keys: Vec<Key>,
    /// 0.3's IV (2 derives it).
    pub iv: Vec<u8>,
    /// The encrypted body (0.3) or SCE envelope (2); `None`: an empty message (a
    /// heartbeat, or a key transport).
    pub payload: Option<Vec<u8>>,
}

impl Encrypted {
    /// The element.
    pub fn element(&self) -> Element {
        let ns = self.version.namespace();
        let key = |k: &Key| {
            let mut b = Element::builder("key", ns).a("rid", k.rid.to_string());
            if k.kex {
                b = match self.version {
                    Version::V03 => b.a("prekey", "true"),
                    Version::V2 => b.a("kex", "true"),
                };
            }
            b.append(b64(&k.data)).build()
        };
        let mut header = Element::builder("header", ns).a("sid", self.sid.to_string());
        match self.version {
            Version::V03 => {
                header = header
                    .append_all(self.keys.iter().map(key))
                    .append(Element::builder("iv", ns).append(b64(&self.iv)).build());
            }
            Version::V2 => {
                let mut jids: Vec<&str> = Vec::new();
                for j in self.keys.iter().filter_map(|k| k.jid.as_deref()) {
                    if !jids.contains(&j) {
                        jids.push(j);
                    }
                }
                for jid in jids {
                    let keys = self.keys.iter().filter(|k| k.jid.as_deref() == Some(jid));
                    header = header.append(
                        Element::builder("keys", ns)
                            .a("jid", jid)
                            .append_all(keys.map(key))
                            .build(),
                    );
                }
            }
        }
        let mut e = Element::builder("encrypted", ns).append(header.build());
        if let Some(p) = &self.payload {
            e = e.append(Element::builder("payload", ns).append(b64(p)).build());
        }
        e.build()
    }

    /// Reads an `<encrypted/>` element of either version; `None` when it is not one.
    pub fn parse(e: &Element) -> Option<Result<Self, String>> {
        if e.name() != "encrypted" {
            return None;
        }
        let version = version_of(&e.ns())?;
        Some(Self::parse_as(version, e))
    }

    fn parse_as(version: Version, e: &Element) -> Result<Self, String> {
        let ns = version.namespace();
        let header = e.get_child("header", ns).ok_or("no <header/>")?;
        let sid = id_attr(header, "sid")?;
        let read_key = |k: &Element, jid: Option<String>| -> Result<Key, String> {
            let flag = match version {
                Version::V03 => "prekey",
                Version::V2 => "kex",
            };
            Ok(Key {
                jid,
                rid: id_attr(k, "rid")?,
                kex: matches!(k.attr(flag), Some("true" | "1")),
                data: unb64(k)?,
            })
        };
        let mut keys = Vec::new();
        match version {
            Version::V03 => {
                for k in header.children().filter(|k| k.is("key", ns)) {
                    keys.push(read_key(k, None)?);
                }
            }
            Version::V2 => {
                for group in header.children().filter(|k| k.is("keys", ns)) {
                    let jid = group.attr("jid").ok_or("<keys/> without a jid")?;
                    for k in group.children().filter(|k| k.is("key", ns)) {
                        keys.push(read_key(k, Some(jid.to_owned()))?);
                    }
                }
            }
        }
        let iv = match header.get_child("iv", ns) {
            Some(iv) => unb64(iv)?,
            None if version == Version::V03 => return Err("no <iv/>".into()),
            None => Vec::new(),
        };
        let payload = e.get_child("payload", ns).map(unb64).transpose()?;
        Ok(Self {
            version,
            sid,
            keys,
            iv,
            payload,
        })
    }
}

/// XEP-0380's `<encryption/>`: tells clients without OMEMO what the message is.
pub fn eme(v: Version) -> Element {
    let name = match v {
        Version::V03 => "OMEMO",
        Version::V2 => "OMEMO 2",
    };
    Element::builder("encryption", NS_EME)
        .a("namespace", v.namespace())
        .a("name", name)
        .build()
}

/// `<store/>` (XEP-0334): archive it, although its body is a fallback.
pub fn store_hint() -> Element {
    Element::builder("store", NS_HINTS).build()
}

/// OMEMO 2's SCE envelope of a text message: the body, random padding, and who
/// sends it to whom (so a payload can't be replayed as another's).
pub fn envelope(body: &str, from: &str, to: &str, rpad: &str) -> Element {
    Element::builder("envelope", NS_SCE)
        .append(
            Element::builder("content", NS_SCE)
                .append(
                    Element::builder("body", "jabber:client")
                        .append(body)
                        .build(),
                )
                .build(),
        )
        .append(Element::builder("rpad", NS_SCE).append(rpad).build())
        .append(Element::builder("from", NS_SCE).a("jid", from).build())
        .append(Element::builder("to", NS_SCE).a("jid", to).build())
        .build()
}

/// Namespaces never read from an SCE envelope: what XEP-0420 keeps outside it
/// (hints, ids, addressing, XEP-0380), and what only the server may wrap a message
/// in (carbons, forwards, archive results, a room's occupant data), which the
/// plugins that read them have unwrapped before OMEMO reads the message.
pub const NOT_FROM_ENVELOPE: &[&str] = &[
    NS_HINTS,
    "urn:xmpp:sid:0",
    "http://jabber.org/protocol/address",
    NS_EME,
    "urn:xmpp:carbons:2",
    "urn:xmpp:forward:0",
    "urn:xmpp:mam:2",
    "http://jabber.org/protocol/muc#user",
];

/// What an SCE envelope holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The body (none: a message without text, or an empty message).
    pub body: Option<String>,
    /// The `from` affix, when present.
    pub from: Option<String>,
    /// The other elements of its content (a reaction, a reply's reference…), those
    /// of [`NOT_FROM_ENVELOPE`] left out.
    pub elements: Vec<Element>,
}

/// Reads an SCE envelope.
pub fn read_envelope(xml: &[u8]) -> Result<Envelope, String> {
    let text = std::str::from_utf8(xml).map_err(|_| "the envelope is not UTF-8")?;
    let e: Element = text
        .parse()
        .map_err(|_| "the envelope is not XML".to_owned())?;
    if !e.is("envelope", NS_SCE) {
        return Err("not an SCE envelope".into());
    }
    let content = e
        .get_child("content", NS_SCE)
        .ok_or("an envelope without <content/>")?;
    let body = content
        .children()
        .find(|c| c.name() == "body")
        .map(Element::text);
    let elements = content
        .children()
        .filter(|c| c.name() != "body" && !NOT_FROM_ENVELOPE.contains(&c.ns().as_str()))
        .cloned()
        .collect();
    let from = e
        .get_child("from", NS_SCE)
        .and_then(|f| f.attr("jid"))
        .map(str::to_owned);
    Ok(Envelope {
        body,
        from,
        elements,
    })
}

/// What an SCE envelope says: its body (none: a message without text) and the
/// `from` affix, when present.
pub fn parse_envelope(xml: &[u8]) -> Result<(Option<String>, Option<String>), String> {
    read_envelope(xml).map(|e| (e.body, e.from))
}

#[cfg(test)]
mod tests;
