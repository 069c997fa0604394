//! The PostgreSQL client against a real PostgreSQL 15 (Debian's `postgresql` package). Each
//! test starts its own server in a temporary directory on a loopback port, as the `postgres`
//! user when the test runs as root (PostgreSQL refuses root), and stops it on drop, even when
//! the test fails. Without PostgreSQL the tests pass with a note, unless
//! `FISSURE_REQUIRE_POSTGRES=1`, when they fail saying what to install.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;
use workloads::client::ClientReply;
use workloads::generator::{OpTemplate, Outcome};
use workloads::postgres::{postgres_txn_client, PgIsolation, PostgresOptions, TxnWorkload};

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// Whether PostgreSQL is here; if not, a note (or a failure under FISSURE_REQUIRE_POSTGRES=1).
fn postgres_installed() -> bool {
    if Path::new(BIN).join("postgres").exists() {
        return true;
    }
    let why =
        format!("{BIN}/postgres is missing: apt-get install postgresql (Debian's PostgreSQL 15)");
    assert!(
        std::env::var("FISSURE_REQUIRE_POSTGRES").as_deref() != Ok("1"),
        "{why}"
    );
    eprintln!("skipped: {why}");
    false
}

/// One PostgreSQL server, stopped on drop.
struct Server {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The command prefix that runs a program as the `postgres` user when we are root.
fn as_postgres() -> Vec<String> {
    if nix::unistd::Uid::effective().is_root() {
        [
            "setpriv",
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ]
        .map(String::from)
        .to_vec()
    } else {
        Vec::new()
    }
}

fn command(program: &str, args: &[&str]) -> Command {
    let mut words = as_postgres();
    words.push(format!("{BIN}/{program}"));
    words.extend(args.iter().map(|a| a.to_string()));
    let mut c = Command::new(&words[0]);
    c.args(&words[1..]);
    c
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        // The postgres user must reach the data directory.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        if nix::unistd::Uid::effective().is_root() {
            let status = Command::new("chown")
                .args(["postgres:postgres", data.to_str().unwrap()])
                .status()
                .unwrap();
            assert!(status.success(), "chown postgres {}", data.display());
        }
        let data_s = data.to_str().unwrap();
        let out = command(
            "initdb",
            &[
                "-D",
                data_s,
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--no-locale",
            ],
        )
        .output()
        .unwrap();
        assert!(out.status.success(), "initdb: {out:?}");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.path().join("postgres.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let child = command(
            "postgres",
            &[
                "-D",
                data_s,
                "-p",
                &port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=100",
            ],
        )
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap();
        let mut server = Server {
            child: Some(child),
            port,
            log,
            _dir: dir,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(format!("{BIN}/pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-t", "1"])
                .stdout(Stdio::null())
                .status()
                .unwrap();
            if ready.success() {
                return;
            }
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            assert!(
                exited.is_none() && std::time::Instant::now() < deadline,
                "PostgreSQL did not come up ({exited:?}); its log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.as_ref().unwrap().id() as i32)
    }

    /// Fast shutdown (SIGINT), then SIGKILL after 10 s.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn txn(mops: Value) -> OpTemplate {
    OpTemplate::new("txn", mops)
}

fn options(isolation: PgIsolation) -> PostgresOptions {
    PostgresOptions {
        isolation,
        ..Default::default()
    }
}

/// Runs SQL on the server outside the client under test (a fixture's setup).
async fn sql(server: &Server, text: &str) {
    let (client, conn) = tokio_postgres::connect(
        &format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            server.port
        ),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    client.batch_execute(text).await.unwrap();
}

fn assert_ok(reply: &ClientReply) -> &Value {
    assert_eq!(reply.outcome, Outcome::Ok, "{reply:?}");
    &reply.output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_append_reads_its_lists_at_every_isolation_level() {
    if !postgres_installed() {
        return;
    }
    let server = Server::start();
    for (i, isolation) in PgIsolation::ALL.into_iter().enumerate() {
        let k = i as i64 * 10;
        let mut c = postgres_txn_client(
            TxnWorkload::ListAppend,
            &server.endpoint(),
            &options(isolation),
        );
        let t = Duration::from_secs(5);
        let r = c
            .invoke(
                &txn(json!([["r", k, null], ["append", k, 1], ["r", k, null]])),
                t,
            )
            .await;
        assert_eq!(
            assert_ok(&r),
            &json!([["r", k, []], ["append", k, 1], ["r", k, [1]]])
        );
        let r = c
            .invoke(&txn(json!([["append", k, 2], ["append", k + 1, 3]])), t)
            .await;
        assert_eq!(
            assert_ok(&r),
            &json!([["append", k, 2], ["append", k + 1, 3]])
        );
        let r = c
            .invoke(&txn(json!([["r", k, null], ["r", k + 1, null]])), t)
            .await;
        assert_eq!(assert_ok(&r), &json!([["r", k, [1, 2]], ["r", k + 1, [3]]]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rw_register_reads_null_until_written() {
    if !postgres_installed() {
        return;
    }
    let server = Server::start();
    let mut c = postgres_txn_client(
        TxnWorkload::RwRegister,
        &server.endpoint(),
        &Default::default(),
    );
    let t = Duration::from_secs(5);
    let r = c
        .invoke(
            &txn(json!([["r", 1, null], ["w", 1, 5], ["r", 1, null]])),
            t,
        )
        .await;
    assert_eq!(
        assert_ok(&r),
        &json!([["r", 1, null], ["w", 1, 5], ["r", 1, 5]])
    );
    let r = c.invoke(&txn(json!([["w", 1, 6]])), t).await;
    assert_ok(&r);
    let r = c
        .invoke(&txn(json!([["r", 1, null], ["r", 2, null]])), t)
        .await;
    assert_eq!(assert_ok(&r), &json!([["r", 1, 6], ["r", 2, null]]));
}

/// Contended transactions (each reads one of two keys and appends to the other) from eight
/// clients. Every `ok` append is in the final lists and no `fail` append is, so the outcomes are
/// honest; serializable and repeatable read refuse some transactions with SQLSTATE 40001, which
/// come out `fail`, never retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_transactions_fail_and_leave_nothing_behind() {
    if !postgres_installed() {
        return;
    }
    let server = Server::start();
    for (i, isolation) in PgIsolation::ALL.into_iter().enumerate() {
        let base = i as i64 * 100;
        let mut tasks = Vec::new();
        for process in 0..8i64 {
            let endpoint = server.endpoint();
            tasks.push(tokio::spawn(async move {
                let mut c =
                    postgres_txn_client(TxnWorkload::ListAppend, &endpoint, &options(isolation));
                let mut replies = Vec::new();
                for n in 0..25i64 {
                    let v = process * 1000 + n;
                    let (a, b) = if (process + n) % 2 == 0 {
                        (base, base + 1)
                    } else {
                        (base + 1, base)
                    };
                    let op = txn(json!([["r", a, null], ["append", b, v]]));
                    replies.push((v, c.invoke(&op, Duration::from_secs(10)).await));
                }
                replies
            }));
        }
        let mut ok = BTreeSet::new();
        let mut failed = BTreeSet::new();
        let mut serialization = 0;
        for task in tasks {
            for (v, reply) in task.await.unwrap() {
                match reply.outcome {
                    Outcome::Ok => {
                        ok.insert(v);
                    }
                    Outcome::Fail => {
                        let error = reply.error.unwrap();
                        serialization += usize::from(error.contains("SQLSTATE 40001"));
                        failed.insert(v);
                    }
                    Outcome::Info => panic!("{isolation:?}: info on a healthy server: {reply:?}"),
                }
            }
        }
        let mut c = postgres_txn_client(
            TxnWorkload::ListAppend,
            &server.endpoint(),
            &Default::default(),
        );
        let r = c
            .invoke(
                &txn(json!([["r", base, null], ["r", base + 1, null]])),
                Duration::from_secs(5),
            )
            .await;
        let lists = assert_ok(&r);
        let present: BTreeSet<i64> = (lists.as_array().unwrap().iter())
            .flat_map(|m| m[2].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()))
            .collect();
        assert_eq!(
            present, ok,
            "{isolation:?}: the lists hold exactly the ok appends"
        );
        assert_eq!(ok.len() + failed.len(), 200);
        match isolation {
            PgIsolation::ReadCommitted => assert_eq!(failed.len(), 0, "{isolation:?}"),
            _ => assert!(serialization > 0, "{isolation:?}: no serialization failure"),
        }
        eprintln!(
            "{isolation:?}: {} ok, {} fail ({serialization} on 40001)",
            ok.len(),
            failed.len()
        );
    }
}

/// What an error at COMMIT means, with deferred constraint triggers that act at COMMIT: a
/// serialization failure there is a `fail` (the server rolled back); any other error, or no
/// answer in time, is `info`; and the client carries on afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_at_commit_are_fail_only_when_they_prove_a_rollback() {
    if !postgres_installed() {
        return;
    }
    let server = Server::start();
    let mut c = postgres_txn_client(
        TxnWorkload::ListAppend,
        &server.endpoint(),
        &Default::default(),
    );
    let t = Duration::from_secs(5);
    assert_ok(&c.invoke(&txn(json!([["append", 0, 0]])), t).await);
    // The table exists now; key 1 refuses at COMMIT as a serialization failure, key 2 with
    // another error, key 3 takes 3 s to commit.
    sql(
        &server,
        "CREATE FUNCTION at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
           IF NEW.k = 1 THEN RAISE EXCEPTION 'refused' USING ERRCODE = '40001'; END IF;
           IF NEW.k = 2 THEN RAISE EXCEPTION 'broken' USING ERRCODE = 'P0001'; END IF;
           IF NEW.k = 3 THEN PERFORM pg_sleep(3); END IF;
           RETURN NULL; END $$;
         CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT OR UPDATE ON txn_lists
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION at_commit();",
    )
    .await;
    let r = c.invoke(&txn(json!([["append", 1, 1]])), t).await;
    assert_eq!(r.outcome, Outcome::Fail, "{r:?}");
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .starts_with("COMMIT: refused (SQLSTATE 40001)"),
        "{r:?}"
    );
    let r = c.invoke(&txn(json!([["append", 2, 2]])), t).await;
    assert_eq!(r.outcome, Outcome::Info, "{r:?}");
    assert!(
        r.error.as_deref().unwrap().contains("SQLSTATE P0001"),
        "{r:?}"
    );
    let started = Instant::now();
    let r = c
        .invoke(&txn(json!([["append", 3, 3]])), Duration::from_secs(1))
        .await;
    assert_eq!(r.outcome, Outcome::Info, "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Neither refused append is there; the client reconnects and goes on.
    let r = c
        .invoke(
            &txn(json!([["r", 0, null], ["r", 1, null], ["r", 2, null]])),
            t,
        )
        .await;
    assert_eq!(
        assert_ok(&r),
        &json!([["r", 0, [0]], ["r", 1, []], ["r", 2, []]])
    );
}

/// A server that stops answering before COMMIT: the transaction is a `fail` by its timeout (no
/// COMMIT was sent); once the server is gone, the next transaction fails, and so does connecting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_or_lost_server_fails_transactions_before_commit() {
    if !postgres_installed() {
        return;
    }
    let mut server = Server::start();
    let mut c = postgres_txn_client(
        TxnWorkload::ListAppend,
        &server.endpoint(),
        &Default::default(),
    );
    assert_ok(
        &c.invoke(&txn(json!([["append", 1, 1]])), Duration::from_secs(5))
            .await,
    );
    // Pause the postmaster and every backend.
    let pids = backends_and(server.pid());
    for pid in &pids {
        let _ = nix::sys::signal::kill(*pid, nix::sys::signal::Signal::SIGSTOP);
    }
    let started = Instant::now();
    let r = c
        .invoke(&txn(json!([["append", 1, 2]])), Duration::from_millis(800))
        .await;
    for pid in &pids {
        let _ = nix::sys::signal::kill(*pid, nix::sys::signal::Signal::SIGCONT);
    }
    assert_eq!(r.outcome, Outcome::Fail, "{r:?}");
    assert!(r.error.unwrap().contains("before COMMIT"));
    assert!(started.elapsed() < Duration::from_millis(1500));
    let endpoint = server.endpoint();
    server.stop();
    let r = c
        .invoke(&txn(json!([["append", 1, 3]])), Duration::from_secs(2))
        .await;
    assert_eq!(r.outcome, Outcome::Fail, "{r:?}");
    let mut other = postgres_txn_client(TxnWorkload::ListAppend, &endpoint, &Default::default());
    let r = other
        .invoke(&txn(json!([["r", 1, null]])), Duration::from_secs(2))
        .await;
    assert_eq!(r.outcome, Outcome::Fail, "{r:?}");
    assert!(r.error.unwrap().contains("connecting to"));
}

/// The postmaster and its children (the backends), from /proc.
fn backends_and(postmaster: nix::unistd::Pid) -> Vec<nix::unistd::Pid> {
    let mut pids = vec![postmaster];
    let mut parents: BTreeMap<i32, i32> = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The parent is the second field after the command's closing parenthesis.
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                parents.insert(pid, ppid);
            }
        }
    }
    pids.extend(
        (parents.iter())
            .filter(|(_, ppid)| **ppid == postmaster.as_raw())
            .map(|(pid, _)| nix::unistd::Pid::from_raw(*pid)),
    );
    pids
}
