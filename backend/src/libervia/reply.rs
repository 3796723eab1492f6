//! What a handler answers: a reply body to write, or a Libervia error; and the
//! argument decoding and reply shapes every handler shares.
//!
//! Why a module of its own: it sits below everything that answers calls (handlers,
//! dispatch) and knows nothing of the daemon, so any of them may use it.

use std::collections::HashMap;

use zbus::message::{Builder, Message};

use super::errors::LibError;

/// How a successful call writes its reply body.
pub type Out = Box<dyn FnOnce(Builder<'_>) -> zbus::Result<Message> + Send>;

/// A call's answer: a reply body or a Libervia error.
pub type Answer = Result<Out, LibError>;

/// A reply of one value (any D-Bus type).
pub fn out<T>(v: T) -> Answer
where
    T: serde::Serialize + zbus::Type + Send + Sync + 'static,
{
    Ok(Box::new(move |b: Builder<'_>| b.build(&(v,))))
}

/// An empty reply.
pub fn unit() -> Answer {
    Ok(Box::new(|b: Builder<'_>| b.build(&())))
}

/// Reads a call's arguments (their signature was checked against the table already).
pub fn args<T>(msg: &Message) -> Result<T, LibError>
where
    T: serde::de::DeserializeOwned + zbus::Type,
{
    msg.body()
        .deserialize::<T>()
        .map_err(|e| LibError::invalid_args(format!("reading the arguments: {e}")))
}

pub type Map = HashMap<String, String>;

/// An `a{ss}` reply whose entries keep their order on the wire (Libervia's clients
/// show a dict in the order it arrives, e.g. a data form's fields in the form's order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderedMap(pub Vec<(String, String)>);

impl serde::Serialize for OrderedMap {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl zbus::Type for OrderedMap {
    const SIGNATURE: &'static zbus::Signature = Map::SIGNATURE;
}

/// Escapes text for an XMLUI attribute or text node (`&`, `<`, `>`, `"`).
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
