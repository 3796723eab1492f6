//! The plugin's actions (declared in `perch_actions::encryption`): starting and
//! stopping encryption per conversation, devices, fingerprints and trust.
//!
//! Starting and stopping signal `encryption_started` / `encryption_stopped` here,
//! where the state changes, so that a frontend is told whichever way it changed
//! (`perch encryption`, `perch message send --encrypt`, Libervia's
//! `messageEncryptionStart`, which perchd's Libervia bridge translates back).

use std::collections::BTreeMap;
use std::sync::Arc;

use perch_actions::encryption::{
    ConversationArgs, Device, Devices, DevicesArgs, Distrust, EncryptionState, Fingerprint,
    FingerprintArgs, Start, StartArgs, Started, Status, Stop, Stopped, Trust, TrustArgs,
};
use perch_plugin_api::action::jid_arg;
use perch_plugin_api::jid::BareJid;
use perch_plugin_api::{HostError, Serve, Signals};

use perch_omemo::Version;

use super::send::common_version;
use super::{Omemo, store, trust};

pub(crate) fn register(me: &Arc<Omemo>) {
    let h = me.host.clone();
    h.declare(Started);
    h.declare(Stopped);
    h.serve(Start, me.clone(), start);
    h.serve(Stop, me.clone(), stop);
    h.serve(Status, me.clone(), status);
    h.serve(Fingerprint, me.clone(), fingerprint);
    h.serve(Devices, me.clone(), devices);
    h.serve(Trust, me.clone(), |me, p, a| {
        set_trust(me, p, a, trust::VERIFIED)
    });
    h.serve(Distrust, me.clone(), |me, p, a| {
        set_trust(me, p, a, trust::DISTRUSTED)
    });
}

fn bare(name: &str, value: &str) -> Result<BareJid, HostError> {
    Ok(jid_arg(name, value)?.to_bare())
}

/// The version a message to `members` would go in among `ours`, or why none.
async fn version(
    me: &Omemo,
    pid: i32,
    ours: &[Version],
    members: &[BareJid],
) -> Result<Result<Version, HostError>, HostError> {
    let db = me.host.store();
    let mut accounts = Vec::new();
    for m in members {
        accounts.push((m.clone(), store::devices(db, pid, m.as_str()).await?));
    }
    Ok(common_version(ours, &accounts))
}

/// The versions a conversation's messages may go in: the one it was started with,
/// else every version we speak (best first).
fn allowed(me: &Omemo, pinned: Option<Option<Version>>) -> Vec<Version> {
    match pinned.flatten() {
        Some(v) => vec![v],
        None => me.versions.clone(),
    }
}

impl Omemo {
    /// The versions a message of conversation `to` may be encrypted in (see
    /// `allowed`): the send path picks among these.
    pub(crate) async fn conversation_versions(
        &self,
        pid: i32,
        to: &str,
    ) -> Result<Vec<Version>, HostError> {
        let pinned = store::conversation(self.host.store(), pid, to).await?;
        Ok(allowed(self, pinned))
    }
}

/// The conversation's state; `members`: whom it is encrypted to (none: a room we
/// can't encrypt in).
async fn state(
    me: &Omemo,
    pid: i32,
    to: &BareJid,
    members: &[BareJid],
) -> Result<EncryptionState, HostError> {
    let conversation = store::conversation(me.host.store(), pid, to.as_str()).await?;
    let namespace = if members.is_empty() {
        None
    } else {
        version(me, pid, &allowed(me, conversation), members)
            .await?
            .ok()
            .map(|v| v.namespace().to_owned())
    };
    Ok(EncryptionState {
        to: to.to_string(),
        encrypted: conversation.is_some(),
        namespace,
    })
}

/// The version a `namespace` argument names, if we speak it.
fn pinned_version(me: &Omemo, namespace: Option<&str>) -> Result<Option<Version>, HostError> {
    let Some(ns) = namespace.filter(|ns| !ns.is_empty()) else {
        return Ok(None);
    };
    let v = [Version::V2, Version::V03]
        .into_iter()
        .find(|v| v.namespace() == ns)
        .ok_or_else(|| {
            HostError::BadArgument(format!("namespace: {ns} is not an OMEMO namespace"))
        })?;
    if !me.versions.contains(&v) {
        return Err(HostError::NotEncrypted(format!(
            "this perchd does not speak OMEMO {} (plugin option versions)",
            store::vname(v)
        )));
    }
    Ok(Some(v))
}

/// Starts encrypting with a contact, or in a non-anonymous room we are in (to
/// every occupant's real JID), in the version asked for or the best one; refused
/// when some can't be written to. Signals `encryption_started` unless it was
/// encrypted that way already.
async fn start(
    me: Arc<Omemo>,
    profile: String,
    args: StartArgs,
) -> Result<EncryptionState, HostError> {
    let to = bare("to", &args.to)?;
    let pinned = pinned_version(&me, args.namespace.as_deref())?;
    let pid = me.host.profile_id(&profile).await?;
    let members = me.members(&profile, &to).await?;
    for m in &members {
        me.refresh_devices(&profile, pid, m).await?;
    }
    version(&me, pid, &allowed(&me, Some(pinned)), &members).await??;
    let db = me.host.store();
    let before = store::conversation(db, pid, to.as_str()).await?;
    store::set_conversation(db, pid, to.as_str(), pinned).await?;
    let st = state(&me, pid, &to, &members).await?;
    if before != Some(pinned) {
        tracing::info!(%profile, %to, namespace = ?st.namespace, "encryption started");
        me.host.signal(Started, &profile, &st);
    }
    Ok(st)
}

