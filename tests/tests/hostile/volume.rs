//! Hostile files on the release volume. Every file the supervisor reads there is untrusted:
//! a regular file (no FIFO, device or directory), inside the volume (no symlink out), under a
//! size limit, read off the async runtime; its contents are never echoed, only quoted escaped
//! and cut short. Each case is one bad file; the supervisor refuses it by name, in `/status`
//! and its log, and keeps serving v1 with its count.

use super::*;

/// One supervisor serving v1, with counter v2 published (not active) for the manifest cases.
struct Volume {
    case: Case,
    molt: MoltProcess,
    n: u64,
}

impl Volume {
    fn start(name: &str) -> Volume {
        let case = Case::new(name);
        ok(&[
            "push",
            &lib("counter_v2"),
            "--volume",
            &path(&case.volume),
            "--no-activate",
        ]);
        let (molt, n) = case.serving(case.opts(["--poll-interval", "100"]), 6);
        Volume { case, molt, n }
    }

    fn app_dir(&self) -> PathBuf {
        self.case.volume.join(APP)
    }

    /// Replaces `current` (by rename, as an operator's script would) with what `make` creates
    /// at the given temporary path.
    fn replace_current(&self, make: impl FnOnce(&Path)) {
        let tmp = self.app_dir().join(".current.hostile");
        let _ = std::fs::remove_file(&tmp);
        make(&tmp);
        if tmp.is_dir() {
            // A directory cannot be renamed over a file.
            std::fs::remove_file(self.app_dir().join("current")).expect("removing current");
        }
        std::fs::rename(&tmp, self.app_dir().join("current")).expect("renaming over current");
    }

    /// Points `current` back at v1 (a plain file), and lifts the bad mark a refused release
    /// got (as `molt activate --force` would), so that the next case's edit of the same release
    /// is checked again rather than refused as known bad.
    fn restore(&self) {
        let verdict = self
            .app_dir()
            .join(molt_supervisor::volume::VERDICTS_DIR)
            .join("2.0.0");
        let _ = std::fs::remove_file(verdict);
        let current = self.app_dir().join("current");
        if current.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            std::fs::remove_dir(&current).expect("removing the current directory");
        }
        self.replace_current(|tmp| std::fs::write(tmp, "1.0.0\n").unwrap());
    }

    /// Waits for the refusal whose error contains `expected`, then checks: step `step`, v1
    /// still serving its count, `/status` free of `secret`, and that nothing on the volume or
    /// in the state directory changed while the supervisor handled it.
    fn refused(&self, step: &str, expected: &str, secret: Option<&str>) {
        let before = self.case.trees();
        let status = self.molt.wait_status(Duration::from_secs(20), expected, |s| {
            s.last_refusal
                .as_ref()
                .is_some_and(|r| r.error.contains(expected))
        });
        let refusal = status.last_refusal.clone().unwrap();
        assert_eq!(refusal.step, step, "{refusal:?}");
        assert!(
            refusal
                .error
                .contains("counter 1.0.0 (libcounter_v1.so) still serving"),
            "{refusal:?}"
        );
        // `/status` answers again and again (a FIFO once froze it after two reads), and is small.
        for _ in 0..3 {
            let text = http()
                .get(self.molt.control_url("/status"))
                .send()
                .and_then(|r| r.text())
                .expect("GET /status");
            assert!(text.len() < 16 * 1024, "a {} byte /status", text.len());
            if let Some(secret) = secret {
                assert!(!text.contains(secret), "/status echoes the file: {text}");
            }
        }
        still_serving(&self.molt, self.n);
        assert_eq!(self.case.trees(), before, "the supervisor changed a file");
        if let Some(secret) = secret {
            assert!(!self.molt.log().contains(secret), "the log echoes the file");
        }
    }
}

