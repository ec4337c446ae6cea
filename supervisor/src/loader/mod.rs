//! The loader: the only module of the supervisor that uses `unsafe`.
//!
//! [`Plugin::load`] copies a library from the release volume into a private run directory,
//! `dlopen`s the copy, reads its [`Descriptor`] through the one entry symbol and checks it
//! (magic, ABI version, descriptor size, name, version, schema). What comes out is a
//! [`Plugin`]: owned metadata ([`PluginInfo`]) and the descriptor's function pointers, kept
//! next to the library they point into. [`Instance`] is a safe handle on one app value built by
//! a plugin; it holds an `Arc<Plugin>`, so a library is unmapped only after the last instance
//! built from it, and the last call into it, are gone.
//!
//! Like libloading's `Symbol<'lib, T>`, no function pointer outlives its library: the
//! pointers are copied out of the descriptor into a private table that lives in the same
//! struct as the library and is never handed out.
//!
//! # Trust
//! Loading a library runs its initialisers and every later call runs its code: "conceptually
//! the same as calling an unknown foreign function" (libloading). So [`Plugin::load`] is an
//! `unsafe fn`; inside this crate the daemon loads only releases that passed the volume's
//! checks, and inspection of anything else ([`crate::inspect`]) loads it in a child process.
//! Before anything is opened, the loader hashes the bytes it copies (the bytes loaded are the
//! bytes hashed) and pre-checks them ([`precheck`], no code run). A plugin that lies about its
//! descriptor, or breaks the ABI rules, can crash the process; one that merely errs or panics
//! in a hook cannot.

mod copy;
mod elf;
mod error;
mod host;
mod instance;
mod kind;
mod leaks;
mod memory;
mod record;
mod region;
mod state;

pub use elf::{precheck_bytes, ElfError, ElfFacts};
pub use error::{Hook, HookError, HookErrorKind, LoadError};
pub use instance::Instance;
pub use leaks::{is_mapped, left_mapped, LeftMapped};
pub use memory::release_free_memory;
pub use record::Direction;
pub use region::Region;
pub use state::StateBytes;

/// Pre-checks a library file without running any of it: opened as an untrusted regular file
/// (at most [`crate::untrusted::MAX_LIBRARY`] bytes), read with the `object` crate. See
/// [`ElfFacts`] for what it learns and [`ElfError`] for what it refuses.
pub fn precheck(library: &Path) -> Result<ElfFacts, LoadError> {
    kind::check(library)?;
    let opened = crate::untrusted::open(library, None, crate::untrusted::MAX_LIBRARY).map_err(|e| {
        LoadError::Unreadable {
            library: library.to_owned(),
            source: e,
        }
    })?;
    elf::precheck(&opened.file).map_err(|source| LoadError::Elf {
        library: library.to_owned(),
        source,
    })
}

use crate::tables::TableStore;
use copy::RunCopy;
use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use molt_abi::{
    App, CreateFn, CreateInFn, Descriptor, DestroyFn, ExportFn, FreeBufferFn, HandleFn, HealthFn, ImportFn,
    ImportInFn, MergeFn, RecordFn, TickFn, ABI_MAGIC, ABI_VERSIONS, DESCRIPTOR_V1_SIZE, ENTRY_SYMBOL,
};
use std::fmt;
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `name version` of a descriptor built against another ABI version, for the refusal's
/// message; `None` when its size does not cover those fields or they are not short UTF-8.
///
/// # Safety
/// `ptr` points at a descriptor with molt's magic whose fixed header says `size` bytes.
/// Descriptor fields are only ever appended (the ABI's rule for every version), so `name` and
/// `version` sit where this build's `Descriptor` has them in every version that has them.
unsafe fn app_label(ptr: *const Descriptor, size: u32) -> Option<String> {
    let end = std::mem::offset_of!(Descriptor, version) + std::mem::size_of::<molt_abi::Bytes<'static>>();
    if (size as usize) < end {
        return None;
    }
    // SAFETY: the caller's promise and the size check: both fields lie inside the descriptor.
    let (name, version) = unsafe {
        (
            std::ptr::addr_of!((*ptr).name).read(),
            std::ptr::addr_of!((*ptr).version).read(),
        )
    };
    if name.len() > 256 || version.len() > 256 {
        return None;
    }
    // Both are `'static` strings of the plugin's, whose library is open while this runs.
    let text = |b: molt_abi::Bytes<'static>| std::str::from_utf8(b.as_slice()).ok().map(str::to_owned);
    Some(format!("app {} {}", text(name)?, text(version)?))
}

