//! The chat window's "Encryption" menu, as 0.9's backend registers it for every
//! one-to-one chat (`MENU_SINGLE`): plain text, then each OMEMO version and its
//! trust form. libervia-tui builds the menu from `menusGet` and runs an entry with
//! `launchAction(id, {jid}, profile)`.
//!
//! Why fixed ids: 0.9 registers its menu callbacks once at start, under ids it
//! draws at random; perchd's entries never change while it runs, so stable ids
//! name them and nothing has to be remembered.

use super::context::Lib;
use super::encryption;
use super::errors::LibError;
use super::reply::Map;
use super::trust_ui;

/// The prefix of every entry's id.
const PREFIX: &str = "perch-encryption-";

/// 0.9's `C.MENU_SINGLE`: a menu of a one-to-one chat (`{jid}` in its data).
const SINGLE: &str = "SINGLE";

/// What an entry does.
enum Entry {
    /// Stops encrypting (0.9's "unencrypted (plain text)").
    Plain,
    /// Encrypts with the version of this namespace, replacing another.
    Start(&'static str),
    /// The version's trust form.
    Trust(&'static str),
}

/// Every entry: id, path (as 0.9 words it), what it does; in 0.9's order.
fn entries() -> Vec<(String, [String; 2], Entry)> {
    let menu = "Encryption".to_owned();
    let mut out = vec![(
        format!("{PREFIX}plain"),
        [menu.clone(), "unencrypted (plain text)".to_owned()],
        Entry::Plain,
    )];
    for (name, ns) in encryption::plugins() {
        out.push((
            format!("{PREFIX}{name}"),
            [menu.clone(), name.to_owned()],
            Entry::Start(ns),
        ));
        out.push((
            format!("{PREFIX}{name}-trust"),
            [menu.clone(), format!("⛨ {name} trust")],
            Entry::Trust(ns),
        ));
    }
    out
}

/// One `menusGet` entry: id, type, path, translated path, extra.
pub type Menu = (String, String, Vec<String>, Vec<String>, Map);

/// `menusGet`'s entries; none without the OMEMO plugin. Their security limit is 0,
/// as in 0.9: left out when the caller asks for less (-1: no limit, so only a limit
/// below -1 is less).
pub fn menus(lib: &Lib, security_limit: i32) -> Vec<Menu> {
    if !encryption::loaded(lib) || security_limit < -1 {
        return Vec::new();
    }
    entries()
        .into_iter()
        .map(|(id, path, _)| {
            let path = path.to_vec();
            (id, SINGLE.to_owned(), path.clone(), path, Map::new())
        })
        .collect()
}

/// Runs the entry `id` names for the chat with `data["jid"]`, as 0.9's menu
/// callbacks do; `None` when `id` is no entry of this menu.
pub async fn launch(
    lib: &Lib,
    profile: &str,
    id: &str,
    data: &Map,
) -> Option<Result<Map, LibError>> {
    if !id.starts_with(PREFIX) {
        return None;
    }
    let (_, _, entry) = entries().into_iter().find(|(i, _, _)| i == id)?;
    let Some(jid) = data.get("jid").cloned() else {
        return Some(Err(LibError::value("the menu's data has no jid")));
    };
    let done = match entry {
        Entry::Plain => encryption::stop(lib, profile, &jid)
            .await
            .map(|()| Map::new()),
        Entry::Start(ns) => encryption::start(lib, profile, &jid, ns, true)
            .await
            .map(|()| Map::new()),
        Entry::Trust(ns) => trust_ui::get(lib, profile, &jid, ns)
            .await
            .map(|ui| Map::from([("xmlui".to_owned(), ui)])),
    };
    Some(done)
}
