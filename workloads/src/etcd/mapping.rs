//! The pure half of the etcd client: which etcd request an operation becomes, how values are
//! stored, and what an error proves about whether a write happened. No I/O here.

use std::cmp::Ordering;
use std::error::Error as StdError;

use serde_json::Value;
use tonic::Code;

use crate::generator::OpTemplate;
use crate::workload::WorkloadKind;

/// What one operation asks of etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Range get of one key; a missing key reads as `null`.
    Get { key: Vec<u8> },
    /// Put of a JSON-encoded value.
    Put { key: Vec<u8>, value: Vec<u8> },
    /// Writing `null` deletes the key, so that `null` and "missing" are one state.
    Delete { key: Vec<u8> },
    /// Txn: if the key holds `from` (`None`: the key is missing), set it to `to` (`None`:
    /// delete it).
    Cas {
        key: Vec<u8>,
        from: Option<Vec<u8>>,
        to: Option<Vec<u8>>,
    },
    /// Range over every key starting with `prefix`: the values, decoded and sorted.
    ReadAll { prefix: Vec<u8> },
}

impl Plan {
    /// Whether running it can change anything (a failed read proves nothing happened; a failed
    /// write may have happened).
    pub(crate) fn writes(&self) -> bool {
        !matches!(self, Plan::Get { .. } | Plan::ReadAll { .. })
    }
}

/// The etcd key of register `key` N: `<prefix>rN`.
pub(crate) fn register_key(prefix: &str, key: Option<&Value>) -> Result<Vec<u8>, String> {
    match key {
        Some(Value::Number(n)) if n.is_u64() => Ok(format!("{prefix}r{n}").into_bytes()),
        other => Err(format!(
            "a register operation needs an integer key, not {other:?}"
        )),
    }
}

/// Where the set's elements live: one key per element, `<prefix>set/<element as JSON>`.
pub(crate) fn set_prefix(prefix: &str) -> Vec<u8> {
    format!("{prefix}set/").into_bytes()
}

/// How a value is stored: its JSON text; `None` for `null`, which is stored as no key at all.
pub(crate) fn encode(value: &Value) -> Option<Vec<u8>> {
    (!value.is_null()).then(|| value.to_string().into_bytes())
}

/// A stored value as read: its JSON, or (written by something else) the bytes as a string, so
/// that the checker sees what was really there.
pub(crate) fn decode(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// The request `op` of workload `kind` becomes, or why it cannot be run (nothing is sent).
pub(crate) fn plan(kind: WorkloadKind, prefix: &str, op: &OpTemplate) -> Result<Plan, String> {
    let no_such_op = || format!("the {kind} workload has no operation {:?}", op.f);
    match kind {
        WorkloadKind::Register => {
            let key = register_key(prefix, op.key.as_ref())?;
            match op.f.as_str() {
                "read" => Ok(Plan::Get { key }),
                "write" => Ok(match encode(&op.value) {
                    Some(value) => Plan::Put { key, value },
                    None => Plan::Delete { key },
                }),
                "cas" => match op.value.as_array().map(Vec::as_slice) {
                    Some([from, to]) => Ok(Plan::Cas {
                        key,
                        from: encode(from),
                        to: encode(to),
                    }),
                    _ => Err(format!("cas needs [from, to], not {}", op.value)),
                },
                _ => Err(no_such_op()),
            }
        }
        WorkloadKind::Set => match op.f.as_str() {
            "add" => match encode(&op.value) {
                Some(value) => {
                    let mut key = set_prefix(prefix);
                    key.extend_from_slice(&value);
                    Ok(Plan::Put { key, value })
                }
                None => Err("a set cannot hold null".into()),
            },
            "read" => Ok(Plan::ReadAll {
                prefix: set_prefix(prefix),
            }),
            _ => Err(no_such_op()),
        },
        WorkloadKind::Bank | WorkloadKind::Counter | WorkloadKind::Append | WorkloadKind::Wr => {
            Err(unsupported(kind))
        }
    }
}

/// Why the etcd client refuses `kind`.
pub(crate) fn unsupported(kind: WorkloadKind) -> String {
    format!(
        "the etcd client runs the register and set workloads, not {kind}; \
         use the register or set workload with etcd"
    )
}

/// Set elements in a stable order: numbers by value, then anything else by its JSON text.
pub(crate) fn sort_elements(elements: &mut [Value]) {
    fn order(a: &Value, b: &Value) -> Ordering {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
                (Some(x), Some(y)) => x.cmp(&y),
                _ => match (x.as_u64(), y.as_u64()) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    _ => {
                        let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                        x.total_cmp(&y)
                    }
                },
            },
            (Value::Number(_), _) => Ordering::Less,
            (_, Value::Number(_)) => Ordering::Greater,
            _ => a.to_string().cmp(&b.to_string()),
        }
    }
    elements.sort_by(order);
}

