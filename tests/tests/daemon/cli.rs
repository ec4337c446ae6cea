//! The `molt` CLI's commands and exit codes.

use super::*;

#[test]
fn push_refuses_other_bytes_under_a_published_version() {
    let env = Env::new("immutable");
    let v1 = plugin("counter_v1");
    env.push(&v1);
    let manifest = env.app_dir().join("releases/1.0.0/release.toml");
    let published = read(&manifest);

    // Counter 1.0.0 again, with other bytes: the same library plus trailing bytes (as a
    // rebuild with another toolchain would be). It is a valid library that says it is 1.0.0.
    let mut bytes = std::fs::read(&v1).expect("reading libcounter_v1.so");
    bytes.extend_from_slice(b"\0rebuilt\0");
    let other = env.dir.write("rebuilt/libcounter_v1.so", &bytes);
    let checked = ok(&["check", &path(&other)]);
    assert!(checked.contains("1.0.0"), "{checked}");

    let (_, stderr) = fails(1, &["push", &path(&other), "--volume", &path(&env.volume)]);
    assert!(
        stderr.contains("counter 1.0.0") && stderr.contains("immutable"),
        "the refusal does not name the release and why:\n{stderr}"
    );
    assert_eq!(read(&manifest), published, "the published release changed");
    let on_volume = env.app_dir().join("releases/1.0.0/libcounter_v1.so");
    assert_eq!(
        std::fs::read(on_volume).expect("reading the published library"),
        std::fs::read(&v1).expect("reading libcounter_v1.so"),
        "the published library changed"
    );
    // The same bytes again are fine.
    let again = ok(&["push", &path(&v1), "--volume", &path(&env.volume)]);
    assert!(again.contains("already"), "{again}");
}

#[test]
fn usage_errors_exit_2() {
    let v1 = lib("counter_v1");
    for args in [
        vec!["push", v1.as_str()],
        vec!["activate", "1.0.0"],
        vec!["rollback"],
        vec!["releases", "--app", APP],
        vec!["no-such-command"],
    ] {
        let (_, stderr) = fails(2, &args);
        assert!(
            stderr.to_lowercase().contains("usage"),
            "molt {args:?}: no usage:\n{stderr}"
        );
    }
}

#[test]
fn activate_and_releases_on_a_volume() {
    let env = Env::new("releases");
    let volume = path(&env.volume);
    env.push(&plugin("counter_v1"));
    env.push(&plugin("counter_v2"));
    assert_eq!(env.current(), "2.0.0");

    let (stdout, stderr) = fails(1, &["activate", "9.9.9", "--volume", &volume, "--app", APP]);
    assert!(
        stderr.contains("9.9.9") && stderr.contains("not on the volume"),
        "the refusal does not name the missing release:\n{stdout}{stderr}"
    );
    assert_eq!(env.current(), "2.0.0", "a refused activate moved current");

    let listed = ok(&["releases", "--volume", &volume, "--app", APP]);
    let line = |version: &str| {
        listed
            .lines()
            .find(|l| l.split_whitespace().any(|w| w == version))
            .unwrap_or_else(|| panic!("{version} is not listed:\n{listed}"))
            .to_owned()
    };
    assert!(line("2.0.0").starts_with('*'), "current not marked:\n{listed}");
    assert!(line("1.0.0").starts_with('-'), "previous not marked:\n{listed}");

    ok(&["activate", "1.0.0", "--volume", &volume, "--app", APP]);
    assert_eq!(env.current(), "1.0.0");
    let listed = ok(&["releases", "--volume", &volume, "--app", APP]);
    assert!(
        listed.lines().any(|l| l.starts_with("* 1.0.0")) && listed.lines().any(|l| l.starts_with("- 2.0.0")),
        "after activate 1.0.0:\n{listed}"
    );
}

#[test]
fn status_prints_json_and_text() {
    let env = Env::new("status");
    env.push(&plugin("counter_v1"));
    let molt = env.start(std::iter::empty::<String>());
    molt.wait_for_version("1.0.0");

    let json = ok(&["status", "--control", &molt.control_base(), "--json"]);
    let status: serde_json::Value = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("molt status --json is no JSON ({e}):\n{json}"));
    assert_eq!(status["app"], APP, "{json}");
    assert_eq!(status["version"], "1.0.0", "{json}");
    assert_eq!(status["pid"], molt.pid(), "{json}");
    assert_eq!(status["ready"], true, "{json}");

    let text = ok(&["status", "--control", &molt.control_base()]);
    assert!(
        text.contains("counter 1.0.0") && text.contains(&format!("pid {}", molt.pid())),
        "{text}"
    );

    let (_, stderr) = fails(1, &["status", "--control", "http://127.0.0.1:1"]);
    assert!(stderr.contains("127.0.0.1:1"), "{stderr}");
}

#[test]
fn check_prints_what_a_library_is_and_refuses_a_wrong_abi() {
    let out = ok(&["check", &lib("counter_v2")]);
    let abi = molt_abi::ABI_VERSION.to_string();
    for (field, value) in [
        ("app", "counter"),
        ("version", "2.0.0"),
        ("abi", abi.as_str()),
        ("state schema", "2"),
        ("imports", "[1, 2]"),
        ("exports", "[2, 1]"),
    ] {
        assert!(
            out.lines().any(|l| {
                let l = l.trim();
                l.starts_with(field) && l[field.len()..].trim() == value
            }),
            "`{field}  {value}` missing:\n{out}"
        );
    }

    let (stdout, stderr) = fails(1, &["check", &lib("fixture_wrong_abi")]);
    assert!(
        stderr.contains("999") && stderr.to_lowercase().contains("abi"),
        "the refusal does not name the ABI version:\n{stdout}{stderr}"
    );
}
