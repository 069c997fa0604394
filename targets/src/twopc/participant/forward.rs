//! Client operations on a participant: forwarded to the coordinator.

use super::Participant;
use crate::node::Service;
use crate::protocol::{NodeStatus, Op, Reply};
use crate::rpc::RpcError;
use crate::twopc::messages::{Answer, Msg};
use std::time::Duration;

/// Client operations sent to a participant are forwarded to the coordinator. A forward that
/// gets no answer is `unknown` for a transfer (the coordinator may have run it) and `fail` for a
/// read (which changes nothing).
impl Service for Participant {
    async fn handle(&self, op: Op) -> Reply {
        if op == Op::Status {
            // Answered locally: a controller asks every node, the coordinator need not be up.
            return NodeStatus {
                id: self.id.clone(),
                role: "participant".into(),
                leader: Some(self.coordinator.id.clone()),
                term: None,
            }
            .reply();
        }
        if !matches!(op, Op::Transfer { .. } | Op::ReadAll) {
            return Reply::fail(format!(
                "twopc serves transfer and read-all, not {}",
                op.name()
            ));
        }
        let is_read = op == Op::ReadAll;
        let limit = self.request_timeout + Duration::from_secs(1);
        match self
            .coordinator
            .call::<_, Answer>(&Msg::Client { op }, limit)
            .await
        {
            Ok(Answer::Client { reply }) => reply,
            Ok(other) => Reply::fail(format!("coordinator refused the operation: {other:?}")),
            Err(RpcError::Io(_, e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                Reply::fail(format!(
                    "cannot reach coordinator {}: {e}",
                    self.coordinator.id
                ))
            }
            Err(e) if is_read => Reply::fail(format!("forwarding to the coordinator: {e}")),
            Err(e) => Reply::unknown(format!("forwarding to the coordinator: {e}")),
        }
    }
}
