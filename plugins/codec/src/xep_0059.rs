//! XEP-0059: Result Set Management — pages of results, and a pager that never loops.
//!
//! Why a pager of our own: services differ. ejabberd pages pubsub items with RSM (its
//! RSM ids are timestamps, not item ids); Prosody 0.12 ignores RSM and answers the
//! whole node; neither announces an RSM feature in disco, so only the reply tells. A
//! broken service may repeat a page, omit `<last/>` or never end. [`Pager`] decides
//! from each reply whether to go on, and when it stops says why, so a sync can log
//! it and tell a complete result from a cut one. [`emulate`] gives RSM semantics over
//! a whole list, for services that ignore RSM.

use std::collections::HashSet;

use crate::StanzaError;
use crate::minidom::Element;
use serde::{Deserialize, Serialize};

pub const NS: &str = "http://jabber.org/protocol/rsm";

/// What we ask for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RsmRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<usize>,
    /// The page after this id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// The page before this id; `""` asks for the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// The page starting at this position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
}

impl RsmRequest {
    pub fn element(&self) -> Element {
        let mut b = Element::builder("set", NS);
        if let Some(m) = self.max {
            b = b.append(Element::builder("max", NS).append(m.to_string()).build());
        }
        if let Some(a) = &self.after {
            b = b.append(Element::builder("after", NS).append(a.as_str()).build());
        }
        if let Some(x) = &self.before {
            let mut e = Element::builder("before", NS);
            if !x.is_empty() {
                e = e.append(x.as_str());
            }
            b = b.append(e.build());
        }
        if let Some(i) = self.index {
            b = b.append(Element::builder("index", NS).append(i.to_string()).build());
        }
        b.build()
    }
}

/// What the service said about the page it sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RsmResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
}

impl RsmResponse {
    /// Reads a `<set xmlns='…rsm'/>` element.
    pub fn parse(set: &Element) -> Self {
        let text = |name: &str| set.get_child(name, NS).map(Element::text);
        Self {
            first: text("first").filter(|t| !t.is_empty()),
            first_index: set
                .get_child("first", NS)
                .and_then(|f| f.attr("index"))
                .and_then(|i| i.trim().parse().ok()),
            last: text("last").filter(|t| !t.is_empty()),
            count: text("count").and_then(|c| c.trim().parse().ok()),
        }
    }

    /// The `<set/>` among `parent`'s children, if any.
    pub fn find_in(parent: &Element) -> Option<Self> {
        parent.get_child("set", NS).map(Self::parse)
    }
}

#[cfg(test)]
impl RsmResponse {
    /// The `<set/>` a service would send (for the tests of the readers).
    pub(crate) fn element(&self) -> Element {
        let leaf = |name: &str, t: String| Element::builder(name, NS).append(t).build();
        let mut b = Element::builder("set", NS);
        if self.first.is_some() || self.first_index.is_some() {
            let mut f =
                Element::builder("first", NS).append(self.first.clone().unwrap_or_default());
            if let Some(i) = self.first_index {
                f = crate::dom::Attr::a(f, "index", i.to_string());
            }
            b = b.append(f.build());
        }
        if let Some(l) = &self.last {
            b = b.append(leaf("last", l.clone()));
        }
        if let Some(c) = self.count {
            b = b.append(leaf("count", c.to_string()));
        }
        b.build()
    }
}

/// RSM over a whole, ordered list (oldest first), for services that ignore RSM.
/// `id` gives each entry's RSM id. An unknown `after`/`before` id is item-not-found,
/// as a service would answer (XEP-0059 §2.6).
pub fn emulate<T>(
    all: Vec<T>,
    id: impl Fn(&T) -> &str,
    req: &RsmRequest,
) -> Result<(Vec<T>, RsmResponse), StanzaError> {
    let count = all.len();
    let position = |x: &str| {
        all.iter().position(|t| id(t) == x).ok_or_else(|| {
            StanzaError::new("item-not-found", Some(format!("no item with RSM id {x:?}")))
        })
    };
    let max = req.max.unwrap_or(usize::MAX);
    let (start, end) = if let Some(after) = &req.after {
        let s = position(after)? + 1;
        (s, s.saturating_add(max).min(count))
    } else if let Some(before) = &req.before {
        let e = if before.is_empty() {
            count
        } else {
            position(before)?
        };
        (e.saturating_sub(max), e)
    } else {
        let s = req.index.unwrap_or(0).min(count);
        (s, s.saturating_add(max).min(count))
    };
    let page: Vec<T> = all.into_iter().skip(start).take(end - start).collect();
    let resp = RsmResponse {
        first: page.first().map(|t| id(t).to_owned()),
        first_index: page.first().map(|_| start),
        last: page.last().map(|t| id(t).to_owned()),
        count: Some(count),
    };
    Ok((page, resp))
}

