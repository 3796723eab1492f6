//! The OMEMO trust form (`encryptionTrustUIGet`, answered through `launchAction`):
//! a contact's devices with their fingerprints and trust, one list per device to
//! trust or distrust it, in the shape Libervia 0.9's OMEMO plugin gives it, so
//! `libervia-cli encryption trust ui` and the TUI's trust menu work on perchd.
//!
//! Why a form kept here until submitted: Libervia's submit callback is one-shot and
//! names the devices by their place in the form (`trust_N`), so the keys the form
//! listed are kept with its submit id; the submission then applies the OMEMO
//! plugin's own `omemo_trust` / `omemo_distrust` to the keys whose level changed.
//!
//! Trust levels, Libervia's names for Perch's: `TRUSTED` (verified),
//! `BLINDLY_TRUSTED` (blind), `UNDECIDED`, `DISTRUSTED`. As in 0.9, a device's list
//! offers `TRUSTED`, `DISTRUSTED` and its current level; going back to blind trust is
//! not offered (it is given, never chosen).

use perch_actions::encryption::{self, Device};

use super::actions::uuid4;
use super::context::{FORM_PREFIX, Lib, TrustForm};
use super::errors::{LibError, NOT_FOUND};
use super::reply::{Map, xml_escape};

/// The namespaces whose trust the form manages (both OMEMO versions: one identity
/// key serves both, so one trust too).
pub const NAMESPACES: [&str; 2] = ["urn:xmpp:omemo:2", "eu.siacs.conversations.axolotl"];

/// The text heading the form: 0.9's own words.
const INTRO: &str = "This is OMEMO trusting system. You'll see below the devices of your \
contacts, and a list selection to trust them or not. A trusted device can read your messages \
in plain text, so be sure to only validate devices that you are sure are belonging to your \
contact. It's better to do this when you are next to your contact and their device, so you \
can check the \"fingerprint\" (the number next to the device) yourself. Do *not* validate a \
device if the fingerprint is wrong! Note that manually validating a fingerprint disables any \
form of automatic trust.";

/// Libervia's name of a Perch trust level.
pub fn level(trust: &str) -> &'static str {
    match trust {
        "verified" => "TRUSTED",
        "distrusted" => "DISTRUSTED",
        "undecided" => "UNDECIDED",
        _ => "BLINDLY_TRUSTED",
    }
}

/// `encryptionTrustUIGet(to, namespace, profile)`: the form for `to`'s devices (those
/// whose key is known). Without a namespace the conversation must be encrypted, as
/// 0.9 asks for its current algorithm.
pub async fn get(lib: &Lib, profile: &str, to: &str, namespace: &str) -> Result<String, LibError> {
    let to = to.split('/').next().unwrap_or_default().to_owned();
    if namespace.is_empty() {
        let args = encryption::ConversationArgs { to: to.clone() };
        let st = lib
            .daemon
            .action::<encryption::Status>(profile, &args)
            .await?;
        if !st.encrypted {
            return Err(LibError::exc(
                NOT_FOUND,
                &format!("No encryption session currently active for {to}"),
                "",
            ));
        }
    } else if !NAMESPACES.contains(&namespace) {
        return Err(LibError::exc(
            NOT_FOUND,
            &format!("Can't find requested encryption plugin: {namespace}"),
            "",
        ));
    }
    let own = lib
        .daemon
        .action::<encryption::Fingerprint>(profile, &encryption::FingerprintArgs { jid: None })
        .await?;
    let args = encryption::DevicesArgs { jid: to.clone() };
    let devices: Vec<Device> = lib
        .daemon
        .action::<encryption::Devices>(profile, &args)
        .await?
        .into_iter()
        .filter(|d| d.fingerprint.is_some())
        .collect();
    let id = uuid4();
    let keys = devices
        .iter()
        .map(|d| {
            let fp = d.fingerprint.clone().unwrap_or_default();
            (fp, level(d.trust.as_deref().unwrap_or_default()).to_owned())
        })
        .collect();
    lib.trust_forms.keep(TrustForm {
        id: id.clone(),
        profile: profile.to_owned(),
        jid: to,
        keys,
    });
    Ok(form(&id, own.first(), &devices))
}

/// The form waiting under submit id `id` for `profile`, taken (one-shot).
pub fn take(lib: &Lib, profile: &str, id: &str) -> Option<TrustForm> {
    lib.trust_forms.take(profile, id)
}

/// A submitted form (`launchAction(id, data)`): each `SAT_FORM_trust_N` whose level
/// changed to `TRUSTED` or `DISTRUSTED` is applied; a cancelled form changes
/// nothing. The answer is empty, as 0.9's.
pub async fn submit(lib: &Lib, form: &TrustForm, data: &Map) -> Result<Map, LibError> {
    if data.get("cancelled").is_some_and(|c| c == "true") {
        return Ok(Map::new());
    }
    for (key, value) in data {
        let Some(n) = key
            .strip_prefix(FORM_PREFIX)
            .and_then(|k| k.strip_prefix("trust_"))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        let Some((fp, shown)) = form.keys.get(n) else {
            return Err(LibError::value(&format!("{key}: no such device")));
        };
        if value == shown {
            continue;
        }
        let args = encryption::TrustArgs {
            jid: form.jid.clone(),
            fingerprint: fp.clone(),
        };
        match value.as_str() {
            "TRUSTED" => {
                lib.daemon
                    .action::<encryption::Trust>(&form.profile, &args)
                    .await?;
            }
            "DISTRUSTED" => {
                lib.daemon
                    .action::<encryption::Distrust>(&form.profile, &args)
                    .await?;
            }
            other => {
                return Err(LibError::value(&format!(
                    "{key}: {other} can't be chosen (TRUSTED or DISTRUSTED)"
                )));
            }
        }
    }
    Ok(Map::new())
}

