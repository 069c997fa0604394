//! The pure half of the PostgreSQL client: which SQL a transaction's micro-ops become, the
//! tables they use, how a completed transaction is written back, and what an error at COMMIT
//! proves. No I/O here.

use checkers::txn::TxnWorkload;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::generator::OpTemplate;

/// The isolation level every transaction asks for (`BEGIN ISOLATION LEVEL ...`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PgIsolation {
    #[default]
    Serializable,
    /// PostgreSQL's repeatable read is snapshot isolation.
    RepeatableRead,
    ReadCommitted,
}

impl PgIsolation {
    pub const ALL: [PgIsolation; 3] = [
        PgIsolation::Serializable,
        PgIsolation::RepeatableRead,
        PgIsolation::ReadCommitted,
    ];

    /// The option's spelling: `serializable`, `repeatable-read`, `read-committed`.
    pub fn name(self) -> &'static str {
        match self {
            PgIsolation::Serializable => "serializable",
            PgIsolation::RepeatableRead => "repeatable-read",
            PgIsolation::ReadCommitted => "read-committed",
        }
    }

    /// The statement that opens a transaction at this level.
    pub fn begin(self) -> &'static str {
        match self {
            PgIsolation::Serializable => "BEGIN ISOLATION LEVEL SERIALIZABLE",
            PgIsolation::RepeatableRead => "BEGIN ISOLATION LEVEL REPEATABLE READ",
            PgIsolation::ReadCommitted => "BEGIN ISOLATION LEVEL READ COMMITTED",
        }
    }
}

impl std::str::FromStr for PgIsolation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        PgIsolation::ALL
            .into_iter()
            .find(|i| i.name() == s)
            .ok_or_else(|| {
                format!(
                    "no isolation level {s:?}; choose serializable, repeatable-read or \
                     read-committed"
                )
            })
    }
}

/// One micro-op, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Append { key: i64, value: i64 },
    Write { key: i64, value: i64 },
    Read { key: i64 },
}

/// The micro-ops of `op` (`f = "txn"`, value a list of `[f, k, v]`), or why it cannot be run:
/// nothing is sent then.
pub(crate) fn plan(workload: TxnWorkload, op: &OpTemplate) -> Result<Vec<Step>, String> {
    if op.f != "txn" {
        return Err(format!(
            "the PostgreSQL client runs transactions (f = \"txn\"), not {:?}",
            op.f
        ));
    }
    let Some(mops) = op.value.as_array() else {
        return Err(format!("a txn needs a list of micro-ops, not {}", op.value));
    };
    mops.iter().map(|mop| step(workload, mop)).collect()
}

fn step(workload: TxnWorkload, mop: &Value) -> Result<Step, String> {
    let bad = |why: &str| format!("micro-op {mop}: {why}");
    let Some([f, key, value]) = mop.as_array().map(Vec::as_slice) else {
        return Err(bad("not [f, key, value]"));
    };
    let key = key
        .as_i64()
        .ok_or_else(|| bad("the key must be an integer"))?;
    let value_int = || {
        value
            .as_i64()
            .ok_or_else(|| bad("the value must be an integer"))
    };
    match (workload, f.as_str()) {
        (_, Some("r")) => Ok(Step::Read { key }),
        (TxnWorkload::ListAppend, Some("append")) => Ok(Step::Append {
            key,
            value: value_int()?,
        }),
        (TxnWorkload::RwRegister, Some("w")) => Ok(Step::Write {
            key,
            value: value_int()?,
        }),
        (TxnWorkload::ListAppend, _) => Err(bad("list-append has only append and r")),
        (TxnWorkload::RwRegister, _) => Err(bad("rw-register has only w and r")),
    }
}

/// The table a workload uses: `<prefix>txn_lists` or `<prefix>txn_registers`. The prefix must
/// keep it a plain lower-case identifier, since it is put into SQL as it is.
pub(crate) fn table(workload: TxnWorkload, prefix: &str) -> Result<String, String> {
    let plain = (prefix.chars()).all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !prefix.starts_with(|c: char| c.is_ascii_digit());
    if !plain {
        return Err(format!(
            "table prefix {prefix:?}: use lower-case letters, digits and '_', not starting with \
             a digit"
        ));
    }
    Ok(match workload {
        TxnWorkload::ListAppend => format!("{prefix}txn_lists"),
        TxnWorkload::RwRegister => format!("{prefix}txn_registers"),
    })
}

