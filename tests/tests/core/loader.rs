//! What the loader refuses, and how it keeps `dlopen` away from the release volume.

use molt_supervisor::engine::{Engine, EngineConfig};
use molt_supervisor::loader::{ElfError, Expect, LoadError};
use molt_tests::artifacts::plugin;
use molt_tests::dir::TestDir;
use molt_tests::drive::{get_text, load, load_file, post_n};

#[test]
fn reads_the_descriptor() {
    let dir = TestDir::new("descriptor");
    let v2 = load("counter_v2", &dir.mkdir("run"));
    let info = v2.info();
    assert_eq!(
        (info.name.as_str(), info.version.as_str(), info.state_schema),
        ("counter", "2.0.0", 2)
    );
    assert_eq!(
        (info.imports.as_slice(), info.exports.as_slice()),
        (&[1, 2][..], &[2, 1][..])
    );
    assert_eq!(info.abi_version, molt_abi::ABI_VERSION);
    assert_eq!(info.library, plugin("counter_v2"));
    assert_eq!(v2.id(), "counter 2.0.0 (libcounter_v2.so)");
}

#[test]
fn non_elf_and_truncated_files_are_refused() {
    let dir = TestDir::new("not-a-library");
    let run = dir.mkdir("run");
    let text = dir.write("volume/libtext.so", "this is not a shared library\n");
    let err = load_file(&text, &run, &Expect::any()).unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Elf {
                source: ElfError::NotElf { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&text.display().to_string()), "{err}");

    let whole = std::fs::read(plugin("counter_v1")).unwrap();
    let len = whole.len();
    for cut in [10, 100, 4096, len / 4, len / 2, len - 1] {
        let cut_file = dir.write(format!("volume/cut-{cut}/libcounter_v1.so"), &whole[..cut]);
        let err = load_file(&cut_file, &run, &Expect::any()).unwrap_err();
        // The ELF pre-check catches it, before `dlopen` could map pages past the end of the
        // file (a SIGBUS on first touch).
        assert!(
            matches!(
                err,
                LoadError::Elf {
                    source: ElfError::Truncated { .. },
                    ..
                }
            ),
            "cut at {cut}: {err}"
        );
        assert!(err.to_string().contains(&cut_file.display().to_string()), "{err}");
    }
    let missing = load_file(&dir.join("volume/absent.so"), &run, &Expect::any()).unwrap_err();
    assert!(matches!(missing, LoadError::NotFound { .. }), "{missing}");
    assert!(missing.to_string().contains("crate-type"), "{missing}");
    // The rlib cargo builds beside the cdylib is named for what it is, and a crate built as an
    // rlib only (no `.so`) is told what to add to Cargo.toml.
    let rlib = plugin("counter_v1").with_extension("rlib");
    let err = load_file(&rlib, &run, &Expect::any()).unwrap_err();
    assert!(matches!(err, LoadError::StaticLibrary { .. }), "{err}");
    assert!(
        err.to_string().contains("crate-type = [\"cdylib\", \"rlib\"]"),
        "{err}"
    );
    let only_rlib = dir.write(
        "volume/rlib-only/libcounter_v1.rlib",
        std::fs::read(&rlib).unwrap(),
    );
    let err = load_file(&only_rlib.with_extension("so"), &run, &Expect::any()).unwrap_err();
    assert!(
        matches!(&err, LoadError::NotFound { rlib: Some(r), .. } if *r == only_rlib),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&run).unwrap().count(),
        0,
        "refused copies are removed too"
    );
}