/// What a plugin says about itself, copied out of its descriptor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PluginInfo {
    /// App name, the same across all versions of one app.
    pub name: String,
    /// App version.
    pub version: String,
    /// The state schema this version keeps.
    pub state_schema: u32,
    /// Schemas it can import.
    pub imports: Vec<u32>,
    /// Schemas it can export.
    pub exports: Vec<u32>,
    /// The schema of the records it keeps in tables (0: none; ABI version 2).
    pub table_schema: u32,
    /// Older table schemas it upgrades records from.
    pub table_upgrades: Vec<u32>,
    /// Older table schemas it downgrades records to.
    pub table_downgrades: Vec<u32>,
    /// How often it wants its `tick` hook called, in milliseconds (0: it has none).
    pub tick_interval_ms: u32,
    /// The ABI version it was built against.
    pub abi_version: u32,
    /// Schemas its merge hook absorbs a peer's state in; empty when it has no merge hook.
    pub merges: Vec<u32>,
    /// Where it was loaded from (the release volume, not the private copy).
    pub library: PathBuf,
    /// The SHA-256 (lowercase hex) of the bytes that were loaded; empty for an app compiled
    /// into this binary.
    #[serde(default)]
    pub sha256: String,
}

/// What a release promises about its library (from its manifest); `None` checks nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expect {
    /// The app name.
    pub name: Option<String>,
    /// The app version.
    pub version: Option<String>,
    /// The state schema.
    pub state_schema: Option<u32>,
    /// The library's SHA-256 (lowercase hex), checked against the bytes copied and loaded.
    pub sha256: Option<String>,
}

impl Expect {
    /// Expects nothing: any valid molt plugin loads.
    pub fn any() -> Self {
        Self::default()
    }
}

/// The function pointers of one plugin, copied out of its descriptor.
#[derive(Clone, Copy)]
pub(crate) struct Hooks {
    pub(crate) create: CreateFn,
    pub(crate) handle: HandleFn,
    pub(crate) export_state: ExportFn,
    pub(crate) import_state: ImportFn,
    pub(crate) health: HealthFn,
    pub(crate) destroy: DestroyFn,
    pub(crate) free_buffer: FreeBufferFn,
    pub(crate) create_in: Option<CreateInFn>,
    pub(crate) import_in: Option<ImportInFn>,
    pub(crate) upgrade_record: Option<RecordFn>,
    pub(crate) downgrade_record: Option<RecordFn>,
    pub(crate) tick: Option<TickFn>,
    /// `None` when the plugin has no merge hook, or its descriptor ends before the field
    /// (it then reads as zero: see `checked`).
    pub(crate) merge_state: Option<MergeFn>,
    /// `None` when the plugin's descriptor ends before the field (built before it).
    pub(crate) export_into: Option<molt_abi::ExportIntoFn>,
    /// `None` when the plugin's descriptor ends before the field (built before it).
    pub(crate) import_shared: Option<molt_abi::ImportSharedFn>,
}

impl Hooks {
    fn of(d: &Descriptor) -> Hooks {
        Hooks {
            merge_state: d.merge_state,
            export_into: d.export_into,
            import_shared: d.import_shared,
            create: d.create,
            handle: d.handle,
            export_state: d.export_state,
            import_state: d.import_state,
            health: d.health,
            destroy: d.destroy,
            free_buffer: d.free_buffer,
            create_in: d.create_in,
            import_in: d.import_in,
            upgrade_record: d.upgrade_record,
            downgrade_record: d.downgrade_record,
            tick: d.tick.filter(|_| d.tick_interval_ms > 0),
        }
    }
}

/// One loaded version of an app: its metadata, its function pointers and its library.
///
/// Always used behind an `Arc`: every [`Instance`] holds one, so the library stays mapped as
/// long as any instance (and so any call) can reach it.
pub struct Plugin {
    info: PluginInfo,
    id: String,
    /// Pointers into `library`. Field order matters: fields drop in declaration order, so the
    /// pointers go before the library they point into. They are never handed out of this
    /// module, so nothing else can keep one past the library either.
    pub(crate) hooks: Hooks,
    /// The `dlopen` handle, closed when the plugin drops. `None` for an in-process app
    /// ([`Plugin::from_app`]), whose code is part of this binary.
    _library: Option<Library>,
    /// The private copy `_library` mapped (deleted since; the mapping keeps its name), to
    /// check after `dlclose` that it is really gone (see `leaks`).
    copy: Option<PathBuf>,
}

