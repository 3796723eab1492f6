//! Group chats (XEP-0045): who a room's message is encrypted to, and who sent one.
//!
//! Why this way: OMEMO encrypts to accounts, not to rooms, so a room's message is
//! encrypted to the real JID of each occupant (and to our own other devices), which
//! only a non-anonymous room tells every occupant. A semi-anonymous room (real JIDs
//! for moderators only) is refused: some members could not be written to, or could
//! not tell who wrote. The room's occupants are the group chat plugin's: it answers
//! the shared `room.occupants` point, so this crate needs no dependency on it (and
//! with no group chat plugin, no room is known and nothing is encrypted to one).

use perch_codec::xep_0045::xml::{NS_DISCO_INFO, NS_USER, has_feature};
use perch_plugin_api::HostError;
use perch_plugin_api::jid::{BareJid, Jid};
use perch_plugin_api::minidom::Element;
use perch_plugin_api::parsers::message::Message;
use perch_plugin_api::points::{RoomOccupants, RoomOccupantsPoint, RoomQuery};
use perch_plugin_api::trigger::Outcome;

use super::Omemo;

/// The disco#info feature of a room that shows every occupant's real JID to all.
pub const NON_ANONYMOUS: &str = "muc_nonanonymous";

/// The real bare JIDs to encrypt a room's message to: every occupant's but ours,
/// each once. An occupant whose real JID the room does not tell refuses it.
pub fn recipients(
    room: &BareJid,
    r: &RoomOccupants,
    own: &BareJid,
) -> Result<Vec<BareJid>, HostError> {
    if !r.joined {
        return Err(HostError::NotEncrypted(format!("not in room {room}")));
    }
    let mut out: Vec<BareJid> = Vec::new();
    let mut hidden = Vec::new();
    for o in &r.occupants {
        match o.jid.as_deref().map(Jid::new) {
            Some(Ok(j)) => {
                let bare = j.to_bare();
                if bare != *own && !out.contains(&bare) {
                    out.push(bare);
                }
            }
            _ => hidden.push(o.nick.as_str()),
        }
    }
    if !hidden.is_empty() {
        return Err(HostError::NotEncrypted(format!(
            "room {room} does not tell the real JID of {}",
            hidden.join(", ")
        )));
    }
    if out.is_empty() {
        return Err(HostError::NotEncrypted(format!(
            "nobody else is in room {room} to encrypt to"
        )));
    }
    Ok(out)
}

/// The real JID a room message's `<x xmlns='muc#user'><item jid/></x>` names: what
/// a non-anonymous room adds to the history it sends on join and to its archive.
pub fn item_jid(m: &Message) -> Option<BareJid> {
    m.payloads
        .iter()
        .filter(|p| p.is("x", NS_USER))
        .flat_map(Element::children)
        .filter(|c| c.is("item", NS_USER))
        .find_map(|c| Jid::new(c.attr("jid")?).ok())
        .map(|j| j.to_bare())
}

