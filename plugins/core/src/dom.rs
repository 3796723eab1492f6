//! A shorthand for building elements with minidom 0.19, whose builder takes
//! attribute names as validated `NcName`s.

use perch_plugin_api::minidom::rxml::NcName;
use perch_plugin_api::minidom::{ElementBuilder, IntoAttributeValue};

pub trait Attr {
    /// Sets attribute `name` (a literal XML name; an invalid one is a bug caught by
    /// the literal-XML tests, and is left out).
    #[must_use]
    fn a<V: IntoAttributeValue>(self, name: &'static str, value: V) -> Self;
}

impl Attr for ElementBuilder {
    fn a<V: IntoAttributeValue>(self, name: &'static str, value: V) -> Self {
        match NcName::try_from(name) {
            Ok(n) => self.attr(n, value),
            Err(_) => {
                debug_assert!(false, "invalid attribute name {name:?}");
                self
            }
        }
    }
}
