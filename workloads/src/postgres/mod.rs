//! A built-in client for PostgreSQL (through `tokio-postgres`, without TLS) that runs each
//! transactional operation as one SQL transaction, as Jepsen's PostgreSQL tests do.
//!
//! - **list-append** ([`TxnWorkload::ListAppend`]): table `txn_lists(k bigint primary key, vals
//!   bigint[])`. `["append", k, v]` is one upsert that concatenates `v` onto the row's array;
//!   `["r", k, null]` selects the array (no row: the empty list).
//! - **rw-register** ([`TxnWorkload::RwRegister`]): table `txn_registers(k, v)`; `["w", k, v]`
//!   an upsert, `["r", k, null]` a select (no row: `null`).
//! - **isolation** ([`PgIsolation`]): every transaction opens with `BEGIN ISOLATION LEVEL ...`
//!   at the run's level, so the level the history is checked against is the one asked for.
//!
//! Outcomes, never retried: anything that goes wrong before COMMIT is sent (a serialization
//! failure, a deadlock, a lost connection, the op's timeout) is `fail`, since PostgreSQL commits
//! nothing without COMMIT. At COMMIT, a class-40 error ("transaction rollback": serialization
//! failure, deadlock) is `fail`, since the server says it rolled back; anything else (another
//! error, a lost connection, the timeout) is `info`. After an error the client rolls back if the
//! server is still talking, else drops the connection and connects again on the next operation.
//! The table is created (if missing) on a client's first connection.

mod mapping;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_postgres::{NoTls, Statement};

use crate::client::{Client, ClientReply, Refuse};
use crate::generator::OpTemplate;
use crate::workload::WorkloadKind;
pub use checkers::txn::TxnWorkload;
pub use mapping::PgIsolation;
use mapping::{Read, Step};

/// Settings of the PostgreSQL client. Missing fields take the defaults, unknown ones are refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresOptions {
    pub isolation: PgIsolation,
    /// Put in front of the table's name (`""`: `txn_lists`), so that tests can share a server.
    pub table_prefix: String,
    pub user: String,
    pub database: String,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            isolation: PgIsolation::default(),
            table_prefix: String::new(),
            user: "postgres".into(),
            database: "postgres".into(),
        }
    }
}

/// Whether the PostgreSQL client can run `kind`: the transactional workloads, append and wr.
pub fn postgres_supports(kind: WorkloadKind) -> Result<TxnWorkload, String> {
    kind.txn().ok_or_else(|| {
        format!("the PostgreSQL client runs the transactional workloads append and wr, not {kind}")
    })
}

/// The client of one process of a run of `kind` (see [`postgres_txn_client`]); for a workload
/// it cannot run, every operation fails with the reason, without contacting the server.
pub fn postgres_client(
    kind: WorkloadKind,
    endpoint: &str,
    options: &PostgresOptions,
) -> Box<dyn Client> {
    match postgres_supports(kind) {
        Ok(workload) => postgres_txn_client(workload, endpoint, options),
        Err(why) => Box::new(Refuse { why }),
    }
}

/// A client of one process running `workload` against the PostgreSQL server at `endpoint`
/// (`host:port`). It connects on first use and keeps the connection until an error it cannot
/// roll back from. A bad endpoint or table prefix makes every operation fail with the reason.
pub fn postgres_txn_client(
    workload: TxnWorkload,
    endpoint: &str,
    options: &PostgresOptions,
) -> Box<dyn Client> {
    let setup = mapping::host_port(endpoint).and_then(|(host, port)| {
        let table = mapping::table(workload, &options.table_prefix)?;
        Ok((host, port, table))
    });
    match setup {
        Ok((host, port, table)) => Box::new(PgClient {
            workload,
            host,
            port,
            table,
            options: options.clone(),
            conn: None,
        }),
        Err(why) => Box::new(Refuse { why }),
    }
}

struct PgClient {
    workload: TxnWorkload,
    host: String,
    port: u16,
    table: String,
    options: PostgresOptions,
    conn: Option<Conn>,
}

/// A connection with its statements prepared.
struct Conn {
    client: tokio_postgres::Client,
    write: Statement,
    read: Statement,
}

/// How a transaction went wrong before its COMMIT was sent.
struct Early {
    what: String,
    /// The server answered with an error, so it is still talking and can roll back.
    answered: bool,
}

