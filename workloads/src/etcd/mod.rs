//! A built-in client for etcd v3 (gRPC, through the `etcd-client` crate) that runs the register
//! and set workloads against one etcd member, the way Jepsen's etcd test does.
//!
//! - **register**: key N is the etcd key `<prefix>rN`. `read` is a Range get (the value is
//!   JSON; a missing key reads as `null`), `write v` a Put of v's JSON (`write null` deletes the
//!   key, so `null` and "missing" are one state), `cas [from, to]` a Txn that puts `to` if the
//!   key holds `from` (`from` null: if the key does not exist, `version == 0`); a Txn whose
//!   compare failed changed nothing and is a definite `fail`.
//! - **set**: every element is its own key, `<prefix>set/<element>`, holding the element; `add`
//!   is one Put, `read` one Range over the prefix, its values sorted. A single Range is served at
//!   one revision, so a read is an atomic snapshot of the set, as a one-key set would be, but an
//!   add needs no read-modify-write: no cas loop that loses to concurrent adds, and no value that
//!   grows with the set (a one-key set rewrites the whole set on every add and hits etcd's
//!   request size limit). The price: the same element added twice is one key, so duplicates
//!   cannot show (the set workload adds every element once).
//! - **reads** ([`EtcdReads`]): `linearizable` (etcd's default: a quorum confirms the member is
//!   current) or `serializable` (the member answers from its own state without a quorum; it can
//!   be stale, which is what a test of stale reads needs). Only reads use it; a cas is a Txn and
//!   always linearizable.
//!
//! Outcomes: an operation ends by its timeout as a whole (the connection, then the request).
//! `ok` only on etcd's answer. A read that failed or timed out changed nothing: `fail`. A write
//! is `fail` only when the error proves it was not applied (the connection could not be made or
//! was refused, or etcd rejected it before proposing it: invalid, too many requests, no space,
//! unhealthy cluster); anything else (a timeout, a connection lost after sending, "request timed
//! out", "leader changed", "no leader") is `info`. After any error the connection is dropped and
//! the next operation connects again.

mod mapping;

use std::time::Duration;

use etcd_client::{Compare, CompareOp, GetOptions, KvClient, Txn, TxnOp};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use crate::client::{Client, ClientReply, Refuse};
use crate::generator::OpTemplate;
use crate::workload::WorkloadKind;
use mapping::{Plan, Proof};

/// Largest response a client accepts (a set read of every element); gRPC's default is 4 MiB.
const MAX_RESPONSE_BYTES: usize = 256 << 20;

/// How reads are served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EtcdReads {
    /// etcd's default: the member confirms with a quorum that it is current before answering.
    #[default]
    Linearizable,
    /// etcd's `serializable` range option: the member answers from its local state without a
    /// quorum, so a read can be stale (on a member cut off from the leader, for one).
    Serializable,
}

/// Settings of the etcd client. Missing fields take the defaults, unknown ones are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EtcdOptions {
    /// How reads (register reads and set reads) are served.
    pub reads: EtcdReads,
    /// Put in front of every key the client uses (`""`: register N is `rN`, the set is under
    /// `set/`), so that tests can share a cluster.
    pub prefix: String,
}

/// Whether the etcd client can run `kind`: register and set, not bank or counter.
pub fn etcd_supports(kind: WorkloadKind) -> Result<(), String> {
    match kind {
        WorkloadKind::Register | WorkloadKind::Set => Ok(()),
        WorkloadKind::Bank | WorkloadKind::Counter | WorkloadKind::Append | WorkloadKind::Wr => {
            Err(mapping::unsupported(kind))
        }
    }
}

/// A client of one process running `kind` against the etcd member at `endpoint`
/// (`http://10.0.0.2:2379`; without a scheme, `http://` is assumed). It connects on first use
/// and keeps the connection until an error. For a workload it cannot run (see
/// [`etcd_supports`]), every operation fails with the reason, without contacting etcd.
pub fn etcd_client(kind: WorkloadKind, endpoint: String, options: &EtcdOptions) -> Box<dyn Client> {
    if let Err(why) = etcd_supports(kind) {
        return Box::new(Refuse { why });
    }
    Box::new(EtcdClient {
        kind,
        endpoint: mapping::normalize_endpoint(&endpoint),
        options: options.clone(),
        kv: None,
    })
}

