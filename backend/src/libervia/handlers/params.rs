//! Libervia's parameters (`crate::libervia::params` holds the schema and the store);
//! a change is announced with `paramUpdate`, as 0.9 does.

use crate::libervia::context::{CORE_INTERFACE, Lib};
use crate::libervia::params::Params;
use crate::libervia::reply::{Answer, Map, out, unit};

/// `getParamsCategories`.
pub async fn categories(_lib: &Lib) -> Answer {
    out(Params::categories()
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<String>>())
}

/// `setParam(name, value, category, security_limit, profile_key)`.
pub async fn set(
    lib: &Lib,
    (name, value, category, security, key): (String, String, String, i32, String),
) -> Answer {
    let p = lib.profile(&key).await?;
    let change = lib
        .params
        .set(&p, &category, &name, &value, security)
        .await?;
    lib.emit(
        CORE_INTERFACE,
        "paramUpdate",
        &(change.name, change.value, change.category, p),
    )
    .await;
    unit()
}

/// `asyncGetParamA(name, category, attribute, security_limit, profile_key)`.
pub async fn get_async(
    lib: &Lib,
    (name, category, attribute, security, key): (String, String, String, i32, String),
) -> Answer {
    let p = lib.profile(&key).await?;
    out(lib
        .params
        .get(&p, &category, &name, &attribute, security)
        .await?)
}

/// `getParamA(name, category, attribute, profile_key)`: a password's value refused.
pub async fn get(
    lib: &Lib,
    (name, category, attribute, key): (String, String, String, String),
) -> Answer {
    let p = lib.profile(&key).await?;
    out(lib
        .params
        .get_sync(&p, &category, &name, &attribute)
        .await?)
}

/// `asyncGetParamsValuesFromCategory(category, security_limit, app, extra, profile_key)`.
pub async fn category_values(
    lib: &Lib,
    (category, security, app, _extra, key): (String, i32, String, String, String),
) -> Answer {
    let p = lib.profile(&key).await?;
    let values = lib
        .params
        .category_values(&p, &category, security, &app)
        .await?;
    out(values.into_iter().collect::<Map>())
}

/// `getParamsUI(security_limit, app, extra, profile_key)`: the dialog as XMLUI.
pub async fn ui(lib: &Lib, (security, app, extra, key): (i32, String, String, String)) -> Answer {
    let p = lib.profile(&key).await?;
    out(lib.params.ui_xml(&p, security, &app, &extra).await?)
}
