//! XEP-0004: Data Forms, as plain JSON for frontends.
//!
//! Why JSON and not the typed form: frontends send and show node configurations,
//! publish-options and subscription options as `{var: value}` maps; the form's
//! details (types, labels, options) travel beside for those who build a UI. A JSON
//! value becomes one `<value/>` (strings as is, booleans `true`/`false`, numbers in
//! decimal), an array several.

use perch_plugin_api::minidom::Element;

use crate::dom::Attr;
use serde_json::{Map, Value, json};

pub const NS: &str = "jabber:x:data";

/// A submit form of `form_type` with these values.
pub fn submit(form_type: &str, values: &Map<String, Value>) -> Element {
    let field = |var: &str, kind: Option<&str>, vals: Vec<String>| {
        let mut f = Element::builder("field", NS).a("var", var);
        if let Some(k) = kind {
            f = f.a("type", k);
        }
        for v in vals {
            f = f.append(Element::builder("value", NS).append(v).build());
        }
        f.build()
    };
    let mut x = Element::builder("x", NS).a("type", "submit").append(field(
        "FORM_TYPE",
        Some("hidden"),
        vec![form_type.to_owned()],
    ));
    for (var, value) in values {
        let vals = match value {
            Value::Array(a) => a.iter().map(scalar).collect(),
            v => vec![scalar(v)],
        };
        x = x.append(field(var, None, vals));
    }
    x.build()
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A form as `{"type", "form_type", "values": {var: value or [values]}, "fields": [...]}`.
/// Single-valued fields give a string, `*-multi` and `jid-multi` an array.
pub fn to_json(x: &Element) -> Value {
    let mut values = Map::new();
    let mut fields = Vec::new();
    let mut form_type = Value::Null;
    for f in x.children().filter(|c| c.is("field", NS)) {
        let var = f.attr("var").unwrap_or_default();
        let kind = f.attr("type").unwrap_or("text-single");
        let vals: Vec<String> = f
            .children()
            .filter(|c| c.is("value", NS))
            .map(Element::text)
            .collect();
        if var == "FORM_TYPE" {
            form_type = vals.first().cloned().map_or(Value::Null, Value::String);
            continue;
        }
        if kind == "fixed" || var.is_empty() {
            continue;
        }
        let value = if kind.ends_with("-multi") {
            json!(vals)
        } else {
            vals.first().cloned().map_or(Value::Null, Value::String)
        };
        let options: Vec<Value> = f
            .children()
            .filter(|c| c.is("option", NS))
            .map(|o| {
                json!({
                    "label": o.attr("label"),
                    "value": o.get_child("value", NS).map(Element::text),
                })
            })
            .collect();
        fields.push(json!({
            "var": var,
            "type": kind,
            "label": f.attr("label"),
            "value": value.clone(),
            "options": options,
        }));
        values.insert(var.to_owned(), value);
    }
    json!({
        "type": x.attr("type"),
        "form_type": form_type,
        "values": values,
        "fields": fields,
    })
}

/// The first form among `parent`'s children.
pub fn find(parent: &Element) -> Option<&Element> {
    parent.get_child("x", NS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submit_and_read_back() {
        let mut m = Map::new();
        m.insert("pubsub#max_items".into(), json!(100));
        m.insert("pubsub#persist_items".into(), json!(true));
        m.insert("pubsub#children".into(), json!(["a", "b"]));
        let x = submit("http://jabber.org/protocol/pubsub#node_config", &m);
        assert_eq!(
            String::from(&x),
            "<x xmlns='jabber:x:data' type='submit'><field type='hidden' var='FORM_TYPE'>\
             <value>http://jabber.org/protocol/pubsub#node_config</value></field>\
             <field var='pubsub#children'><value>a</value><value>b</value></field>\
             <field var='pubsub#max_items'><value>100</value></field>\
             <field var='pubsub#persist_items'><value>true</value></field></x>"
        );
        let form: Element = "<x xmlns='jabber:x:data' type='form'>\
            <field var='FORM_TYPE' type='hidden'><value>urn:t</value></field>\
            <field var='pubsub#title' type='text-single' label='Title'><value>T</value></field>\
            <field var='pubsub#access_model' type='list-single'><option label='Open'><value>open</value></option><value>presence</value></field>\
            <field var='pubsub#contact' type='jid-multi'/>\
            </x>"
            .parse()
            .unwrap();
        let j = to_json(&form);
        assert_eq!(j["form_type"], "urn:t");
        assert_eq!(j["values"]["pubsub#title"], "T");
        assert_eq!(j["values"]["pubsub#access_model"], "presence");
        assert_eq!(j["values"]["pubsub#contact"], json!([]));
        assert_eq!(j["fields"][1]["options"][0]["value"], "open");
    }
}
