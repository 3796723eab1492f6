//! The two Libervia interfaces as hand-written `zbus` interfaces.
//!
//! Why by hand: 260 methods through the `#[interface]` macro would be 260 Rust
//! functions whose only job is to name arguments; here one table
//! ([`super::table`]) gives the introspection XML and the check of each call's
//! signature, and each row names the handler of its method if perchd implements it
//! ([`super::handlers`]). A method of the table without a handler answers
//! `MethodNotRegistered`; a name not in the table is `UnknownMethod` (zbus's answer
//! for `NotFound`); a body whose signature is not the method's is `InvalidArgs`.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use zbus::message::{Flags, Message};
use zbus::names::{InterfaceName, MemberName};
use zbus::object_server::{DispatchResult, Interface, SignalEmitter};
use zbus::{BoxDBusError, Connection, DBusError, ObjectServer, OwnedVariant, Variant, fdo};

use super::context::{CORE_INTERFACE, Lib, PLUGIN_INTERFACE};
use super::errors::LibError;
use super::table::{self, MethodRow, SignalRow};

pub struct CoreIface(pub Arc<Lib>);
pub struct PluginIface(pub Arc<Lib>);

fn find(rows: &'static [MethodRow], name: &str) -> Option<&'static MethodRow> {
    rows.binary_search_by(|r| r.0.cmp(name))
        .ok()
        .map(|i| &rows[i])
}

fn dispatch<'c>(
    lib: &Arc<Lib>,
    plugin: bool,
    conn: &'c Connection,
    msg: &'c Message,
    name: MemberName<'c>,
) -> DispatchResult<'c> {
    let rows = if plugin {
        table::PLUGIN_METHODS
    } else {
        table::CORE_METHODS
    };
    let Some(row) = find(rows, name.as_str()) else {
        return DispatchResult::NotFound;
    };
    let lib = lib.clone();
    DispatchResult::Async(Box::pin(async move {
        let hdr = msg.header();
        let got = msg.body().signature().to_string_no_parens();
        let answer = if got != row.1 {
            Err(LibError::invalid_args(format!(
                "{} takes ({}), not ({got})",
                row.0, row.1
            )))
        } else {
            match row.3.handler {
                Some(handler) => handler(&lib, msg).await,
                None => Err(LibError::not_registered(row.0)),
            }
        };
        if let Err(e) = &answer {
            tracing::debug!(
                method = row.0,
                error = e.name(),
                body = e.body(),
                "Libervia call failed"
            );
        }
        if hdr.primary().flags().contains(Flags::NO_REPLY_EXPECTED) {
            return Ok(());
        }
        let reply = match answer {
            Ok(write) => {
                let mut b = Message::method_return(&hdr);
                if let Some(me) = conn.unique_name() {
                    b = b.sender(me);
                }
                write(b)
            }
            Err(e) => e.create_reply(&hdr),
        };
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(method = row.0, error = %e, "building a Libervia reply failed");
                LibError::internal(&format!("building the reply of {}: {e}", row.0))
                    .create_reply(&hdr)
                    .map_err(boxed)?
            }
        };
        conn.send(&reply).await.map_err(boxed)
    }))
}

fn boxed(e: zbus::Error) -> BoxDBusError {
    Box::new(fdo::Error::Failed(e.to_string()))
}

/// The introspection XML of one interface, from the table.
pub fn introspect(
    out: &mut dyn Write,
    level: usize,
    name: &str,
    methods: &[MethodRow],
    signals: &[SignalRow],
) {
    let pad = |n: usize| " ".repeat(n);
    let _ = writeln!(out, "{}<interface name=\"{name}\">", pad(level));
    for (m, ins, outs, serve) in methods {
        let names = serve.arg_names;
        let _ = writeln!(out, "{}<method name=\"{m}\">", pad(level + 2));
        for (i, t) in split(ins).iter().enumerate() {
            let n = names
                .get(i)
                .map(|n| format!(" name=\"{n}\""))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{}<arg{n} type=\"{}\" direction=\"in\"/>",
                pad(level + 4),
                esc(t)
            );
        }
        for t in split(outs) {
            let _ = writeln!(
                out,
                "{}<arg type=\"{}\" direction=\"out\"/>",
                pad(level + 4),
                esc(&t)
            );
        }
        let _ = writeln!(out, "{}</method>", pad(level + 2));
    }
    for (s, sig, names) in signals {
        let _ = writeln!(out, "{}<signal name=\"{s}\">", pad(level + 2));
        for (i, t) in split(sig).iter().enumerate() {
            let n = names
                .get(i)
                .map(|n| format!(" name=\"{n}\""))
                .unwrap_or_default();
            let _ = writeln!(out, "{}<arg{n} type=\"{}\"/>", pad(level + 4), esc(t));
        }
        let _ = writeln!(out, "{}</signal>", pad(level + 2));
    }
    let _ = writeln!(out, "{}</interface>", pad(level));
}

