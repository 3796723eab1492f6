//! XEP-0060: Publish-Subscribe, the elements. The plugin is in `perch-plugins-pubsub`;
//! the MUC bookmarks (`perch-plugins-im`) are pubsub items too, and build their
//! requests with these.

pub mod xml;
