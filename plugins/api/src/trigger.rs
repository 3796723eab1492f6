//! Trigger points: where plugins intercept the core's flows.
//!
//! Libervia's `host.trigger` passes untyped arguments to callbacks that return a bool,
//! and a callback "replaces the result" by raising an exception. Here each point is a
//! type ([`TriggerPoint`]) naming its arguments and its replacement value, so a handler
//! cannot misread what it gets, and the four outcomes are an enum ([`Flow`]). Every point
//! keeps a stable string name so `perch debug triggers` can list them.
//!
//! Handlers run one after the other, highest priority first (equal priorities in
//! registration order), each awaited before the next: a handler may change the
//! arguments the next ones — and the core — see.
//!
//! A handler that panics does not take the flow down with it: the panic is caught,
//! reported to the fault sink (the daemon logs it and signals it to frontends), and
//! the flow goes on as if the handler had said [`Flow::Continue`]. One plugin's bug
//! must not stop a session or lose the message it was looking at.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use futures::future::BoxFuture;
use serde::Serialize;

/// A named point in a core (or plugin) flow.
pub trait TriggerPoint: 'static {
    /// Stable name, shown by `perch debug triggers` and in logs.
    const NAME: &'static str;
    /// One line: when the point fires and what stopping it means.
    const DOC: &'static str;
    /// What handlers get; they may modify it.
    type Args: Send + 'static;
    /// What a handler may put in place of the flow's normal result.
    type Value: Send + 'static;
}

/// What a handler tells the flow.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow<V> {
    /// Run the next handler, then the flow as usual.
    Continue,
    /// Stop here: no further handler runs and the flow does not happen.
    Stop,
    /// Stop here, with a value that replaces the flow's normal result.
    StopWith(V),
    /// The flow happens as usual, but no further handler runs.
    SkipRest,
}

/// How a [`Triggers::fire`] ended, for the code that owns the flow.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome<V> {
    /// Go on with the flow (every handler said continue, or one said skip the rest).
    Proceed,
    /// A handler stopped the flow; `by` names its plugin.
    Stopped { by: String },
    /// A handler stopped the flow and gave the result to use instead.
    Replaced { by: String, value: V },
}

impl<V> Outcome<V> {
    /// Whether the flow goes on.
    pub fn proceeds(&self) -> bool {
        matches!(self, Self::Proceed)
    }
}

/// A handler of point `P`: an async function of the (mutable) arguments.
pub type Handler<P> = Arc<
    dyn for<'a> Fn(
            &'a mut <P as TriggerPoint>::Args,
        ) -> BoxFuture<'a, Flow<<P as TriggerPoint>::Value>>
        + Send
        + Sync,
>;

struct Entry<P: TriggerPoint> {
    plugin: String,
    priority: i32,
    handler: Handler<P>,
}

impl<P: TriggerPoint> Clone for Entry<P> {
    fn clone(&self) -> Self {
        Self {
            plugin: self.plugin.clone(),
            priority: self.priority,
            handler: self.handler.clone(),
        }
    }
}

/// One point's handlers, sorted (an `Arc` so firing clones a pointer, not a list).
struct Slot {
    doc: &'static str,
    /// `Arc<Vec<Entry<P>>>` for the point's `P`.
    handlers: Box<dyn Any + Send + Sync>,
    /// (plugin, priority) in firing order, for listing.
    listing: Vec<(String, i32)>,
}

/// A point with its handlers, for `perch debug triggers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PointListing {
    pub name: String,
    pub doc: String,
    pub handlers: Vec<HandlerListing>,
}

/// One handler of a point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandlerListing {
    pub plugin: String,
    pub priority: i32,
}

/// A handler that failed: which plugin, at which point, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandlerFault {
    pub plugin: String,
    pub point: String,
    /// The panic's message.
    pub what: String,
}

/// Where faults of handlers are reported.
pub type FaultSink = Arc<dyn Fn(HandlerFault) + Send + Sync>;

/// The registry of every trigger point and its handlers.
#[derive(Default)]
pub struct Triggers {
    slots: RwLock<BTreeMap<&'static str, Slot>>,
    fault_sink: RwLock<Option<FaultSink>>,
}

/// The message of a caught panic.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

impl std::fmt::Debug for Triggers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.list()).finish()
    }
}

