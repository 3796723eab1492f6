//! The plugin's actions (declared in `perch_actions::encryption`): starting and
//! stopping encryption per conversation, devices, fingerprints and trust.

use std::collections::BTreeMap;
use std::sync::Arc;

use perch_actions::encryption::{
    ConversationArgs, Device, Devices, DevicesArgs, Distrust, EncryptionState, Fingerprint,
    FingerprintArgs, Start, Status, Stop, Trust, TrustArgs,
};
use perch_plugin_api::action::jid_arg;
use perch_plugin_api::jid::BareJid;
use perch_plugin_api::{HostError, Serve};

use perch_omemo::Version;

use super::send::common_version;
use super::{Omemo, store, trust};

pub(crate) fn register(me: &Arc<Omemo>) {
    let h = me.host.clone();
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

/// The version a message to `members` would go in, or why none.
async fn version(
    me: &Omemo,
    pid: i32,
    members: &[BareJid],
) -> Result<Result<Version, HostError>, HostError> {
    let db = me.host.store();
    let mut accounts = Vec::new();
    for m in members {
        accounts.push((m.clone(), store::devices(db, pid, m.as_str()).await?));
    }
    Ok(common_version(&me.versions, &accounts))
}

/// The conversation's state; `members`: whom it is encrypted to (none: a room we
/// can't encrypt in).
async fn state(
    me: &Omemo,
    pid: i32,
    to: &BareJid,
    members: &[BareJid],
) -> Result<EncryptionState, HostError> {
    let namespace = if members.is_empty() {
        None
    } else {
        version(me, pid, members)
            .await?
            .ok()
            .map(|v| v.namespace().to_owned())
    };
    Ok(EncryptionState {
        to: to.to_string(),
        encrypted: store::encrypted(me.host.store(), pid, to.as_str()).await?,
        namespace,
    })
}

/// Starts encrypting with a contact, or in a non-anonymous room we are in (to
/// every occupant's real JID); refused when some can't be written to.
async fn start(
    me: Arc<Omemo>,
    profile: String,
    args: ConversationArgs,
) -> Result<EncryptionState, HostError> {
    let to = bare("to", &args.to)?;
    let pid = me.host.profile_id(&profile).await?;
    let members = me.members(&profile, &to).await?;
    for m in &members {
        me.refresh_devices(&profile, pid, m).await?;
    }
    version(&me, pid, &members).await??;
    store::set_encrypted(me.host.store(), pid, to.as_str(), true).await?;
    tracing::info!(%profile, %to, "encryption started");
    state(&me, pid, &to, &members).await
}

async fn stop(
    me: Arc<Omemo>,
    profile: String,
    args: ConversationArgs,
) -> Result<EncryptionState, HostError> {
    let to = bare("to", &args.to)?;
    let pid = me.host.profile_id(&profile).await?;
    store::set_encrypted(me.host.store(), pid, to.as_str(), false).await?;
    tracing::info!(%profile, %to, "encryption stopped");
    let members = me.members(&profile, &to).await.unwrap_or_default();
    state(&me, pid, &to, &members).await
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
