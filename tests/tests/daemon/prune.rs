//! Retention (issue 10): `molt prune --keep N` removes old releases, never the current, the
//! previous, the newest good one, nor what a live supervisor runs or keeps for rollback.

use super::*;

fn listed(env: &Env) -> Vec<String> {
    let out = ok(&["releases", "--volume", &path(&env.volume), "--app", APP]);
    out.lines()
        .filter(|l| !l.starts_with("supervisor "))
        .filter_map(|l| l.get(2..)?.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn prune_keeps_what_it_must() {
    let env = Env::new("prune");
    let molt = env.start(std::iter::empty::<String>());
    let volume = path(&env.volume);
    ok(&["push", &lib("counter_v1"), "--volume", &volume]);
    // `molt push --keep` prunes after a confirmed push; 1.0.0 is previous and where the
    // supervisor's rollback goes.
    let said = ok(&["push", &lib("counter_v2"), "--volume", &volume, "--keep", "1"]);
    assert!(
        said.contains("kept 1.0.0 (previous, rollback target on state@"),
        "{said}"
    );
    ok(&["push", &lib("counter_v3"), "--volume", &volume]);
    ok(&[
        "push",
        &lib("fixture_no_downgrade"),
        "--volume",
        &volume,
        "--no-activate",
    ]);
    molt.wait_for_version("3.0.0");

    // Keep 1: 3.0.0 is the newest and current; 2.0.0 is previous; 1.0.0 is where the live
    // supervisor's second rollback goes. Only the untried 3.0.0-no-downgrade goes.
    let said = ok(&["prune", "--volume", &volume, "--app", APP, "--keep", "1"]);
    assert!(said.contains("removed 3.0.0-no-downgrade"), "{said}");
    assert!(said.contains("kept 1.0.0 (rollback target on state@"), "{said}");
    assert_eq!(listed(&env), ["1.0.0", "2.0.0", "3.0.0"]);

    // With the supervisor gone, 1.0.0 is needed by nothing.
    assert!(molt.terminate().success());
    let said = ok(&["prune", "--volume", &volume, "--app", APP, "--keep", "1"]);
    assert!(said.contains("removed 1.0.0"), "{said}");
    assert_eq!(listed(&env), ["2.0.0", "3.0.0"]);
    assert_eq!(env.current(), "3.0.0");
}

#[test]
fn prune_of_a_missing_app_and_a_listing_of_an_invalid_one_change_nothing_and_say_why() {
    let env = Env::new("prune-missing");
    let volume = path(&env.volume);
    ok(&["push", &lib("counter_v1"), "--volume", &volume]);
    // A typo in the app's name creates no directory for it.
    let (stdout, stderr) = fails(
        1,
        &["prune", "--volume", &volume, "--app", "countr", "--keep", "1"],
    );
    assert!(
        format!("{stdout}{stderr}").contains("app countr is not on the volume"),
        "{stdout}{stderr}"
    );
    assert!(!env.volume.join("countr").exists());
    // An invalid name is refused as such, not reported as an unusable `current`.
    let (stdout, stderr) = fails(1, &["releases", "--volume", &volume, "--app", ".."]);
    let all = format!("{stdout}{stderr}");
    assert!(!all.contains("current is unusable"), "{all}");
    assert!(all.contains("app \"..\" is refused"), "{all}");
}
