//! Handoff: moving a departing supervisor's state into a live peer, exactly once or not at all
//! (docs/DESIGN.md, "Handoff").
//!
//! The departing supervisor goes unready (a Service stops routing to it), waits for that to
//! propagate, seals its traffic (in-flight requests drain; later ones are answered 503) and
//! exports its state, which it keeps. The receiver merges that state through the running
//! version's merge hook, records the handoff id in a snapshot, and answers. Only then does the
//! departing supervisor commit: it writes a snapshot that records the handoff, so a restart of
//! it does not serve the state again. Any failure before the receiver merged aborts: the
//! departing supervisor unseals and is ready again, its state untouched.
//!
//! The receiver's record of the id decides every doubt. A retried merge of a recorded id is
//! answered "already absorbed", never applied twice. When the answer to a merge is lost
//! (connection cut, receiver restarted), the coordinator asks the receiver about the id with
//! `fence`: an id it has not absorbed is fenced (refused from then on) and the handoff aborts;
//! an id it has absorbed commits.
//!
//! - [`wire`]: what the control calls carry (shared by the server and the client);
//! - [`plan`]: the coordinator behind `molt handoff` and `molt run --handoff-on-stop`: the steps,
//!   their deadlines and timings, and what happens on a failure;
//! - [`peer`]: choosing a live peer behind `dns+http://NAME:PORT` other than oneself.

pub mod peer;
pub mod plan;
pub mod wire;

pub use plan::{Departing, HandoffFailure, HandoffOptions, HandoffReport, StepTiming};
pub use wire::{AbsorbQuery, Absorbed, Begun, Done, HandoffInfo, HandoffStep, Phase, Refused, StateHeaders};

/// A fresh handoff id: `h-<unix ms>-<16 hex digits from the OS's random source>`.
pub fn new_id() -> String {
    use std::io::Read;
    let mut random = [0u8; 8];
    let seeded = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut random));
    if seeded.is_err() {
        // No /dev/urandom: the process id and the clock's nanoseconds still make a clash
        // between two handoffs of one cluster implausible.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        random = ((u64::from(std::process::id()) << 32) | u64::from(nanos)).to_le_bytes();
    }
    format!("h-{}-{}", unix_ms(), hex::encode(random))
}

/// Whether `id` is a handoff id molt accepts: 1 to 100 characters of `[A-Za-z0-9._-]`.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The longest control URL (`to`) or peer name (`from`) a handoff call accepts, in bytes.
pub const MAX_PEER_LEN: usize = 2048;

/// Whether `url` is a receiver's control URL molt accepts (`to`): `http://` or `https://`,
/// at most [`MAX_PEER_LEN`] bytes of visible ASCII. It is written into snapshot headers, so
/// its size is bounded here, where it arrives.
pub fn valid_url(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://"))
        && url.len() <= MAX_PEER_LEN
        && url.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether `from` names a peer as molt accepts it: 1 to [`MAX_PEER_LEN`] bytes with no
/// control character (a control URL, or a label such as `molt absorb`'s `snapshot PATH`).
pub fn valid_peer(from: &str) -> bool {
    !from.is_empty() && from.len() <= MAX_PEER_LEN && !from.chars().any(char::is_control)
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_fresh_and_valid() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(a, b);
        assert!(valid_id(&a) && valid_id(&b), "{a} {b}");
        for bad in ["", "a b", "../x", "x\n", &"x".repeat(101)] {
            assert!(!valid_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn peer_urls_are_bounded_visible_http_urls() {
        let long = format!("http://{}", "a".repeat(MAX_PEER_LEN));
        for good in ["http://10.0.0.1:7070", "https://pod-0.molt:7070/x"] {
            assert!(valid_url(good) && valid_peer(good), "{good}");
        }
        assert!(valid_peer("snapshot /mnt/pvc é/state") && !valid_peer(&long));
        for bad in ["", "10.0.0.1:7070", "http://a b", "http://\u{1}", &long] {
            assert!(!valid_url(bad), "{bad:?}");
        }
        assert!(valid_peer("molt-absorb"));
        assert!(!valid_peer("a\tb") && !valid_peer(""));
    }
}