#[test]
fn current_as_a_fifo_a_device_a_directory_or_a_symlink_out_is_refused_without_blocking() {
    let v = Volume::start("volume-current-kinds");
    v.replace_current(|tmp| {
        assert!(std::process::Command::new("mkfifo")
            .arg(tmp)
            .status()
            .unwrap()
            .success())
    });
    v.refused(
        "current",
        "current is refused: it is a FIFO, not a regular file",
        None,
    );
    v.restore();

    v.replace_current(|tmp| std::os::unix::fs::symlink("/dev/zero", tmp).unwrap());
    v.refused("current", "resolves to /dev/zero, outside", None);
    v.restore();

    // A secret beside the volume, and `current` pointing at it.
    let secret = v.case.dir.write("secret-token", "s3cr3t-t0ken-0f-the-operator\n");
    v.replace_current(|tmp| std::os::unix::fs::symlink(&secret, tmp).unwrap());
    v.refused("current", "outside", Some("s3cr3t-t0ken"));
    v.restore();

    v.replace_current(|tmp| std::fs::create_dir(tmp).unwrap());
    v.refused(
        "current",
        "current is refused: it is a directory, not a regular file",
        None,
    );
    v.restore();

    // A 5 MB `current`: refused on its size, before it is read.
    v.replace_current(|tmp| std::fs::write(tmp, vec![b'9'; 5 << 20]).unwrap());
    v.refused("current", "holds 5242880 bytes, more than the 4096 allowed", None);
    v.restore();
    v.molt.terminate();
}

#[test]
fn garbage_in_current_is_a_reported_refusal_quoted_escaped() {
    let v = Volume::start("volume-current-garbage");
    for (garbage, expected) in [
        (
            "../..\n",
            r#"holds \"../..\\n\", not a valid version: starts with '.'"#,
        ),
        (
            "1.0.0\nrm -rf /\n",
            r#"holds \"1.0.0\\nrm -rf /\\n\", not a valid version"#,
        ),
    ] {
        v.replace_current(|tmp| std::fs::write(tmp, garbage).unwrap());
        // `/status` quotes the JSON string, so the escaped backslashes are doubled there.
        v.refused(
            "current",
            &expected.replace("\\\"", "\"").replace("\\\\", "\\"),
            None,
        );
        v.restore();
    }
    let long = "7".repeat(3000);
    v.replace_current(|tmp| std::fs::write(tmp, &long).unwrap());
    v.refused(
        "current",
        "… (3000 bytes)\", not a valid version: longer than 255 bytes",
        Some(&long[..200]),
    );
    v.restore();
}

#[test]
fn hostile_manifests_and_release_directories_are_refused_by_name() {
    let v = Volume::start("volume-manifests");
    let release = v.app_dir().join("releases/2.0.0");
    let manifest = release.join("release.toml");
    let original = std::fs::read(&manifest).unwrap();
    let point_at_v2 = || v.replace_current(|tmp| std::fs::write(tmp, "2.0.0\n").unwrap());
    let replace_manifest = |make: &dyn Fn(&Path)| {
        let tmp = release.join(".release.toml.hostile");
        let _ = std::fs::remove_file(&tmp);
        make(&tmp);
        std::fs::rename(&tmp, &manifest).unwrap();
    };

    replace_manifest(&|tmp| {
        assert!(std::process::Command::new("mkfifo")
            .arg(tmp)
            .status()
            .unwrap()
            .success())
    });
    point_at_v2();
    v.refused(
        "manifest",
        "release.toml is refused: it is a FIFO, not a regular file",
        None,
    );
    v.restore();

    // A 64 MB one-line manifest: refused on its size; `/status` and the log stay small.
    let log_before = v.molt.log().len();
    replace_manifest(&|tmp| std::fs::write(tmp, vec![b'a'; 64 << 20]).unwrap());
    point_at_v2();
    v.refused(
        "manifest",
        "holds 67108864 bytes, more than the 65536 allowed",
        None,
    );
    assert!(
        v.molt.log().len() - log_before < 64 * 1024,
        "the log grew by {}",
        v.molt.log().len() - log_before
    );
    v.restore();

    // A manifest that is a symlink to a file out of the release: never read, never echoed.
    let secret = v.case.dir.write("passwd", "root:x:0:0:root:/root:/bin/bash\n");
    replace_manifest(&|tmp| std::os::unix::fs::symlink(&secret, tmp).unwrap());
    point_at_v2();
    v.refused("manifest", "outside", Some("root:x:0:0"));
    v.restore();

    // A manifest that is not TOML: the parser's complaint, not the file's text.
    replace_manifest(&|tmp| std::fs::write(tmp, "root:x:0:0:root:/root:/bin/bash\n").unwrap());
    point_at_v2();
    v.refused(
        "manifest",
        "release.toml is not a valid manifest",
        Some("root:x:0:0"),
    );
    v.restore();
    replace_manifest(&|tmp| std::fs::write(tmp, &original).unwrap());

    // The whole release directory symlinked to a copy outside the volume.
    let outside = v.case.dir.path().join("outside-release");
    std::fs::create_dir(&outside).unwrap();
    for entry in std::fs::read_dir(&release).unwrap().flatten() {
        std::fs::copy(entry.path(), outside.join(entry.file_name())).unwrap();
    }
    let v3 = v.app_dir().join("releases/3.0.0");
    std::fs::write(
        outside.join("release.toml"),
        String::from_utf8(original.clone())
            .unwrap()
            .replace("2.0.0", "3.0.0"),
    )
    .unwrap();
    std::os::unix::fs::symlink(&outside, &v3).unwrap();
    v.replace_current(|tmp| std::fs::write(tmp, "3.0.0\n").unwrap());
    v.refused("volume", "releases/3.0.0 is refused: it resolves to", None);
    v.restore();
    v.molt.terminate();
}

