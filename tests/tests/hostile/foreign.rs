//! Libraries whose code is hostile. Inspection (`molt check`, `POST /releases`, which only
//! stores) opens a library only in a child process with a deadline: a constructor that exits,
//! aborts or hangs is a refusal, not an outage; an entry symbol that is no function, or an ELF
//! for another machine, is refused before anything is opened.

use super::*;
use molt_supervisor::control::UploadInfo;

/// An upload of `library` as counter `version` (schema 1), with its real sha256.
fn upload_info(library: &Path, version: &str) -> UploadInfo {
    UploadInfo {
        app: APP.to_owned(),
        version: version.to_owned(),
        state_schema: 1,
        abi: molt_abi::ABI_VERSION,
        file: library.file_name().unwrap().to_string_lossy().into_owned(),
        sha256: molt_supervisor::manifest::sha256_file(library).unwrap(),
        signature: None,
    }
}

/// Uploads `library` as counter `version` and returns the refusal's message.
fn upload_refused(molt: &MoltProcess, library: &Path, version: &str) -> String {
    match molt.control(None).upload(library, &upload_info(library, version)) {
        Ok(outcome) => panic!("upload of {} was accepted: {outcome:?}", library.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn constructors_that_exit_abort_or_hang_are_refusals_not_outages() {
    let case = Case::new("foreign-ctor");
    let ctor = plugin("fixture_ctor");
    for (behaviour, expected) in [
        (
            "exit",
            "ended the inspecting process with exit status 3 before it could report",
        ),
        ("abort", "crashed the inspecting process with signal 6 (SIGABRT)"),
        (
            "hang",
            "did not finish within 2s (does a constructor hang?); the inspecting process was killed",
        ),
    ] {
        // `molt check`: the child dies or hangs, `molt check` refuses.
        let stderr = refused(
            &["check", &path(&ctor), "--timeout", "2s"],
            &[("MOLT_FIXTURE_CTOR", behaviour)],
        );
        assert!(stderr.contains(expected), "{behaviour}: {stderr}");
        assert!(stderr.contains(&path(&ctor)), "{behaviour}: {stderr}");

        // An upload, only to be stored: the supervisor inspects it in a child and refuses.
        let opts = case
            .opts(["--inspect-timeout", "2s"])
            .env("MOLT_FIXTURE_CTOR", behaviour);
        let (molt, n) = case.serving(opts, 7);
        let before = case.trees();
        let message = upload_refused(&molt, &ctor, "2.0.0-ctor");
        assert!(message.contains(expected), "{behaviour}: {message}");
        assert!(
            message.contains("counter 1.0.0 (libcounter_v1.so) still serving"),
            "{message}"
        );
        let status = molt.status();
        let refusal = status.last_refusal.expect("the refusal is in /status");
        assert_eq!(
            (refusal.release.as_str(), refusal.step.as_str()),
            ("counter 2.0.0-ctor", "load")
        );
        still_serving(&molt, n);
        assert_eq!(
            case.trees(),
            before,
            "{behaviour}: nothing on the volume or in the state changed"
        );
        assert_eq!(molt.addrs.pid, status.pid, "the same process serves");
        molt.terminate();
    }
    // The same library, without the hostile behaviour, is a plain app and checks fine; the
    // report names its constructors.
    let out = ok(&["check", &path(&ctor)]);
    assert!(out.contains("constructors  3 (.init_array"), "{out}");
}

/// Whether process `pid` has ended (gone, or a zombie waiting for its reaper).
fn ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command's closing parenthesis.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => true,
    }
}

/// Waits up to 10 s for the pid written to `pidfile` to end.
fn process_in_pidfile_ends(pidfile: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(pidfile).map_err(|e| format!("no pid file: {e}"))?;
    let pid: u32 = text
        .trim()
        .parse()
        .map_err(|e| format!("pid file {text:?}: {e}"))?;
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while !ended(pid) {
        if std::time::Instant::now() > until {
            return Err(format!("process {pid}, started by the constructor, still runs"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

#[test]
fn processes_a_constructor_starts_do_not_outlive_the_inspection() {
    let case = Case::new("foreign-ctor-spawn");
    let ctor = plugin("fixture_ctor");
    let pidfile = case.dir.path().join("ctor.pid");
    let pidfile_s = path(&pidfile);
    // The constructor starts `sleep 3600` and returns: the inspection passes, and the process
    // it started is ended with it.
    let _ = std::fs::remove_file(&pidfile);
    let out = run_env(
        &["check", &path(&ctor)],
        &[
            ("MOLT_FIXTURE_CTOR", "spawn"),
            ("MOLT_FIXTURE_CTOR_PIDFILE", &pidfile_s),
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    process_in_pidfile_ends(&pidfile).unwrap();

    // It starts one and hangs: the deadline kills the inspecting process and what it started,
    // for `molt check` and for an upload alike.
    let _ = std::fs::remove_file(&pidfile);
    let stderr = refused(
        &["check", &path(&ctor), "--timeout", "2s"],
        &[
            ("MOLT_FIXTURE_CTOR", "spawn-hang"),
            ("MOLT_FIXTURE_CTOR_PIDFILE", &pidfile_s),
        ],
    );
    assert!(stderr.contains("did not finish within 2s"), "{stderr}");
    process_in_pidfile_ends(&pidfile).unwrap();

    let _ = std::fs::remove_file(&pidfile);
    let opts = case
        .opts(["--inspect-timeout", "2s"])
        .env("MOLT_FIXTURE_CTOR", "spawn-hang")
        .env("MOLT_FIXTURE_CTOR_PIDFILE", &pidfile_s);
    let (molt, n) = case.serving(opts, 3);
    let message = upload_refused(&molt, &ctor, "2.0.0-ctor");
    assert!(message.contains("did not finish within 2s"), "{message}");
    process_in_pidfile_ends(&pidfile).unwrap();
    still_serving(&molt, n);
    molt.terminate();
}

#[test]
fn an_entry_symbol_that_is_an_int_is_refused_before_anything_is_opened() {
    let case = Case::new("foreign-bogus-entry");
    let bogus = plugin("fixture_bogus_entry");
    let expected =
        "its `molt_app_descriptor` symbol is a data object (STT_OBJECT), not a function: not a molt app";
    let stderr = refused(&["check", &path(&bogus)], &[]);
    assert!(stderr.contains(expected), "{stderr}");
    let (molt, n) = case.serving(case.opts(Vec::<String>::new()), 5);
    let before = case.trees();
    let message = upload_refused(&molt, &bogus, "2.0.0-bogus-entry");
    assert!(message.contains(expected), "{message}");
    still_serving(&molt, n);
    assert_eq!(case.trees(), before);
}

#[test]
fn an_elf_for_another_machine_gets_its_own_message() {
    let case = Case::new("foreign-machine");
    // counter v1 with its e_machine rewritten: the same file, built "for" another machine.
    let mut bytes = std::fs::read(plugin("counter_v1")).unwrap();
    let other: u16 = if cfg!(target_arch = "aarch64") { 62 } else { 183 };
    bytes[18..20].copy_from_slice(&other.to_le_bytes());
    let foreign = case.dir.write("libforeign.so", &bytes);
    let stderr = refused(&["check", &path(&foreign)], &[]);
    let name = if cfg!(target_arch = "aarch64") {
        "x86-64"
    } else {
        "aarch64"
    };
    assert!(
        stderr.contains(&format!("built for {name} (64-bit), this supervisor runs on")),
        "{stderr}"
    );
    assert!(!stderr.contains("No such file or directory"), "{stderr}");
    let (molt, n) = case.serving(case.opts(Vec::<String>::new()), 3);
    let before = case.trees();
    let message = upload_refused(&molt, &foreign, "2.0.0-foreign");
    assert!(message.contains(&format!("built for {name}")), "{message}");
    still_serving(&molt, n);
    assert_eq!(case.trees(), before);
}

#[test]
fn a_library_swapped_on_the_volume_while_it_is_checked_is_never_loaded() {
    let case = Case::new("foreign-exact-bytes");
    ok(&[
        "push",
        &lib("counter_v2"),
        "--volume",
        &path(&case.volume),
        "--no-activate",
    ]);
    let (molt, n) = case.serving(case.opts(["--no-watch"]), 5);
    let release = case.volume.join(APP).join("releases/2.0.0");
    let library = release.join("libcounter_v2.so");
    let good = std::fs::read(&library).unwrap();
    let other = std::fs::read(plugin("counter_v1")).unwrap();
    // A writer that swaps the library's bytes (by rename) every millisecond: v2's own bytes,
    // then counter v1's, and so on.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let toggler = {
        let (stop, library, release) = (stop.clone(), library.clone(), release.clone());
        std::thread::spawn(move || {
            let mut flip = false;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let tmp = release.join(".swap");
                std::fs::write(&tmp, if flip { &good } else { &other }).unwrap();
                std::fs::rename(&tmp, &library).unwrap();
                flip = !flip;
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let client = molt.control(None);
    let (mut swapped, mut refused) = (0, 0);
    for _ in 0..12 {
        match client.activate("2.0.0") {
            Ok(_) => {
                // It loaded: it must be v2's code (a v1 library would say 1.0.0 and be refused).
                swapped += 1;
                client.activate("1.0.0").expect("back to v1");
            }
            Err(e) => {
                refused += 1;
                let text = e.to_string();
                // Refused by a sha256 check, on the volume's file or on the copy that would
                // have been loaded; never by a descriptor that is not what was hashed.
                assert!(text.contains("sha256"), "{text}");
                assert!(
                    !text.contains("version is 1.0.0"),
                    "bytes other than the hashed ones were opened: {text}"
                );
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    toggler.join().unwrap();
    eprintln!(
        "while the library was swapped every millisecond: {swapped} activations swapped, {refused} refused"
    );
    assert!(refused > 0, "the race never hit: {swapped} swapped");
    let status = molt.status();
    assert_eq!(status.version.as_deref(), Some("1.0.0"), "{status:?}");
    still_serving(&molt, n);
}
