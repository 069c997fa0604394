//! The echo node as a real process: it starts, round-trips get/put/cas, and dies with the test.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use targets::client::Client;
use targets::protocol::{Op, Reply};

/// SIGKILLs the node when dropped, so a failed assertion does not leave it running.
struct Node(Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("a bound port").to_string()
}

#[tokio::test]
async fn echo_round_trips_put_get_cas() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let addr = free_addr();
    let child = Command::new(env!("CARGO_BIN_EXE_fissure-node"))
        .args(["echo", "--id", "n1", "--listen", &addr])
        .args(["--peer-listen", &free_addr(), "--peers", "n2=127.0.0.1:1"])
        .arg("--data-dir")
        .arg(dir.path().join("n1"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("fissure-node starts");
    let mut node = Node(child);
    let started = Instant::now();
    while tokio::net::TcpStream::connect(&addr).await.is_err() {
        assert!(
            node.0.try_wait().expect("a child status").is_none(),
            "echo exited while starting"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "echo never listened"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut client = Client::new(addr);
    let limit = Duration::from_secs(3);
    let mut call = async |op: Op| client.call(op, limit).await;
    let key = || "k".to_string();
    assert_eq!(
        call(Op::Get { key: key() }).await,
        Reply::ok(serde_json::Value::Null)
    );
    let put = Op::Put {
        key: key(),
        value: serde_json::json!({"x": [1, 2]}),
    };
    assert_eq!(call(put).await, Reply::ok_empty());
    assert_eq!(
        call(Op::Get { key: key() }).await,
        Reply::ok(serde_json::json!({"x": [1, 2]}))
    );
    let stale = Op::Cas {
        key: key(),
        from: serde_json::json!(1),
        to: serde_json::json!(2),
    };
    assert!(matches!(call(stale).await, Reply::Fail { .. }));
    let fresh = Op::Cas {
        key: key(),
        from: serde_json::json!({"x": [1, 2]}),
        to: serde_json::json!(2),
    };
    assert_eq!(call(fresh).await, Reply::ok_empty());
    assert_eq!(
        call(Op::Get { key: key() }).await,
        Reply::ok(serde_json::json!(2))
    );
    assert!(matches!(call(Op::ReadAll).await, Reply::Fail { .. }));
    assert_eq!(node.0.try_wait().expect("a child status"), None, "still up");
}