#[test]
fn the_manifest_must_match_the_descriptor() {
    let dir = TestDir::new("expect");
    let run = dir.mkdir("run");
    let v2 = plugin("counter_v2");
    let expect = |name: &str, version: &str, schema| Expect {
        name: Some(name.to_owned()),
        version: Some(version.to_owned()),
        state_schema: Some(schema),
        sha256: None,
    };
    assert!(load_file(&v2, &run, &expect("counter", "2.0.0", 2)).is_ok());
    let err = load_file(&v2, &run, &expect("counter", "2.0.1", 2)).unwrap_err();
    assert!(
        matches!(&err, LoadError::Mismatch { field: "version", .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .ends_with("version is 2.0.0, the release says 2.0.1"),
        "{err}"
    );
    let err = load_file(&v2, &run, &expect("kv", "2.0.0", 2)).unwrap_err();
    assert!(matches!(&err, LoadError::Mismatch { field: "name", .. }), "{err}");
    let err = load_file(&v2, &run, &expect("counter", "2.0.0", 1)).unwrap_err();
    assert!(
        matches!(
            &err,
            LoadError::Mismatch {
                field: "state schema",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn the_release_file_is_never_the_mapped_file() {
    let dir = TestDir::new("private-copy");
    let run = dir.mkdir("run");
    let on_volume = dir.write(
        "volume/libcounter_v1.so",
        std::fs::read(plugin("counter_v1")).unwrap(),
    );

    // The same path loaded twice: two private copies, two independent libraries (dlopen of
    // the same path would have returned the first handle, with its statics).
    let a = load_file(&on_volume, &run, &Expect::any()).unwrap();
    let b = load_file(&on_volume, &run, &Expect::any()).unwrap();
    assert_eq!(
        std::fs::read_dir(&run).unwrap().count(),
        0,
        "copies are removed once mapped"
    );
    let (ea, eb) = (
        Engine::start(a, None, EngineConfig::default()).unwrap(),
        Engine::start(b, None, EngineConfig::default()).unwrap(),
    );
    post_n(&ea, "/incr", 3);
    post_n(&eb, "/incr", 1);

    // Overwriting the release file in place (what a careless push does) cannot touch the
    // mapped code: it is a private copy.
    std::fs::write(&on_volume, b"garbage").unwrap();
    post_n(&ea, "/incr", 1);
    assert_eq!(
        (get_text(&ea, "/count"), get_text(&eb, "/count")),
        ("4".to_owned(), "1".to_owned())
    );
}

#[test]
fn a_library_outlives_every_instance_built_from_it() {
    let dir = TestDir::new("lifetimes");
    let run = dir.mkdir("run");
    let v1 = load("counter_v1", &run);
    let instance = v1.create().unwrap();
    drop(v1); // the instance holds the last Arc: the library stays mapped for it
    let req = molt_abi::Request::new("POST", "/incr", "", &[], b"");
    assert_eq!(instance.handle(&req).text(), "1");
    let bytes = instance.export(1).unwrap();
    assert_eq!(&*bytes, &1u64.to_le_bytes()[..]);
    let again = instance.plugin().import(1, &bytes).unwrap();
    drop(instance);
    assert_eq!(again.handle(&req).text(), "2");
    let err = again.export(7).unwrap_err();
    assert!(err.message.contains("cannot export state schema 7"), "{err}");
}

#[test]
fn the_bytes_loaded_are_the_bytes_hashed() {
    let dir = TestDir::new("exact-bytes");
    let run = dir.mkdir("run");
    let v1 = plugin("counter_v1");
    let sha = molt_supervisor::manifest::sha256_file(&v1).unwrap();
    let expect = |sha256: &str| Expect {
        sha256: Some(sha256.to_owned()),
        ..Expect::any()
    };
    let loaded = load_file(&v1, &run, &expect(&sha)).unwrap();
    assert_eq!(
        loaded.info().sha256,
        sha,
        "the digest of the copy that was opened"
    );
    // A library whose bytes differ from the release's digest (swapped on the volume after the
    // release was verified) is refused: the copy is hashed, and the copy is what would load.
    let other = molt_supervisor::manifest::sha256_file(&plugin("counter_v2")).unwrap();
    let err = load_file(&v1, &run, &expect(&other)).unwrap_err();
    assert!(matches!(err, LoadError::Checksum { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("the release says {other}, they hash to {sha}")),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&run).unwrap().count(),
        0,
        "refused copies are removed"
    );
}

#[test]
fn plugins_built_against_abi_version_1_keep_loading_and_swapping() {
    let dir = TestDir::new("abi-v1");
    let run = dir.mkdir("run");
    let old = load("fixture_abi_v1", &run);
    let info = old.info();
    assert_eq!((info.abi_version, info.table_schema), (1, 0), "{info:?}");
    assert!(info.table_upgrades.is_empty() && info.table_downgrades.is_empty());
    let engine = Engine::start(old, None, EngineConfig::default()).unwrap();
    post_n(&engine, "/incr", 5);
    // It has no `export_into`: its own export buffer is read in place.
    assert_eq!(engine.export_state().unwrap().state.bytes.held_in(), "plugin");
    // Version 1 → version 2 (counter v1 is built against the current ABI) and back, through
    // the export and import hooks both speak.
    let report = engine.swap(load("counter_v1", &run)).unwrap();
    assert_eq!(
        (report.from.as_str(), report.to.as_str()),
        ("1.5.0-abi-v1", "1.0.0")
    );
    assert_eq!(engine.active().info().abi_version, molt_abi::ABI_VERSION);
    assert_eq!(engine.export_state().unwrap().state.bytes.held_in(), "region");
    post_n(&engine, "/incr", 1);
    engine.swap(load("fixture_abi_v1", &run)).unwrap();
    assert_eq!(get_text(&engine, "/count"), "6");
}
