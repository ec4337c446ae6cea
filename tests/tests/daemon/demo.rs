//! `molt demo`, the embedded default, with the plugins the tests build.

use super::*;

#[test]
fn the_demo_runs_with_the_built_plugins() {
    let plugins = plugin_dir();
    let out = molt_within(
        &["demo", "--plugins", &path(&plugins), "--clients", "2"],
        Duration::from_secs(30),
    );
    let (stdout, stderr) = texts(&out);
    assert!(
        out.status.success(),
        "molt demo exited {}:\n{stdout}{stderr}",
        out.status
    );
    let count_line = stdout
        .lines()
        .find(|l| l.contains("GET /count →"))
        .unwrap_or_else(|| panic!("no count line:\n{stdout}"));
    assert!(
        count_line.contains("2.0.0"),
        "the count was not served by v2: {count_line}"
    );
    assert!(stdout.contains("no restart"), "{stdout}");
}

#[test]
fn the_scale_down_demo_hands_one_pod_to_the_other() {
    let plugins = plugin_dir();
    let out = molt_within(
        &[
            "demo",
            "--scale-down",
            "--plugins",
            &path(&plugins),
            "--clients",
            "2",
        ],
        Duration::from_secs(60),
    );
    let (stdout, stderr) = texts(&out);
    assert!(
        out.status.success(),
        "molt demo --scale-down exited {}:\n{stdout}{stderr}",
        out.status
    );
    for said in [
        "of the 30 s grace period",
        "none lost, none twice",
        "GET /count → 0",
    ] {
        assert!(stdout.contains(said), "{said:?} missing:\n{stdout}");
    }
}
