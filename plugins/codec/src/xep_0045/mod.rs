//! XEP-0045: Multi-User Chat, the elements. The plugin is in `perch-plugins-im`.

pub mod xml;
