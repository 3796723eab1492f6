//! What the cache remembers to answer reads without SQL: the rows of served nodes and
//! the last answers to plain newest-N reads, within a byte budget, least recently
//! used first out.
//!
//! Why a budget in bytes and not a number of entries: an answer is as large as the
//! `max` it was asked with (a 1,000-item answer is three orders of magnitude larger
//! than a node row), so a count bounds nothing. Before the budget, one answer was kept
//! per distinct `max` until the node changed, and reads of every `max` grew perchd's
//! RSS more than tenfold (doc/performance.rst, "Design figures"). Sizes are estimates (the strings' capacity plus
//! the structs and a fixed overhead per entry), close enough to keep the total where
//! `memory_budget` says (doc/pubsub_cache.rst, doc/reliability.rst "Memory").
//!
//! Everything is valid for one epoch: any change of any node's state or items
//! forgets it all (see `Cache::forget_nodes`), and what was read from the database
//! before such a change is not remembered after it.

use std::collections::{BTreeMap, HashMap};
use std::mem::size_of;

use super::dao::Node;
use crate::xep_0060::{Item, ItemsPage};

/// One remembered thing: a node's row (`max` None) or the answer to a plain
/// newest-`max` read of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub profile_id: i32,
    pub service: String,
    pub node: String,
    pub max: Option<usize>,
}

impl Key {
    pub fn node(profile_id: i32, service: &str, node: &str) -> Self {
        Self {
            profile_id,
            service: service.to_owned(),
            node: node.to_owned(),
            max: None,
        }
    }

    pub fn page(&self, max: usize) -> Self {
        Self {
            max: Some(max),
            ..self.clone()
        }
    }

    fn bytes(&self) -> usize {
        size_of::<Self>() + self.service.capacity() + self.node.capacity()
    }
}

#[derive(Debug)]
enum Value {
    Node(Node),
    Page(ItemsPage),
}

#[derive(Debug)]
struct Entry {
    value: Value,
    bytes: usize,
    /// When it was last used (its key in `Served::order`).
    used: u64,
}

/// What an entry costs beyond its key and value: the hash table's slot and the
/// recency index's node, roughly.
const ENTRY_OVERHEAD: usize = 64;

/// An answer larger than this share of the budget is not remembered: one huge read
/// must not push out every small hot one.
const LARGEST_SHARE: usize = 8;

#[derive(Debug)]
pub struct Served {
    epoch: u64,
    budget: usize,
    bytes: usize,
    clock: u64,
    entries: HashMap<Key, Entry>,
    /// Keys by last use, oldest first.
    order: BTreeMap<u64, Key>,
}

