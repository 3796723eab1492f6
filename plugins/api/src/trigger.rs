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
//!
//! Who may fire what. Every point has an owner, recorded when it is declared: the
//! core for its own points (`message.*`, `presence.*`, `session.*`), a plugin for
//! the points it declares. The registry itself ([`Triggers`]) is the core's: only
//! the backend holds one, and firing through it is the core's capability. A plugin
//! only ever sees a [`PluginTriggers`], bound to its name by the backend, which adds
//! handlers to any point but fires only points that plugin declared — and only
//! [`PluginPoint`]s, a trait the core's points do not implement (and, by the orphan
//! rule, no plugin can implement for them), so `fire::<MessageReceived>` does not
//! even compile in a plugin; a look-alike type under a core point's name is refused
//! at run time with [`TriggerError::NotOwner`].

use std::any::{Any, TypeId};
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

/// A point a plugin declares and fires (`pubsub.items.request`, `room.joined`…).
/// The core's points do not implement it, so a plugin cannot name one to
/// [`PluginTriggers::fire`]:
///
/// ```compile_fail
/// # use perch_plugin_api::{points::{MessageReceived, IncomingMessage}, trigger::PluginTriggers};
/// async fn fake(t: &PluginTriggers, args: &mut IncomingMessage) {
///     let _ = t.fire::<MessageReceived>(args).await; // MessageReceived: PluginPoint is not satisfied
/// }
/// ```
///
/// while a plugin's point compiles (and is checked against its owner at run time):
///
/// ```
/// # use perch_plugin_api::{points::{RoomJoinedPoint, RoomJoined}, trigger::PluginTriggers};
/// async fn joined(t: &PluginTriggers, args: &mut RoomJoined) {
///     let _ = t.fire::<RoomJoinedPoint>(args).await;
/// }
/// ```
pub trait PluginPoint: TriggerPoint {}

/// Who declared a point, and so who may fire it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PointOwner {
    /// The daemon's own flows.
    Core,
    /// A plugin, by import name.
    Plugin(&'static str),
}

impl std::fmt::Display for PointOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Core => f.write_str("the core"),
            Self::Plugin(p) => f.write_str(p),
        }
    }
}

/// Why the registry refused a declaration, a handler or a fire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    /// The point belongs to someone else: only its owner declares and fires it.
    #[error("{plugin} may not fire or declare {point}: it belongs to {owner}")]
    NotOwner {
        plugin: &'static str,
        point: &'static str,
        owner: PointOwner,
    },
    /// Fired before its owner declared it.
    #[error("{plugin} fired {point}, which it has not declared")]
    Undeclared {
        plugin: &'static str,
        point: &'static str,
    },
    /// Another type already uses this name.
    #[error("two trigger point types are named {0:?}")]
    NameClash(&'static str),
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

/// A named handler function of some state (the host, the plugin) and the arguments,
/// for [`PluginTriggers::add_with`].
pub type HandlerFn<P, S> = for<'a> fn(
    S,
    &'a mut <P as TriggerPoint>::Args,
) -> BoxFuture<'a, Flow<<P as TriggerPoint>::Value>>;

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
    /// The point's type: a look-alike of another type under the same name is refused.
    type_id: TypeId,
    /// Who declared it; `None` while it only has handlers (its owner declares it at
    /// build time, possibly after a plugin that listens to it).
    owner: Option<PointOwner>,
    /// Its owner lets any plugin fire it (a request point, like
    /// `pubsub.items.request`); never a core point.
    shared: bool,
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
    /// Who fires it (`None`: nobody declared it).
    pub owner: Option<PointOwner>,
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

    /// Declares one of the core's points (the backend does, before any plugin is
    /// built), so it is listed even before it has handlers and only the core fires it.
    pub fn declare<P: TriggerPoint>(&self) -> Result<(), TriggerError> {
        self.declare_as::<P>(PointOwner::Core, "core", false)
    }

    /// Declares `P` for `owner` (`who` names the caller in an error); `shared`: any
    /// plugin may fire it.
    fn declare_as<P: TriggerPoint>(
        &self,
        owner: PointOwner,
        who: &'static str,
        shared: bool,
    ) -> Result<(), TriggerError> {
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        let slot = slot_of::<P>(&mut slots)?;
        match slot.owner {
            None => {
                slot.owner = Some(owner);
                slot.shared = shared && owner != PointOwner::Core;
            }
            Some(o) if o == owner => {}
            Some(o) => {
                return Err(TriggerError::NotOwner {
                    plugin: who,
                    point: P::NAME,
                    owner: o,
                });
            }
        }
        Ok(())
    }

    /// Adds a handler to point `P` for `plugin`, with `priority` (highest runs first).
    /// The backend calls it for a plugin through [`PluginTriggers::add`], which names
    /// the plugin itself.
    pub fn add<P, F>(&self, plugin: &str, priority: i32, handler: F) -> Result<(), TriggerError>
    where
        P: TriggerPoint,
        F: for<'a> Fn(&'a mut P::Args) -> BoxFuture<'a, Flow<P::Value>> + Send + Sync + 'static,
    {
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        let slot = slot_of::<P>(&mut slots)?;
        let Some(current) = slot.handlers.downcast_ref::<Arc<Vec<Entry<P>>>>() else {
            return Err(TriggerError::NameClash(P::NAME));
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
        Ok(())
    }

    /// Who owns point `name`, if declared, and whether any plugin may fire it.
    fn owner(&self, name: &str) -> Option<(PointOwner, bool)> {
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        slots.get(name).and_then(|s| s.owner.map(|o| (o, s.shared)))
    }

    /// Runs the handlers of `P` on `args`, highest priority first, and says how the
    /// flow goes on. This is the core's firing: whoever holds the registry may fire
    /// any point, and only the backend holds it (plugins fire through
    /// [`PluginTriggers::fire`], which checks the owner).
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
                owner: slot.owner,
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

/// The slot of `P`, created if needed; refused when another type has its name.
fn slot_of<'s, P: TriggerPoint>(
    slots: &'s mut BTreeMap<&'static str, Slot>,
) -> Result<&'s mut Slot, TriggerError> {
    let slot = slots.entry(P::NAME).or_insert_with(|| Slot {
        doc: P::DOC,
        type_id: TypeId::of::<P>(),
        owner: None,
        shared: false,
        handlers: Box::new(Arc::new(Vec::<Entry<P>>::new())),
        listing: Vec::new(),
    });
    if slot.type_id != TypeId::of::<P>() {
        return Err(TriggerError::NameClash(P::NAME));
    }
    Ok(slot)
}

