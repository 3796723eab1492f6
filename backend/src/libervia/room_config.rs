//! `mucConfigureRoom`: a room's configuration form as Libervia 0.9's frontends show
//! it (an XMLUI form), and its submission through `launchAction`.
//!
//! The form comes from the group chat plugin (`muc_config`, XEP-0004 as JSON) and
//! goes back to it (`muc_configure`); this module only converts, as 0.9's
//! `xml_tools.dataForm2XMLUI` does: each field a label (its label, else its var)
//! and a widget of the matching type, hidden fields without a label. The submit id
//! names the form kept here until it is submitted (one-shot, the last 32 kept).

use perch_actions::muc;
use serde_json::{Value, json};

use super::actions::uuid4;
use super::context::{FORM_PREFIX, Lib, RoomForm};
use super::errors::LibError;
use super::reply::{Map, xml_escape};

/// The configuration form of `room` (joined, and ours to configure) for `profile`.
pub async fn form(lib: &Lib, profile: &str, room: &str) -> Result<String, LibError> {
    let config = lib
        .daemon
        .action::<muc::Config>(profile, &muc::RoomArgs { room: room.into() })
        .await?;
    let fields = config["fields"].as_array().cloned().unwrap_or_default();
    let id = uuid4();
    let types = fields
        .iter()
        .filter_map(|f| Some((f["var"].as_str()?.to_owned(), s(&f["type"]))))
        .collect();
    lib.room_forms.keep(RoomForm {
        id: id.clone(),
        profile: profile.to_owned(),
        room: room.to_owned(),
        types,
    });
    Ok(xmlui(&id, &fields))
}

/// The form waiting under submit id `id` for `profile`, taken.
pub fn take(lib: &Lib, profile: &str, id: &str) -> Option<RoomForm> {
    lib.room_forms.take(profile, id)
}

/// A submitted form: its `SAT_FORM_<var>` values, typed as the form's fields, go to
/// `muc_configure`; a cancelled form changes nothing. The answer is empty, as 0.9's.
pub async fn submit(lib: &Lib, form: &RoomForm, data: &Map) -> Result<Map, LibError> {
    if data.get("cancelled").is_some_and(|c| c == "true") {
        return Ok(Map::new());
    }
    let mut values = serde_json::Map::new();
    for (key, raw) in data {
        let Some(var) = key.strip_prefix(FORM_PREFIX) else {
            continue;
        };
        let Some((_, kind)) = form.types.iter().find(|(v, _)| v == var) else {
            continue;
        };
        values.insert(var.to_owned(), typed_value(kind, raw));
    }
    let args = muc::ConfigureArgs {
        room: form.room.clone(),
        values,
    };
    lib.daemon
        .action::<muc::Configure>(&form.profile, &args)
        .await?;
    Ok(Map::new())
}

