//! A panic inside a hook runs no backtrace-capturing panic hook; one outside still does.
//!
//! Its own test binary (one process): the panic hook is process-wide, and this test installs
//! a counting hook before the shims install theirs on top of it.

use molt_abi::{descriptor, App, AppError, OwnedBuf, RawResponse, Request, Response, STATUS_PANIC};
use std::sync::atomic::{AtomicU32, Ordering};

struct Boom;

impl App for Boom {
    const NAME: &'static str = "boom";
    const SCHEMA: u32 = 1;
    fn create() -> Result<Self, AppError> {
        Ok(Boom)
    }
    fn handle(&self, _req: &Request<'_>) -> Response {
        panic!("secret detail")
    }
    fn export_state(&self, _schema: u32) -> Result<Vec<u8>, AppError> {
        panic!("export broke")
    }
    fn import_state(_schema: u32, _state: &[u8]) -> Result<Self, AppError> {
        Ok(Boom)
    }
}

static PREVIOUS_HOOK_RAN: AtomicU32 = AtomicU32::new(0);

#[test]
fn panics_in_shims_skip_the_previous_hook_and_keep_the_message() {
    // The "previous" hook stands for std's default one, which captures a backtrace when
    // RUST_BACKTRACE is set: inside a shim it must not run at all.
    std::panic::set_hook(Box::new(|_| {
        PREVIOUS_HOOK_RAN.fetch_add(1, Ordering::SeqCst);
    }));
    let d = descriptor::<Boom>("1.0.0");
    let mut app = std::ptr::null_mut();
    let mut err = OwnedBuf::EMPTY;
    // SAFETY: the host contract: out-pointers are our locals, valid for writes.
    assert_eq!(unsafe { (d.create)(&mut app, &mut err) }, 0);

    let mut raw = RawResponse {
        status: 0,
        headers: OwnedBuf::EMPTY,
        body: OwnedBuf::EMPTY,
    };
    let req = Request::new("GET", "/", "", &[], b"");
    // SAFETY: `app` was built by this descriptor's `create`; `req` and `raw` are our locals.
    let status = unsafe { (d.handle)(app, &req, &mut raw) };
    assert_eq!((status, raw.status), (STATUS_PANIC, 500));
    // SAFETY: the body was just handed out by the plugin's shim and is freed right after.
    let body = String::from_utf8(unsafe { raw.body.as_slice() }.to_vec()).unwrap();
    assert!(
        body.starts_with("panicked at ") && body.ends_with(": secret detail"),
        "{body}"
    );
    // SAFETY: buffers handed out by the shim, each given back once.
    unsafe {
        (d.free_buffer)(raw.body);
        (d.free_buffer)(raw.headers);
    }

    let mut out = OwnedBuf::EMPTY;
    // SAFETY: as above.
    let status = unsafe { (d.export_state)(app, 1, &mut out) };
    assert_eq!(status, STATUS_PANIC);
    // SAFETY: as above.
    let message = String::from_utf8(unsafe { out.as_slice() }.to_vec()).unwrap();
    assert!(message.ends_with(": export broke"), "{message}");
    // SAFETY: as above; `app` is destroyed once, after its last call.
    unsafe {
        (d.free_buffer)(out);
        (d.destroy)(app);
    }
    assert_eq!(
        PREVIOUS_HOOK_RAN.load(Ordering::SeqCst),
        0,
        "no hook ran inside the shims"
    );

    // Outside a shim the previous hook still runs (the shims' hook chains to it).
    let _ = std::panic::catch_unwind(|| panic!("outside"));
    assert_eq!(PREVIOUS_HOOK_RAN.load(Ordering::SeqCst), 1);
}
