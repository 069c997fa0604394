//! `fissure serve` serves a store's index and reports over HTTP on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

fn get(addr: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
}

/// Kills the server when the test ends, however it ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn serve_answers_with_the_index_and_the_reports() {
    let store = tempfile::tempdir().unwrap();
    let run = store.path().join("raft-kv-register/20261201T100000.000Z");
    std::fs::create_dir_all(&run).unwrap();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../reports/tests/fixtures/valid"
    );
    for file in ["test.json", "results.json", "history.jsonl"] {
        std::fs::copy(format!("{fixture}/{file}"), run.join(file)).unwrap();
    }
    let report = Command::new(env!("CARGO_BIN_EXE_fissure"))
        .arg("report")
        .arg(&run)
        .output()
        .unwrap();
    assert!(report.status.success(), "{report:?}");

    let mut child = Command::new(env!("CARGO_BIN_EXE_fissure"))
        .args(["serve", "--bind", "127.0.0.1:0", "--store"])
        .arg(store.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    // "serving <store> (1 runs) on http://127.0.0.1:PORT/ (Ctrl-C to stop)"
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");

    let (status, index) = get(&addr, "/");
    assert_eq!(status, 200, "{index}");
    assert!(index.contains("Fissure runs") && index.contains("report.html"));
    let (status, page) = get(&addr, "/raft-kv-register/20261201T100000.000Z/report.html");
    assert_eq!(status, 200);
    assert!(page.contains("VALID"));
    let (status, _) = get(
        &addr,
        "/raft-kv-register/20261201T100000.000Z/history.jsonl",
    );
    assert_eq!(status, 200);
    let (status, _) = get(&addr, "/nothing-here.html");
    assert_eq!(status, 404);
}
