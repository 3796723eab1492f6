//! XEP-0363's elements: finding the service (disco), asking for a slot, reading it.

use perch_plugin_api::HostError;
use perch_plugin_api::minidom::Element;

use perch_codec::dom::Attr;

/// HTTP File Upload's namespace.
pub const NS: &str = "urn:xmpp:http:upload:0";
const NS_DISCO_INFO: &str = "http://jabber.org/protocol/disco#info";
const NS_DISCO_ITEMS: &str = "http://jabber.org/protocol/disco#items";
const NS_DATA: &str = "jabber:x:data";

/// The headers a slot may ask the PUT to carry (XEP-0363 §4); others are dropped.
const ALLOWED_HEADERS: [&str; 3] = ["authorization", "cookie", "expires"];

/// What the service tells of itself in disco#info.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub jid: String,
    /// The largest file it takes, in bytes (`max-file-size`), when it says.
    pub max_size: Option<u64>,
}

/// A slot: where to PUT (with which headers) and where the file will be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub put: String,
    pub headers: Vec<(String, String)>,
    pub get: String,
}

pub fn items_query() -> Element {
    Element::builder("query", NS_DISCO_ITEMS).build()
}

pub fn info_query() -> Element {
    Element::builder("query", NS_DISCO_INFO).build()
}

/// The JIDs of a disco#items answer.
pub fn item_jids(items: &Element) -> Vec<String> {
    items
        .children()
        .filter(|c| c.is("item", NS_DISCO_ITEMS))
        .filter_map(|c| c.attr("jid").map(str::to_owned))
        .collect()
}

/// The service a disco#info answer describes, if it is an upload service.
pub fn service(jid: &str, info: &Element) -> Option<Service> {
    let has = info
        .children()
        .any(|c| c.is("feature", NS_DISCO_INFO) && c.attr("var") == Some(NS));
    if !has {
        return None;
    }
    let max_size = info
        .children()
        .filter(|x| x.is("x", NS_DATA))
        .filter(|x| field(x, "FORM_TYPE").as_deref() == Some(NS))
        .find_map(|x| field(x, "max-file-size"))
        .and_then(|v| v.trim().parse().ok());
    Some(Service {
        jid: jid.to_owned(),
        max_size,
    })
}

/// The first value of a form's field.
fn field(x: &Element, var: &str) -> Option<String> {
    x.children()
        .find(|f| f.is("field", NS_DATA) && f.attr("var") == Some(var))?
        .children()
        .find(|v| v.is("value", NS_DATA))
        .map(Element::text)
}

/// `<request/>` for a file.
pub fn request(name: &str, size: u64, media_type: &str) -> Element {
    Element::builder("request", NS)
        .a("filename", name)
        .a("size", size.to_string().as_str())
        .a("content-type", media_type)
        .build()
}

/// Reads a `<slot/>`; the URLs must be https, the headers are the allowed ones,
/// with line breaks taken out (XEP-0363 §4).
pub fn parse(slot: &Element) -> Result<Slot, HostError> {
    let bad = |why: &str| HostError::Xmpp(format!("the upload service's slot {why}"));
    if !slot.is("slot", NS) {
        return Err(bad("is missing"));
    }
    let put = slot
        .get_child("put", NS)
        .ok_or_else(|| bad("has no <put/>"))?;
    let get = slot
        .get_child("get", NS)
        .and_then(|g| g.attr("url"))
        .ok_or_else(|| bad("has no <get url=…/>"))?;
    let put_url = put.attr("url").ok_or_else(|| bad("has no PUT URL"))?;
    for url in [put_url, get] {
        if !url.starts_with("https://") {
            return Err(bad(&format!("URL {url:?} is not https")));
        }
    }
    let headers = put
        .children()
        .filter(|h| h.is("header", NS))
        .filter_map(|h| {
            let name = h.attr("name")?.trim();
            if !ALLOWED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                tracing::debug!(header = name, "a slot header that is not allowed, dropped");
                return None;
            }
            let value: String = h
                .text()
                .chars()
                .filter(|c| *c != '\r' && *c != '\n')
                .collect();
            Some((name.to_owned(), value))
        })
        .collect();
    Ok(Slot {
        put: put_url.to_owned(),
        headers,
        get: get.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(xml: &str) -> Element {
        xml.parse().expect("XML")
    }

    #[test]
    fn the_request_names_the_file() {
        assert_eq!(
            String::from(&request("a b.png", 1234, "image/png")),
            "<request xmlns='urn:xmpp:http:upload:0' content-type='image/png' filename='a b.png' size='1234'/>"
        );
    }

    #[test]
    fn a_slot_is_read_with_its_allowed_headers() {
        let s = parse(&el("<slot xmlns='urn:xmpp:http:upload:0'>\
               <put url='https://upload.montague.tld/4a77/tr%C3%A8s%20cool.jpg'>\
                 <header name='Authorization'>Bearer abc\ndef</header>\
                 <header name='Cookie'>foo=bar; user=romeo</header>\
                 <header name='X-Evil'>1</header>\
               </put>\
               <get url='https://download.montague.tld/4a77/tr%C3%A8s%20cool.jpg'/>\
             </slot>"))
        .expect("a slot");
        assert_eq!(
            s.put,
            "https://upload.montague.tld/4a77/tr%C3%A8s%20cool.jpg"
        );
        assert_eq!(
            s.get,
            "https://download.montague.tld/4a77/tr%C3%A8s%20cool.jpg"
        );
        assert_eq!(
            s.headers,
            vec![
                ("Authorization".to_owned(), "Bearer abcdef".to_owned()),
                ("Cookie".to_owned(), "foo=bar; user=romeo".to_owned()),
            ]
        );
    }

    #[test]
    fn a_slot_without_https_or_get_is_refused() {
        let plain = el(
            "<slot xmlns='urn:xmpp:http:upload:0'><put url='http://u/a'/><get url='http://u/a'/></slot>",
        );
        assert!(matches!(parse(&plain), Err(HostError::Xmpp(m)) if m.contains("not https")));
        let no_get = el("<slot xmlns='urn:xmpp:http:upload:0'><put url='https://u/a'/></slot>");
        assert!(parse(&no_get).is_err());
    }

    #[test]
    fn the_service_and_its_limit_come_from_disco() {
        let items = el("<query xmlns='http://jabber.org/protocol/disco#items'>\
               <item jid='upload.localhost' name='File sharing'/><item jid='muc.localhost'/>\
             </query>");
        assert_eq!(item_jids(&items), ["upload.localhost", "muc.localhost"]);
        let info = el("<query xmlns='http://jabber.org/protocol/disco#info'>\
               <identity category='store' type='file'/>\
               <feature var='urn:xmpp:http:upload:0'/>\
               <x xmlns='jabber:x:data' type='result'>\
                 <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:http:upload:0</value></field>\
                 <field var='max-file-size'><value>10485760</value></field>\
               </x>\
             </query>");
        assert_eq!(
            service("upload.localhost", &info),
            Some(Service {
                jid: "upload.localhost".into(),
                max_size: Some(10_485_760)
            })
        );
        let muc = el(
            "<query xmlns='http://jabber.org/protocol/disco#info'><feature var='http://jabber.org/protocol/muc'/></query>",
        );
        assert_eq!(service("muc.localhost", &muc), None);
    }
}
