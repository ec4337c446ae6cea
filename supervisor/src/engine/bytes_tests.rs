//! The bytes path: a swap's import reads the very buffer the export wrote, with no copy by
//! the host in between, and may keep it; the next export's buffer is sized from the last.

use super::{Engine, EngineConfig};
use crate::loader::Plugin;
use molt_abi::{App, AppError, Request, Response, StateBuf, StateWriter, Tables};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Where the last `export_into` wrote, and where the last `import_shared` read from.
static EXPORTED_AT: AtomicUsize = AtomicUsize::new(0);
static IMPORTED_FROM: AtomicUsize = AtomicUsize::new(0);
/// One test at a time uses the statics above.
static SERIAL: Mutex<()> = Mutex::new(());

/// An app whose state is a block of bytes it keeps as it was imported.
struct Keeper {
    state: Vec<u8>,
    kept: Option<StateBuf>,
}

impl Keeper {
    fn bytes(&self) -> &[u8] {
        self.kept.as_deref().unwrap_or(&self.state)
    }
}

impl App for Keeper {
    const NAME: &'static str = "keeper";
    const SCHEMA: u32 = 1;

    fn create() -> Result<Self, AppError> {
        let state = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        Ok(Keeper { state, kept: None })
    }

    fn handle(&self, req: &Request<'_>) -> Response {
        match req.path() {
            "/at" => Response::ok(format!("{}", self.bytes().as_ptr() as usize)),
            "/sum" => Response::ok(format!(
                "{}",
                self.bytes().iter().map(|&b| u64::from(b)).sum::<u64>()
            )),
            _ => Response::not_found(),
        }
    }

    fn export_state(&self, _schema: u32) -> Result<Vec<u8>, AppError> {
        Ok(self.bytes().to_vec())
    }

    fn export_into(&self, _schema: u32, out: &mut StateWriter<'_>) -> Result<(), AppError> {
        out.extend_from_slice(self.bytes());
        EXPORTED_AT.store(out.written_mut().as_ptr() as usize, Ordering::SeqCst);
        Ok(())
    }

    fn import_state(_schema: u32, state: &[u8]) -> Result<Self, AppError> {
        Ok(Keeper {
            state: state.to_vec(),
            kept: None,
        })
    }

    fn import_shared(_tables: Tables, _schema: u32, state: StateBuf) -> Result<Self, AppError> {
        IMPORTED_FROM.store(state.as_ptr() as usize, Ordering::SeqCst);
        Ok(Keeper {
            state: Vec::new(),
            kept: Some(state),
        })
    }
}

fn get(engine: &Engine, path: &str) -> String {
    engine
        .handle(&Request::new("GET", path, "", &[], b""))
        .response
        .text()
}

#[test]
fn a_swap_imports_the_export_buffer_itself_and_the_new_instance_keeps_it() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let engine = Engine::start(Plugin::from_app::<Keeper>("1.0.0"), None, EngineConfig::default()).unwrap();
    let sum = get(&engine, "/sum");
    for version in ["2.0.0", "3.0.0", "4.0.0"] {
        let report = engine.swap(Plugin::from_app::<Keeper>(version)).unwrap();
        assert_eq!(report.state_bytes, 300_000);
        let (exported, imported) = (
            EXPORTED_AT.load(Ordering::SeqCst),
            IMPORTED_FROM.load(Ordering::SeqCst),
        );
        assert_ne!(exported, 0);
        assert_eq!(
            exported, imported,
            "the import got the buffer the export wrote, not a copy"
        );
        assert_eq!(
            get(&engine, "/at"),
            imported.to_string(),
            "the new instance serves from that buffer"
        );
        assert_eq!(get(&engine, "/sum"), sum, "the state moved whole");
    }
}

#[test]
fn a_snapshot_export_is_read_where_the_export_wrote_it() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let engine = Engine::start(Plugin::from_app::<Keeper>("1.0.0"), None, EngineConfig::default()).unwrap();
    let exported = engine.export_state().unwrap();
    assert_eq!(exported.state.bytes.held_in(), "region");
    assert_eq!(
        exported.state.bytes.as_ptr() as usize,
        EXPORTED_AT.load(Ordering::SeqCst)
    );
    assert_eq!(exported.state.bytes.len(), 300_000);
}
