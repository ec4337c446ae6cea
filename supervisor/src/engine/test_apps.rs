//! In-process test apps for the engine tests: a counter whose schemas and import behaviour
//! are chosen per type, and latches that hold a call inside `handle`.

use molt_abi::{App, AppError, Request, Response};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::Duration;

/// The shape of a test counter: its schemas and how its import behaves.
pub(crate) trait Shape: Send + Sync + 'static {
    const NAME: &'static str = "counter";
    const SCHEMA: u32;
    const IMPORTS: &'static [u32];
    const EXPORTS: &'static [u32];
    /// How the import hook misbehaves.
    const IMPORT: Import = Import::Fine;
    /// The tick interval (0: no tick hook). A tick adds 1 to the count, and panics when the
    /// count it reached is a multiple of 3.
    const TICK_MS: u32 = 0;
    /// A latch `export_state` waits on before it reads the count (`None`: it does not wait).
    const EXPORT_LATCH: Option<usize> = None;
}

/// Import behaviours.
#[derive(PartialEq, Eq)]
pub(crate) enum Import {
    Fine,
    Fails,
    Panics,
    Hangs,
}

/// A counter whose state is 8 little-endian bytes in every schema.
pub(crate) struct Counter<S>(AtomicU64, PhantomData<S>);

impl<S: Shape> App for Counter<S> {
    const NAME: &'static str = S::NAME;
    const SCHEMA: u32 = S::SCHEMA;
    const IMPORTS: &'static [u32] = S::IMPORTS;
    const EXPORTS: &'static [u32] = S::EXPORTS;
    const TICK_INTERVAL_MS: u32 = S::TICK_MS;

    fn tick(&self) -> Result<(), AppError> {
        let reached = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        assert!(!reached.is_multiple_of(3), "tick panics on purpose at {reached}");
        Ok(())
    }

    fn create() -> Result<Self, AppError> {
        Ok(Counter(AtomicU64::new(0), PhantomData))
    }

    fn handle(&self, req: &Request<'_>) -> Response {
        let segments: Vec<&str> = req.segments().collect();
        match (req.method(), segments.as_slice()) {
            ("POST", ["incr"]) => Response::ok((self.0.fetch_add(1, Ordering::SeqCst) + 1).to_string()),
            ("GET", ["count"]) => Response::ok(self.0.load(Ordering::SeqCst).to_string()),
            ("GET", ["block", n]) => {
                LATCHES[n.parse::<usize>().unwrap_or(0)].enter_and_wait();
                Response::ok("released")
            }
            ("GET", ["boom"]) => panic!("boom on purpose"),
            _ => Response::not_found(),
        }
    }

    fn export_state(&self, _schema: u32) -> Result<Vec<u8>, AppError> {
        if let Some(n) = S::EXPORT_LATCH {
            LATCHES[n].enter_and_wait();
        }
        Ok(self.0.load(Ordering::SeqCst).to_le_bytes().to_vec())
    }

    fn import_state(_schema: u32, state: &[u8]) -> Result<Self, AppError> {
        match S::IMPORT {
            Import::Fine => {}
            Import::Fails => return Err(AppError::new("import refuses on purpose")),
            Import::Panics => panic!("import panics on purpose"),
            Import::Hangs => thread::sleep(Duration::from_secs(3600)),
        }
        let bytes: [u8; 8] = state.try_into().map_err(|_| AppError::new("want 8 bytes"))?;
        Ok(Counter(AtomicU64::new(u64::from_le_bytes(bytes)), PhantomData))
    }
}

macro_rules! shape {
    ($shape:ident, $app:ident, $schema:expr, $imports:expr, $exports:expr) => {
        pub(crate) struct $shape;
        impl Shape for $shape {
            const SCHEMA: u32 = $schema;
            const IMPORTS: &'static [u32] = $imports;
            const EXPORTS: &'static [u32] = $exports;
        }
        pub(crate) type $app = Counter<$shape>;
    };
}

shape!(S1, V1, 1, &[1], &[1]);
shape!(S2, V2, 2, &[1, 2], &[2, 1]);
shape!(S3, V3, 3, &[3], &[3]);
shape!(SNoDown, NoDown, 3, &[1, 3], &[3]);

macro_rules! faulty {
    ($shape:ident, $app:ident, $import:expr) => {
        pub(crate) struct $shape;
        impl Shape for $shape {
            const SCHEMA: u32 = 2;
            const IMPORTS: &'static [u32] = &[1, 2];
            const EXPORTS: &'static [u32] = &[2, 1];
            const IMPORT: Import = $import;
        }
        pub(crate) type $app = Counter<$shape>;
    };
}
faulty!(SFails, FailsImport, Import::Fails);
faulty!(SPanics, PanicsImport, Import::Panics);
faulty!(SHangs, HangsImport, Import::Hangs);

pub(crate) struct STicks;
impl Shape for STicks {
    const SCHEMA: u32 = 2;
    const IMPORTS: &'static [u32] = &[1, 2];
    const EXPORTS: &'static [u32] = &[2, 1];
    const TICK_MS: u32 = 10;
}
pub(crate) type Ticks = Counter<STicks>;

pub(crate) struct SOther;
impl Shape for SOther {
    const NAME: &'static str = "other";
    const SCHEMA: u32 = 1;
    const IMPORTS: &'static [u32] = &[1];
    const EXPORTS: &'static [u32] = &[1];
}

/// A call that blocks in `handle` until the test releases it.
pub(crate) struct Latch {
    state: Mutex<(bool, bool)>,
    cv: Condvar,
}

impl Latch {
    const fn new() -> Latch {
        Latch {
            state: Mutex::new((false, false)),
            cv: Condvar::new(),
        }
    }
    pub(crate) fn enter_and_wait(&self) {
        let mut s = self.state.lock().unwrap();
        s.0 = true;
        self.cv.notify_all();
        while !s.1 {
            s = self.cv.wait(s).unwrap();
        }
    }
    pub(crate) fn wait_entered(&self) {
        let mut s = self.state.lock().unwrap();
        while !s.0 {
            s = self.cv.wait(s).unwrap();
        }
    }
    pub(crate) fn release(&self) {
        self.state.lock().unwrap().1 = true;
        self.cv.notify_all();
    }
}

/// One latch per test that blocks calls, so parallel tests never share one.
pub(crate) static LATCHES: [Latch; 5] = [const { Latch::new() }; 5];

/// A counter whose export waits on `LATCHES[4]`.
pub(crate) struct SSlowExport;

impl Shape for SSlowExport {
    const SCHEMA: u32 = 1;
    const IMPORTS: &'static [u32] = &[1];
    const EXPORTS: &'static [u32] = &[1];
    const EXPORT_LATCH: Option<usize> = Some(4);
}

pub(crate) type SlowExport = Counter<SSlowExport>;
