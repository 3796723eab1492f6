//! The pubsub plugins' state machines against a mock host: the test is the pubsub
//! service and the core; each test takes milliseconds.

#[path = "pubsub/cache.rs"]
mod cache;