/// A plugin's view of the registry, bound to its import name by the backend: the
/// handlers it adds are filed under that name (not one the plugin asserts), and it
/// fires only the points it declared.
#[derive(Clone)]
pub struct PluginTriggers {
    registry: Arc<Triggers>,
    plugin: &'static str,
}

impl std::fmt::Debug for PluginTriggers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginTriggers")
            .field("plugin", &self.plugin)
            .finish()
    }
}

impl PluginTriggers {
    /// The backend makes one per plugin; a plugin never holds the registry itself.
    pub fn new(registry: Arc<Triggers>, plugin: &'static str) -> Self {
        Self { registry, plugin }
    }

    /// Declares a point this plugin owns and alone fires; refused when it is another's.
    pub fn declare<P: PluginPoint>(&self) -> Result<(), TriggerError> {
        self.registry
            .declare_as::<P>(PointOwner::Plugin(self.plugin), self.plugin, false)
    }

    /// Declares a point this plugin owns and any plugin may fire: a request others
    /// make of it (`pubsub.items.request`: whoever wants items asks, the cache
    /// answers). The core's points are never shared.
    pub fn declare_shared<P: PluginPoint>(&self) -> Result<(), TriggerError> {
        self.registry
            .declare_as::<P>(PointOwner::Plugin(self.plugin), self.plugin, true)
    }

