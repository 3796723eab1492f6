//! XEP-0425: Moderated Message Retraction — a moderator asks a room to retract
//! an occupant's message for everyone.
//!
//! Sending is an IQ to the room (`muc_moderate`). The room answers, and sends
//! every occupant a XEP-0424 retraction carrying `<moderated/>`; applying that is
//! history's work (the core's, `backend/src/history.rs`), honoured only from the
//! room itself, and marks the message `extra.moderated` = {by, reason}. No disco
//! feature: moderation is the room's feature (it advertises
//! `urn:xmpp:message-moderate:1`), a client needs none to receive its result.

use std::sync::Arc;

use perch_actions::Empty;
use perch_actions::messages::{MucModerate, MucModerateArgs};
use perch_codec::xep_0425;
use perch_plugin_api::action::jid_arg;
use perch_plugin_api::{Host, HostError, Plugin, PluginFactory, PluginInfo, Serve};

use crate::message_ref;

pub const IMPORT_NAME: &str = "XEP-0425";

#[derive(Debug)]
pub struct Moderation;

impl Plugin for Moderation {}

pub const INFO: PluginInfo = PluginInfo {
    import_name: IMPORT_NAME,
    name: "Moderated Message Retraction",
    description: "Lets a room moderator take back an occupant's message for everyone",
    dependencies: &[],
    recommendations: &["XEP-0045"],
    tables: &[],
    signals_as: None,
};

pub fn factory() -> PluginFactory {
    PluginFactory::new(INFO, |host: Arc<dyn Host>| async move {
        host.serve(MucModerate, host.clone(), muc_moderate);
        Ok(Arc::new(Moderation) as Arc<dyn Plugin>)
    })
}

async fn muc_moderate(
    host: Arc<dyn Host>,
    profile: String,
    args: MucModerateArgs,
) -> Result<Empty, HostError> {
    let room = jid_arg("room", &args.room)?.to_bare();
    let room = perch_plugin_api::jid::Jid::from(room);
    // The room knows its messages by its stanza-ids: ours for that message when we
    // have it, else the id is taken as one.
    let id = match message_ref::find(&*host, &profile, &room, &args.id).await? {
        Some(m) => message_ref::wire_id(&m, true),
        None => args.id.clone(),
    };
    let payload = xep_0425::moderate(&id, args.reason.as_deref());
    host.iq(&profile, Some(room), true, payload).await?;
    Ok(Empty {})
}