impl Omemo {
    /// What the group chat plugin knows of `room`; `None`: not a room we have (or no
    /// group chat plugin).
    pub(crate) async fn room(&self, profile: &str, room: &BareJid) -> Option<RoomOccupants> {
        let mut q = RoomQuery {
            profile: profile.to_owned(),
            room: room.to_string(),
        };
        match self
            .host
            .triggers()
            .fire::<RoomOccupantsPoint>(&mut q)
            .await
        {
            Ok(Outcome::Replaced { value, .. }) => Some(value),
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(%profile, %room, error = %e, "no group chat plugin to ask");
                None
            }
        }
    }

    /// Refuses a room that does not show every occupant's real JID (its disco#info
    /// says `muc_nonanonymous`).
    pub(crate) async fn check_non_anonymous(
        &self,
        profile: &str,
        room: &BareJid,
    ) -> Result<(), HostError> {
        let query = Element::builder("query", NS_DISCO_INFO).build();
        let to = Some(Jid::from(room.clone()));
        let info = self.host.iq(profile, to, false, query).await.map_err(|e| {
            HostError::NotEncrypted(format!("room {room}'s configuration is unknown: {e}"))
        })?;
        if has_feature(info.as_ref(), NON_ANONYMOUS) {
            return Ok(());
        }
        Err(HostError::NotEncrypted(format!(
            "room {room} is not non-anonymous: its occupants can't all see each other's \
             real JIDs, which OMEMO encrypts to"
        )))
    }

    /// The accounts a message of conversation `to` is encrypted to: the real JIDs
    /// of a room's other occupants (a non-anonymous room we are in), else `to`.
    pub(crate) async fn members(
        &self,
        profile: &str,
        to: &BareJid,
    ) -> Result<Vec<BareJid>, HostError> {
        let Some(r) = self.room(profile, to).await else {
            return Ok(vec![to.clone()]);
        };
        self.check_non_anonymous(profile, to).await?;
        recipients(to, &r, &self.own_jid(profile).await?)
    }

    /// Our account's bare JID (connected profiles only).
    pub(crate) async fn own_jid(&self, profile: &str) -> Result<BareJid, HostError> {
        self.host
            .bound_jid(profile)
            .await
            .map(|j| j.to_bare())
            .ok_or_else(|| HostError::NotConnected(profile.to_owned()))
    }

    /// The real JID of `nick` in `room`: the occupant's as the room told it, else
    /// the message's own `muc#user` item (history and archive copies of occupants
    /// who left).
    pub(crate) async fn occupant_jid(
        &self,
        profile: &str,
        room: &BareJid,
        nick: &str,
        m: &Message,
    ) -> Result<BareJid, String> {
        let known = self.room(profile, room).await.and_then(|r| {
            r.occupants
                .into_iter()
                .find(|o| o.nick == nick)
                .and_then(|o| o.jid)
        });
        if let Some(j) = known.as_deref().and_then(|j| Jid::new(j).ok()) {
            return Ok(j.to_bare());
        }
        item_jid(m).ok_or_else(|| {
            format!("the real JID of {nick} in {room} is unknown (a semi-anonymous room?)")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perch_plugin_api::points::RoomOccupant;

    fn occ(nick: &str, jid: Option<&str>) -> RoomOccupant {
        RoomOccupant {
            nick: nick.into(),
            jid: jid.map(Into::into),
        }
    }

    fn bare(s: &str) -> BareJid {
        BareJid::new(s).unwrap()
    }

    #[test]
    fn recipients_are_the_other_occupants_real_jids_once() {
        let room = bare("r@conf.x");
        let own = bare("me@x");
        let mut r = RoomOccupants {
            nick: "me".into(),
            joined: true,
            occupants: vec![
                occ("me", Some("me@x/perch")),
                occ("bob", Some("bob@x/phone")),
                occ("bob2", Some("bob@x/laptop")),
                occ("carol", Some("carol@y/a")),
            ],
        };
        assert_eq!(
            recipients(&room, &r, &own).unwrap(),
            [bare("bob@x"), bare("carol@y")]
        );
        r.occupants.push(occ("dave", None));
        let err = recipients(&room, &r, &own).unwrap_err();
        assert!(
            matches!(&err, HostError::NotEncrypted(m) if m.contains("dave")),
            "{err:?}"
        );
        r.occupants = vec![occ("me", Some("me@x/perch"))];
        assert!(matches!(
            recipients(&room, &r, &own),
            Err(HostError::NotEncrypted(_))
        ));
        r.joined = false;
        assert!(recipients(&room, &r, &own).is_err());
    }

    #[test]
    fn a_room_message_names_its_sender_in_its_item() {
        let m: Message = message(
            "<message xmlns='jabber:client' from='r@conf.x/bob' type='groupchat'>\
             <x xmlns='http://jabber.org/protocol/muc#user'><item jid='bob@x/phone' role='participant'/></x>\
             </message>",
        );
        assert_eq!(item_jid(&m), Some(bare("bob@x")));
        let m: Message =
            message("<message xmlns='jabber:client' from='r@conf.x/bob' type='groupchat'/>");
        assert_eq!(item_jid(&m), None);
    }

    fn message(s: &str) -> Message {
        let e: Element = s.parse().unwrap();
        Message::try_from(e).unwrap()
    }
}
