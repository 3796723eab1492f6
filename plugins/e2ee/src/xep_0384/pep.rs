//! Device lists and bundles on PEP (XEP-0163), for both versions.
//!
//! Why publish-options with the open access model: a server's default for PEP is
//! often "presence" (only contacts with a subscription may read), and a contact who
//! has not subscribed could then not fetch our bundle to write to us. Where a node
//! exists with another configuration the server refuses the options; we publish
//! once more without them rather than not at all.

use perch_codec::xep_0060::xml as ps;
use perch_omemo::{Bundle, Version};
use perch_plugin_api::HostError;
use perch_plugin_api::jid::{BareJid, Jid};
use perch_plugin_api::minidom::Element;
use serde_json::{Map, Value};

use super::{Me, Omemo, store, wire};

fn open_access(v: Version, bundle: bool) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("pubsub#access_model".into(), "open".into());
    if bundle && v == Version::V2 {
        // One item per device on one node: keep them all.
        o.insert("pubsub#max_items".into(), "max".into());
    }
    o
}

impl Omemo {
    /// Publishes our bundle for every version and makes sure our device is in our
    /// device lists; stores the lists (our other devices).
    pub(crate) async fn publish_own(&self, profile: &str) -> Result<(), HostError> {
        let _g = self.lock(profile).await;
        let me = self.me(profile).await?;
        for v in self.versions.clone() {
            let keys = self.device_keys(&me, v).await?;
            self.publish_bundle(profile, &me, &keys.bundle(&me.identity))
                .await?;
            let mut list = self.fetch_devicelist(profile, &me.jid, v).await;
            if !list.contains(&me.device) {
                list.push(me.device);
                self.publish(
                    profile,
                    wire::devicelist_node(v),
                    wire::CURRENT,
                    wire::devicelist(v, &list),
                    open_access(v, false),
                )
                .await?;
            }
            store::set_devicelist(self.host.store(), me.pid, me.jid.as_str(), v, &list).await?;
        }
        tracing::debug!(%profile, device = me.device, "OMEMO device and bundles published");
        Ok(())
    }

    /// Publishes a bundle (after a prekey was used, or at start).
    pub(crate) async fn publish_bundle(
        &self,
        profile: &str,
        me: &Me,
        bundle: &Bundle,
    ) -> Result<(), HostError> {
        let (node, item) = wire::bundle_location(bundle.version, me.device);
        self.publish(
            profile,
            &node,
            &item,
            wire::bundle(bundle),
            open_access(bundle.version, true),
        )
        .await
    }

    async fn publish(
        &self,
        profile: &str,
        node: &str,
        item: &str,
        payload: Element,
        options: Map<String, Value>,
    ) -> Result<(), HostError> {
        let with = ps::publish(node, Some(item), payload.clone(), Some(&options));
        match self.host.iq(profile, None, true, with).await {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::info!(%profile, node, error = %e, "publishing with the open access model refused; publishing without options");
                let without = ps::publish(node, Some(item), payload, None);
                self.host.iq(profile, None, true, without).await.map(|_| ())
            }
        }
    }

    /// The device ids `jid` publishes for `v` (none when it has no list).
    pub(crate) async fn fetch_devicelist(
        &self,
        profile: &str,
        jid: &BareJid,
        v: Version,
    ) -> Vec<u32> {
        let req = ps::items(wire::devicelist_node(v), Some(1), &[], None);
        let to = Some(Jid::from(jid.clone()));
        let reply = match self.host.iq(profile, to, false, req).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(%profile, %jid, version = ?v, error = %e, "no OMEMO device list");
                return Vec::new();
            }
        };
        let items = ps::parse_items(reply)
            .map(|(items, _)| items)
            .unwrap_or_default();
        items
            .iter()
            .filter_map(|i| i.element.as_ref())
            .filter_map(wire::parse_devicelist)
            .find(|(lv, _)| *lv == v)
            .map(|(_, ids)| ids)
            .unwrap_or_default()
    }

    /// Fetches and stores the device lists of `jid` for every version we speak.
    pub(crate) async fn refresh_devices(
        &self,
        profile: &str,
        pid: i32,
        jid: &BareJid,
    ) -> Result<(), HostError> {
        for v in self.versions.clone() {
            let ids = self.fetch_devicelist(profile, jid, v).await;
            store::set_devicelist(self.host.store(), pid, jid.as_str(), v, &ids).await?;
        }
        Ok(())
    }

    /// The bundle device `device` of `jid` publishes for `v`, its signature checked.
    pub(crate) async fn fetch_bundle(
        &self,
        profile: &str,
        jid: &str,
        v: Version,
        device: u32,
    ) -> Result<Bundle, String> {
        let (node, item) = wire::bundle_location(v, device);
        let to = Jid::new(jid).map_err(|e| e.to_string())?;
        let req = ps::items(&node, None, &[item], None);
        let reply = self
            .host
            .iq(profile, Some(to), false, req)
            .await
            .map_err(|e| format!("no bundle: {e}"))?;
        let (items, _) = ps::parse_items(reply)?;
        let el = items
            .iter()
            .find_map(|i| i.element.as_ref())
            .ok_or("an empty bundle node")?;
        let bundle = wire::parse_bundle(v, el)?;
        bundle.verify().map_err(|e| e.to_string())?;
        Ok(bundle)
    }

    /// A device list notification (`+notify`): stored; ours put right if our
    /// device is missing from it.
    pub(crate) async fn on_devicelist_event(
        &self,
        profile: &str,
        from: &BareJid,
        v: Version,
        ids: Vec<u32>,
    ) {
        if !self.versions.contains(&v) {
            return;
        }
        let own = self.host.bound_jid(profile).await.map(|j| j.to_bare());
        let result = async {
            let pid = self.host.profile_id(profile).await?;
            store::set_devicelist(self.host.store(), pid, from.as_str(), v, &ids).await?;
            if own.as_ref() == Some(from) {
                let me = self.me(profile).await?;
                if !ids.contains(&me.device) {
                    tracing::info!(%profile, device = me.device, "our device is missing from our own device list; publishing it again");
                    drop(me);
                    self.publish_own(profile).await?;
                }
            }
            Ok::<_, HostError>(())
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(%profile, %from, error = %e, "storing a device list failed");
        }
    }
}

/// The device lists in a pubsub event message: `(version, ids)` of each.
pub fn devicelist_events(m: &Element) -> Vec<(Version, Vec<u32>)> {
    let Some(event) = m.get_child("event", ps::NS_EVENT) else {
        return Vec::new();
    };
    event
        .children()
        .filter(|c| c.is("items", ps::NS_EVENT))
        .filter(|c| {
            let node = c.attr("node").unwrap_or_default();
            node == wire::devicelist_node(Version::V03)
                || node == wire::devicelist_node(Version::V2)
        })
        .flat_map(|c| c.children().filter(|i| i.is("item", ps::NS_EVENT)))
        .flat_map(|i| i.children().filter_map(wire::parse_devicelist))
        .collect()
}