/// The XMLUI: the heading, our device, then each device of the contact.
fn form(id: &str, own: Option<&Device>, devices: &[Device]) -> String {
    let mut x = format!(
        "<?xml version=\"1.0\" ?><sat_xmlui type=\"form\" title=\"OMEMO trust management\" \
         submit=\"{id}\"><container type=\"vertical\"><widget type=\"text\"><value>{}</value>\
         </widget><container type=\"label\">",
        xml_escape(INTRO)
    );
    let own_id = own.map(|d| d.device_id).unwrap_or_default();
    let own_fp = own
        .and_then(|d| d.fingerprint.as_deref())
        .map(encryption::group)
        .unwrap_or_default();
    label(&mut x, "This device ID");
    text(&mut x, &own_id.to_string());
    label(&mut x, "This device's fingerprint");
    text(&mut x, &own_fp);
    x.push_str("<widget type=\"empty\"/><widget type=\"empty\"/>");
    for (n, d) in devices.iter().enumerate() {
        device(&mut x, n, d);
    }
    x.push_str("</container></container></sat_xmlui>");
    x
}

fn device(x: &mut String, n: usize, d: &Device) {
    label(x, "Contact");
    x.push_str(&format!(
        "<widget type=\"jid\" value=\"{}\"/>",
        xml_escape(&d.jid)
    ));
    label(x, "Device ID");
    text(x, &d.device_id.to_string());
    label(x, "Fingerprint");
    text(
        x,
        &encryption::group(d.fingerprint.as_deref().unwrap_or_default()),
    );
    label(x, "Trust this device?");
    let current = level(d.trust.as_deref().unwrap_or_default());
    x.push_str(&format!(
        "<widget name=\"trust_{n}\" type=\"list\" inline=\"yes\">"
    ));
    let mut options = vec!["TRUSTED", "DISTRUSTED"];
    if !options.contains(&current) {
        options.push(current);
    }
    for o in options {
        let sel = if o == current {
            " selected=\"true\""
        } else {
            ""
        };
        x.push_str(&format!("<option value=\"{o}\" label=\"{o}\"{sel}/>"));
    }
    x.push_str("</widget>");
    for (v, name) in [("2", "Twomemo"), ("0.3", "Oldmemo")] {
        if !d.versions.iter().any(|x| x == v) {
            let why = if d.active {
                "not available"
            } else {
                "inactive"
            };
            x.push_str("<widget type=\"empty\"/>");
            label(x, &format!("({why} for {name})"));
        }
    }
    x.push_str("<widget type=\"empty\"/><widget type=\"empty\"/>");
}

fn label(x: &mut String, value: &str) {
    x.push_str(&format!(
        "<widget type=\"label\" value=\"{}\"/>",
        xml_escape(value)
    ));
}

fn text(x: &mut String, value: &str) {
    x.push_str(&format!(
        "<widget type=\"text\"><value>{}</value></widget>",
        xml_escape(value)
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(trust: &str, versions: &[&str]) -> Device {
        Device {
            jid: "bob@localhost".into(),
            device_id: 42,
            versions: versions.iter().map(|v| (*v).to_owned()).collect(),
            fingerprint: Some("0123456789abcdef".repeat(4)),
            trust: Some(trust.into()),
            active: true,
        }
    }

    #[test]
    fn a_device_offers_trust_distrust_and_its_level() {
        let x = form("ID", None, &[dev("blind", &["2", "0.3"])]);
        assert!(x.contains(
            "<widget name=\"trust_0\" type=\"list\" inline=\"yes\">\
             <option value=\"TRUSTED\" label=\"TRUSTED\"/>\
             <option value=\"DISTRUSTED\" label=\"DISTRUSTED\"/>\
             <option value=\"BLINDLY_TRUSTED\" label=\"BLINDLY_TRUSTED\" selected=\"true\"/>\
             </widget>"
        ));
        assert!(x.contains("<value>01234567 89abcdef 01234567"));
        assert!(x.contains("submit=\"ID\""));
        assert!(!x.contains("not available"));
        let x = form("ID", None, &[dev("verified", &["0.3"])]);
        assert!(x.contains("<option value=\"TRUSTED\" label=\"TRUSTED\" selected=\"true\"/>"));
        assert!(x.contains("value=\"(not available for Twomemo)\""));
        assert!(!x.contains("BLINDLY"));
    }

    #[test]
    fn levels_in_libervia_names() {
        assert_eq!(level("verified"), "TRUSTED");
        assert_eq!(level("blind"), "BLINDLY_TRUSTED");
        assert_eq!(level("undecided"), "UNDECIDED");
        assert_eq!(level("distrusted"), "DISTRUSTED");
    }
}