/// Stops encrypting; signals `encryption_stopped` (with the version it was
/// encrypted with) when it was encrypted.
async fn stop(
    me: Arc<Omemo>,
    profile: String,
    args: ConversationArgs,
) -> Result<EncryptionState, HostError> {
    let to = bare("to", &args.to)?;
    let pid = me.host.profile_id(&profile).await?;
    let members = me.members(&profile, &to).await.unwrap_or_default();
    let was = state(&me, pid, &to, &members).await?;
    store::set_encrypted(me.host.store(), pid, to.as_str(), false).await?;
    let st = state(&me, pid, &to, &members).await?;
    if was.encrypted {
        tracing::info!(%profile, %to, "encryption stopped");
        let signalled = EncryptionState {
            namespace: was.namespace,
            ..st.clone()
        };
        me.host.signal(Stopped, &profile, &signalled);
    }
    Ok(st)
}

async fn status(
    me: Arc<Omemo>,
    profile: String,
    args: ConversationArgs,
) -> Result<EncryptionState, HostError> {
    let to = bare("to", &args.to)?;
    let pid = me.host.profile_id(&profile).await?;
    let members = me.members(&profile, &to).await.unwrap_or_default();
    state(&me, pid, &to, &members).await
}

async fn fingerprint(
    me: Arc<Omemo>,
    profile: String,
    args: FingerprintArgs,
) -> Result<Vec<Device>, HostError> {
    match args.jid {
        Some(jid) => devices(me, profile, DevicesArgs { jid }).await,
        None => {
            let own = me.me(&profile).await?;
            Ok(vec![Device {
                jid: own.jid.to_string(),
                device_id: own.device,
                versions: me
                    .versions
                    .iter()
                    .map(|v| store::vname(*v).to_owned())
                    .collect(),
                fingerprint: Some(own.identity.fingerprint()),
                trust: Some("own".into()),
                active: true,
            }])
        }
    }
}

/// A contact's devices, fetched anew, each one's fingerprint from its bundle when
/// not known yet.
async fn devices(
    me: Arc<Omemo>,
    profile: String,
    args: DevicesArgs,
) -> Result<Vec<Device>, HostError> {
    let jid = bare("jid", &args.jid)?;
    let own = me.me(&profile).await?;
    me.refresh_devices(&profile, own.pid, &jid).await?;
    let db = me.host.store();
    for d in store::devices(db, own.pid, jid.as_str()).await? {
        if d.active && d.fingerprint.is_none() && !(jid == own.jid && d.id == own.device) {
            match me
                .fetch_bundle(&profile, jid.as_str(), d.version, d.id)
                .await
            {
                Ok(b) => {
                    if let Ok(c) = b.identity_curve() {
                        let fp = perch_omemo::fingerprint(&c);
                        store::note_device(db, own.pid, jid.as_str(), d.version, d.id, &fp).await?;
                        me.trust_of(&profile, own.pid, jid.as_str(), d.id, &fp)
                            .await?;
                    }
                }
                Err(why) => {
                    tracing::debug!(%profile, %jid, device = d.id, %why, "no usable bundle")
                }
            }
        }
    }
    listing(&me, own.pid, &jid, (own.jid == jid).then_some(own.device)).await
}

/// The stored devices of `jid`, one entry per device id (its versions merged);
/// `own`: our device, shown as `own`.
async fn listing(
    me: &Omemo,
    pid: i32,
    jid: &BareJid,
    own: Option<u32>,
) -> Result<Vec<Device>, HostError> {
    let db = me.host.store();
    let mut by_id: BTreeMap<u32, Device> = BTreeMap::new();
    for d in store::devices(db, pid, jid.as_str()).await? {
        let e = by_id.entry(d.id).or_insert_with(|| Device {
            jid: jid.to_string(),
            device_id: d.id,
            ..Default::default()
        });
        if d.active {
            e.versions.push(store::vname(d.version).to_owned());
            e.active = true;
        }
        if e.fingerprint.is_none() {
            e.fingerprint = d.fingerprint;
        }
    }
    for d in by_id.values_mut() {
        d.trust = if Some(d.device_id) == own {
            Some("own".into())
        } else if let Some(fp) = &d.fingerprint {
            store::trust(db, pid, jid.as_str(), fp).await?
        } else {
            None
        };
    }
    Ok(by_id.into_values().collect())
}

async fn set_trust(
    me: Arc<Omemo>,
    profile: String,
    args: TrustArgs,
    to: &'static str,
) -> Result<Vec<Device>, HostError> {
    let jid = bare("jid", &args.jid)?;
    let fp = trust::normalise(&args.fingerprint)
        .ok_or_else(|| HostError::BadArgument("fingerprint: not 64 hexadecimal digits".into()))?;
    let pid = me.host.profile_id(&profile).await?;
    let db = me.host.store();
    let known = store::trusts(db, pid, jid.as_str())
        .await?
        .iter()
        .any(|(f, _)| *f == fp)
        || store::devices(db, pid, jid.as_str())
            .await?
            .iter()
            .any(|d| d.fingerprint.as_deref() == Some(fp.as_str()));
    if !known {
        return Err(HostError::BadArgument(format!(
            "fingerprint: no key of {jid} has it (see omemo_devices)"
        )));
    }
    if to == trust::VERIFIED {
        store::end_blind_trust(db, pid, jid.as_str()).await?;
    }
    store::set_trust(db, pid, jid.as_str(), &fp, to).await?;
    tracing::info!(%profile, %jid, trust = to, "OMEMO key trust set");
    listing(&me, pid, &jid, None).await
}
