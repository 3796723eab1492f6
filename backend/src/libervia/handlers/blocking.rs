//! Blocking (XEP-0191) as Libervia 0.9 offers it: `blockingList`, `blockingBlock`
//! and `blockingUnblock`, on the plugin interface, over perchd's `blocking_*`
//! actions.
//!
//! 0.9's semantics, kept: the list is the full JIDs as strings; blocking and
//! unblocking answer nothing; unblocking no JID unblocks every JID (the server's
//! reading of an empty `<unblock/>`); a server without the protocol is
//! `FeatureNotFound`, a bad JID `InvalidFormat`. 0.9 asks the server for the list
//! each time; perchd answers from its copy, which the server's pushes keep current.

use perch_actions::NoArgs;
use perch_actions::blocking::{Block, BlockArgs, List, Unblock, UnblockArgs};

use crate::libervia::context::Lib;
use crate::libervia::errors::LibError;
use crate::libervia::reply::{Answer, out, unit};

use super::typed;

/// 0.9's exception for a feature the server lacks.
const FEATURE_NOT_FOUND: &str = "sat.core.exceptions.FeatureNotFound";

/// A server without XEP-0191 as 0.9 says it; other errors as they are.
fn lacking(e: LibError) -> LibError {
    if e.body().contains("'feature-not-implemented'") {
        LibError::exc(FEATURE_NOT_FOUND, "urn:xmpp:blocking", "")
    } else {
        e
    }
}

/// `blockingList(profile_key)`: the blocked JIDs.
pub async fn list(lib: &Lib, key: String) -> Answer {
    let p = lib.profile(&key).await?;
    let jids = typed::<List>(lib, &p, NoArgs {}).await.map_err(lacking)?;
    out(jids)
}

/// `blockingBlock(entities, profile_key)`.
pub async fn block(lib: &Lib, (jids, key): (Vec<String>, String)) -> Answer {
    let p = lib.profile(&key).await?;
    let args = BlockArgs { jids, report: None };
    typed::<Block>(lib, &p, args).await.map_err(lacking)?;
    unit()
}

/// `blockingUnblock(entities, profile_key)`: none unblocks every JID.
pub async fn unblock(lib: &Lib, (jids, key): (Vec<String>, String)) -> Answer {
    let p = lib.profile(&key).await?;
    typed::<Unblock>(lib, &p, UnblockArgs { jids })
        .await
        .map_err(lacking)?;
    unit()
}