impl Early {
    fn of(what: &str, e: &tokio_postgres::Error) -> Self {
        Early {
            what: format!("{what}: {}", describe(e)),
            answered: e.as_db_error().is_some() && !e.is_closed(),
        }
    }
}

/// An error as people read it: the server's message with its SQLSTATE, or the cause chain.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => {
            let mut text = e.to_string();
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                text.push_str(&format!(": {c}"));
                cause = c.source();
            }
            text
        }
    }
}

impl PgClient {
    fn endpoint(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// Connects, creates the table if missing, and prepares the statements; `timeout` also
    /// becomes the session's statement timeout, so that a statement the client gave up on does
    /// not go on holding locks.
    async fn connect(&self, timeout: Duration) -> Result<Conn, String> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.options.user)
            .dbname(&self.options.database)
            .application_name("fissure")
            .connect_timeout(timeout)
            .options(format!(
                "-c statement_timeout={}",
                timeout.as_millis().max(1)
            ));
        let at = self.endpoint();
        let (client, connection) = config
            .connect(NoTls)
            .await
            .map_err(|e| format!("connecting to {at}: {}", describe(&e)))?;
        tokio::spawn(async move {
            // Ends when the client is dropped or the server goes away; the client's calls
            // report that.
            let _ = connection.await;
        });
        client
            .batch_execute(&mapping::schema(self.workload, &self.table))
            .await
            .map_err(|e| format!("creating {} on {at}: {}", self.table, describe(&e)))?;
        let write = client
            .prepare(&mapping::write_sql(self.workload, &self.table))
            .await
            .map_err(|e| format!("preparing on {at}: {}", describe(&e)))?;
        let read = client
            .prepare(&mapping::read_sql(self.workload, &self.table))
            .await
            .map_err(|e| format!("preparing on {at}: {}", describe(&e)))?;
        Ok(Conn {
            client,
            write,
            read,
        })
    }

    /// BEGIN and every micro-op, up to (not including) COMMIT: the reads, in order.
    async fn body(&self, conn: &Conn, steps: &[Step]) -> Result<Vec<Read>, Early> {
        let client = &conn.client;
        client
            .batch_execute(self.options.isolation.begin())
            .await
            .map_err(|e| Early::of("BEGIN", &e))?;
        let mut reads = Vec::new();
        for step in steps {
            match *step {
                Step::Append { key, value } | Step::Write { key, value } => {
                    client
                        .execute(&conn.write, &[&key, &value])
                        .await
                        .map_err(|e| Early::of(&format!("writing key {key}"), &e))?;
                }
                Step::Read { key } => {
                    let row = client
                        .query_opt(&conn.read, &[&key])
                        .await
                        .map_err(|e| Early::of(&format!("reading key {key}"), &e))?;
                    let read = match (self.workload, row) {
                        (TxnWorkload::ListAppend, None) => Read::List(Vec::new()),
                        (TxnWorkload::ListAppend, Some(row)) => Read::List(
                            row.try_get(0)
                                .map_err(|e| Early::of(&format!("reading key {key}"), &e))?,
                        ),
                        (TxnWorkload::RwRegister, None) => Read::Register(None),
                        (TxnWorkload::RwRegister, Some(row)) => Read::Register(Some(
                            row.try_get(0)
                                .map_err(|e| Early::of(&format!("reading key {key}"), &e))?,
                        )),
                    };
                    reads.push(read);
                }
            }
        }
        Ok(reads)
    }

    /// After an error before COMMIT: roll back so that the connection can be used again, or
    /// drop it.
    async fn abandon(&mut self, answered: bool, deadline: Instant) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if answered {
            let rollback = conn.client.batch_execute("ROLLBACK");
            if let Ok(Ok(())) = tokio::time::timeout_at(deadline, rollback).await {
                self.conn = Some(conn);
            }
        }
    }
}