/// The register or set workload against one etcd member.
struct EtcdClient {
    kind: WorkloadKind,
    endpoint: String,
    options: EtcdOptions,
    /// The connection, once made; dropped after any error.
    kv: Option<KvClient>,
}

impl EtcdClient {
    /// The connection, made now if there is none. Its errors are all "nothing was sent".
    async fn connect(&mut self, deadline: Instant) -> Result<KvClient, String> {
        if let Some(kv) = &self.kv {
            return Ok(kv.clone());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "out of time before connecting to {}",
                self.endpoint
            ));
        }
        let endpoint = tonic::transport::Endpoint::from_shared(self.endpoint.clone())
            .map_err(|e| format!("bad etcd endpoint {:?}: {e}", self.endpoint))?
            .connect_timeout(left);
        let connecting = async {
            let channel = endpoint.connect().await.map_err(|e| {
                mapping::with_causes(format!("connecting to {}: {e}", self.endpoint), &e)
            })?;
            let client =
                etcd_client::Client::from_channel(etcd_client::Channel::Tonic(channel), None)
                    .await
                    .map_err(|e| format!("connecting to {}: {e}", self.endpoint))?;
            Ok::<_, String>(
                client
                    .kv_client()
                    .max_decoding_message_size(MAX_RESPONSE_BYTES),
            )
        };
        let kv = match tokio::time::timeout_at(deadline, connecting).await {
            Ok(result) => result?,
            Err(_) => return Err(format!("could not connect to {} in time", self.endpoint)),
        };
        self.kv = Some(kv.clone());
        Ok(kv)
    }

    fn get_options(&self) -> GetOptions {
        match self.options.reads {
            EtcdReads::Linearizable => GetOptions::new(),
            EtcdReads::Serializable => GetOptions::new().with_serializable(),
        }
    }

    /// Sends `plan` on `kv`; `Ok` is etcd's answer as the operation's reply.
    async fn send(&self, kv: &mut KvClient, plan: Plan) -> Result<ClientReply, etcd_client::Error> {
        Ok(match plan {
            Plan::Get { key } => {
                let resp = kv.get(key, Some(self.get_options())).await?;
                let value = resp
                    .kvs()
                    .first()
                    .map_or(Value::Null, |kv| mapping::decode(kv.value()));
                ClientReply::ok(value)
            }
            Plan::ReadAll { prefix } => {
                let resp = kv
                    .get(prefix, Some(self.get_options().with_prefix()))
                    .await?;
                let mut elements: Vec<Value> = resp
                    .kvs()
                    .iter()
                    .map(|kv| mapping::decode(kv.value()))
                    .collect();
                mapping::sort_elements(&mut elements);
                ClientReply::ok(Value::Array(elements))
            }
            Plan::Put { key, value } => {
                kv.put(key, value, None).await?;
                ClientReply::ok(Value::Null)
            }
            Plan::Delete { key } => {
                kv.delete(key, None).await?;
                ClientReply::ok(Value::Null)
            }
            Plan::Cas { key, from, to } => {
                let compare = match from {
                    Some(value) => Compare::value(key.clone(), CompareOp::Equal, value),
                    None => Compare::version(key.clone(), CompareOp::Equal, 0),
                };
                let then = match to {
                    Some(value) => vec![TxnOp::put(key, value, None)],
                    None => vec![TxnOp::delete(key, None)],
                };
                let resp = kv
                    .txn(Txn::new().when(vec![compare]).and_then(then))
                    .await?;
                if resp.succeeded() {
                    ClientReply::ok(Value::Null)
                } else {
                    ClientReply::fail(
                        "compare failed: the register did not hold the expected value",
                    )
                }
            }
        })
    }
}

