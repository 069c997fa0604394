//! `echo`: one node, an in-memory map, every answer at once (get, put, cas; a missing key reads
//! `null`, and a put of `null` removes the key, as in raft-kv; txn). Linearizable by a mutex.
//!
//! It replicates nothing and stores nothing, so a run against it measures the harness's own
//! cost per operation (client, history, checking) with the system under test taken out.
//! `--peers` is ignored; `--peer-listen` is bound only so a port clash shows up as in the
//! other modes. `transfer` and `read-all` get `fail`.

use crate::node::{self, NodeArgs, Service};
use crate::protocol::{Op, Reply};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub node: NodeArgs,
}

/// The map behind the node.
#[derive(Debug, Default)]
pub struct Echo {
    map: Mutex<HashMap<String, Value>>,
}

impl Echo {
    /// Answers one operation (no await inside: the lock is never held across a yield).
    pub fn apply(&self, op: Op) -> Reply {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match op {
            Op::Get { key } => Reply::ok(map.get(&key).cloned().unwrap_or(Value::Null)),
            Op::Put { key, value } => {
                set(&mut map, key, value);
                Reply::ok_empty()
            }
            Op::Cas { key, from, to } => {
                let current = map.get(&key).unwrap_or(&Value::Null);
                if *current == from {
                    set(&mut map, key, to);
                    Reply::ok_empty()
                } else {
                    Reply::fail(format!("compare failed: value is {current}"))
                }
            }
            Op::Txn { mops } => match crate::txn::apply(&mut map, &mops) {
                Ok(done) => Reply::ok(serde_json::json!(done)),
                Err(e) => Reply::fail(e),
            },
            other => Reply::fail(format!(
                "echo serves get, put, cas and txn, not {}",
                other.name()
            )),
        }
    }
}

fn set(map: &mut HashMap<String, Value>, key: String, value: Value) {
    if value.is_null() {
        map.remove(&key);
    } else {
        map.insert(key, value);
    }
}

impl Service for Echo {
    async fn handle(&self, op: Op) -> Reply {
        self.apply(op)
    }
}

/// Runs the echo node until SIGTERM or SIGINT.
pub async fn run(args: Args) -> anyhow::Result<()> {
    args.node.prepare("echo", &[])?;
    let result = serve(&args.node).await;
    args.node.finish();
    result
}

async fn serve(args: &NodeArgs) -> anyhow::Result<()> {
    let clients = node::bind(&args.listen, "--listen").await?;
    let _peers = node::bind(&args.peer_listen, "--peer-listen").await?;
    tracing::info!(id = %args.id, listen = %args.listen, "echo node up");
    let serving = tokio::spawn(node::serve_clients(clients, Arc::new(Echo::default())));
    node::shutdown_signal().await;
    serving.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn get_put_cas_like_raft_kv() {
        let echo = Echo::default();
        let get = || echo.apply(Op::Get { key: "k".into() });
        let cas = |from: Value, to: Value| {
            echo.apply(Op::Cas {
                key: "k".into(),
                from,
                to,
            })
        };
        assert_eq!(get(), Reply::ok(Value::Null));
        assert_eq!(cas(json!(null), json!(1)), Reply::ok_empty());
        assert!(matches!(cas(json!(2), json!(3)), Reply::Fail { .. }));
        assert_eq!(get(), Reply::ok(json!(1)));
        let put = echo.apply(Op::Put {
            key: "k".into(),
            value: Value::Null,
        });
        assert_eq!(put, Reply::ok_empty());
        assert_eq!(get(), Reply::ok(Value::Null));
        assert!(matches!(echo.apply(Op::ReadAll), Reply::Fail { .. }));
    }
}