    /// Adds a handler to any point (the core's or a plugin's), filed under this plugin.
    pub fn add<P, F>(&self, priority: i32, handler: F) -> Result<(), TriggerError>
    where
        P: TriggerPoint,
        F: for<'a> Fn(&'a mut P::Args) -> BoxFuture<'a, Flow<P::Value>> + Send + Sync + 'static,
    {
        self.registry.add::<P, F>(self.plugin, priority, handler)
    }

    /// Adds a named handler function that gets `state` (the host, the plugin) with the
    /// arguments: registration blocks stay one line per point.
    pub fn add_with<P, S>(
        &self,
        priority: i32,
        state: S,
        handler: HandlerFn<P, S>,
    ) -> Result<(), TriggerError>
    where
        P: TriggerPoint,
        S: Clone + Send + Sync + 'static,
    {
        self.add::<P, _>(priority, move |args: &mut P::Args| {
            handler(state.clone(), args)
        })
    }

    /// Fires a point this plugin declared; any other is refused, handlers untouched.
    pub async fn fire<P: PluginPoint>(
        &self,
        args: &mut P::Args,
    ) -> Result<Outcome<P::Value>, TriggerError> {
        match self.registry.owner(P::NAME) {
            Some((PointOwner::Plugin(p), shared)) if shared || p == self.plugin => {}
            Some((owner, _)) => {
                return Err(TriggerError::NotOwner {
                    plugin: self.plugin,
                    point: P::NAME,
                    owner,
                });
            }
            None => {
                return Err(TriggerError::Undeclared {
                    plugin: self.plugin,
                    point: P::NAME,
                });
            }
        }
        Ok(self.registry.fire::<P>(args).await)
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
        })
        .expect("add");
    }

    fn block_on<F: Future>(f: F) -> F::Output {
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
        })
        .expect("add");
        t.add::<Point, _>("fast", 0, |args: &mut Vec<String>| {
            async move {
                // Sees what the slower, higher-priority handler did.
                let seen = args.len() as u32;
                args.push("fast".into());
                Flow::StopWith(seen)
            }
            .boxed()
        })
        .expect("add");
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
        })
        .expect("add");
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
        t.declare::<Point>().expect("declare");
        let l = t.list();
        assert_eq!(l[0].doc, "a test point");
        assert!(l[0].handlers.is_empty());
    }

    /// A plugin's own point, and a look-alike of `Point` under its name.
    struct Own;
    impl TriggerPoint for Own {
        const NAME: &'static str = "plugin.own";
        const DOC: &'static str = "a plugin's point";
        type Args = Vec<String>;
        type Value = u32;
    }
    impl PluginPoint for Own {}

    struct LookAlike;
    impl TriggerPoint for LookAlike {
        const NAME: &'static str = "test.point";
        const DOC: &'static str = "pretends to be the core's";
        type Args = Vec<String>;
        type Value = u32;
    }
    impl PluginPoint for LookAlike {}

    #[test]
    fn a_plugin_fires_only_what_it_declared() {
        let t = Arc::new(Triggers::new());
        t.declare::<Point>().expect("core point");
        let mine = PluginTriggers::new(t.clone(), "MINE");
        let other = PluginTriggers::new(t.clone(), "OTHER");
        // Before its owner declares it, nobody fires it; a listener may already add.
        other
            .add::<Own, _>(0, |a: &mut Vec<String>| {
                a.push("other".into());
                async { Flow::Continue }.boxed()
            })
            .expect("add before declaration");
        assert_eq!(
            block_on(mine.fire::<Own>(&mut Vec::new())),
            Err(TriggerError::Undeclared {
                plugin: "MINE",
                point: "plugin.own"
            })
        );
        mine.declare::<Own>().expect("declare");
        let mut args = Vec::new();
        assert_eq!(block_on(mine.fire::<Own>(&mut args)), Ok(Outcome::Proceed));
        assert_eq!(args, ["other"]);
        // Another plugin can neither fire it nor claim it.
        let refused = TriggerError::NotOwner {
            plugin: "OTHER",
            point: "plugin.own",
            owner: PointOwner::Plugin("MINE"),
        };
        assert_eq!(
            block_on(other.fire::<Own>(&mut Vec::new())),
            Err(refused.clone())
        );
        assert_eq!(other.declare::<Own>(), Err(refused));
        assert_eq!(t.list()[0].owner, Some(PointOwner::Plugin("MINE")));
    }

    #[test]
    fn a_shared_point_is_fired_by_any_plugin() {
        let t = Arc::new(Triggers::new());
        let mine = PluginTriggers::new(t.clone(), "MINE");
        let other = PluginTriggers::new(t, "OTHER");
        mine.declare_shared::<Own>().expect("declare");
        assert_eq!(
            block_on(other.fire::<Own>(&mut Vec::new())),
            Ok(Outcome::Proceed)
        );
        // Still its owner's: nobody else declares it.
        assert_eq!(
            other.declare_shared::<Own>(),
            Err(TriggerError::NotOwner {
                plugin: "OTHER",
                point: "plugin.own",
                owner: PointOwner::Plugin("MINE"),
            })
        );
    }

    #[test]
    fn a_look_alike_of_a_core_point_is_refused() {
        let t = Arc::new(Triggers::new());
        t.declare::<Point>().expect("core point");
        recorder(&t, "core-listener", 0, || Flow::Continue);
        let rogue = PluginTriggers::new(t.clone(), "ROGUE");
        assert_eq!(
            rogue.declare::<LookAlike>(),
            Err(TriggerError::NameClash("test.point"))
        );
        assert_eq!(
            block_on(rogue.fire::<LookAlike>(&mut Vec::new())),
            Err(TriggerError::NotOwner {
                plugin: "ROGUE",
                point: "test.point",
                owner: PointOwner::Core,
            })
        );
        // The core still fires its point, and its handlers never saw the rogue.
        let mut args = Vec::new();
        assert_eq!(block_on(t.fire::<Point>(&mut args)), Outcome::Proceed);
        assert_eq!(args, ["core-listener"]);
    }
}