#[async_trait::async_trait]
impl Client for EtcdClient {
    async fn invoke(&mut self, op: &OpTemplate, timeout: Duration) -> ClientReply {
        let deadline = Instant::now() + timeout;
        let plan = match mapping::plan(self.kind, &self.options.prefix, op) {
            Ok(plan) => plan,
            Err(e) => return ClientReply::fail(e),
        };
        let writes = plan.writes();
        let mut kv = match self.connect(deadline).await {
            Ok(kv) => kv,
            Err(e) => return ClientReply::fail(e),
        };
        match tokio::time::timeout_at(deadline, self.send(&mut kv, plan)).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                self.kv = None;
                let what = mapping::describe(&e);
                match (writes, mapping::proof(&e)) {
                    (false, _) | (true, Proof::NotApplied) => ClientReply::fail(what),
                    (true, Proof::Unknown) => ClientReply::info(what),
                }
            }
            Err(_) => {
                self.kv = None;
                let what = format!("no answer from {} within {timeout:?}", self.endpoint);
                if writes {
                    ClientReply::info(what)
                } else {
                    ClientReply::fail(what)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::Outcome;
    use serde_json::json;

    #[test]
    fn options_default_to_linearizable_reads_and_refuse_typos() {
        let o: EtcdOptions = serde_json::from_str("{}").unwrap();
        assert_eq!(o, EtcdOptions::default());
        assert_eq!(o.reads, EtcdReads::Linearizable);
        assert_eq!(o.prefix, "");
        let s: EtcdOptions =
            serde_json::from_value(json!({"reads": "serializable", "prefix": "t/"})).unwrap();
        assert_eq!(s.reads, EtcdReads::Serializable);
        assert_eq!(s.prefix, "t/");
        assert!(serde_json::from_value::<EtcdOptions>(json!({"read": "serializable"})).is_err());
        assert!(serde_json::from_value::<EtcdOptions>(json!({"reads": "stale"})).is_err());
        assert_eq!(
            serde_json::to_value(EtcdReads::Serializable).unwrap(),
            json!("serializable")
        );
    }

    #[test]
    fn supports_register_and_set_only() {
        for kind in WorkloadKind::ALL {
            let supported = matches!(kind, WorkloadKind::Register | WorkloadKind::Set);
            assert_eq!(etcd_supports(kind).is_ok(), supported, "{kind}");
        }
    }

    #[tokio::test]
    async fn refused_workloads_fail_without_contacting_anything() {
        for kind in [WorkloadKind::Bank, WorkloadKind::Counter] {
            // Nothing listens on port 1, and nothing is tried: the reply is the refusal.
            let mut c = etcd_client(kind, "127.0.0.1:1".into(), &EtcdOptions::default());
            let reply = c
                .invoke(
                    &OpTemplate::new("read", Value::Null),
                    Duration::from_secs(1),
                )
                .await;
            assert_eq!(reply.outcome, Outcome::Fail);
            assert_eq!(reply.error, etcd_supports(kind).err());
        }
    }

    #[tokio::test]
    async fn malformed_ops_fail_without_connecting() {
        let mut c = etcd_client(
            WorkloadKind::Register,
            "127.0.0.1:1".into(),
            &EtcdOptions::default(),
        );
        let reply = c
            .invoke(&OpTemplate::new("write", json!(1)), Duration::from_secs(1))
            .await;
        assert_eq!(reply.outcome, Outcome::Fail);
        assert!(reply.error.unwrap().contains("integer key"));
    }

    #[tokio::test]
    async fn a_spent_timeout_fails_before_connecting() {
        let mut c = etcd_client(
            WorkloadKind::Register,
            "127.0.0.1:1".into(),
            &EtcdOptions::default(),
        );
        let op = OpTemplate::new("write", json!(1)).with_key(0);
        let reply = c.invoke(&op, Duration::ZERO).await;
        assert_eq!(reply.outcome, Outcome::Fail);
        assert!(reply
            .error
            .unwrap()
            .contains("out of time before connecting"));
    }
}