/// Creates the table if it is missing. The advisory lock serializes clients that set up at the
/// same moment: concurrent `CREATE TABLE IF NOT EXISTS` can otherwise fail on the catalog's
/// unique index.
pub(crate) fn schema(workload: TxnWorkload, table: &str) -> String {
    let columns = match workload {
        TxnWorkload::ListAppend => "k bigint PRIMARY KEY, vals bigint[] NOT NULL",
        TxnWorkload::RwRegister => "k bigint PRIMARY KEY, v bigint NOT NULL",
    };
    format!(
        "BEGIN; SELECT pg_advisory_xact_lock(7946150); \
         CREATE TABLE IF NOT EXISTS {table} ({columns}); COMMIT"
    )
}

/// The statement that writes (appends to a list, or sets a register), with `$1` the key and
/// `$2` the value: one upsert, so a first append to a key needs no read first.
pub(crate) fn write_sql(workload: TxnWorkload, table: &str) -> String {
    match workload {
        TxnWorkload::ListAppend => format!(
            "INSERT INTO {table} AS t (k, vals) VALUES ($1, ARRAY[$2::bigint]) \
             ON CONFLICT (k) DO UPDATE SET vals = t.vals || excluded.vals"
        ),
        TxnWorkload::RwRegister => format!(
            "INSERT INTO {table} AS t (k, v) VALUES ($1, $2) \
             ON CONFLICT (k) DO UPDATE SET v = excluded.v"
        ),
    }
}

/// The statement that reads key `$1`: no row is the empty list, or the unwritten register.
pub(crate) fn read_sql(workload: TxnWorkload, table: &str) -> String {
    match workload {
        TxnWorkload::ListAppend => format!("SELECT vals FROM {table} WHERE k = $1"),
        TxnWorkload::RwRegister => format!("SELECT v FROM {table} WHERE k = $1"),
    }
}

/// A read's result as the history records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Read {
    List(Vec<i64>),
    Register(Option<i64>),
}

/// The completed transaction: the micro-ops as invoked, each read's value filled in from
/// `reads` (one per read, in order).
pub(crate) fn completed(steps: &[Step], reads: Vec<Read>) -> Value {
    let mut reads = reads.into_iter();
    let mops = steps.iter().map(|s| match *s {
        Step::Append { key, value } => json!(["append", key, value]),
        Step::Write { key, value } => json!(["w", key, value]),
        Step::Read { key } => match reads.next() {
            Some(Read::List(list)) => json!(["r", key, list]),
            Some(Read::Register(v)) => json!(["r", key, v]),
            None => json!(["r", key, null]),
        },
    });
    Value::Array(mops.collect())
}

/// Whether an error answered to COMMIT proves the transaction was rolled back: PostgreSQL
/// reports serialization failures, deadlocks and other class-40 errors ("transaction rollback")
/// when it refuses to commit. Any other error, or none at all (a lost connection, a timeout),
/// leaves the commit unknown.
pub(crate) fn commit_rolled_back(sqlstate: Option<&str>) -> bool {
    sqlstate.is_some_and(|code| code.starts_with("40"))
}

