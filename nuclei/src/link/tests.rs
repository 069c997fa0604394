use super::pump::{Schedule, RTO_MIN};
use super::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::time::timeout;

async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

async fn round_trip(stream: &mut TcpStream) -> bool {
    stream.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    matches!(
        timeout(Duration::from_millis(300), stream.read_exact(&mut buf)).await,
        Ok(Ok(_))
    )
}

/// True if `bytes` written on `from` arrive on `to` within 300 ms.
async fn passes(from: &mut TcpStream, to: &mut TcpStream, bytes: &[u8]) -> bool {
    from.write_all(bytes).await.unwrap();
    let mut buf = vec![0u8; bytes.len()];
    match timeout(Duration::from_millis(300), to.read_exact(&mut buf)).await {
        Ok(Ok(_)) => {
            assert_eq!(buf, bytes, "bytes arrived changed");
            true
        }
        _ => false,
    }
}

/// True if exactly `bytes` arrive on `to` within 2 s.
async fn arrives(to: &mut TcpStream, bytes: &[u8]) -> bool {
    let mut buf = vec![0u8; bytes.len()];
    match timeout(Duration::from_secs(2), to.read_exact(&mut buf)).await {
        Ok(Ok(_)) => buf == bytes,
        _ => false,
    }
}

/// A proxy in front of a listener the test holds, and one connection through it:
/// (proxy, the connecting side, the upstream side).
async fn connected_pair() -> (LinkProxy, TcpStream, TcpStream) {
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = LinkProxy::start(upstream.local_addr().unwrap().to_string())
        .await
        .unwrap();
    let client = TcpStream::connect(proxy.addr()).await.unwrap();
    let (server, _) = timeout(Duration::from_secs(5), upstream.accept())
        .await
        .expect("the proxy connects upstream")
        .unwrap();
    (proxy, client, server)
}

#[tokio::test]
async fn forwards_blackholes_and_heals() {
    let proxy = LinkProxy::start(echo_server().await.to_string())
        .await
        .unwrap();
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(round_trip(&mut stream).await);
    proxy.set_blackholed(true);
    assert!(proxy.is_blackholed());
    assert!(
        !round_trip(&mut stream).await,
        "bytes crossed a blackholed link"
    );
    // A new connection across the partition hangs rather than failing fast.
    let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(!round_trip(&mut fresh).await);
    proxy.set_blackholed(false);
    let mut healed = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(round_trip(&mut healed).await);
}

#[tokio::test]
async fn a_one_way_blackhole_drops_only_its_direction() {
    let (proxy, mut client, mut server) = connected_pair().await;
    assert!(passes(&mut client, &mut server, b"fwd0").await);
    assert!(passes(&mut server, &mut client, b"bwd0").await);

    proxy.set_direction_blackholed(Direction::Backward, true);
    assert!(proxy.is_direction_blackholed(Direction::Backward));
    assert!(!proxy.is_blackholed(), "only one direction is cut");
    assert!(passes(&mut client, &mut server, b"fwd1").await);
    assert!(!passes(&mut server, &mut client, b"bwd1").await);

    proxy.set_direction_blackholed(Direction::Backward, false);
    // What the cut held back arrives at the heal, intact and in order, as over TCP.
    assert!(arrives(&mut client, b"bwd1").await);
    proxy.set_direction_blackholed(Direction::Forward, true);
    assert!(!passes(&mut client, &mut server, b"fwd2").await);
    assert!(passes(&mut server, &mut client, b"bwd2").await);

    proxy.set_direction_blackholed(Direction::Forward, false);
    assert!(arrives(&mut server, b"fwd2").await);
    assert!(passes(&mut client, &mut server, b"fwd3").await);
    assert!(passes(&mut server, &mut client, b"bwd3").await);
}

#[tokio::test]
async fn new_connections_open_only_while_the_forward_direction_passes() {
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = LinkProxy::start(upstream.local_addr().unwrap().to_string())
        .await
        .unwrap();
    proxy.set_direction_blackholed(Direction::Forward, true);
    let _waiting = TcpStream::connect(proxy.addr()).await.unwrap();
    let wait = Duration::from_millis(300);
    assert!(
        timeout(wait, upstream.accept()).await.is_err(),
        "a connection crossed a cut forward direction"
    );
    // Healing lets the waiting connection through.
    proxy.set_direction_blackholed(Direction::Forward, false);
    assert!(timeout(Duration::from_secs(5), upstream.accept())
        .await
        .is_ok());
    // Only the answers cut: the caller still reaches the upstream.
    proxy.set_direction_blackholed(Direction::Backward, true);
    let _caller = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(timeout(Duration::from_secs(5), upstream.accept())
        .await
        .is_ok());
}

