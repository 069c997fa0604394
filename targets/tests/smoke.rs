//! The cluster test support itself: nodes start, listen and die with the test.

mod support;

use support::cluster::Cluster;
use targets::protocol::{Op, Reply};

#[tokio::test]
async fn a_node_rejects_an_unknown_planted_bug() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fissure-node"))
        .args([
            "quorum",
            "--id",
            "n1",
            "--listen",
            "127.0.0.1:1",
            "--peer-listen",
            "127.0.0.1:1",
        ])
        .args([
            "--data-dir",
            "/tmp/fissure-never-created",
            "--bug",
            "no-such-bug",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no-such-bug"), "{stderr}");
}

#[tokio::test]
async fn bad_request_lines_get_a_fail() {
    let cluster = Cluster::start("quorum", 1, |_| vec![]).await;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut stream = tokio::net::TcpStream::connect(&cluster.nodes[0].client_addr)
        .await
        .unwrap();
    stream.write_all(b"not json\n").await.unwrap();
    let mut line = String::new();
    BufReader::new(&mut stream)
        .read_line(&mut line)
        .await
        .unwrap();
    assert!(line.contains("\"status\":\"fail\""), "{line}");
    let reply = cluster.call(0, Op::ReadAll).await;
    assert!(
        matches!(reply, Reply::Fail { .. }),
        "quorum does not serve read-all: {reply:?}"
    );
}
