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