/// An endpoint as tonic wants it: with a scheme (`10.0.0.2:2379` → `http://10.0.0.2:2379`).
pub(crate) fn normalize_endpoint(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_string()
    } else {
        format!("http://{endpoint}")
    }
}

/// What an error proves about the request that got it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proof {
    /// It never reached etcd (the connection was refused) or etcd refused it before proposing
    /// it (invalid, too many requests, no space, ...): it did not happen.
    NotApplied,
    /// Anything else: it may have been applied (a timeout, a connection lost after sending, the
    /// server's "request timed out" or "leader changed").
    Unknown,
}

/// The gRPC codes with which etcd rejects a request before it is proposed to raft.
fn rejected_before_proposal(code: Code, message: &str) -> bool {
    match code {
        Code::InvalidArgument
        | Code::FailedPrecondition
        | Code::PermissionDenied
        | Code::Unauthenticated
        | Code::ResourceExhausted
        | Code::OutOfRange
        | Code::NotFound
        | Code::AlreadyExists
        | Code::Unimplemented => true,
        // etcd checks the cluster's health before it proposes; "no leader", "request timed
        // out", "leader changed" and the transport's own Unavailable prove nothing.
        Code::Unavailable => message.contains("unhealthy cluster"),
        _ => false,
    }
}

/// Whether the error or one of its causes is a refused TCP connection: the request was never
/// sent.
fn connection_refused(error: &(dyn StdError + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        cause = e.source();
    }
    false
}