impl Served {
    /// Remembers at most `budget` bytes (0: nothing).
    pub fn new(budget: usize) -> Self {
        Self {
            epoch: 0,
            budget,
            bytes: 0,
            clock: 0,
            entries: HashMap::new(),
            order: BTreeMap::new(),
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The bytes held now (never above the budget).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets everything and starts a new epoch.
    pub fn forget(&mut self) {
        self.epoch += 1;
        self.entries.clear();
        self.order.clear();
        self.bytes = 0;
        // A burst of entries must not keep its tables' capacity for ever.
        if self.entries.capacity() > 1024 {
            self.entries.shrink_to(64);
        }
    }

    fn touch(&mut self, key: &Key) -> Option<&Value> {
        self.clock += 1;
        let now = self.clock;
        let e = self.entries.get_mut(key)?;
        if let Some(k) = self.order.remove(&e.used) {
            self.order.insert(now, k);
        }
        e.used = now;
        Some(&e.value)
    }

    /// Marks an entry used, if held.
    pub fn mark_used(&mut self, key: &Key) {
        self.touch(key);
    }

    /// A remembered node row (marks it used).
    pub fn node(&mut self, key: &Key) -> Option<Node> {
        match self.touch(key)? {
            Value::Node(n) => Some(n.clone()),
            Value::Page(_) => None,
        }
    }

    /// A remembered answer (marks it used).
    pub fn page(&mut self, key: &Key) -> Option<ItemsPage> {
        match self.touch(key)? {
            Value::Page(p) => Some(p.clone()),
            Value::Node(_) => None,
        }
    }

    /// Remembers a node row read during `epoch` (ignored if anything changed since).
    pub fn put_node(&mut self, epoch: u64, key: Key, node: Node) {
        let bytes = key.bytes() + node_bytes(&node);
        self.put(epoch, key, Value::Node(node), bytes);
    }

    /// Remembers an answer computed during `epoch` (ignored if anything changed
    /// since, or if it is too large to keep).
    pub fn put_page(&mut self, epoch: u64, key: Key, page: ItemsPage) {
        let bytes = key.bytes() + page_bytes(&page);
        self.put(epoch, key, Value::Page(page), bytes);
    }

    fn put(&mut self, epoch: u64, key: Key, value: Value, bytes: usize) {
        let bytes = bytes + ENTRY_OVERHEAD;
        if epoch != self.epoch || bytes > self.budget / LARGEST_SHARE {
            return;
        }
        if let Some(old) = self.entries.remove(&key) {
            self.order.remove(&old.used);
            self.bytes -= old.bytes;
        }
        while self.bytes + bytes > self.budget {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some(e) = self.entries.remove(&oldest) {
                self.bytes -= e.bytes;
            }
        }
        self.clock += 1;
        self.order.insert(self.clock, key.clone());
        self.entries.insert(
            key,
            Entry {
                value,
                bytes,
                used: self.clock,
            },
        );
        self.bytes += bytes;
    }
}

fn opt(s: &Option<String>) -> usize {
    s.as_ref().map_or(0, String::capacity)
}

fn node_bytes(n: &Node) -> usize {
    size_of::<Node>()
        + n.service.capacity()
        + n.name.capacity()
        + opt(&n.analyser)
        + opt(&n.kind)
        + opt(&n.subtype)
        + opt(&n.sync_error)
        + opt(&n.incoherent_reason)
}

fn item_bytes(i: &Item) -> usize {
    // Answers from the cache carry no parsed element (`Item::new`); one that did would
    // be counted at least by its text.
    size_of::<Item>() + i.id.capacity() + opt(&i.publisher) + opt(&i.payload)
}

/// The estimated bytes an answer holds.
pub fn page_bytes(p: &ItemsPage) -> usize {
    let rsm = p.rsm.as_ref().map_or(0, |r| opt(&r.first) + opt(&r.last));
    size_of::<ItemsPage>()
        + p.service.capacity()
        + p.node.capacity()
        + p.source.capacity()
        + opt(&p.note)
        + rsm
        + p.items.capacity() * size_of::<Item>()
        + p.items
            .iter()
            .map(|i| item_bytes(i) - size_of::<Item>())
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pubsub_cache::model::SyncState;

    fn page(n: usize) -> ItemsPage {
        ItemsPage {
            service: "pubsub.example".into(),
            node: "blog".into(),
            items: (0..n)
                .map(|i| Item::new(format!("i{i}"), None, Some("x".repeat(500))))
                .collect(),
            rsm: None,
            complete: false,
            source: "cache".into(),
            note: None,
        }
    }

    fn node() -> Node {
        Node {
            id: 1,
            profile_id: 1,
            service: "pubsub.example".into(),
            name: "blog".into(),
            analysed: true,
            analyser: None,
            kind: None,
            subtype: None,
            to_sync: true,
            sync_state: SyncState::Completed,
            sync_state_updated: 0,
            sync_error: None,
            coherent: true,
            incoherent_reason: None,
            subscribed: true,
            attempts: 0,
            retry_at: None,
            sync_gen: 1,
            seq: 0,
            items_fetched: 0,
        }
    }

    #[test]
    fn stays_within_the_budget_and_drops_the_least_recently_used() {
        let budget = 64 * 1024;
        let mut s = Served::new(budget);
        let hot = Key::node(1, "pubsub.example", "blog");
        s.put_node(0, hot.clone(), node());
        for max in 1..=200 {
            s.put_page(0, hot.page(max), page(max));
            assert!(s.bytes() <= budget, "{} > {budget} at max {max}", s.bytes());
        }
        // Too large for an eighth of the budget: never kept.
        assert!(s.page(&hot.page(200)).is_none());
        // Many small answers of other nodes, the hot node's row used meanwhile.
        for k in 0..200 {
            let other = Key::node(1, "pubsub.example", &format!("n{k}"));
            s.put_page(0, other.page(5), page(5));
            assert!(s.bytes() <= budget, "{} > {budget} at node {k}", s.bytes());
            assert!(s.node(&hot).is_some(), "the hot row went at node {k}");
        }
        // The oldest went, the newest stay.
        assert!(
            s.page(&Key::node(1, "pubsub.example", "n0").page(5))
                .is_none()
        );
        assert!(
            s.page(&Key::node(1, "pubsub.example", "n199").page(5))
                .is_some()
        );
        assert!(s.page(&hot.page(1)).is_none());
    }

    #[test]
    fn an_older_epoch_is_not_remembered_and_forget_empties() {
        let mut s = Served::new(1 << 20);
        let k = Key::node(1, "s", "n");
        s.put_page(0, k.page(3), page(3));
        assert_eq!(s.len(), 1);
        s.forget();
        assert_eq!((s.len(), s.bytes()), (0, 0));
        s.put_page(0, k.page(3), page(3));
        assert!(s.is_empty());
        s.put_page(1, k.page(3), page(3));
        assert!(s.page(&k.page(3)).is_some());
    }

    #[test]
    fn a_zero_budget_remembers_nothing() {
        let mut s = Served::new(0);
        s.put_node(0, Key::node(1, "s", "n"), node());
        assert!(s.is_empty());
    }
}
