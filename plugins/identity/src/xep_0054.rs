//! XEP-0054: vcard-temp, the vCard most clients still read and write.
//!
//! Why only flat fields: frontends show and edit a name, a nickname, an address, a
//! description; the vCard's nested parts (addresses, phones) are kept as they are
//! when a field is changed, and shown as `{PART: text}`. The photo is shown by its
//! hash and type, never as base64: the avatar plugin keeps the image itself.
//!
//! The avatar plugin reads contacts' photos here too (XEP-0153: a hash in a
//! presence, the image in the vCard), through [`fetch`] and [`photo`].

use std::sync::Arc;

use base64::Engine;
use perch_actions::identity::{VcardGet, VcardGetArgs, VcardSet, VcardSetArgs};
use perch_plugin_api::action::jid_arg;
use perch_plugin_api::jid::Jid;
use perch_plugin_api::minidom::Element;
use perch_plugin_api::{Host, HostError, Plugin, PluginFactory, PluginInfo, Serve};
use serde_json::{Map, Value, json};

use crate::image;

pub const IMPORT_NAME: &str = "XEP-0054";
pub const NS: &str = "vcard-temp";

#[derive(Debug)]
pub struct Vcard;

impl Plugin for Vcard {}

pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "vcard-temp",
    description: "Reads and changes vCards (XEP-0054)",
    dependencies: &[],
    recommendations: &[],
    tables: &[],
    signals_as: None,
};

pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, |host: Arc<dyn Host>| async move {
        host.add_feature(NS);
        host.serve(VcardGet, host.clone(), vcard_get);
        host.serve(VcardSet, host.clone(), vcard_set);
        Ok(Arc::new(Vcard) as Arc<dyn Plugin>)
    })
}

