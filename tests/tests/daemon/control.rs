//! The control API: the bearer token on mutating calls, the open read-only ones, `/metrics`.

use super::*;
use molt_supervisor::control::{ControlClient, UploadInfo};

const TOKEN: &str = "daemon-tests-token";

/// Sends `req` as is, with a wrong token, and asserts 401 both times.
fn unauthorized(molt: &MoltProcess, what: &str, req: impl Fn() -> reqwest::blocking::RequestBuilder) {
    for (how, req) in [
        ("without a token", req()),
        ("with a wrong token", req().bearer_auth("not-the-token")),
        (
            "with the token in another scheme",
            req().header("authorization", TOKEN),
        ),
    ] {
        let resp = req
            .send()
            .unwrap_or_else(|e| panic!("{what} {how}: {e}\n{}", molt.log()));
        assert_eq!(resp.status().as_u16(), 401, "{what} {how}\n{}", molt.log());
    }
}

#[test]
fn mutating_control_calls_need_the_token_and_reading_ones_do_not() {
    let env = Env::new("token");
    let token_file = env.dir.write("token", format!("{TOKEN}\n"));
    env.push(&plugin("counter_v1"));
    let molt = env.start(["--token-file".to_owned(), path(&token_file)]);
    molt.wait_for_version("1.0.0");
    let http = http();
    incr(&http, &molt, 3, "1.0.0");

    for read_only in ["/status", "/metrics", "/healthz", "/readyz"] {
        let resp = http
            .get(molt.control_url(read_only))
            .send()
            .unwrap_or_else(|e| panic!("GET {read_only}: {e}"));
        assert_eq!(resp.status().as_u16(), 200, "GET {read_only} without a token");
    }

    // POST /releases: an upload of v2.
    let v2 = plugin("counter_v2");
    let bytes = std::fs::read(&v2).expect("reading libcounter_v2.so");
    let upload = UploadInfo {
        app: APP.to_owned(),
        version: "2.0.0".to_owned(),
        state_schema: 2,
        abi: molt_abi::ABI_VERSION,
        file: "libcounter_v2.so".to_owned(),
        sha256: molt_supervisor::manifest::sha256_file(&v2).expect("hashing"),
        signature: None,
    };
    let (schema, abi) = (upload.state_schema.to_string(), upload.abi.to_string());
    let query = [
        ("app", upload.app.as_str()),
        ("version", upload.version.as_str()),
        ("schema", schema.as_str()),
        ("abi", abi.as_str()),
        ("file", upload.file.as_str()),
        ("sha256", upload.sha256.as_str()),
    ];
    let v2_dir = env.app_dir().join("releases/2.0.0");
    unauthorized(&molt, "POST /releases", || {
        http.post(molt.control_url("/releases"))
            .query(&query)
            .body(bytes.clone())
    });
    assert!(!v2_dir.exists(), "an unauthorized upload stored a release");
    let authorized = molt.control(Some(TOKEN));
    let stored = authorized
        .upload(&v2, &upload)
        .unwrap_or_else(|e| panic!("upload with the token: {e}\n{}", molt.log()));
    assert!(v2_dir.join("release.toml").is_file(), "{stored:#?}");

    // POST /activate.
    unauthorized(&molt, "POST /activate", || {
        http.post(molt.control_url("/activate"))
            .query(&[("version", "2.0.0")])
    });
    assert_eq!(molt.status().version.as_deref(), Some("1.0.0"));
    assert_eq!(env.current(), "1.0.0", "an unauthorized activate moved current");
    let (_, stderr) = fails(1, &["activate", "2.0.0", "--control", &molt.control_base()]);
    assert!(
        stderr.contains("401") && stderr.contains("token"),
        "the CLI without --token-file does not say it needs a token: {stderr}"
    );
    let activated = authorized
        .activate("2.0.0")
        .unwrap_or_else(|e| panic!("activate with the token: {e}\n{}", molt.log()));
    assert_eq!(activated.version.as_deref(), Some("2.0.0"), "{activated:#?}");
    assert_eq!(count(&http, &molt), (3, "2.0.0".to_owned()));

    // POST /rollback.
    unauthorized(&molt, "POST /rollback", || {
        http.post(molt.control_url("/rollback"))
    });
    assert_eq!(molt.status().version.as_deref(), Some("2.0.0"));
    ok(&[
        "rollback",
        "--control",
        &molt.control_base(),
        "--token-file",
        &path(&token_file),
    ]);
    assert_eq!(count(&http, &molt), (3, "1.0.0".to_owned()));
    assert_eq!(env.current(), "1.0.0");
}

/// `promtool`, or why the check is skipped (`Err`); panics when `CI` is set and it is missing.
fn promtool() -> Result<(), String> {
    match std::process::Command::new("promtool").arg("--version").output() {
        Ok(out) if out.status.success() => Ok(()),
        found => {
            let why = match found {
                Ok(out) => format!("`promtool --version` exited {}", out.status),
                Err(e) => format!("promtool is not installed ({e})"),
            };
            assert!(
                std::env::var_os("CI").is_none(),
                "{why}, and CI is set: .ci/run installs it (Debian package `prometheus`)"
            );
            Err(why)
        }
    }
}

#[test]
fn metrics_pass_promtool_check_metrics() {
    if let Err(why) = promtool() {
        println!("skipped: `promtool check metrics` of /metrics: {why} (apt-get install prometheus)");
        return;
    }
    let env = Env::new("metrics");
    env.push(&plugin("counter_v1"));
    env.push(&plugin("counter_v2"));
    ok(&["activate", "1.0.0", "--volume", &path(&env.volume), "--app", APP]);
    let molt = env.start(std::iter::empty::<String>());
    molt.wait_for_version("1.0.0");
    let http = http();
    incr(&http, &molt, 5, "1.0.0");
    let _ = http.get(molt.url("/no-such-route")).send();
    // A swap and a refusal, so the swap counters and the pause histogram have samples.
    ControlClient::new(&molt.control_base(), None)
        .activate("2.0.0")
        .unwrap_or_else(|e| panic!("activate 2.0.0: {e}\n{}", molt.log()));
    assert!(ControlClient::new(&molt.control_base(), None)
        .activate("9.9.9")
        .is_err());
    incr(&http, &molt, 5, "2.0.0");

    let resp = http
        .get(molt.control_url("/metrics"))
        .send()
        .expect("GET /metrics");
    assert_eq!(resp.status().as_u16(), 200);
    let body = resp.text().expect("reading /metrics");
    assert!(
        body.contains("# TYPE"),
        "/metrics has no metric families:\n{body}"
    );

    use std::io::Write;
    let mut check = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting promtool");
    check
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(body.as_bytes())
        .expect("writing /metrics to promtool");
    let out = check.wait_with_output().expect("waiting for promtool");
    let (stdout, stderr) = texts(&out);
    assert!(
        out.status.success(),
        "promtool check metrics exited {}:\n{stdout}{stderr}\n/metrics was:\n{body}",
        out.status
    );
}