/// What `error`, the answer to a request, proves.
pub(crate) fn proof(error: &etcd_client::Error) -> Proof {
    use etcd_client::Error as E;
    let not_applied = match error {
        E::GRpcStatus(status) => {
            rejected_before_proposal(status.code(), status.message()) || connection_refused(status)
        }
        E::TransportError(e) => connection_refused(e),
        E::IoError(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        E::InvalidArgs(_) | E::InvalidUri(_) | E::InvalidMetadataValue(_) => true,
        _ => false,
    };
    if not_applied {
        Proof::NotApplied
    } else {
        Proof::Unknown
    }
}

/// `head`, then each cause of `error` that it does not already say.
pub(crate) fn with_causes(head: String, error: &(dyn StdError + 'static)) -> String {
    let mut text = head;
    let mut cause = error.source();
    while let Some(e) = cause {
        let said = e.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = e.source();
    }
    text
}

/// A short description of an etcd error for the history: the gRPC code and etcd's message,
/// with the causes.
pub(crate) fn describe(error: &etcd_client::Error) -> String {
    match error {
        etcd_client::Error::GRpcStatus(status) => {
            with_causes(format!("{:?}: {}", status.code(), status.message()), status)
        }
        other => with_causes(other.to_string(), other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tonic::Status;

    fn reg(f: &str, value: Value) -> OpTemplate {
        OpTemplate::new(f, value).with_key(7)
    }

    #[test]
    fn register_ops_map_to_keys_under_the_prefix() {
        let p = |op| plan(WorkloadKind::Register, "", &op).unwrap();
        assert_eq!(
            p(reg("read", Value::Null)),
            Plan::Get {
                key: b"r7".to_vec()
            }
        );
        assert_eq!(
            p(reg("write", json!(3))),
            Plan::Put {
                key: b"r7".to_vec(),
                value: b"3".to_vec()
            }
        );
        assert_eq!(
            p(reg("write", Value::Null)),
            Plan::Delete {
                key: b"r7".to_vec()
            }
        );
        assert_eq!(
            p(reg("cas", json!([1, 2]))),
            Plan::Cas {
                key: b"r7".to_vec(),
                from: Some(b"1".to_vec()),
                to: Some(b"2".to_vec())
            }
        );
        assert_eq!(
            p(reg("cas", json!([null, 4]))),
            Plan::Cas {
                key: b"r7".to_vec(),
                from: None,
                to: Some(b"4".to_vec())
            }
        );
        let prefixed = plan(WorkloadKind::Register, "t1/", &reg("read", Value::Null)).unwrap();
        assert_eq!(
            prefixed,
            Plan::Get {
                key: b"t1/r7".to_vec()
            }
        );
    }

    #[test]
    fn malformed_register_ops_are_refused_before_sending() {
        let err = |op| plan(WorkloadKind::Register, "", &op).unwrap_err();
        assert!(err(OpTemplate::new("read", Value::Null)).contains("integer key"));
        assert!(err(OpTemplate::new("read", Value::Null).with_key("a")).contains("integer key"));
        assert!(err(reg("cas", json!(3))).contains("[from, to]"));
        assert!(err(reg("cas", json!([1, 2, 3]))).contains("[from, to]"));
        assert!(err(reg("add", json!(1))).contains("no operation \"add\""));
    }

    #[test]
    fn set_ops_use_one_key_per_element() {
        let p = |op| plan(WorkloadKind::Set, "x/", &op);
        assert_eq!(
            p(OpTemplate::new("add", json!(42))).unwrap(),
            Plan::Put {
                key: b"x/set/42".to_vec(),
                value: b"42".to_vec()
            }
        );
        assert_eq!(
            p(OpTemplate::new("read", Value::Null)).unwrap(),
            Plan::ReadAll {
                prefix: b"x/set/".to_vec()
            }
        );
        assert!(p(OpTemplate::new("add", Value::Null)).is_err());
        assert!(p(OpTemplate::new("cas", json!([1, 2]))).is_err());
    }

    #[test]
    fn bank_and_counter_are_refused_with_the_alternatives() {
        for kind in [WorkloadKind::Bank, WorkloadKind::Counter] {
            let err = plan(kind, "", &OpTemplate::new("read", Value::Null)).unwrap_err();
            assert!(
                err.contains(kind.name()) && err.contains("register or set"),
                "{err}"
            );
        }
    }

    #[test]
    fn only_reads_do_not_write() {
        assert!(!Plan::Get { key: vec![] }.writes());
        assert!(!Plan::ReadAll { prefix: vec![] }.writes());
        assert!(Plan::Delete { key: vec![] }.writes());
        assert!(Plan::Put {
            key: vec![],
            value: vec![]
        }
        .writes());
        assert!(Plan::Cas {
            key: vec![],
            from: None,
            to: None
        }
        .writes());
    }

    #[test]
    fn values_round_trip_and_foreign_bytes_read_as_strings() {
        for v in [
            json!(0),
            json!(-3),
            json!("a"),
            json!([1, 2]),
            json!({"k": 1}),
        ] {
            assert_eq!(decode(&encode(&v).unwrap()), v);
        }
        assert_eq!(encode(&Value::Null), None);
        assert_eq!(decode(b"not json"), json!("not json"));
    }

    #[test]
    fn elements_sort_numerically_then_by_text() {
        let mut v = vec![
            json!(10),
            json!("b"),
            json!(2),
            json!(-1),
            json!("a"),
            json!(2.5),
        ];
        sort_elements(&mut v);
        assert_eq!(
            v,
            vec![
                json!(-1),
                json!(2),
                json!(2.5),
                json!(10),
                json!("a"),
                json!("b")
            ]
        );
        let mut big = vec![json!(u64::MAX), json!(1)];
        sort_elements(&mut big);
        assert_eq!(big, vec![json!(1), json!(u64::MAX)]);
    }

    #[test]
    fn endpoints_get_a_scheme() {
        assert_eq!(normalize_endpoint("10.0.0.2:2379"), "http://10.0.0.2:2379");
        assert_eq!(normalize_endpoint("http://a:1"), "http://a:1");
        assert_eq!(normalize_endpoint("https://a:1"), "https://a:1");
    }

    #[test]
    fn only_errors_that_prove_nothing_was_applied_are_definite() {
        let status = |code, msg: &str| etcd_client::Error::GRpcStatus(Status::new(code, msg));
        for (code, msg) in [
            (Code::ResourceExhausted, "etcdserver: too many requests"),
            (
                Code::ResourceExhausted,
                "etcdserver: mvcc: database space exceeded",
            ),
            (Code::InvalidArgument, "etcdserver: request is too large"),
            (Code::Unavailable, "etcdserver: unhealthy cluster"),
            (Code::PermissionDenied, "etcdserver: permission denied"),
        ] {
            assert_eq!(proof(&status(code, msg)), Proof::NotApplied, "{msg}");
        }
        for (code, msg) in [
            (Code::Unavailable, "etcdserver: request timed out"),
            (Code::Unavailable, "etcdserver: leader changed"),
            (Code::Unavailable, "etcdserver: no leader"),
            (Code::Unavailable, "error trying to connect"),
            (Code::Unknown, "transport error"),
            (Code::DeadlineExceeded, "context deadline exceeded"),
            (Code::Cancelled, "operation was canceled"),
            (Code::Internal, "h2 protocol error"),
        ] {
            assert_eq!(proof(&status(code, msg)), Proof::Unknown, "{msg}");
        }
        // A refused connection somewhere in the causes: nothing was sent.
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let wrapped = Status::from_error(Box::new(refused));
        assert_eq!(
            proof(&etcd_client::Error::GRpcStatus(wrapped)),
            Proof::NotApplied
        );
        let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert_eq!(proof(&etcd_client::Error::IoError(reset)), Proof::Unknown);
    }

    #[test]
    fn descriptions_name_the_code_and_message() {
        let e = etcd_client::Error::GRpcStatus(Status::new(
            Code::Unavailable,
            "etcdserver: request timed out",
        ));
        assert_eq!(describe(&e), "Unavailable: etcdserver: request timed out");
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = etcd_client::Error::GRpcStatus(Status::from_error(Box::new(refused)));
        assert_eq!(describe(&e), "Unknown: refused");
        let io = std::io::Error::other("boom");
        assert_eq!(
            with_causes("lost".into(), &etcd_client::Error::IoError(io)),
            "lost"
        );
    }
}