#[async_trait::async_trait]
impl Client for PgClient {
    async fn invoke(&mut self, op: &OpTemplate, timeout: Duration) -> ClientReply {
        let deadline = Instant::now() + timeout;
        let steps = match mapping::plan(self.workload, op) {
            Ok(steps) => steps,
            Err(e) => return ClientReply::fail(e),
        };
        if self.conn.is_none() {
            match tokio::time::timeout_at(deadline, self.connect(timeout)).await {
                Ok(Ok(conn)) => self.conn = Some(conn),
                Ok(Err(e)) => return ClientReply::fail(e),
                Err(_) => {
                    return ClientReply::fail(format!(
                        "could not connect to {} within {timeout:?}",
                        self.endpoint()
                    ))
                }
            }
        }
        let conn = self.conn.as_ref().expect("connected above");
        // Before COMMIT nothing can have taken effect: every way out is a `fail`.
        let reads = match tokio::time::timeout_at(deadline, self.body(conn, &steps)).await {
            Ok(Ok(reads)) => reads,
            Ok(Err(early)) => {
                self.abandon(early.answered, deadline).await;
                return ClientReply::fail(early.what);
            }
            Err(_) => {
                self.conn = None;
                return ClientReply::fail(format!(
                    "no answer from {} within {timeout:?} before COMMIT",
                    self.endpoint()
                ));
            }
        };
        let commit = conn.client.batch_execute("COMMIT");
        match tokio::time::timeout_at(deadline, commit).await {
            Ok(Ok(())) => ClientReply::ok(mapping::completed(&steps, reads)),
            Ok(Err(e)) => {
                let code = e.code().map(|c| c.code().to_string());
                let what = format!("COMMIT: {}", describe(&e));
                if mapping::commit_rolled_back(code.as_deref()) {
                    // The server ended the transaction and is still talking.
                    ClientReply::fail(what)
                } else {
                    self.conn = None;
                    ClientReply::info(what)
                }
            }
            Err(_) => {
                self.conn = None;
                ClientReply::info(format!(
                    "no answer to COMMIT from {} within {timeout:?}",
                    self.endpoint()
                ))
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
    fn options_default_to_serializable_as_postgres_and_refuse_typos() {
        let o: PostgresOptions = serde_json::from_str("{}").unwrap();
        assert_eq!(o, PostgresOptions::default());
        assert_eq!(o.isolation, PgIsolation::Serializable);
        assert_eq!(
            (o.user.as_str(), o.database.as_str()),
            ("postgres", "postgres")
        );
        let rr: PostgresOptions =
            serde_json::from_value(json!({"isolation": "repeatable-read"})).unwrap();
        assert_eq!(rr.isolation, PgIsolation::RepeatableRead);
        assert!(serde_json::from_value::<PostgresOptions>(json!({"isolaton": "x"})).is_err());
    }

    #[tokio::test]
    async fn bad_settings_and_malformed_ops_fail_without_connecting() {
        // Nothing listens on port 1, and nothing is tried.
        let txn = OpTemplate::new("txn", json!([["r", 1, null]]));
        let mut c = postgres_txn_client(TxnWorkload::ListAppend, "nowhere", &Default::default());
        let reply = c.invoke(&txn, Duration::from_secs(1)).await;
        assert_eq!(reply.outcome, Outcome::Fail);
        assert!(reply.error.unwrap().contains("host:port"));
        let options = PostgresOptions {
            table_prefix: "Bad;".into(),
            ..Default::default()
        };
        let mut c = postgres_txn_client(TxnWorkload::ListAppend, "127.0.0.1:1", &options);
        let reply = c.invoke(&txn, Duration::from_secs(1)).await;
        assert!(reply.error.unwrap().contains("table prefix"));
        let mut c = postgres_client(WorkloadKind::Wr, "127.0.0.1:1", &Default::default());
        let bad = OpTemplate::new("txn", json!([["append", 1, 2]]));
        let reply = c.invoke(&bad, Duration::from_secs(1)).await;
        assert_eq!(reply.outcome, Outcome::Fail);
        assert!(reply.error.unwrap().contains("only w and r"));
    }

    #[tokio::test]
    async fn only_the_transactional_workloads_run() {
        for kind in WorkloadKind::ALL {
            let supported = postgres_supports(kind);
            assert_eq!(supported.is_ok(), kind.txn().is_some(), "{kind}");
            if let Err(why) = supported {
                let mut c = postgres_client(kind, "127.0.0.1:1", &Default::default());
                let reply = c
                    .invoke(&OpTemplate::new("read", json!(null)), Duration::ZERO)
                    .await;
                assert_eq!(reply.error, Some(why));
            }
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_fail() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut c = postgres_client(
            WorkloadKind::Append,
            &format!("127.0.0.1:{port}"),
            &Default::default(),
        );
        let op = OpTemplate::new("txn", json!([["append", 1, 1]]));
        let reply = c.invoke(&op, Duration::from_secs(2)).await;
        assert_eq!(reply.outcome, Outcome::Fail, "{reply:?}");
        assert!(reply.error.unwrap().contains("connecting to"));
    }
}
