//! Accepting connections under limits, for any listener of the supervisor (the traffic front
//! uses it; it also implements [`axum::serve::Listener`] so an axum server can).
//!
//! - **A connection cap.** Each admitted connection holds a permit until it closes. Past the cap
//!   a connection is still accepted — a client left waiting in the kernel's backlog learns
//!   nothing — but answered at once with `503 Service Unavailable`, a one-line body that says
//!   why, and `Connection: close`. At most [`MAX_REJECTING`] such answers are in progress at
//!   once (each lingers up to [`REJECT_LINGER`] so the client reads it before the socket
//!   closes); beyond that, extra connections are closed without a word.
//! - **Accept errors never spin.** Running out of file descriptors (`EMFILE`, `ENFILE`) or
//!   kernel memory leaves the pending connection in the backlog, and the socket stays readable:
//!   retrying at once would burn a core. The acceptor backs off (10 ms doubling to 1 s, reset by
//!   the next success) and logs once per episode (an episode ends at the first success a second
//!   after the last failure); connections already open keep being served meanwhile (they are
//!   other tasks), and accepting resumes as soon as descriptors free up.
//!   Errors that concern only the one connection (reset or aborted before accept) are skipped
//!   at once.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many over-cap connections may be answered (503) at once; the rest are just closed.
pub const MAX_REJECTING: usize = 64;

/// How long an over-cap connection is kept after its 503, reading (and dropping) what the
/// client sent, so that closing does not reset the connection before the client reads the
/// answer.
pub const REJECT_LINGER: Duration = Duration::from_millis(500);

/// The first and the longest pause after a failed `accept`.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// A failing episode ends at the first accept this long after the last failure (descriptors
/// freed one at a time make accept succeed and fail in turn: one warning, not one per turn).
const EPISODE_QUIET: Duration = Duration::from_secs(1);

/// The connection cap molt uses when none is given: half the process's file-descriptor limit
/// (the rest stay for the control API, snapshots, libraries and logs), between 64 and 16,384.
pub fn default_max_connections() -> usize {
    let limit = open_files_limit().unwrap_or(1024);
    usize::try_from(limit / 2).unwrap_or(usize::MAX).clamp(64, 16_384)
}

/// The soft `RLIMIT_NOFILE` of this process, from `/proc/self/limits` (no `unsafe` needed).
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    match soft {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

/// A listener that admits at most a fixed number of open connections and backs off on
/// accept errors (module docs).
pub struct Acceptor {
    listener: TcpListener,
    what: &'static str,
    max: usize,
    permits: Arc<Semaphore>,
    rejecting: Arc<Semaphore>,
    rejected: Arc<AtomicU64>,
    /// The next pause after a failed accept.
    backoff: Duration,
    /// When accept last failed, while a failing episode lasts (module docs).
    failing: Option<Instant>,
}

/// An admitted connection: the stream and the permit it holds until dropped. Reads and
/// writes go to the stream.
#[derive(Debug)]
pub struct Admitted {
    /// The connection.
    pub stream: TcpStream,
    /// The client's address.
    pub peer: SocketAddr,
    _permit: OwnedSemaphorePermit,
}

impl Acceptor {
    /// Accepts on `listener` (named `what` in logs and answers, e.g. "app traffic"), with at
    /// most `max_connections` open at once.
    pub fn new(listener: TcpListener, what: &'static str, max_connections: usize) -> Acceptor {
        let max = max_connections.max(1);
        Acceptor {
            listener,
            what,
            max,
            permits: Arc::new(Semaphore::new(max)),
            rejecting: Arc::new(Semaphore::new(MAX_REJECTING)),
            rejected: Arc::new(AtomicU64::new(0)),
            backoff: BACKOFF.0,
            failing: None,
        }
    }

    /// The cap.
    pub fn max_connections(&self) -> usize {
        self.max
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max - self.permits.available_permits()
    }

    /// A shared count of connections refused for being over the cap.
    pub fn rejected(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.rejected)
    }

    /// The next connection under the cap. Never returns an error: failures are logged and
    /// retried after a back-off; over-cap connections are answered and closed.
    pub async fn accept(&mut self) -> Admitted {
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(accepted) => {
                    self.backoff = BACKOFF.0;
                    if self.failing.is_some_and(|last| last.elapsed() >= EPISODE_QUIET) {
                        self.failing = None;
                        tracing::info!(listener = self.what, "accepting connections again");
                    }
                    accepted
                }
                Err(e) if per_connection(&e) => continue,
                Err(e) => {
                    if self.failing.is_none() {
                        tracing::warn!(
                            listener = self.what,
                            error = %e,
                            open = self.open(),
                            "cannot accept connections; backing off while the open ones are served"
                        );
                    }
                    self.failing = Some(Instant::now());
                    let pause = self.backoff;
                    self.backoff = (pause * 2).min(BACKOFF.1);
                    tokio::time::sleep(pause).await;
                    continue;
                }
            };
            match Arc::clone(&self.permits).try_acquire_owned() {
                Ok(permit) => {
                    return Admitted {
                        stream,
                        peer,
                        _permit: permit,
                    }
                }
                Err(_) => self.reject(stream, peer),
            }
        }
    }

    fn reject(&self, mut stream: TcpStream, peer: SocketAddr) {
        let total = self.rejected.fetch_add(1, Ordering::Relaxed) + 1;
        if total.is_power_of_two() {
            tracing::warn!(
                listener = self.what,
                %peer,
                cap = self.max,
                refused_so_far = total,
                "connection cap reached: answering 503 and closing"
            );
        }
        let Ok(lingering) = Arc::clone(&self.rejecting).try_acquire_owned() else {
            return; // Dropped: closed without an answer.
        };
        let body = format!(
            "{} is at its cap of {} open connections; retry later\n",
            self.what, self.max
        );
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
             content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        tokio::spawn(async move {
            let _lingering = lingering;
            let _ = tokio::time::timeout(REJECT_LINGER, async {
                stream.write_all(answer.as_bytes()).await?;
                stream.shutdown().await?;
                let mut sink = [0u8; 1024];
                while stream.read(&mut sink).await? > 0 {}
                io::Result::Ok(())
            })
            .await;
        });
    }
}

