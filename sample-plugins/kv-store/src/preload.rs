//! `POST /preload?keys=N&size=BYTES`: fills keys `k0` .. `k{N-1}` with deterministic
//! `BYTES`-byte values in one call, so the state can be sized without one request per key.

use crate::shard::{shard_of, Entry, SHARDS};
use crate::store::Store;
use molt_abi::{Request, Response};

/// Upper bound, in bytes, of what one `POST /preload` may create (keys and values).
pub const PRELOAD_LIMIT: u64 = 64 << 30;

/// The deterministic value `POST /preload` stores under key `k{index}`: byte `j` is
/// `b'a' + (index + j) % 26`.
pub fn preload_value(index: u64, size: usize) -> Vec<u8> {
    let start = (index % 26) as usize;
    (0..size).map(|j| b'a' + ((start + j) % 26) as u8).collect()
}

/// Appends the decimal digits of `n` without allocating.
fn push_decimal(out: &mut String, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(d as char);
    }
}

impl<V: Entry + Send + Sync> Store<V> {
    /// Fills keys `k0..k{keys-1}` with deterministic `size`-byte values ([`preload_value`]),
    /// each a write through [`crate::Shard::put`].
    ///
    /// The values are built from one template (a copy per key, no per-byte work), and the
    /// shards are filled in parallel by scoped threads, all joined before this returns.
    pub fn preload(&self, keys: u64, size: usize) {
        let template: Vec<u8> = preload_value(0, size + 26);
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, SHARDS);
        std::thread::scope(|scope| {
            for worker in 0..workers {
                let template = &template;
                scope.spawn(move || {
                    let mine: Vec<usize> = (worker..SHARDS).step_by(workers).collect();
                    let mut guards: Vec<_> = mine.iter().map(|&s| self.lock(s).write()).collect();
                    // Shard number → index in `guards`, for the shards this worker fills.
                    let mut slot = [usize::MAX; SHARDS];
                    for (i, &s) in mine.iter().enumerate() {
                        slot[s] = i;
                    }
                    for guard in guards.iter_mut() {
                        guard.reserve_total(keys as usize / SHARDS);
                    }
                    let mut name = String::with_capacity(24);
                    for i in 0..keys {
                        name.clear();
                        name.push('k');
                        push_decimal(&mut name, i);
                        if let Some(guard) = guards.get_mut(slot[shard_of(name.as_bytes())]) {
                            let start = (i % 26) as usize;
                            guard.put(&name, template[start..start + size].to_vec());
                        }
                    }
                });
            }
        });
    }

    /// Checks the query of a `POST /preload` and runs it; on a bad request, the error
    /// response (`400` for a missing or bad parameter, `413` over the limits).
    pub fn handle_preload(&self, req: &Request<'_>) -> Result<(), Response> {
        let param = |name: &str| -> Result<u64, Response> {
            req.query_param(name)
                .ok_or_else(|| Response::new(400, format!("missing query parameter {name}\n")))?
                .parse::<u64>()
                .map_err(|e| Response::new(400, format!("bad {name}: {e}\n")))
        };
        let (keys, size) = match (param("keys"), param("size")) {
            (Ok(keys), Ok(size)) => (keys, size),
            (Err(resp), _) | (_, Err(resp)) => return Err(resp),
        };
        if size > u64::from(u32::MAX) {
            return Err(Response::new(413, "size is over u32::MAX bytes\n"));
        }
        // Each key name is at most 21 bytes (`k` and 20 digits).
        let total = keys.checked_mul(size + 21);
        if !matches!(total, Some(t) if t <= PRELOAD_LIMIT) {
            return Err(Response::new(
                413,
                format!("preload over the limit of {PRELOAD_LIMIT} bytes\n"),
            ));
        }
        self.preload(keys, size as usize);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        for n in [0, 7, 10, 12345, u64::MAX] {
            let mut s = String::from("k");
            push_decimal(&mut s, n);
            assert_eq!(s, format!("k{n}"));
        }
    }

    #[test]
    fn preload_values_cycle() {
        assert_eq!(preload_value(0, 3), b"abc");
        assert_eq!(preload_value(27, 3), b"bcd");
    }
}