/// What to do after a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Ask for this page.
    Fetch(RsmRequest),
    /// Stop. `complete`: everything was fetched; otherwise `reason` says what cut it.
    Done { complete: bool, reason: String },
}

/// Walks every page of a result set, refusing to loop on a broken service.
#[derive(Debug)]
pub struct Pager {
    page_size: usize,
    bound: usize,
    max_pages: usize,
    pages: usize,
    fetched: usize,
    lasts: HashSet<String>,
}

impl Pager {
    /// Pages of `page_size`, at most `bound` results in all.
    pub fn new(page_size: usize, bound: usize) -> Self {
        let page_size = page_size.max(1);
        Self {
            page_size,
            bound,
            // Pages may be shorter than asked; allow some slack, never unbounded.
            max_pages: bound / page_size + 16,
            pages: 0,
            fetched: 0,
            lasts: HashSet::new(),
        }
    }

    pub fn first(&self) -> RsmRequest {
        RsmRequest {
            max: Some(self.page_size.min(self.bound.max(1))),
            ..Default::default()
        }
    }

    pub fn fetched(&self) -> usize {
        self.fetched
    }

    /// After a page: its `<set/>` (None: the service ignored RSM), how many results
    /// it held, and how many of those were new (not seen on an earlier page).
    pub fn next(&mut self, set: Option<&RsmResponse>, got: usize, new: usize) -> Next {
        self.pages += 1;
        self.fetched += new;
        let done = |complete: bool, reason: &str| Next::Done {
            complete,
            reason: reason.to_owned(),
        };
        let Some(set) = set else {
            return if self.pages == 1 {
                done(
                    true,
                    "the service ignores RSM: its reply is the whole result",
                )
            } else {
                done(
                    false,
                    "the service stopped sending <set/> in the middle of paging",
                )
            };
        };
        if got == 0 {
            return done(true, "empty page");
        }
        if new == 0 {
            return done(
                false,
                "no progress: the page only repeated results already seen",
            );
        }
        if set.count.is_some_and(|c| self.fetched >= c) {
            return done(true, "every result counted by the service was fetched");
        }
        if self.fetched >= self.bound {
            return done(false, &format!("bound of {} results reached", self.bound));
        }
        if self.pages >= self.max_pages {
            return done(false, &format!("page bound of {} reached", self.max_pages));
        }
        let Some(last) = set.last.clone() else {
            return done(
                set.count.is_none() && got < self.page_size,
                "page without <last/>: cannot ask for the next one",
            );
        };
        if !self.lasts.insert(last.clone()) {
            return done(
                false,
                &format!("the service repeated the page ending at {last:?}"),
            );
        }
        if set.count.is_none() && got < self.page_size {
            return done(true, "short page");
        }
        Next::Fetch(RsmRequest {
            max: Some(self.page_size.min(self.bound - self.fetched)),
            after: Some(last),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_response_xml() {
        let r = RsmRequest {
            max: Some(10),
            before: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(
            String::from(&r.element()),
            "<set xmlns='http://jabber.org/protocol/rsm'><max>10</max><before/></set>"
        );
        let e: Element = "<set xmlns='http://jabber.org/protocol/rsm'><first index='990'>a</first>\
                          <last>b</last><count>1000</count></set>"
            .parse()
            .unwrap();
        assert_eq!(
            RsmResponse::parse(&e),
            RsmResponse {
                first: Some("a".into()),
                first_index: Some(990),
                last: Some("b".into()),
                count: Some(1000)
            }
        );
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("i{i}")).collect()
    }

    #[test]
    fn emulation_follows_rsm_semantics() {
        let req = |max, after: Option<&str>, before: Option<&str>, index| RsmRequest {
            max,
            after: after.map(Into::into),
            before: before.map(Into::into),
            index,
        };
        let (p, r) = emulate(ids(10), |s| s, &req(Some(3), Some("i2"), None, None)).unwrap();
        assert_eq!(p, ["i3", "i4", "i5"]);
        assert_eq!((r.first_index, r.count), (Some(3), Some(10)));
        let (p, _) = emulate(ids(10), |s| s, &req(Some(3), None, Some(""), None)).unwrap();
        assert_eq!(p, ["i7", "i8", "i9"]);
        let (p, r) = emulate(ids(10), |s| s, &req(Some(3), None, Some("i2"), None)).unwrap();
        assert_eq!(
            (p, r.first_index),
            (vec!["i0".into(), "i1".into()], Some(0))
        );
        let (p, _) = emulate(ids(10), |s| s, &req(Some(2), None, None, Some(8))).unwrap();
        assert_eq!(p, ["i8", "i9"]);
        let (p, r) = emulate(ids(10), |s| s, &req(Some(2), None, None, Some(20))).unwrap();
        assert!(p.is_empty() && r.first.is_none());
        let e = emulate(ids(3), |s| s, &req(None, Some("nope"), None, None)).unwrap_err();
        assert_eq!(e.condition, "item-not-found");
    }

    fn set(last: &str, count: Option<usize>) -> RsmResponse {
        RsmResponse {
            last: Some(last.into()),
            count,
            ..Default::default()
        }
    }

    #[test]
    fn pager_pages_to_the_count() {
        let mut p = Pager::new(100, 10_000);
        assert_eq!(p.first().max, Some(100));
        for page in 0..9 {
            match p.next(Some(&set(&format!("t{page}"), Some(1000))), 100, 100) {
                Next::Fetch(r) => assert_eq!(r.after, Some(format!("t{page}"))),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            p.next(Some(&set("t9", Some(1000))), 100, 100),
            Next::Done { complete: true, .. }
        ));
        assert_eq!(p.fetched(), 1000);
    }

    #[test]
    fn pager_detects_no_rsm_and_broken_services() {
        let mut p = Pager::new(100, 10_000);
        assert!(matches!(
            p.next(None, 1000, 1000),
            Next::Done { complete: true, .. }
        ));
        // Same last id twice: stop, incomplete.
        let mut p = Pager::new(10, 10_000);
        assert!(matches!(
            p.next(Some(&set("x", None)), 10, 10),
            Next::Fetch(_)
        ));
        let Next::Done { complete, reason } = p.next(Some(&set("x", None)), 10, 10) else {
            panic!()
        };
        assert!(!complete && reason.contains("repeated"), "{reason}");
        // Pages of nothing new: stop.
        let mut p = Pager::new(10, 10_000);
        p.next(Some(&set("a", None)), 10, 10);
        let Next::Done { complete, reason } = p.next(Some(&set("b", None)), 10, 0) else {
            panic!()
        };
        assert!(!complete && reason.contains("no progress"), "{reason}");
        // An endless service stops at the bound.
        let mut p = Pager::new(10, 50);
        let mut n = 0;
        loop {
            n += 1;
            match p.next(Some(&set(&format!("l{n}"), None)), 10, 10) {
                Next::Fetch(_) => assert!(n < 100, "never stopped"),
                Next::Done { complete, reason } => {
                    assert!(!complete && reason.contains("bound"), "{reason}");
                    break;
                }
            }
        }
        assert_eq!(p.fetched(), 50);
        // A short page without count is the end.
        let mut p = Pager::new(10, 100);
        assert!(matches!(
            p.next(Some(&set("a", None)), 4, 4),
            Next::Done { complete: true, .. }
        ));
    }
}

/// Properties (doc/reliability.rst, "Property tests"): 256 cases each (`PROPTEST_CASES`).
#[cfg(test)]
mod proptests {
    use super::*;
    use crate::dom::arb;
    use proptest::option::of;
    use proptest::prelude::*;

    fn response() -> impl Strategy<Value = RsmResponse> {
        let id = || arb::text().prop_filter("an id", |t| !t.is_empty());
        (of(id()), of(any::<usize>()), of(id()), of(any::<usize>())).prop_map(
            |(first, first_index, last, count)| RsmResponse {
                first,
                first_index,
                last,
                count,
            },
        )
    }

    fn request(n: usize) -> impl Strategy<Value = RsmRequest> {
        let id = move || {
            prop_oneof![
                (0..n + 2).prop_map(|i| format!("i{i}")),
                Just(String::new())
            ]
        };
        (of(0..n + 3), of(id()), of(id()), of(0..n + 3)).prop_map(|(max, after, before, index)| {
            RsmRequest {
                max,
                after,
                before,
                index,
            }
        })
    }

    proptest! {
        #![proptest_config(arb::config())]

        /// A service's `<set/>` reads back as it was.
        #[test]
        fn responses_read_back(r in response()) {
            let e: Element = String::from(&r.element()).parse().expect("reads back");
            prop_assert_eq!(RsmResponse::parse(&e), r);
        }

        /// Any element reads without a panic.
        #[test]
        fn any_element_is_read(
            e in arb::element(&["set", "first", "last", "count", "max"], &[NS, "urn:other"], &["index"])
        ) {
            let r = RsmResponse::parse(&e);
            prop_assert!(r.first.as_ref().is_none_or(|f| !f.is_empty()));
        }

        /// The emulation answers a contiguous slice, described by its `<set/>`, or
        /// item-not-found for an id it does not hold.
        #[test]
        fn emulation_gives_a_described_slice((n, req) in (0..12usize).prop_flat_map(|n| (Just(n), request(n)))) {
            let all: Vec<String> = (0..n).map(|i| format!("i{i}")).collect();
            match emulate(all.clone(), |s| s, &req) {
                Ok((page, set)) => {
                    let start = set.first_index.unwrap_or(0);
                    prop_assert_eq!(&all[start..start + page.len()], &page[..]);
                    prop_assert!(page.len() <= req.max.unwrap_or(usize::MAX));
                    prop_assert_eq!(set.first.as_ref(), page.first());
                    prop_assert_eq!(set.last.as_ref(), page.last());
                    prop_assert_eq!(set.count, Some(n));
                }
                Err(e) => {
                    prop_assert_eq!(e.condition.as_str(), "item-not-found");
                    let unknown = |x: &Option<String>| x.as_ref().is_some_and(|x| !all.contains(x));
                    prop_assert!(unknown(&req.after) || (req.after.is_none() && unknown(&req.before)
                        && req.before.as_deref() != Some("")));
                }
            }
        }

        /// Whatever a service answers, the pager stops within its page bound, and
        /// never asks for nothing or for more than the bound leaves.
        #[test]
        fn pager_always_stops(
            page_size in 0..50usize,
            bound in 0..500usize,
            replies in prop::collection::vec((of(response()), 0..60usize, 0..60usize), 1..64),
        ) {
            let mut p = Pager::new(page_size, bound);
            prop_assert!(p.first().max.is_some_and(|m| m >= 1));
            let mut stopped = false;
            for (n, (set, got, new)) in replies.iter().cycle().take(bound + 40).enumerate() {
                let new = (*new).min(*got);
                match p.next(set.as_ref(), *got, new) {
                    Next::Fetch(r) => {
                        let max = r.max.unwrap_or(0);
                        prop_assert!(max >= 1 && max <= bound.saturating_sub(p.fetched()));
                        prop_assert!(r.after.is_some() && r.after == set.as_ref().and_then(|s| s.last.clone()));
                    }
                    Next::Done { .. } => {
                        prop_assert!(n <= bound / page_size.max(1) + 16);
                        stopped = true;
                        break;
                    }
                }
            }
            prop_assert!(stopped, "never stopped");
        }
    }
}