/// Errors about one connection that went away before it was accepted: skip it, no back-off.
fn per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused
    )
}

impl axum::serve::Listener for Acceptor {
    type Io = Admitted;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Admitted, SocketAddr) {
        let admitted = Acceptor::accept(self).await;
        let peer = admitted.peer;
        (admitted, peer)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

impl AsyncRead for Admitted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Admitted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn the_fd_limit_is_read() {
        let limit = open_files_limit().expect("/proc/self/limits names the open files limit");
        assert!(limit >= 64, "{limit}");
        assert!((64..=16_384).contains(&default_max_connections()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn past_the_cap_a_client_gets_a_503_and_the_admitted_keep_working() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut acceptor = Acceptor::new(listener, "test traffic", 2);
        let rejected = acceptor.rejected();
        let (admitted_tx, mut admitted_rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                let conn = acceptor.accept().await;
                if admitted_tx.send(conn).is_err() {
                    break;
                }
            }
        });
        let clients = tokio::task::spawn_blocking(move || {
            let first = std::net::TcpStream::connect(addr).unwrap();
            let second = std::net::TcpStream::connect(addr).unwrap();
            let mut third = std::net::TcpStream::connect(addr).unwrap();
            third.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
            third.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut answer = String::new();
            third.read_to_string(&mut answer).unwrap();
            (first, second, answer)
        });
        let mut held = vec![
            admitted_rx.recv().await.unwrap(),
            admitted_rx.recv().await.unwrap(),
        ];
        let (mut first, _second, answer) = clients.await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
        assert!(
            answer.ends_with("test traffic is at its cap of 2 open connections; retry later\n"),
            "{answer}"
        );
        assert_eq!(rejected.load(Ordering::Relaxed), 1);
        // The admitted connections still talk.
        first.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        held[0].stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        // A closed admitted connection frees its place.
        held.pop();
        let fourth = tokio::task::spawn_blocking(move || std::net::TcpStream::connect(addr).unwrap());
        let _fourth = fourth.await.unwrap();
        let admitted = tokio::time::timeout(Duration::from_secs(10), admitted_rx.recv())
            .await
            .expect("the freed place admits the next connection")
            .unwrap();
        assert_eq!(rejected.load(Ordering::Relaxed), 1);
        drop(admitted);
    }
}