impl Drop for Plugin {
    fn drop(&mut self) {
        if let Some(library) = self._library.take() {
            if let Err(e) = library.close() {
                tracing::warn!(release = %self.id, error = %e, "dlclose failed");
            }
            if let Some(copy) = &self.copy {
                leaks::after_close(&self.id, copy);
            }
        }
    }
}

type EntryFn = unsafe extern "C" fn() -> *const Descriptor;

impl Plugin {
    /// Loads a plugin: copies `library` into `run_dir` under a fresh name (hashing the bytes
    /// as they are copied), checks the copy's sha256 against `expect`, pre-checks the copy's
    /// ELF headers ([`precheck`]), `dlopen`s the copy (`RTLD_NOW | RTLD_LOCAL`: every symbol
    /// resolved now, none shared with other versions), removes it (the mapping stays), and
    /// checks the descriptor against the ABI and against `expect`.
    ///
    /// # Safety
    /// Opening a library runs its constructors, and every later call through the plugin runs
    /// its code: the library must be a molt app built with `molt_abi::export_app!` that keeps
    /// the ABI's rules (see the module docs, "Trust"). Code that merely errs or panics in a
    /// hook is caught; a constructor that exits, crashes or hangs takes the caller with it, so
    /// inspect libraries you do not trust with [`crate::inspect`], in a child process.
    pub unsafe fn load(library: &Path, run_dir: &Path, expect: &Expect) -> Result<Arc<Plugin>, LoadError> {
        Self::load_trusted(library, run_dir, expect)
    }

    /// [`Plugin::load`] for this crate's own callers, which load only what they are meant to
    /// run: a release that passed the volume's checks (the daemon), or a library inside the
    /// inspector's child process, whose crash is a refusal.
    pub(crate) fn load_trusted(
        library: &Path,
        run_dir: &Path,
        expect: &Expect,
    ) -> Result<Arc<Plugin>, LoadError> {
        kind::check(library)?;
        let copy = RunCopy::create(library, run_dir).map_err(|source| LoadError::Copy {
            library: library.to_owned(),
            run_dir: run_dir.to_owned(),
            source,
        })?;
        if let Some(expected) = &expect.sha256 {
            if !expected.eq_ignore_ascii_case(copy.sha256()) {
                return Err(LoadError::Checksum {
                    library: library.to_owned(),
                    expected: expected.clone(),
                    actual: copy.sha256().to_owned(),
                });
            }
        }
        let facts = elf::precheck(copy.file()).map_err(|source| LoadError::Elf {
            library: library.to_owned(),
            source,
        })?;
        // The copy is a file no one else writes (a fresh name in our run directory, mode 0500),
        // whose bytes are the ones just hashed, checked above to be a shared object for this
        // machine that does not map past its end and exports the entry symbol as a function.
        // SAFETY: opening a library runs its initialisers; this copy's code is trusted as the
        // release it belongs to (`load`'s contract, module docs "Trust").
        let lib = unsafe { Library::open(Some(copy.path()), RTLD_NOW | RTLD_LOCAL) }.map_err(|source| {
            LoadError::Open {
                library: library.to_owned(),
                source,
            }
        })?;
        let sha256 = copy.sha256().to_owned();
        let copy_path = copy.path().to_owned();
        drop(copy);
        // The one entry symbol the pre-check found: the fixed name or the per-crate one.
        let mut entry_name = facts.entry.clone().into_bytes();
        if entry_name.is_empty() {
            entry_name = ENTRY_SYMBOL.to_vec();
        } else {
            entry_name.push(0);
        }
        // The symbol is dereferenced to a plain pointer used only below, while `lib` is alive.
        // SAFETY: `EntryFn` is the type `export_app!` gives the entry symbol, which the
        // pre-check found to be a function.
        let entry: EntryFn =
            *unsafe { lib.get::<EntryFn>(&entry_name) }.map_err(|source| LoadError::MissingSymbol {
                library: library.to_owned(),
                source,
            })?;
        // SAFETY: the entry symbol takes nothing and returns a pointer to a static; `lib`,
        // which holds its code, is alive.
        let descriptor = unsafe { entry() };
        // SAFETY: `descriptor` comes straight from the entry symbol of the live `lib`.
        let mut plugin = unsafe { Self::checked(descriptor, library, lib) }?;
        plugin.info.sha256 = sha256;
        plugin.copy = Some(copy_path);
        plugin.expect(expect)?;
        tracing::debug!(plugin = %plugin.id, constructors = facts.constructors, "loaded");
        Ok(Arc::new(plugin))
    }

