//! The whole life of one count: pushed, upgraded in place, rolled back, carried over a restart.

use super::*;

/// Increments sent before the upgrade.
const INCREMENTS: u64 = 137;

#[test]
fn a_count_survives_push_upgrade_rollback_and_restart() {
    let env = Env::new("lifecycle");
    let molt = env.start(std::iter::empty::<String>());
    let first = molt.status();
    assert_eq!(first.version, None, "nothing was pushed yet: {first:#?}");
    assert!(!first.ready);

    // v1 through the CLI onto the volume: the watcher sees `current` and loads it.
    env.push(&plugin("counter_v1"));
    molt.wait_for_version("1.0.0");
    let http = http();
    let total = incr(&http, &molt, INCREMENTS, "1.0.0");
    assert_eq!(total, INCREMENTS, "{}", molt.log());

    // v2 through the CLI: swapped in place, in the same process, with the count.
    env.push(&plugin("counter_v2"));
    // `/status` reads the serving version and the swap record separately: wait for both.
    let upgraded = molt.wait_status(SHOW_TIMEOUT, "the swap to 2.0.0", |s| {
        s.version.as_deref() == Some("2.0.0") && s.last_swap.is_some()
    });
    assert_eq!(
        upgraded.pid,
        molt.pid(),
        "the upgrade changed the process: {upgraded:#?}"
    );
    assert_eq!(upgraded.swaps, 1, "{upgraded:#?}");
    let swap = upgraded.last_swap.clone().expect("/status reports the swap");
    assert!(
        swap.ok && swap.from.as_deref() == Some("1.0.0") && swap.to == "2.0.0",
        "{swap:#?}"
    );
    assert_eq!(
        count(&http, &molt),
        (INCREMENTS, "2.0.0".to_owned()),
        "{}",
        molt.log()
    );

    // Back to v1 through the control API, with the CLI.
    let said = ok(&["rollback", "--control", &molt.control_base()]);
    let back = molt.wait_for_version("1.0.0");
    assert_eq!(back.pid, molt.pid(), "the rollback changed the process");
    assert_eq!(
        count(&http, &molt),
        (INCREMENTS, "1.0.0".to_owned()),
        "after `molt rollback` said {said:?}\n{}",
        molt.log()
    );
    assert_eq!(env.current(), "1.0.0", "the volume's current names what runs");
    drop(http);

    // SIGTERM: drains, writes the final snapshot, exits 0.
    let log = molt.log_path().to_owned();
    let old_pid = molt.pid();
    let exit = molt.terminate();
    let log = read(&log);
    assert!(exit.success(), "molt run exited {exit} on SIGTERM:\n{log}");
    let snapshots = env.snapshots();
    assert!(
        !snapshots.is_empty(),
        "no snapshot in {} after SIGTERM:\n{log}",
        env.state.display()
    );

    // A new process on the same volume and state directory: v1 with the count.
    let again = env.start(std::iter::empty::<String>());
    assert_ne!(again.pid(), old_pid);
    again.wait_for_version("1.0.0");
    let http = super::http();
    assert_eq!(
        count(&http, &again),
        (INCREMENTS, "1.0.0".to_owned()),
        "{}",
        again.log()
    );
    assert!(
        again.log().contains("state restored from the snapshot"),
        "the log does not say the state was restored:\n{}",
        again.log()
    );
    // The start read the snapshot file once: the check at open is the state restored.
    assert_eq!(
        again.log().matches("snapshot found").count(),
        1,
        "the snapshot was read more than once:\n{}",
        again.log()
    );
}
