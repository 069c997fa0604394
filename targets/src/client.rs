//! An async client for `fissure-node`, used by workloads and tests.
//!
//! One connection, one operation in flight. A [`Client::proven`] client proves each fresh
//! connection with a `status` round trip before any operation goes over it. The client never
//! guesses: a request that was never
//! sent is a `fail`, anything after sending that is not a response (timeout, reset) is `unknown`,
//! and the connection is then dropped so a late response cannot be mistaken for the next one's.

use crate::protocol::{Op, Reply, Request, Response};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at};

struct Connection {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

/// A client of one node.
pub struct Client {
    addr: String,
    connection: Option<Connection>,
    next_id: u64,
    prove: bool,
}

impl Client {
    /// A client of the node at `addr`; it connects on first use and after any failure.
    pub fn new(addr: impl Into<String>) -> Client {
        Client {
            addr: addr.into(),
            connection: None,
            next_id: 1,
            prove: false,
        }
    }

    /// A client that proves each new connection with a `status` round trip (at most half the
    /// operation's time limit) before sending an operation over it. A proxy or load balancer
    /// accepts connections even when the node behind it is down or paused; with the proof, an
    /// unreachable node makes the operation a certain `fail` (nothing was sent) instead of an
    /// `unknown`. What workloads use.
    pub fn proven(addr: impl Into<String>) -> Client {
        Client {
            prove: true,
            ..Client::new(addr)
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Runs one operation with a fresh id, giving up after `limit`.
    pub async fn call(&mut self, op: Op, limit: Duration) -> Reply {
        let id = self.next_id;
        self.next_id += 1;
        self.call_with_id(id, op, limit).await
    }

    /// Runs one operation with a caller-chosen id.
    pub async fn call_with_id(&mut self, id: u64, op: Op, limit: Duration) -> Reply {
        let deadline = tokio::time::Instant::now() + limit;
        if self.connection.is_none() {
            match timeout(limit, TcpStream::connect(&self.addr)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    let (read, write) = stream.into_split();
                    let mut connection = Connection {
                        reader: BufReader::new(read),
                        writer: write,
                    };
                    if !self.prove {
                        self.connection = Some(connection);
                    } else {
                        match timeout(limit / 2, handshake(&mut connection)).await {
                            Ok(Ok(())) => self.connection = Some(connection),
                            Ok(Err(e)) => {
                                return Reply::fail(format!(
                                    "no node reachable at {}: {e}",
                                    self.addr
                                ))
                            }
                            Err(_) => {
                                return Reply::fail(format!(
                                    "no node answered at {} within {:?}",
                                    self.addr,
                                    limit / 2
                                ))
                            }
                        }
                    }
                }
                // Nothing was sent: the operation certainly did not happen.
                Ok(Err(e)) => return Reply::fail(format!("cannot connect to {}: {e}", self.addr)),
                Err(_) => return Reply::fail(format!("connecting to {} timed out", self.addr)),
            }
        }
        let connection = self.connection.as_mut().expect("connected above");
        let mut line = serde_json::to_string(&Request { id, op }).expect("requests serialize");
        line.push('\n');
        let exchange = async {
            connection.writer.write_all(line.as_bytes()).await?;
            let mut answer = String::new();
            if connection.reader.read_line(&mut answer).await? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the node closed the connection",
                ));
            }
            Ok(answer)
        };
        let answer = match timeout_at(deadline, exchange).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                self.connection = None;
                return Reply::unknown(format!("{}: {e}", self.addr));
            }
            Err(_) => {
                self.connection = None;
                return Reply::unknown(format!("no answer from {} within {limit:?}", self.addr));
            }
        };
        match serde_json::from_str::<Response>(&answer) {
            Ok(response) if response.id == id => response.reply,
            Ok(response) => {
                self.connection = None;
                Reply::unknown(format!("answer for id {} to request {id}", response.id))
            }
            Err(e) => {
                self.connection = None;
                Reply::unknown(format!("unreadable answer from {}: {e}", self.addr))
            }
        }
    }
}

/// One `status` round trip on a fresh connection (id 0, never used by operations).
async fn handshake(connection: &mut Connection) -> std::io::Result<()> {
    let mut line = serde_json::to_string(&Request {
        id: 0,
        op: Op::Status,
    })
    .expect("requests serialize");
    line.push('\n');
    connection.writer.write_all(line.as_bytes()).await?;
    let mut answer = String::new();
    if connection.reader.read_line(&mut answer).await? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the connection was closed",
        ));
    }
    Ok(())
}
