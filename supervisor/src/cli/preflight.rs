//! The stage checks a supervisor would run, run by `molt push/activate/rollback --volume`
//! before `current` moves: the release verifies, speaks this ABI, is the app, its IMPORTS and
//! EXPORTS include its own SCHEMA, and the release `current` names exports a schema it
//! imports. Libraries are opened by [`super::check::inspect`], in a child process
//! ([`crate::inspect`]), so a foreign constructor cannot harm the pushing process.

use crate::loader::PluginInfo;
use crate::volume::Volume;

/// A failed stage check: the step and what failed.
#[derive(Debug)]
pub struct Failed {
    /// The check: `release`, `abi`, `load`, `name`, `schema`, `stage`.
    pub step: &'static str,
    /// Why.
    pub why: String,
}

/// Runs the checks for changing `app` from the release `current` names (if any, and if it is
/// another version) to `target`.
pub fn check(volume: &Volume, app: &str, target: &str, current: Option<&str>) -> Result<(), Failed> {
    let fail = |step, why: String| Failed { step, why };
    let verified = volume
        .verify_release(app, target)
        .map_err(|e| fail("release", e.to_string()))?;
    if !molt_abi::ABI_VERSIONS.contains(&verified.manifest.abi) {
        return Err(fail(
            "abi",
            format!(
                "its manifest says ABI {}, molt loads ABI versions {:?}",
                verified.manifest.abi,
                molt_abi::ABI_VERSIONS
            ),
        ));
    }
    let new = describe(&verified.library).map_err(|e| fail("load", super::chain::line(&*e)))?;
    if new.name != app {
        return Err(fail(
            "name",
            format!("the library is app {:?}, not {app:?}", new.name),
        ));
    }
    if !new.imports.contains(&new.state_schema) || !new.exports.contains(&new.state_schema) {
        return Err(fail(
            "schema",
            format!(
                "its schema {} must be among its IMPORTS {:?} and EXPORTS {:?}",
                new.state_schema, new.imports, new.exports
            ),
        ));
    }
    let Some(current) = current.filter(|c| *c != target) else {
        return Ok(());
    };
    // The running release is the supervisors' business when it no longer verifies: they
    // refuse or not on their own, and the confirmation says so.
    let Ok(running) = volume.verify_release(app, current) else {
        return Ok(());
    };
    let old = describe(&running.library)
        .map_err(|e| fail("load", format!("{current}: {}", super::chain::line(&*e))))?;
    if molt_abi::choose_schema(old.state_schema, &old.exports, new.state_schema, &new.imports).is_none() {
        return Err(fail(
            "stage",
            format!(
                "no shared state schema: {current} exports {:?}, {target} imports {:?} \
                 (state is never dropped: add the missing schema to one side's hooks)",
                old.exports, new.imports
            ),
        ));
    }
    Ok(())
}

/// What a library says it is.
fn describe(library: &std::path::Path) -> anyhow::Result<PluginInfo> {
    super::check::inspect(library)
}
