//! Checks on what frontends hand the daemon, before any of it reaches XML, the
//! database or a log line.
//!
//! Why here, in the daemon core, rather than in each bridge: every bridge (the native
//! one, Libervia's later) and every path (a message body, a roster name, an action's
//! JSON arguments) goes through [`crate::daemon::Daemon`], so one set of rules covers
//! them all. Two things are refused:
//!
//! - characters XML 1.0 cannot carry (control characters other than tab, line feed and
//!   carriage return; U+FFFE and U+FFFF). A string holding one is stored and reported
//!   sent, but the XML writer of tokio-xmpp cannot write it: the session's stream
//!   breaks and the message is never sent (measured: a roster add with a BEL hung,
//!   then the session died a minute later);
//! - strings longer than the field allows, so a 10 MB argument costs one length check
//!   and never a copy into an error message (see [`excerpt`]).

use crate::error::{Error, Result};

/// A message body: 128 KiB, half of Prosody's default stanza size limit for clients
/// (256 KiB), so the stanza around it always fits.
pub const MAX_BODY: usize = 128 * 1024;
/// A JID: RFC 7622 allows 3 × 1023 bytes plus the separators.
pub const MAX_JID: usize = 3071 + 2;
/// Names, statuses, groups, option values and other short texts.
pub const MAX_TEXT: usize = 4096;
/// The JSON arguments of an action.
pub const MAX_ACTION_ARGS: usize = 1024 * 1024;

/// Whether XML 1.0 can carry `c` (its `Char` production; Rust strings hold no
/// surrogates).
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// Refuses `s` when it is longer than `max` bytes or holds a character XML cannot
/// carry; the error names the field, and the character and where it is.
pub fn text(field: &str, s: &str, max: usize) -> Result<()> {
    if s.len() > max {
        return Err(Error::bad_argument(
            field,
            format!("{} bytes, more than the {max} allowed", s.len()),
        ));
    }
    if let Some((i, c)) = s.char_indices().find(|(_, c)| !is_xml_char(*c)) {
        return Err(Error::bad_argument(
            field,
            format!(
                "character U+{:04X} at byte {i} cannot be carried by XMPP (XML 1.0 allows no control characters but tab, line feed and carriage return)",
                c as u32
            ),
        ));
    }
    Ok(())
}

/// The JSON text of an action's arguments, parsed: at most [`MAX_ACTION_ARGS`] bytes,
/// XML-safe, and JSON (empty or blank text is `{}`).
pub fn action_args(args: &str) -> Result<serde_json::Value> {
    text("args", args, MAX_ACTION_ARGS)?;
    if args.trim().is_empty() {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    serde_json::from_str(args).map_err(|e| Error::bad_argument("args", format!("not JSON: {e}")))
}

/// [`text`] on every string (and object key) of a JSON value. On the path of every
/// action call (cached reads included), so the walk allocates nothing unless it finds
/// a bad string; then the error names where it is (`args.a.b`).
pub fn json_strings(field: &str, v: &serde_json::Value) -> Result<()> {
    match first_bad(v) {
        None => Ok(()),
        Some((mut path, bad)) => {
            path.reverse();
            let name = std::iter::once(field)
                .chain(path.iter().copied())
                .collect::<Vec<_>>()
                .join(".");
            text(&name, bad, usize::MAX)
        }
    }
}

/// The first string (or key) XML cannot carry, with the keys leading to it (innermost
/// first).
fn first_bad(v: &serde_json::Value) -> Option<(Vec<&str>, &str)> {
    use serde_json::Value;
    match v {
        Value::String(s) => (!s.chars().all(is_xml_char)).then(|| (Vec::new(), s.as_str())),
        Value::Array(items) => items.iter().find_map(first_bad),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            if !k.chars().all(is_xml_char) {
                return Some((Vec::new(), k.as_str()));
            }
            first_bad(v).map(|(mut path, bad)| {
                path.push(k.as_str());
                (path, bad)
            })
        }),
        _ => None,
    }
}

/// At most `max` characters of `s`, with a note of how much was left out: what error
/// messages and log lines show of a value a frontend sent.
pub fn excerpt(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((cut, _)) => format!("{}… ({} bytes in all)", &s[..cut], s.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_with_their_code_and_place() {
        for (s, code) in [
            ("bell\u{7}", "U+0007"),
            ("\u{1b}[31m", "U+001B"),
            ("x\u{FFFE}", "U+FFFE"),
            ("\u{0}", "U+0000"),
        ] {
            let e = text("body", s, MAX_BODY).unwrap_err().to_string();
            assert!(e.contains("\"body\"") && e.contains(code), "{e}");
        }
        text(
            "body",
            "tab\tline\nreturn\r émoji 🦜 \u{D7FF}\u{E000}\u{10FFFF}",
            MAX_BODY,
        )
        .unwrap();
    }

    #[test]
    fn lengths_are_bounded_and_not_echoed() {
        let big = "a".repeat(10_000_000);
        let e = text("body", &big, MAX_BODY).unwrap_err().to_string();
        assert!(e.len() < 200, "{e}");
        assert!(e.contains("10000000 bytes"), "{e}");
    }

    #[test]
    fn json_strings_are_walked_keys_included() {
        let v = serde_json::json!({"a": ["ok", {"b": "bad\u{7}"}]});
        let e = json_strings("args", &v).unwrap_err().to_string();
        assert!(e.contains("args.a.b") || e.contains("args.b"), "{e}");
        let v = serde_json::json!({"k\u{1}": 1});
        assert!(json_strings("args", &v).is_err());
        json_strings("args", &serde_json::json!({"a": [1, true, null, "x"]})).unwrap();
    }

    #[test]
    fn excerpts_cut_on_characters() {
        assert_eq!(excerpt("short", 10), "short");
        let e = excerpt(&"é".repeat(100), 3);
        assert!(e.starts_with("ééé…"), "{e}");
        assert!(e.contains("200 bytes"), "{e}");
    }
}
