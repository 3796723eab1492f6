//! Libervia's parameter system, mapped onto Perch's profiles.
//!
//! (Skeleton: the API the Libervia bridge builds against; filled in next.)

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::daemon::Daemon;

/// The Libervia parameter store of the daemon's profiles.
pub struct Params {
    #[allow(dead_code)]
    daemon: Arc<Daemon>,
}

/// What a successful `set` changed, for the `paramUpdate` signal.
#[derive(Debug, Clone)]
pub struct ParamChange {
    pub name: String,
    pub category: String,
    /// The value as stored; always `""` for a password.
    pub value: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ParamError {
    #[error("Requested param doesn't exist: {category}/{name}")]
    UnknownParam { category: String, name: String },
    #[error("param {category}/{name} is above the allowed security limit")]
    Permission { category: String, name: String },
    #[error("To retrieve password values, use asyncGetParamA instead of getParamA")]
    PasswordNeedsAsync,
    #[error("invalid value for param {category}/{name}: {why}")]
    Invalid {
        category: String,
        name: String,
        why: String,
    },
    #[error(transparent)]
    Perch(#[from] crate::error::Error),
}

impl Params {
    pub fn new(daemon: Arc<Daemon>) -> Self {
        Self { daemon }
    }

    /// `getParamsCategories`.
    pub fn categories() -> Vec<&'static str> {
        vec!["General", "Connection", "Composition"]
    }

    pub async fn set(
        &self,
        _profile: &str,
        category: &str,
        name: &str,
        _value: &str,
        _security_limit: i32,
    ) -> Result<ParamChange, ParamError> {
        Err(unknown(category, name))
    }

    /// `asyncGetParamA` (a password comes back in clear).
    pub async fn get(
        &self,
        _profile: &str,
        category: &str,
        name: &str,
        _attribute: &str,
        _security_limit: i32,
    ) -> Result<String, ParamError> {
        Err(unknown(category, name))
    }

    /// `getParamA` (refuses passwords).
    pub async fn get_sync(
        &self,
        _profile: &str,
        category: &str,
        name: &str,
        _attribute: &str,
    ) -> Result<String, ParamError> {
        Err(unknown(category, name))
    }

    pub async fn category_values(
        &self,
        _profile: &str,
        _category: &str,
        _security_limit: i32,
        _app: &str,
    ) -> Result<BTreeMap<String, String>, ParamError> {
        Ok(BTreeMap::new())
    }

    /// `getParamsUI`.
    pub async fn ui_xml(
        &self,
        _profile: &str,
        _security_limit: i32,
        _app: &str,
        _extra_json: &str,
    ) -> Result<String, ParamError> {
        Ok(String::new())
    }

    pub async fn profile_password_ok(
        &self,
        _profile: &str,
        password: &str,
    ) -> Result<bool, ParamError> {
        Ok(password.is_empty())
    }

    pub async fn history_limit(&self, _profile: &str) -> Result<u32, ParamError> {
        Ok(20)
    }
}

fn unknown(category: &str, name: &str) -> ParamError {
    ParamError::UnknownParam {
        category: category.to_owned(),
        name: name.to_owned(),
    }
}
