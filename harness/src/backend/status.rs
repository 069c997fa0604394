//! Asking nodes of a bundled target who they are, through the client protocol's `status` op:
//! which of them lead (for faults aimed at primaries) and whether one is up yet.

use nuclei::control::NodeId;
use std::time::Duration;
use targets::client::Client;
use targets::protocol::{NodeStatus, Op, Reply};

/// How long each node has to answer a status request.
pub const STATUS_TIMEOUT: Duration = Duration::from_millis(500);

/// The node's status, or why there is none.
pub async fn status(addr: &str, timeout: Duration) -> Result<NodeStatus, String> {
    match Client::new(addr).call(Op::Status, timeout).await {
        Reply::Ok { value } => NodeStatus::from_value(&value).map_err(|e| e.to_string()),
        Reply::Fail { error } => Err(error),
        Reply::Unknown { error } => Err(error),
    }
}

/// The nodes at `addrs` that say they lead (a Raft leader, the 2PC coordinator), sorted; nodes
/// that do not answer in time are left out.
pub async fn primaries_at(addrs: Vec<String>) -> Vec<NodeId> {
    let mut asks = tokio::task::JoinSet::new();
    for addr in addrs {
        asks.spawn(async move { status(&addr, STATUS_TIMEOUT).await.ok() });
    }
    let mut primaries = Vec::new();
    while let Some(answer) = asks.join_next().await {
        if let Ok(Some(status)) = answer {
            if status.is_primary() {
                primaries.push(status.id);
            }
        }
    }
    primaries.sort();
    primaries
}