/// The vCard of `jid` (`None`: ours); `None` when there is none.
pub async fn fetch(
    host: &dyn Host,
    profile: &str,
    jid: Option<Jid>,
) -> Result<Option<Element>, HostError> {
    let request = Element::builder("vCard", NS).build();
    match host.iq(profile, jid, false, request).await {
        Ok(v) => Ok(v.filter(|v| v.is("vCard", NS))),
        Err(HostError::Stanza(e))
            if matches!(
                e.condition.as_str(),
                "item-not-found" | "service-unavailable"
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The vCard's photo: its bytes and declared type.
pub fn photo(vcard: &Element) -> Option<(Vec<u8>, String)> {
    let p = vcard.get_child("PHOTO", NS)?;
    let text: String = p
        .get_child("BINVAL", NS)?
        .text()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let data = base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .ok()?;
    let kind = p
        .get_child("TYPE", NS)
        .map(Element::text)
        .unwrap_or_default();
    Some((data, kind))
}

/// A vCard as JSON (see the module doc).
pub fn to_json(vcard: &Element) -> Value {
    let mut out = Map::new();
    for c in vcard.children() {
        let name = c.name().to_owned();
        let value = match name.as_str() {
            "PHOTO" => match photo(vcard) {
                Some((data, kind)) => json!({"type": kind, "hash": image::sha1_hex(&data)}),
                None => continue,
            },
            "EMAIL" => match c.get_child("USERID", NS) {
                Some(u) => Value::String(u.text()),
                None => continue,
            },
            _ if c.children().next().is_none() => Value::String(c.text()),
            _ => Value::Object(
                c.children()
                    .map(|p| (p.name().to_owned(), Value::String(p.text())))
                    .collect(),
            ),
        };
        out.insert(name, value);
    }
    Value::Object(out)
}

/// `vcard` with `fields` set ("" removes one); every other part kept.
pub fn apply(vcard: Option<&Element>, fields: &Map<String, Value>) -> Element {
    let mut v = Element::builder("vCard", NS);
    for c in vcard.into_iter().flat_map(Element::children) {
        if !fields.contains_key(c.name()) {
            v = v.append(c.clone());
        }
    }
    for (name, value) in fields {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        if text.is_empty() {
            continue;
        }
        let e = if name == "EMAIL" {
            Element::builder("EMAIL", NS)
                .append(Element::builder("INTERNET", NS).build())
                .append(Element::builder("USERID", NS).append(text).build())
                .build()
        } else {
            Element::builder(name.as_str(), NS).append(text).build()
        };
        v = v.append(e);
    }
    v.build()
}

fn field_names_ok(fields: &Map<String, Value>) -> Result<(), HostError> {
    for name in fields.keys() {
        let ok = !name.is_empty()
            && name.len() <= 32
            && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'-')
            && name != "PHOTO";
        if !ok {
            return Err(HostError::BadArgument(format!(
                "fields: {name:?} is not a vCard field one may set (FN, NICKNAME, EMAIL, URL, \
                 DESC, BDAY…; the photo is the avatar's)"
            )));
        }
    }
    Ok(())
}

async fn vcard_get(
    host: Arc<dyn Host>,
    profile: String,
    a: VcardGetArgs,
) -> Result<Value, HostError> {
    let jid = match a.jid.as_deref().filter(|j| !j.is_empty()) {
        Some(j) => Some(jid_arg("jid", j)?.to_bare().into()),
        None => None,
    };
    Ok(fetch(&*host, &profile, jid)
        .await?
        .map_or_else(|| json!({}), |v| to_json(&v)))
}

async fn vcard_set(
    host: Arc<dyn Host>,
    profile: String,
    a: VcardSetArgs,
) -> Result<Value, HostError> {
    if a.fields.is_empty() {
        return Err(HostError::BadArgument("fields: nothing to set".into()));
    }
    field_names_ok(&a.fields)?;
    let current = fetch(&*host, &profile, None).await?;
    let new = apply(current.as_ref(), &a.fields);
    host.iq(&profile, None, true, new.clone()).await?;
    tracing::info!(%profile, fields = a.fields.len(), "vCard changed");
    Ok(to_json(&new))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARD: &str = "<vCard xmlns='vcard-temp'><FN>Alice A.</FN><NICKNAME>ali</NICKNAME>\
        <EMAIL><INTERNET/><USERID>alice@example.org</USERID></EMAIL>\
        <ADR><LOCALITY>Paris</LOCALITY></ADR>\
        <PHOTO><TYPE>image/png</TYPE><BINVAL>iVBORw0K\nGgo=</BINVAL></PHOTO></vCard>";

    #[test]
    fn a_vcard_reads_as_json() {
        let v: Element = CARD.parse().unwrap();
        let j = to_json(&v);
        assert_eq!(j["FN"], "Alice A.");
        assert_eq!(j["EMAIL"], "alice@example.org");
        assert_eq!(j["ADR"], json!({"LOCALITY": "Paris"}));
        assert_eq!(j["PHOTO"]["type"], "image/png");
        let (data, _) = photo(&v).unwrap();
        assert_eq!(data, b"\x89PNG\r\n\x1a\n");
        assert_eq!(j["PHOTO"]["hash"], image::sha1_hex(&data));
    }

    #[test]
    fn fields_change_and_the_rest_stays() {
        let v: Element = CARD.parse().unwrap();
        let mut f = Map::new();
        f.insert("NICKNAME".into(), json!(""));
        f.insert("URL".into(), json!("https://example.org"));
        f.insert("EMAIL".into(), json!("a@b.c"));
        let new = apply(Some(&v), &f);
        let xml = String::from(&new);
        assert!(!xml.contains("NICKNAME"), "{xml}");
        assert!(xml.contains("<URL>https://example.org</URL>"), "{xml}");
        assert!(
            xml.contains("<EMAIL><INTERNET/><USERID>a@b.c</USERID></EMAIL>"),
            "{xml}"
        );
        assert!(xml.contains("<PHOTO>"), "{xml}");
        assert!(xml.contains("<LOCALITY>Paris</LOCALITY>"), "{xml}");
        assert!(field_names_ok(&f).is_ok());
        f.insert("PHOTO".into(), json!("x"));
        assert!(field_names_ok(&f).is_err());
    }
}
