//! Libervia compatibility: perchd answering Libervia 0.9's frontends (see `doc/libervia-compat.rst`).
pub mod params;