    /// Reads and checks the descriptor `ptr` points at.
    ///
    /// # Safety
    /// `ptr` must be null or what the entry symbol of `lib` returned: a pointer to a static
    /// that starts with the ABI's fixed header (magic `u64`, ABI version `u32`, size `u32`),
    /// which every molt plugin of every ABI version publishes.
    unsafe fn checked(ptr: *const Descriptor, library: &Path, lib: Library) -> Result<Plugin, LoadError> {
        let library = library.to_owned();
        if ptr.is_null() {
            return Err(LoadError::NullDescriptor { library });
        }
        // SAFETY: the caller promises the fixed header is there; only it is read, field by
        // field, without making a reference to a `Descriptor` that may be shorter than ours.
        let (magic, abi_version, size) = unsafe {
            (
                std::ptr::addr_of!((*ptr).magic).read(),
                std::ptr::addr_of!((*ptr).abi_version).read(),
                std::ptr::addr_of!((*ptr).size).read(),
            )
        };
        if magic != ABI_MAGIC {
            return Err(LoadError::BadMagic {
                library,
                found: magic,
                expected: ABI_MAGIC,
            });
        }
        if !ABI_VERSIONS.contains(&abi_version) {
            // SAFETY: magic and size come from the fixed header just read; see `app_label`.
            let app = unsafe { app_label(ptr, size) };
            return Err(LoadError::AbiVersion {
                library,
                app,
                found: abi_version,
                supported: ABI_VERSIONS,
            });
        }
        let expected = DESCRIPTOR_V1_SIZE as u32;
        if size < expected {
            return Err(LoadError::DescriptorSize {
                library,
                found: size,
                expected,
            });
        }
        // What the plugin's build published: the version 1 fields for a version 1 plugin, else
        // as much of our descriptor as its `size` covers. The rest stays zero, which every
        // appended field reads as "absent" (the descriptor's convention).
        let published = if abi_version == 1 {
            DESCRIPTOR_V1_SIZE
        } else {
            (size as usize).min(std::mem::size_of::<Descriptor>())
        };
        let mut local = MaybeUninit::<Descriptor>::zeroed();
        // SAFETY: the plugin says its static descriptor is `size` bytes long, and `published`
        // is at most that; the copy goes into our own local of the full size.
        unsafe {
            std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), local.as_mut_ptr().cast::<u8>(), published)
        };
        // SAFETY: the version 1 fields (`published` covers them) are the plugin's; the fields
        // after them are either the plugin's too or zero, and zero is a valid value for every
        // one of them (`Option` of a function pointer, integers, empty slices).
        let descriptor = unsafe { local.assume_init() };
        Self::from_descriptor(&descriptor, library, Some(lib))
    }

    /// Builds the plugin of an app compiled into this binary, with no library at all: the
    /// same shims `export_app!` would export, called through the same function pointers.
    /// Used to test the engine and to measure the ABI's own cost.
    pub fn from_app<A: App>(version: &'static str) -> Arc<Plugin> {
        let descriptor = molt_abi::descriptor::<A>(version);
        let label = PathBuf::from(format!("in-process:{}", std::any::type_name::<A>()));
        match Self::from_descriptor(&descriptor, label, None) {
            Ok(plugin) => Arc::new(plugin),
            // Name and version come from `&str`s: they are UTF-8.
            Err(e) => unreachable!("an in-process descriptor is valid: {e}"),
        }
    }

    /// Copies what the plugin says about itself out of a checked descriptor.
    fn from_descriptor(d: &Descriptor, library: PathBuf, lib: Option<Library>) -> Result<Plugin, LoadError> {
        let text = |bytes: &[u8], field| {
            String::from_utf8(bytes.to_vec()).map_err(|_| LoadError::BadUtf8 {
                library: library.clone(),
                field,
            })
        };
        let info = PluginInfo {
            name: text(d.name.as_slice(), "name")?,
            version: text(d.version.as_slice(), "version")?,
            state_schema: d.state_schema,
            imports: d.import_schemas.as_slice().to_vec(),
            exports: d.export_schemas.as_slice().to_vec(),
            table_schema: d.table_schema,
            table_upgrades: d.table_upgrades.as_slice().to_vec(),
            table_downgrades: d.table_downgrades.as_slice().to_vec(),
            tick_interval_ms: if d.tick.is_some() { d.tick_interval_ms } else { 0 },
            abi_version: d.abi_version,
            merges: match d.merge_state {
                Some(_) => d.merge_schemas.as_slice().to_vec(),
                None => Vec::new(),
            },
            library,
            sha256: String::new(),
        };
        let file = info.library.file_name().map(Path::new).unwrap_or(&info.library);
        let id = format!("{} {} ({})", info.name, info.version, file.display());
        Ok(Plugin {
            info,
            id,
            hooks: Hooks::of(d),
            _library: lib,
            copy: None,
        })
    }

    /// Checks the descriptor against what the release promised.
    fn expect(&self, expect: &Expect) -> Result<(), LoadError> {
        let info = &self.info;
        let checks = [
            ("name", expect.name.clone(), info.name.clone()),
            ("version", expect.version.clone(), info.version.clone()),
            (
                "state schema",
                expect.state_schema.map(|s| s.to_string()),
                info.state_schema.to_string(),
            ),
        ];
        for (field, expected, found) in checks {
            match expected {
                Some(expected) if expected != found => {
                    return Err(LoadError::Mismatch {
                        library: info.library.clone(),
                        field,
                        expected,
                        found,
                    })
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// What the plugin says about itself.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// `name version (library file)`, e.g. `counter 2.0.0 (libcounter_v2.so)`: how errors and
    /// logs name this release.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The private copy this plugin's library was opened from (`None` in process). The file
    /// is deleted once opened; `/proc/self/maps` keeps its name while it is mapped.
    pub fn copy_path(&self) -> Option<&Path> {
        self.copy.as_deref()
    }

    /// A fresh instance with empty state (the `create` hook).
    pub fn create(self: &Arc<Self>) -> Result<Instance, HookError> {
        Instance::create(self, None)
    }

    /// An instance built from state serialised in `schema` (the `import_state` hook).
    pub fn import(self: &Arc<Self>, schema: u32, state: &[u8]) -> Result<Instance, HookError> {
        Instance::import(self, None, schema, state)
    }

    /// A fresh instance that keeps its state in `tables` (the `create_in` hook of ABI version
    /// 2; a plugin without it gets `create`, and no tables).
    pub fn create_in(self: &Arc<Self>, tables: &Arc<TableStore>) -> Result<Instance, HookError> {
        Instance::create(self, Some(tables))
    }

    /// An instance built from state serialised in `schema`, with `tables` (the `import_in`
    /// hook of ABI version 2; a plugin without it gets `import_state`, and no tables).
    pub fn import_in(
        self: &Arc<Self>,
        tables: &Arc<TableStore>,
        schema: u32,
        state: &[u8],
    ) -> Result<Instance, HookError> {
        Instance::import(self, Some(tables), schema, state)
    }

    /// An instance built from state serialised in `schema` that it may keep (the
    /// `import_shared` hook, given `state` for keeps; a plugin without it gets `import_in`,
    /// or `import_state`, with the bytes lent for the call, which are dropped after).
    pub fn import_owned(
        self: &Arc<Self>,
        tables: &Arc<TableStore>,
        schema: u32,
        state: StateBytes,
    ) -> Result<Instance, HookError> {
        Instance::import_owned(self, tables, schema, state)
    }

    /// Whether this plugin exports straight into a host buffer (`export_into`): then a
    /// [`Region`] prepared before the pause saves the export its page faults.
    pub fn exports_into(&self) -> bool {
        self.hooks.export_into.is_some()
    }

    /// Whether this plugin keeps state in tables: it was built against ABI version 2 (it has
    /// `create_in`) and declares a table schema.
    pub fn keeps_tables(&self) -> bool {
        self.hooks.create_in.is_some() && self.info.table_schema != 0
    }
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}
