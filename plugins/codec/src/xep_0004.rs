//! XEP-0004: Data Forms, as plain JSON for frontends.
//!
//! Why JSON and not the typed form: frontends send and show node configurations,
//! publish-options and subscription options as `{var: value}` maps; the form's
//! details (types, labels, options) travel beside for those who build a UI. A JSON
//! value becomes one `<value/>` (strings as is, booleans `true`/`false`, numbers in
//! decimal), an array several, `null` none: a field read without a value (`null` in
//! [`to_json`]) is sent back without one, never as an empty value that a boolean or
//! list field would refuse, so a form read, edited and submitted whole is accepted.

use crate::minidom::Element;

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
            Value::Array(a) => a.iter().filter_map(scalar).collect(),
            v => scalar(v).into_iter().collect(),
        };
        x = x.append(field(var, None, vals));
    }
    x.build()
}

/// One `<value/>`'s text; `null` is no value.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
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

    /// A field read without a value went back as an empty `<value/>`, which a
    /// boolean or list field refuses: the whole form was refused (found by
    /// `form_read_and_submitted_whole_keeps_its_values`).
    #[test]
    fn fields_without_value_go_back_without_one() {
        let form: Element = "<x xmlns='jabber:x:data' type='form'>\
            <field var='FORM_TYPE' type='hidden'><value>urn:t</value></field>\
            <field var='pubsub#deliver_payloads' type='boolean'/>\
            <field var='pubsub#title' type='text-single'><value>T</value></field></x>"
            .parse()
            .unwrap();
        let j = to_json(&form);
        assert_eq!(j["values"]["pubsub#deliver_payloads"], Value::Null);
        let x = submit("urn:t", j["values"].as_object().unwrap());
        assert_eq!(
            String::from(&x),
            "<x xmlns='jabber:x:data' type='submit'><field type='hidden' var='FORM_TYPE'>\
             <value>urn:t</value></field><field var='pubsub#deliver_payloads'/>\
             <field var='pubsub#title'><value>T</value></field></x>"
        );
    }
}

/// Properties (doc/reliability.rst, "Property tests"): 256 cases each (`PROPTEST_CASES`).
#[cfg(test)]
mod proptests {
    use super::*;
    use crate::dom::arb;
    use proptest::prelude::*;
    use proptest::sample::select;

    const TYPES: &[&str] = &[
        "boolean",
        "fixed",
        "hidden",
        "jid-multi",
        "jid-single",
        "list-multi",
        "list-single",
        "text-multi",
        "text-private",
        "text-single",
    ];

    type Fields = Vec<(String, &'static str, Vec<String>)>;

    /// A form as a service sends it: typed fields of distinct vars, 0 to 3 values each.
    fn form() -> impl Strategy<Value = (String, Fields)> {
        let field = (select(TYPES), prop::collection::vec(arb::text(), 0..4));
        (
            arb::text(),
            prop::collection::btree_map("[a-z#_]{1,10}", field, 0..8),
        )
            .prop_map(|(ft, m)| {
                (
                    ft,
                    m.into_iter().map(|(v, (t, vals))| (v, t, vals)).collect(),
                )
            })
    }

    fn build(form_type: &str, fields: &Fields) -> Element {
        let value = |v: &str| Element::builder("value", NS).append(v).build();
        let mut x = Element::builder("x", NS).a("type", "form").append(
            Element::builder("field", NS)
                .a("var", "FORM_TYPE")
                .a("type", "hidden")
                .append(value(form_type))
                .build(),
        );
        for (var, kind, vals) in fields {
            let mut f = Element::builder("field", NS)
                .a("var", var.as_str())
                .a("type", *kind);
            for v in vals {
                f = f.append(value(v));
            }
            x = x.append(f.build());
        }
        x.build()
    }

    fn values_of(x: &Element, var: &str) -> Option<Vec<String>> {
        x.children()
            .find(|f| f.is("field", NS) && f.attr("var") == Some(var))
            .map(|f| {
                f.children()
                    .filter(|c| c.is("value", NS))
                    .map(Element::text)
                    .collect()
            })
    }

    proptest! {
        #![proptest_config(arb::config())]

        /// Form → JSON → submitted form: every field sends back what it held (a
        /// single-valued field its first value, a `*-multi` field all of them).
        #[test]
        fn form_read_and_submitted_whole_keeps_its_values((ft, fields) in form()) {
            let j = to_json(&build(&ft, &fields));
            prop_assert_eq!(&j["form_type"], &json!(ft));
            let back = submit(&ft, j["values"].as_object().expect("an object"));
            prop_assert_eq!(&to_json(&back)["form_type"], &json!(ft));
            for (var, kind, vals) in fields.iter().filter(|(_, k, _)| *k != "fixed") {
                let expected: Vec<String> = if kind.ends_with("-multi") {
                    vals.clone()
                } else {
                    vals.first().cloned().into_iter().collect()
                };
                prop_assert_eq!(values_of(&back, var), Some(expected), "{}", var);
            }
        }

        /// JSON values → submitted form → JSON: strings as they were, booleans and
        /// numbers as their decimal text, null as null.
        #[test]
        fn json_values_survive_submit(
            ft in arb::text(),
            values in prop::collection::btree_map(
                "[a-z#_]{1,10}",
                prop_oneof![
                    arb::text().prop_map(Value::from),
                    any::<bool>().prop_map(Value::from),
                    any::<i64>().prop_map(Value::from),
                    Just(Value::Null),
                ],
                0..8,
            ),
        ) {
            let m: Map<String, Value> = values.into_iter().collect();
            let j = to_json(&submit(&ft, &m));
            let expected: Map<String, Value> = m
                .iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::Null => Value::Null,
                        Value::String(s) => Value::from(s.as_str()),
                        other => Value::from(other.to_string()),
                    };
                    (k.clone(), text)
                })
                .collect();
            prop_assert_eq!(&j["values"], &Value::Object(expected));
            prop_assert_eq!(&j["form_type"], &json!(ft));
        }

        /// Any element is read without a panic, each value being a field's.
        #[test]
        fn any_element_is_read(
            e in arb::element(
                &["x", "field", "value", "option"],
                &[NS, "urn:other"],
                &["var", "type", "label"],
            )
        ) {
            let j = to_json(&e);
            let values = j["values"].as_object().expect("an object");
            let fields = j["fields"].as_array().expect("an array");
            for f in fields {
                prop_assert!(values.contains_key(f["var"].as_str().unwrap_or_default()));
            }
        }
    }
}