impl Triggers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Where a handler's panic is reported (the daemon sets this once, at start).
    pub fn set_fault_sink(&self, sink: FaultSink) {
        *self.fault_sink.write().unwrap_or_else(|e| e.into_inner()) = Some(sink);
    }

    fn fault(&self, fault: HandlerFault) {
        let sink = self
            .fault_sink
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(sink) = sink {
            sink(fault);
        }
    }

    /// Declares a point so it is listed even before it has handlers. Flows declare
    /// their points when they are set up; [`Triggers::add`] declares one too.
    pub fn declare<P: TriggerPoint>(&self) {
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        slots.entry(P::NAME).or_insert_with(|| Slot {
            doc: P::DOC,
            handlers: Box::new(Arc::new(Vec::<Entry<P>>::new())),
            listing: Vec::new(),
        });
    }

    /// Adds a handler to point `P` for `plugin`, with `priority` (highest runs first).
    pub fn add<P, F>(&self, plugin: &str, priority: i32, handler: F)
    where
        P: TriggerPoint,
        F: for<'a> Fn(&'a mut P::Args) -> BoxFuture<'a, Flow<P::Value>> + Send + Sync + 'static,
    {
        self.declare::<P>();
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = slots.get_mut(P::NAME) else {
            return;
        };
        let Some(current) = slot.handlers.downcast_ref::<Arc<Vec<Entry<P>>>>() else {
            // Two point types with one name: a programming error, caught by the tests
            // of whoever did it; never silently mix their handlers.
            panic!("two trigger points are named {:?}", P::NAME);
        };
        let mut list: Vec<Entry<P>> = current.as_ref().clone();
        list.push(Entry {
            plugin: plugin.to_owned(),
            priority,
            handler: Arc::new(handler),
        });
        // Stable: equal priorities keep registration order.
        list.sort_by_key(|e| std::cmp::Reverse(e.priority));
        slot.listing = list
            .iter()
            .map(|e| (e.plugin.clone(), e.priority))
            .collect();
        slot.handlers = Box::new(Arc::new(list));
    }

    /// Runs the handlers of `P` on `args`, highest priority first, and says how the
    /// flow goes on.
    pub async fn fire<P: TriggerPoint>(&self, args: &mut P::Args) -> Outcome<P::Value> {
        let handlers: Arc<Vec<Entry<P>>> = {
            let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
            match slots
                .get(P::NAME)
                .and_then(|s| s.handlers.downcast_ref::<Arc<Vec<Entry<P>>>>())
            {
                Some(h) => h.clone(),
                None => return Outcome::Proceed,
            }
        };
        for entry in handlers.iter() {
            let run = std::panic::AssertUnwindSafe((entry.handler)(args));
            let flow = match futures::FutureExt::catch_unwind(run).await {
                Ok(flow) => flow,
                Err(payload) => {
                    self.fault(HandlerFault {
                        plugin: entry.plugin.clone(),
                        point: P::NAME.to_owned(),
                        what: panic_message(payload.as_ref()),
                    });
                    Flow::Continue
                }
            };
            match flow {
                Flow::Continue => {}
                Flow::SkipRest => return Outcome::Proceed,
                Flow::Stop => {
                    return Outcome::Stopped {
                        by: entry.plugin.clone(),
                    };
                }
                Flow::StopWith(value) => {
                    return Outcome::Replaced {
                        by: entry.plugin.clone(),
                        value,
                    };
                }
            }
        }
        Outcome::Proceed
    }

    /// Every point, by name, with its handlers in firing order.
    pub fn list(&self) -> Vec<PointListing> {
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        slots
            .iter()
            .map(|(name, slot)| PointListing {
                name: (*name).to_owned(),
                doc: slot.doc.to_owned(),
                handlers: slot
                    .listing
                    .iter()
                    .map(|(plugin, priority)| HandlerListing {
                        plugin: plugin.clone(),
                        priority: *priority,
                    })
                    .collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    struct Point;
    impl TriggerPoint for Point {
        const NAME: &'static str = "test.point";
        const DOC: &'static str = "a test point";
        type Args = Vec<String>;
        type Value = u32;
    }

    fn recorder(
        t: &Triggers,
        plugin: &'static str,
        priority: i32,
        flow: impl Fn() -> Flow<u32> + Send + Sync + 'static,
    ) {
        t.add::<Point, _>(plugin, priority, move |args: &mut Vec<String>| {
            args.push(plugin.to_owned());
            let f = flow();
            async move { f }.boxed()
        });
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn highest_priority_first_equal_ones_in_order() {
        let t = Triggers::new();
        recorder(&t, "low", -5, || Flow::Continue);
        recorder(&t, "high", 100, || Flow::Continue);
        recorder(&t, "mid-a", 0, || Flow::Continue);
        recorder(&t, "mid-b", 0, || Flow::Continue);
        let mut args = Vec::new();
        assert_eq!(block_on(t.fire::<Point>(&mut args)), Outcome::Proceed);
        assert_eq!(args, ["high", "mid-a", "mid-b", "low"]);
        let listing = t.list();
        assert_eq!(listing.len(), 1);
        assert_eq!(listing[0].name, "test.point");
        let order: Vec<_> = listing[0]
            .handlers
            .iter()
            .map(|h| (h.plugin.as_str(), h.priority))
            .collect();
        assert_eq!(
            order,
            [("high", 100), ("mid-a", 0), ("mid-b", 0), ("low", -5)]
        );
    }

    #[test]
    fn the_four_outcomes() {
        // Stop: later handlers do not run, the flow is stopped.
        let t = Triggers::new();
        recorder(&t, "a", 2, || Flow::Stop);
        recorder(&t, "b", 1, || Flow::Continue);
        let mut args = Vec::new();
        assert_eq!(
            block_on(t.fire::<Point>(&mut args)),
            Outcome::Stopped { by: "a".into() }
        );
        assert_eq!(args, ["a"]);

        // StopWith: the value comes back, later handlers do not run.
        let t = Triggers::new();
        recorder(&t, "a", 2, || Flow::Continue);
        recorder(&t, "b", 1, || Flow::StopWith(42));
        recorder(&t, "c", 0, || Flow::Continue);
        let mut args = Vec::new();
        assert_eq!(
            block_on(t.fire::<Point>(&mut args)),
            Outcome::Replaced {
                by: "b".into(),
                value: 42
            }
        );
        assert_eq!(args, ["a", "b"]);

        // SkipRest: the flow proceeds, later handlers do not run.
        let t = Triggers::new();
        recorder(&t, "a", 2, || Flow::SkipRest);
        recorder(&t, "b", 1, || Flow::Stop);
        let mut args = Vec::new();
        assert_eq!(block_on(t.fire::<Point>(&mut args)), Outcome::Proceed);
        assert_eq!(args, ["a"]);

        // Continue everywhere, and a point without handlers, proceed.
        let t = Triggers::new();
        let mut args = Vec::new();
        assert_eq!(block_on(t.fire::<Point>(&mut args)), Outcome::Proceed);
        assert!(args.is_empty());
    }

    #[test]
    fn async_handlers_are_awaited_in_turn() {
        let t = Triggers::new();
        t.add::<Point, _>("slow", 10, |args: &mut Vec<String>| {
            async move {
                tokio::task::yield_now().await;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                args.push("slow".into());
                Flow::Continue
            }
            .boxed()
        });
        t.add::<Point, _>("fast", 0, |args: &mut Vec<String>| {
            async move {
                // Sees what the slower, higher-priority handler did.
                let seen = args.len() as u32;
                args.push("fast".into());
                Flow::StopWith(seen)
            }
            .boxed()
        });
        let mut args = Vec::new();
        let out = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
            .block_on(t.fire::<Point>(&mut args));
        assert_eq!(
            out,
            Outcome::Replaced {
                by: "fast".into(),
                value: 1
            }
        );
        assert_eq!(args, ["slow", "fast"]);
    }

    #[test]
    fn a_panicking_handler_is_reported_and_the_flow_goes_on() {
        let t = Triggers::new();
        let faults = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = faults.clone();
        t.set_fault_sink(Arc::new(move |f| seen.lock().unwrap().push(f)));
        recorder(&t, "first", 10, || Flow::Continue);
        t.add::<Point, _>("buggy", 5, |args: &mut Vec<String>| {
            async move {
                args.push("buggy".into());
                if args.len() > 1 {
                    panic!("index out of range in buggy");
                }
                Flow::Stop
            }
            .boxed()
        });
        recorder(&t, "last", 0, || Flow::StopWith(7));
        let mut args = Vec::new();
        assert_eq!(
            block_on(t.fire::<Point>(&mut args)),
            Outcome::Replaced {
                by: "last".into(),
                value: 7
            }
        );
        assert_eq!(args, ["first", "buggy", "last"]);
        assert_eq!(
            *faults.lock().unwrap(),
            [HandlerFault {
                plugin: "buggy".into(),
                point: "test.point".into(),
                what: "index out of range in buggy".into(),
            }]
        );
    }

    #[test]
    fn declared_points_are_listed_without_handlers() {
        let t = Triggers::new();
        t.declare::<Point>();
        let l = t.list();
        assert_eq!(l[0].doc, "a test point");
        assert!(l[0].handlers.is_empty());
    }
}
