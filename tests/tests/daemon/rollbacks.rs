//! One rollback (issue 10): `molt rollback --volume` and `--control` both walk back through
//! what served before on the supervisor, never forward; the state is kept at every step.

use super::*;

/// `GET /count` (the sum in v2 and v3) and the version serving.
fn total(http: &reqwest::blocking::Client, molt: &MoltProcess) -> (u64, String) {
    count(http, molt)
}

/// Activates `version` by volume, confirmed.
fn activate(env: &Env, version: &str) {
    ok(&["activate", version, "--volume", &path(&env.volume), "--app", APP]);
}

#[test]
fn v1_v2_v3_rollback_rollback_is_v1_by_volume_and_by_control() {
    let env = Env::new("rollbacks");
    let molt = env.start(std::iter::empty::<String>());
    let volume = path(&env.volume);
    let http = http();
    // Nothing serves yet: a 503 that names no version, rather than an empty header.
    let nothing = http.get(molt.url("/count")).send().expect("GET /count");
    assert_eq!(nothing.status().as_u16(), 503);
    assert!(
        nothing.headers().get("x-molt-version").is_none(),
        "{:?}",
        nothing.headers()
    );
    ok(&["push", &lib("counter_v1"), "--volume", &volume]);
    incr(&http, &molt, 4, "1.0.0");
    ok(&["push", &lib("counter_v2"), "--volume", &volume]);
    incr(&http, &molt, 3, "2.0.0");
    ok(&["push", &lib("counter_v3"), "--volume", &volume]);
    incr(&http, &molt, 2, "3.0.0");
    assert_eq!(total(&http, &molt), (9, "3.0.0".to_owned()));
    assert_eq!(molt.status().generations, ["2.0.0", "1.0.0"]);

    // By volume: 3 → 2 → 1, the count kept at each step.
    let said = ok(&["rollback", "--volume", &volume, "--app", APP]);
    assert!(
        said.contains("back to 2.0.0") && said.contains("runs on 1 supervisor"),
        "{said}"
    );
    assert_eq!(total(&http, &molt), (9, "2.0.0".to_owned()), "{}", molt.log());
    incr(&http, &molt, 1, "2.0.0");
    let said = ok(&["rollback", "--volume", &volume, "--app", APP]);
    assert!(said.contains("back to 1.0.0"), "{said}");
    assert_eq!(total(&http, &molt), (10, "1.0.0".to_owned()), "{}", molt.log());
    assert_eq!(env.current(), "1.0.0");
    // Nowhere further back: refused, nothing moves.
    let (stdout, stderr) = fails(1, &["rollback", "--volume", &volume, "--app", APP]);
    assert!(
        format!("{stdout}{stderr}").contains("served no other good version"),
        "{stdout}{stderr}"
    );
    assert_eq!(env.current(), "1.0.0");

    // By control: the same walk.
    activate(&env, "2.0.0");
    activate(&env, "3.0.0");
    incr(&http, &molt, 1, "3.0.0");
    let control = molt.control_base();
    let said = ok(&["rollback", "--control", &control]);
    assert_eq!(
        total(&http, &molt),
        (11, "2.0.0".to_owned()),
        "after {said:?}\n{}",
        molt.log()
    );
    let said = ok(&["rollback", "--control", &control]);
    assert_eq!(
        total(&http, &molt),
        (11, "1.0.0".to_owned()),
        "after {said:?}\n{}",
        molt.log()
    );
    assert_eq!(env.current(), "1.0.0", "the volume names what runs");
    let status = molt.status();
    assert!(status.generations.is_empty(), "{status:#?}");
    fails(1, &["rollback", "--control", &control]);
    assert_eq!(total(&http, &molt), (11, "1.0.0".to_owned()));
}