fn esc(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Splits a signature into its complete types (`sa{ss}(si)` → `s`, `a{ss}`, `(si)`).
pub fn split(sig: &str) -> Vec<String> {
    let mut types = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    for c in sig.chars() {
        cur.push(c);
        match c {
            '(' | '{' => depth += 1,
            ')' | '}' => depth -= 1,
            _ => {}
        }
        if depth == 0 && c != 'a' {
            types.push(std::mem::take(&mut cur));
        }
    }
    types
}

macro_rules! iface {
    ($ty:ident, $name:expr, $plugin:expr, $methods:expr, $signals:expr) => {
        #[zbus::export::async_trait::async_trait]
        impl Interface for $ty {
            fn name() -> InterfaceName<'static> {
                InterfaceName::from_static_str_unchecked($name)
            }

            async fn get(
                &self,
                _property_name: &str,
                _server: &ObjectServer,
                _connection: &Connection,
                _header: Option<&zbus::message::Header<'_>>,
                _emitter: &SignalEmitter<'_>,
            ) -> Option<Result<OwnedVariant, BoxDBusError>> {
                None
            }

            async fn get_all(
                &self,
                _object_server: &ObjectServer,
                _connection: &Connection,
                _header: Option<&zbus::message::Header<'_>>,
                _emitter: &SignalEmitter<'_>,
            ) -> fdo::Result<HashMap<String, OwnedVariant>> {
                Ok(HashMap::new())
            }

            async fn set_mut(
                &mut self,
                _property_name: &str,
                _value: &Variant<'_>,
                _object_server: &ObjectServer,
                _connection: &Connection,
                _header: Option<&zbus::message::Header<'_>>,
                _emitter: &SignalEmitter<'_>,
            ) -> Option<Result<(), BoxDBusError>> {
                None
            }

            fn call<'call>(
                &'call self,
                _server: &'call ObjectServer,
                connection: &'call Connection,
                msg: &'call Message,
                name: MemberName<'call>,
            ) -> DispatchResult<'call> {
                dispatch(&self.0, $plugin, connection, msg, name)
            }

            fn call_mut<'call>(
                &'call mut self,
                _server: &'call ObjectServer,
                _connection: &'call Connection,
                _msg: &'call Message,
                _name: MemberName<'call>,
            ) -> DispatchResult<'call> {
                DispatchResult::NotFound
            }

            fn introspect_to_writer(&self, writer: &mut dyn Write, level: usize) {
                introspect(writer, level, $name, $methods, $signals);
            }
        }
    };
}

iface!(
    CoreIface,
    CORE_INTERFACE,
    false,
    table::CORE_METHODS,
    table::CORE_SIGNALS
);
iface!(
    PluginIface,
    PLUGIN_INTERFACE,
    true,
    table::PLUGIN_METHODS,
    table::PLUGIN_SIGNALS
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_split_into_complete_types() {
        assert_eq!(
            split("sa{ss}a(sa{ss}as)(ss)i"),
            ["s", "a{ss}", "a(sa{ss}as)", "(ss)", "i"]
        );
        assert!(split("").is_empty());
    }

    #[test]
    fn tables_are_sorted_for_lookup_and_complete() {
        for rows in [table::CORE_METHODS, table::PLUGIN_METHODS] {
            assert!(rows.windows(2).all(|w| w[0].0 < w[1].0));
        }
        assert_eq!(table::CORE_METHODS.len(), 66);
        assert_eq!(table::PLUGIN_METHODS.len(), 194);
        assert_eq!(table::CORE_SIGNALS.len(), 16);
        assert_eq!(table::PLUGIN_SIGNALS.len(), 37);
        for (name, ins, _, serve) in table::CORE_METHODS {
            assert_eq!(split(ins).len(), serve.arg_names.len(), "{name}");
        }
        let served = |rows: &[MethodRow]| rows.iter().filter(|r| r.3.handler.is_some()).count();
        assert_eq!(served(table::CORE_METHODS), 50);
        assert_eq!(served(table::PLUGIN_METHODS), 56);
        for (name, sig, names) in table::CORE_SIGNALS {
            assert_eq!(split(sig).len(), names.len(), "{name}");
        }
    }
}
