//! Panics inside hooks: caught by the shims, described in one line, and never a backtrace.
//!
//! A panic in a hook is caught with `catch_unwind` and its message travels back to the host
//! as the hook's error. Before unwinding starts, though, std runs the *panic hook*, and the
//! default one prints the message and, when `RUST_BACKTRACE` is set, captures and symbolises a
//! backtrace: hundreds of milliseconds, and an import or export hook runs while the
//! supervisor holds traffic paused. So the shims install a hook of their own that records only
//! where the panic happened (a few bytes, no allocation) and leaves reporting to the host,
//! which logs the message once.
//!
//! Why a hook of our own and not `RUST_BACKTRACE=0`: the environment is the whole process's
//! (the supervisor's own panics should keep their backtraces), and std reads it once and
//! caches it. A plugin built as a `cdylib` links its own copy of std, so the hook installed
//! here is the plugin's alone; where the shims run inside another binary (a test, or an app
//! linked into the supervisor in process), panics outside a shim call still go to the hook
//! that was there before.
//!
//! Nothing here may keep the library mapped after `destroy`: the thread-locals are `const`
//! `Cell`s of plain data, which register no TLS destructor.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

/// Bytes of the panicking file's path kept (the tail, where the file name is).
const FILE_BYTES: usize = 96;

thread_local! {
    /// How many shim calls are running on this thread (nested only if a hook calls a shim).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// Where the last panic in a shim on this thread happened: path tail, its length, line.
    static WHERE: Cell<([u8; FILE_BYTES], usize, u32)> = const { Cell::new(([0; FILE_BYTES], 0, 0)) };
}

static INSTALL: Once = Once::new();

fn install() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if DEPTH.with(Cell::get) == 0 {
                return previous(info);
            }
            let (file, line) = info
                .location()
                .map(|l| (l.file().as_bytes(), l.line()))
                .unwrap_or((&[], 0));
            let tail = &file[file.len().saturating_sub(FILE_BYTES)..];
            let mut kept = [0; FILE_BYTES];
            kept[..tail.len()].copy_from_slice(tail);
            WHERE.with(|w| w.set((kept, tail.len(), line)));
        }));
    });
}

/// Runs `f`, catching a panic: `Err` holds the message with where it happened, e.g.
/// `panicked at src/lib.rs:12: boom`. No backtrace is captured and nothing is printed.
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install();
    DEPTH.with(|d| d.set(d.get() + 1));
    WHERE.with(|w| w.set(([0; FILE_BYTES], 0, 0)));
    let result = catch_unwind(AssertUnwindSafe(f));
    DEPTH.with(|d| d.set(d.get() - 1));
    result.map_err(|payload| {
        let (file, len, line) = WHERE.with(Cell::get);
        let text = payload_text(payload.as_ref());
        if len == 0 {
            format!("panicked: {text}")
        } else {
            format!(
                "panicked at {}:{line}: {text}",
                String::from_utf8_lossy(&file[..len])
            )
        }
    })
}

/// The text of a panic payload (`&str` or `String`, as `panic!` makes them).
pub(crate) fn payload_text(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(a non-string payload)"
    }
}

#[cfg(test)]
mod tests {
    use super::catch;

    #[test]
    fn a_caught_panic_keeps_its_message_and_place() {
        let err = catch(|| -> u32 { panic!("boom {}", 7) }).unwrap_err();
        assert!(err.starts_with("panicked at "), "{err}");
        assert!(err.ends_with(": boom 7"), "{err}");
        assert!(err.contains("panic.rs:"), "the file is named: {err}");
        assert_eq!(catch(|| 5), Ok(5));
    }
}