/// Runs the CLI, which must end within 20 s (a FIFO on the volume once hung it for good).
fn cli(args: &[&str]) -> (bool, String) {
    let out = molt_within(args, Duration::from_secs(20));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn fifos_and_devices_among_supervisor_reports_and_verdicts_are_refused_without_blocking() {
    let case = Case::new("presence-fifo");
    ok(&[
        "push",
        &lib("counter_v2"),
        "--volume",
        &path(&case.volume),
        "--no-activate",
    ]);
    let token = case.dir.write("token", "hostile-volume-token-0123\n");
    let (molt, n) = case.serving(case.opts(["--token-file".to_owned(), path(&token)]), 3);
    let app = case.volume.join(APP);
    let reports = app.join(molt_supervisor::volume::SUPERVISORS_DIR);
    let mkfifo = |p: &Path| {
        assert!(std::process::Command::new("mkfifo")
            .arg(p)
            .status()
            .unwrap()
            .success());
    };
    mkfifo(&reports.join("evil.json"));
    std::os::unix::fs::symlink("/dev/zero", reports.join("zero.json")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", reports.join("passwd.json")).unwrap();
    let volume = path(&case.volume);

    // The CLI lists, prunes and activates past them: the real supervisor is still seen.
    let (fine, said) = cli(&["releases", "--volume", &volume, "--app", APP]);
    assert!(fine, "{said}");
    assert!(said.contains(&format!("(pid {} on", molt.pid())), "{said}");
    assert!(
        !said.contains("root:x:0"),
        "a report outside the volume was read:\n{said}"
    );
    let (fine, said) = cli(&["prune", "--volume", &volume, "--app", APP, "--keep", "5"]);
    assert!(fine, "{said}");
    let (fine, said) = cli(&[
        "activate", "2.0.0", "--volume", &volume, "--app", APP, "--wait", "30s",
    ]);
    assert!(fine && said.contains("runs on 1 supervisor"), "{said}");

    // A FIFO in place of a verdict: the CLI names it and the check, and does not wait.
    let verdicts = app.join(molt_supervisor::volume::VERDICTS_DIR);
    std::fs::create_dir_all(&verdicts).unwrap();
    let _ = std::fs::remove_file(verdicts.join("1.0.0"));
    mkfifo(&verdicts.join("1.0.0"));
    let (fine, said) = cli(&["activate", "1.0.0", "--volume", &volume, "--app", APP]);
    assert!(!fine, "{said}");
    assert!(
        said.contains("verdicts/1.0.0 is refused: it is a FIFO, not a regular file"),
        "{said}"
    );

    // The supervisor's activation refuses it the same way (it once held the change lock
    // forever), and the next activation answers.
    let http = http();
    let activate = |version: &str| {
        http.post(molt.control_url(&format!("/activate?version={version}")))
            .bearer_auth("hostile-volume-token-0123")
            .send()
            .expect("POST /activate answers")
    };
    let answer = activate("1.0.0");
    assert_eq!(answer.status().as_u16(), 409, "{}", molt.log());
    let body = answer.text().unwrap();
    assert!(body.contains("verdicts/1.0.0 is refused: it is a FIFO"), "{body}");
    let answer = activate("2.0.0");
    assert_eq!(answer.status().as_u16(), 200, "{}", molt.log());
    assert_eq!(molt.status().version.as_deref(), Some("2.0.0"));
    assert_eq!(count(&molt), n, "{}", molt.log());
    assert!(molt.terminate().success());
}
