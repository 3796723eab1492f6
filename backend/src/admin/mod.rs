//! Administration of an installation while no perchd runs on it: `perch-admin`.
//!
//! Why apart from the daemon: moving a database from one engine to another needs the
//! whole of it still, with nobody writing, and touches every table of the core and
//! the plugins alike: something a running daemon never does, and a frontend must
//! never be able to ask for. It sits above storage (it opens and migrates databases
//! as perchd does, and reads the daemons' heartbeats to know whether one holds the
//! database) and below nothing: only the `perch-admin` binary names it.

pub mod migrate;
mod tables;

pub use migrate::{MigrateError, Progress, Report, TableReport, migrate};
