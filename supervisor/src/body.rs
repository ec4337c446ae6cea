//! Reading a request body on the traffic listener, under three limits: its size, the time it
//! may take to arrive, and a budget of bytes shared by every connection.
//!
//! The app gets a request's body whole (the ABI lends it as one slice), so the front buffers
//! it. Without limits on time and on the total, slow clients could each park a body of up to
//! the size limit in memory for as long as they liked (ten stalled 16 MiB uploads held 175 MB
//! for as long as their clients stayed). A body must arrive within
//! [`crate::front::Limits::body_timeout`] (408 past it), and the bodies being received at once
//! may hold at most [`crate::front::Limits::max_buffered_bodies`] bytes (503 past it, retry
//! later): neither lets a client hold memory past a known bound. Frames that have already
//! arrived are read without arming a timer, so a request whose body came with its head (the
//! common case) pays nothing for the deadline.

use bytes::{Bytes, BytesMut};
use futures_util::FutureExt;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Bytes of request bodies being held, shared by every connection of a listener.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    held: AtomicUsize,
}

/// A part of the [`Budget`], given back when dropped (after the request was served).
#[derive(Debug)]
pub(crate) struct Held {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Held {
    fn new(budget: &Arc<Budget>) -> Held {
        Held {
            budget: Arc::clone(budget),
            bytes: 0,
        }
    }

    /// Takes `more` bytes of the budget if the total stays within `limit`.
    fn take(&mut self, more: usize, limit: usize) -> bool {
        let taken = self
            .budget
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(more).filter(|total| *total <= limit)
            });
        if taken.is_ok() {
            self.bytes += more;
        }
        taken.is_ok()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.held.fetch_sub(self.bytes, Ordering::AcqRel);
        }
    }
}

/// The limits one read works under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimits {
    /// The largest body (413 past it).
    pub max_body: usize,
    /// How long the whole body may take to arrive (408 past it).
    pub timeout: Duration,
    /// The budget's limit (503 past it).
    pub max_buffered: usize,
}

/// Why a body was not read: the status and the text to answer with.
pub(crate) type Refusal = (u16, String);

/// Reads `body` whole under `limits`, holding its bytes in `budget` until the returned
/// [`Held`] is dropped.
pub(crate) async fn read(
    mut body: Incoming,
    limits: BodyLimits,
    budget: &Arc<Budget>,
) -> Result<(Bytes, Held), Refusal> {
    let mut held = Held::new(budget);
    let mut buf = BytesMut::new();
    let deadline = tokio::time::Instant::now() + limits.timeout;
    loop {
        // A frame that is there already is taken without a timer.
        let frame = match body.frame().now_or_never() {
            Some(frame) => frame,
            None => match tokio::time::timeout_at(deadline, body.frame()).await {
                Ok(frame) => frame,
                Err(_) => {
                    return Err((
                        408,
                        format!(
                            "request body not received within {} ({} bytes came)\n",
                            humantime::format_duration(limits.timeout),
                            buf.len()
                        ),
                    ))
                }
            },
        };
        let data = match frame {
            None => break,
            Some(Err(e)) => return Err((400, format!("could not read the request body: {e}\n"))),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => data,
                Err(_trailers) => continue,
            },
        };
        if buf.len() + data.len() > limits.max_body {
            return Err((413, format!("request body over {} bytes\n", limits.max_body)));
        }
        if !held.take(data.len(), limits.max_buffered) {
            return Err((
                503,
                format!(
                    "the server holds {} bytes of request bodies being received, its limit; retry later\n",
                    limits.max_buffered
                ),
            ));
        }
        if buf.is_empty() && hyper::body::Body::is_end_stream(&body) {
            // The whole body in one frame: no copy.
            return Ok((data, held));
        }
        buf.extend_from_slice(&data);
    }
    Ok((buf.freeze(), held))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_shared_and_given_back() {
        let budget = Arc::new(Budget::default());
        let mut a = Held::new(&budget);
        let mut b = Held::new(&budget);
        assert!(a.take(60, 100));
        assert!(!b.take(41, 100), "past the shared limit");
        assert!(b.take(40, 100));
        drop(a);
        assert!(b.take(60, 100), "what a dropped reader held is free again");
        drop(b);
        assert_eq!(budget.held.load(Ordering::Acquire), 0);
    }
}