/// The host and port of `host:port` (`[v6]:port` too).
pub(crate) fn host_port(endpoint: &str) -> Result<(String, u16), String> {
    let endpoint = endpoint.trim_start_matches("postgres://");
    let (host, port) = endpoint
        .rsplit_once(':')
        .ok_or_else(|| format!("PostgreSQL endpoint {endpoint:?}: expected host:port"))?;
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("PostgreSQL endpoint {endpoint:?}: bad port {port:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(value: Value) -> OpTemplate {
        OpTemplate::new("txn", value)
    }

    #[test]
    fn list_append_micro_ops_become_steps() {
        let steps = plan(
            TxnWorkload::ListAppend,
            &txn(json!([["append", 3, 7], ["r", 4, null], ["r", 3, null]])),
        )
        .unwrap();
        assert_eq!(
            steps,
            vec![
                Step::Append { key: 3, value: 7 },
                Step::Read { key: 4 },
                Step::Read { key: 3 }
            ]
        );
        let done = completed(&steps, vec![Read::List(vec![]), Read::List(vec![1, 7])]);
        assert_eq!(
            done,
            json!([["append", 3, 7], ["r", 4, []], ["r", 3, [1, 7]]])
        );
    }

    #[test]
    fn rw_register_micro_ops_become_steps() {
        let steps = plan(
            TxnWorkload::RwRegister,
            &txn(json!([["w", 1, 5], ["r", 2, null]])),
        )
        .unwrap();
        assert_eq!(
            steps,
            vec![Step::Write { key: 1, value: 5 }, Step::Read { key: 2 }]
        );
        assert_eq!(
            completed(&steps, vec![Read::Register(None)]),
            json!([["w", 1, 5], ["r", 2, null]])
        );
        assert_eq!(
            completed(&steps, vec![Read::Register(Some(4))]),
            json!([["w", 1, 5], ["r", 2, 4]])
        );
    }

    #[test]
    fn malformed_transactions_are_refused_with_the_reason() {
        let cases = [
            (
                TxnWorkload::ListAppend,
                OpTemplate::new("read", json!(null)),
                "f = \"txn\"",
            ),
            (TxnWorkload::ListAppend, txn(json!(3)), "list of micro-ops"),
            (
                TxnWorkload::ListAppend,
                txn(json!([["append", 1]])),
                "not [f, key, value]",
            ),
            (
                TxnWorkload::ListAppend,
                txn(json!([["append", "a", 1]])),
                "key must be",
            ),
            (
                TxnWorkload::ListAppend,
                txn(json!([["append", 1, "x"]])),
                "value must be",
            ),
            (
                TxnWorkload::ListAppend,
                txn(json!([["w", 1, 2]])),
                "only append and r",
            ),
            (
                TxnWorkload::RwRegister,
                txn(json!([["append", 1, 2]])),
                "only w and r",
            ),
        ];
        for (workload, op, why) in cases {
            let err = plan(workload, &op).unwrap_err();
            assert!(err.contains(why), "{op:?}: {err}");
        }
    }

    #[test]
    fn tables_are_plain_identifiers() {
        assert_eq!(table(TxnWorkload::ListAppend, "").unwrap(), "txn_lists");
        assert_eq!(
            table(TxnWorkload::RwRegister, "t1_").unwrap(),
            "t1_txn_registers"
        );
        for bad in ["X", "a;drop", "1a", "a-b", "a b"] {
            assert!(table(TxnWorkload::ListAppend, bad).is_err(), "{bad}");
        }
        let sql = write_sql(TxnWorkload::ListAppend, "txn_lists");
        assert!(sql.contains("ON CONFLICT (k) DO UPDATE SET vals = t.vals || excluded.vals"));
        assert!(schema(TxnWorkload::RwRegister, "r").contains("CREATE TABLE IF NOT EXISTS r ("));
    }

    #[test]
    fn isolation_levels_parse_and_open_transactions() {
        for level in PgIsolation::ALL {
            assert_eq!(level.name().parse::<PgIsolation>().unwrap(), level);
            assert_eq!(serde_json::to_value(level).unwrap(), json!(level.name()));
        }
        assert_eq!(
            PgIsolation::RepeatableRead.begin(),
            "BEGIN ISOLATION LEVEL REPEATABLE READ"
        );
        assert!("snapshot".parse::<PgIsolation>().is_err());
        assert_eq!(PgIsolation::default(), PgIsolation::Serializable);
    }

    #[test]
    fn only_transaction_rollback_errors_prove_a_commit_did_not_happen() {
        assert!(commit_rolled_back(Some("40001")));
        assert!(commit_rolled_back(Some("40P01")));
        assert!(!commit_rolled_back(Some("57P01")));
        assert!(!commit_rolled_back(Some("08006")));
        assert!(!commit_rolled_back(None));
    }

    #[test]
    fn endpoints_split_into_host_and_port() {
        assert_eq!(
            host_port("127.0.0.1:5432").unwrap(),
            ("127.0.0.1".into(), 5432)
        );
        assert_eq!(host_port("[::1]:5433").unwrap(), ("::1".into(), 5433));
        assert_eq!(host_port("postgres://db:1").unwrap(), ("db".into(), 1));
        assert!(host_port("db").is_err());
        assert!(host_port("db:x").is_err());
    }
}