#[tokio::test]
async fn latency_is_added_per_direction() {
    let (proxy, mut client, mut server) = connected_pair().await;
    let latency = Duration::from_millis(150);
    let slow = LinkQuality {
        latency,
        ..LinkQuality::default()
    };
    proxy.set_quality(Direction::Forward, slow).unwrap();
    assert_eq!(proxy.quality(Direction::Forward), slow);
    let started = Instant::now();
    assert!(passes(&mut client, &mut server, b"slow").await);
    assert!(started.elapsed() >= latency, "{:?}", started.elapsed());

    // Jitter never takes the delay below latency - jitter.
    let jittery = LinkQuality {
        latency: Duration::from_millis(100),
        jitter: Duration::from_millis(50),
        loss: 0.0,
    };
    proxy.set_quality(Direction::Backward, jittery).unwrap();
    for _ in 0..3 {
        let started = Instant::now();
        assert!(passes(&mut server, &mut client, b"jit").await);
        assert!(
            started.elapsed() >= Duration::from_millis(50),
            "{:?}",
            started.elapsed()
        );
    }
    proxy.heal();
    assert!(proxy.quality(Direction::Forward).is_perfect());
    assert!(proxy.quality(Direction::Backward).is_perfect());
    assert!(passes(&mut client, &mut server, b"fast").await);
}

#[tokio::test]
async fn loss_delays_but_never_corrupts_or_reorders() {
    let proxy = LinkProxy::start(echo_server().await.to_string())
        .await
        .unwrap();
    let lossy = LinkQuality {
        loss: 0.5,
        ..LinkQuality::default()
    };
    for direction in Direction::BOTH {
        proxy.set_quality(direction, lossy).unwrap();
    }
    let stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let (read, mut write) = stream.into_split();
    const LINES: usize = 40;
    let started = Instant::now();
    let writer = tokio::spawn(async move {
        for i in 0..LINES {
            write
                .write_all(format!("line {i:04}\n").as_bytes())
                .await
                .unwrap();
            // Separate writes become separate chunks, each with its own chance of loss.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        write
    });
    let mut lines = BufReader::new(read).lines();
    for i in 0..LINES {
        let line = timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the stream stalled")
            .unwrap()
            .expect("the stream ended early");
        assert_eq!(line, format!("line {i:04}"));
    }
    let _write = writer.await.unwrap();
    // With 40 chunks each way at 50% loss, some chunk was lost (all passing: 2^-80).
    assert!(started.elapsed() >= RTO_MIN, "{:?}", started.elapsed());
}

#[test]
fn the_schedule_never_reorders_and_charges_retransmissions() {
    let mut schedule = Schedule::new(StdRng::seed_from_u64(7));
    let quality = LinkQuality {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(20),
        loss: 0.3,
    };
    let start = tokio::time::Instant::now();
    let mut previous = start;
    for i in 0..1000u64 {
        let now = start + Duration::from_millis(i);
        let at = schedule.delivery(quality, now);
        assert!(
            at >= previous,
            "chunk {i} delivered before the one before it"
        );
        assert!(at >= now, "chunk {i} delivered before it was sent");
        previous = at;
    }
    // Certain loss costs every retransmission, bounded: 200+400+800+1600+1600 ms.
    let mut certain = Schedule::new(StdRng::seed_from_u64(1));
    let lost = LinkQuality {
        loss: 1.0,
        ..LinkQuality::default()
    };
    assert_eq!(
        certain.delivery(lost, start) - start,
        Duration::from_millis(4600)
    );
}

#[tokio::test]
async fn new_connections_follow_a_moved_upstream() {
    let proxy = LinkProxy::start(echo_server().await.to_string())
        .await
        .unwrap();
    let mut before = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(round_trip(&mut before).await);
    let moved = TcpListener::bind("127.0.0.1:0").await.unwrap();
    proxy.set_upstream(moved.local_addr().unwrap().to_string());
    assert_eq!(proxy.upstream(), moved.local_addr().unwrap().to_string());
    let _after = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(timeout(Duration::from_secs(5), moved.accept())
        .await
        .is_ok());
    // The open connection still reaches the old upstream.
    assert!(round_trip(&mut before).await);
}

#[tokio::test]
async fn impossible_loss_is_refused() {
    let proxy = LinkProxy::start(echo_server().await.to_string())
        .await
        .unwrap();
    for loss in [1.5, -0.1, f64::NAN] {
        let quality = LinkQuality {
            loss,
            ..LinkQuality::default()
        };
        let error = proxy.set_quality(Direction::Forward, quality).unwrap_err();
        assert!(error.to_string().contains("between 0 and 1"), "{error}");
    }
    assert!(proxy.quality(Direction::Forward).is_perfect());
}
