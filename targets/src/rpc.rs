//! Node-to-node messages: JSON lines over TCP, one request then one response per connection turn.
//!
//! Each peer gets a small pool of connections; a call takes an idle one (or opens one), writes
//! the request, reads the response, and returns the connection to the pool. A timeout or error
//! drops the connection. Peers are reached at the addresses given on the command line, so a
//! controller can put a link proxy there and partition the link.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

/// Why a call to a peer produced no response. The request may or may not have been processed.
#[derive(Debug, Error)]
pub enum RpcError {
    #[error("{0}: timed out")]
    Timeout(String),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}: unreadable response: {1}")]
    Decode(String, serde_json::Error),
}

struct Connection {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

/// Calls to one peer.
pub struct Peer {
    pub id: String,
    pub addr: String,
    idle: Mutex<Vec<Connection>>,
}

/// Idle connections kept per peer; more may be open while calls are in flight.
const POOL: usize = 8;

impl Peer {
    pub fn new(id: impl Into<String>, addr: impl Into<String>) -> Arc<Peer> {
        Arc::new(Peer {
            id: id.into(),
            addr: addr.into(),
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Sends `request` and waits up to `limit` for the response.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        request: &Req,
        limit: Duration,
    ) -> Result<Resp, RpcError> {
        let mut line = serde_json::to_string(request).expect("messages serialize");
        line.push('\n');
        let who = || format!("peer {} at {}", self.id, self.addr);
        let exchange = async {
            let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            let mut connection = match pooled {
                Some(connection) => connection,
                None => {
                    let stream = TcpStream::connect(&self.addr).await?;
                    let _ = stream.set_nodelay(true);
                    let (read, write) = stream.into_split();
                    Connection {
                        reader: BufReader::new(read),
                        writer: write,
                    }
                }
            };
            connection.writer.write_all(line.as_bytes()).await?;
            let mut answer = String::new();
            if connection.reader.read_line(&mut answer).await? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed",
                ));
            }
            Ok((connection, answer))
        };
        let (connection, answer) = match timeout(limit, exchange).await {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => return Err(RpcError::Io(who(), e)),
            Err(_) => return Err(RpcError::Timeout(who())),
        };
        let response = serde_json::from_str(&answer).map_err(|e| RpcError::Decode(who(), e))?;
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < POOL {
            idle.push(connection);
        }
        Ok(response)
    }
}

/// Serves peer requests on `listener` until the task is dropped: each connection is read line by
/// line and each request answered by `handler` in order. A message that does not parse drops
/// the connection.
pub async fn serve<Req, Resp, F, Fut>(listener: TcpListener, handler: F)
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    F: Fn(Req) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Resp> + Send,
{
    serve_lines(listener, move |line: String| {
        let handler = handler.clone();
        async move {
            match serde_json::from_str::<Req>(&line) {
                Ok(request) => Some(handler(request).await),
                Err(e) => {
                    tracing::warn!("dropping a peer connection after a bad message: {e}");
                    None
                }
            }
        }
    })
    .await
}

/// The line server under both the client and the peer listeners: accepts connections and
/// answers each line with what `answer` returns, in order; `None` closes the connection.
pub async fn serve_lines<Resp, F, Fut>(listener: TcpListener, answer: F)
where
    Resp: Serialize + Send + 'static,
    F: Fn(String) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Option<Resp>> + Send,
{
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // E.g. out of file descriptors: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let answer = answer.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Some(response) = answer(line).await else {
                    return;
                };
                let mut out = serde_json::to_string(&response).expect("messages serialize");
                out.push('\n');
                if write.write_all(out.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}