/// A submitted value as the form's field type wants it.
fn typed_value(kind: &str, raw: &str) -> Value {
    match kind {
        "boolean" => Value::Bool(matches!(raw, "true" | "1")),
        k if k.ends_with("-multi") => json!(
            raw.split(['\t', '\n'])
                .filter(|v| !v.is_empty())
                .collect::<Vec<_>>()
        ),
        _ => Value::String(raw.to_owned()),
    }
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// The XMLUI of the fields (`muc_config`'s JSON fields).
fn xmlui(id: &str, fields: &[Value]) -> String {
    let mut x = format!(
        "<?xml version=\"1.0\" ?><sat_xmlui type=\"form\" submit=\"{id}\">\
         <container type=\"vertical\"><container type=\"label\">"
    );
    for f in fields {
        field(&mut x, f);
    }
    x.push_str("</container></container></sat_xmlui>");
    x
}

/// One field: its label, then its widget.
fn field(x: &mut String, f: &Value) {
    let var = xml_escape(&s(&f["var"]));
    let kind = s(&f["type"]);
    let one = xml_escape(f["value"].as_str().unwrap_or_default());
    if kind != "hidden" {
        let label = f["label"]
            .as_str()
            .map_or_else(|| s(&f["var"]), str::to_owned);
        x.push_str(&format!(
            "<widget type=\"label\" value=\"{}\"/>",
            xml_escape(&label)
        ));
    }
    match kind.as_str() {
        "hidden" => x.push_str(&format!(
            "<widget type=\"hidden\" name=\"{var}\" value=\"{one}\"/>"
        )),
        "boolean" => {
            let on = matches!(f["value"].as_str(), Some("1" | "true"));
            x.push_str(&format!(
                "<widget type=\"bool\" name=\"{var}\" value=\"{on}\"/>"
            ));
        }
        "list-single" | "list-multi" => list(x, &var, &kind, f),
        "text-multi" | "jid-multi" => {
            let lines: Vec<String> = f["value"]
                .as_array()
                .map(|a| a.iter().map(s).collect())
                .unwrap_or_default();
            x.push_str(&format!(
                "<widget type=\"textbox\" name=\"{var}\"><value>{}</value></widget>",
                xml_escape(&lines.join("\n"))
            ));
        }
        k => {
            let widget = match k {
                "text-private" => "password",
                "jid-single" => "jid_input",
                _ => "string",
            };
            x.push_str(&format!(
                "<widget type=\"{widget}\" name=\"{var}\" value=\"{one}\"/>"
            ));
        }
    }
}

/// A list widget with its options, the current values selected.
fn list(x: &mut String, var: &str, kind: &str, f: &Value) {
    let selected: Vec<String> = match &f["value"] {
        Value::Array(a) => a.iter().map(s).collect(),
        v => vec![s(v)],
    };
    let styles = if kind == "list-multi" {
        " styles=\"multi\""
    } else {
        ""
    };
    x.push_str(&format!("<widget type=\"list\" name=\"{var}\"{styles}>"));
    for o in f["options"].as_array().into_iter().flatten() {
        let value = s(&o["value"]);
        let label = o["label"]
            .as_str()
            .map_or_else(|| value.clone(), str::to_owned);
        let sel = if selected.contains(&value) {
            " selected=\"true\""
        } else {
            ""
        };
        x.push_str(&format!(
            "<option value=\"{}\" label=\"{}\"{sel}/>",
            xml_escape(&value),
            xml_escape(&label)
        ));
    }
    x.push_str("</widget>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_become_labelled_widgets() {
        let fields = vec![
            json!({"var": "muc#roomconfig_roomname", "type": "text-single", "label": "Title", "value": "A & B", "options": []}),
            json!({"var": "muc#roomconfig_persistentroom", "type": "boolean", "label": null, "value": "1", "options": []}),
            json!({"var": "muc#roomconfig_whois", "type": "list-single", "label": "Who", "value": "anyone",
                   "options": [{"label": "Moderators", "value": "moderators"}, {"label": null, "value": "anyone"}]}),
            json!({"var": "secret", "type": "hidden", "label": null, "value": "x", "options": []}),
        ];
        assert_eq!(
            xmlui("ID", &fields),
            "<?xml version=\"1.0\" ?><sat_xmlui type=\"form\" submit=\"ID\"><container type=\"vertical\">\
             <container type=\"label\">\
             <widget type=\"label\" value=\"Title\"/><widget type=\"string\" name=\"muc#roomconfig_roomname\" value=\"A &amp; B\"/>\
             <widget type=\"label\" value=\"muc#roomconfig_persistentroom\"/><widget type=\"bool\" name=\"muc#roomconfig_persistentroom\" value=\"true\"/>\
             <widget type=\"label\" value=\"Who\"/><widget type=\"list\" name=\"muc#roomconfig_whois\">\
             <option value=\"moderators\" label=\"Moderators\"/><option value=\"anyone\" label=\"anyone\" selected=\"true\"/></widget>\
             <widget type=\"hidden\" name=\"secret\" value=\"x\"/>\
             </container></container></sat_xmlui>"
        );
    }

    #[test]
    fn submitted_values_take_their_field_types() {
        assert_eq!(typed_value("boolean", "true"), json!(true));
        assert_eq!(typed_value("boolean", "false"), json!(false));
        assert_eq!(typed_value("jid-multi", "a@x\tb@x"), json!(["a@x", "b@x"]));
        assert_eq!(typed_value("text-single", "t"), json!("t"));
    }
}
