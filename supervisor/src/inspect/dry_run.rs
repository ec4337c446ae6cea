//! `molt check --against`: the rules, the app's lifecycle, and a dry run of the migration
//! both ways, in the inspecting child (see the module docs: a library that crashes here is a
//! refusal, not an outage).
//!
//! The migration runs the hooks a swap and a rollback would run, on real state when a
//! snapshot is given (imported into the old version), else on the old version's freshly
//! created state: old export → new import → new export in the old schema → old import. The
//! round trip is good when the old version exports the same bytes afterwards as before.
//! Without an old library, the new one's own snapshot round trip (export, import, export) is
//! checked instead.

use super::lifecycle::{lifecycle, unmapped_rule};
use super::rules::{own_rules, pair_rules, rule, Rule};
use crate::loader::{Expect, Instance, Plugin, PluginInfo};
use crate::tables::TableStore;
use molt_abi::choose_schema;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One hook call of the dry run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Step {
    /// `old export`, `new import`, …
    pub what: String,
    /// The schema of the bytes.
    pub schema: u32,
    /// How many bytes crossed.
    pub bytes: usize,
    /// How long the hook took.
    pub took: Duration,
}

/// What a dry run found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DryRun {
    /// The library checked.
    pub new: PluginInfo,
    /// The one it would replace, if given.
    pub old: Option<PluginInfo>,
    /// Where the state came from.
    pub state: String,
    /// The rules, in order.
    pub rules: Vec<Rule>,
    /// The hook calls of the migration (or of the round trip), in order, as far as they got.
    pub steps: Vec<Step>,
}

impl DryRun {
    /// Whether every rule is kept.
    pub fn ok(&self) -> bool {
        self.rules.iter().all(|r| r.ok)
    }
}

/// What the child was asked.
pub(super) struct Ask<'a> {
    pub library: &'a Path,
    pub against: Option<&'a Path>,
    pub state: Option<&'a Path>,
    pub scratch: &'a Path,
}

/// Runs the dry run. `Err` is a refusal of a library by the loader (its message).
pub(super) fn run(ask: &Ask<'_>) -> Result<DryRun, String> {
    let load = |lib: &Path, dir: &str| {
        Plugin::load_trusted(lib, &ask.scratch.join(dir), &Expect::any()).map_err(|e| e.to_string())
    };
    let new = load(ask.library, "new")?;
    let mut rules = own_rules(new.info());
    rules.extend(lifecycle(&new, &Arc::new(TableStore::new())));
    // One store for the migration: an app that keeps state in tables finds them again after
    // the swap, as in a supervisor (fresh tables: the records themselves are not dry-run).
    let tables = Arc::new(TableStore::new());
    let old = ask.against.map(|lib| load(lib, "old")).transpose()?;
    let mut steps = Vec::new();
    let state = match &old {
        Some(old) => {
            rules.extend(pair_rules(old.info(), new.info()));
            migrate(old, &new, &tables, ask.state, &mut steps, &mut rules)
        }
        None => round_trip(&new, &tables, ask.state, &mut steps, &mut rules),
    };
    let mut dry_run = DryRun {
        new: new.info().clone(),
        old: old.as_ref().map(|o| o.info().clone()),
        state,
        rules,
        steps,
    };
    // Every instance is gone; closing the plugins must unmap the new library.
    let copy = new.copy_path().map(Path::to_owned);
    drop((old, new));
    dry_run.rules.extend(unmapped_rule(copy));
    Ok(dry_run)
}

/// Reads a snapshot for `plugin`'s app.
fn snapshot(path: &Path, app: &str) -> Result<(u32, Vec<u8>, String), String> {
    let snap = crate::snapshot::read_snapshot(path).map_err(|e| e.to_string())?;
    if snap.app != app {
        return Err(format!(
            "the snapshot {} is of app {:?}, not {app:?}",
            path.display(),
            snap.app
        ));
    }
    let label = format!(
        "snapshot {} ({} {}, schema {}, {} bytes)",
        path.display(),
        snap.app,
        snap.version,
        snap.schema,
        snap.bytes.len()
    );
    Ok((snap.schema, snap.bytes.into_vec(), label))
}

/// The starting instance: imported from the snapshot, or freshly created.
fn start(
    plugin: &Arc<Plugin>,
    tables: &Arc<TableStore>,
    state: Option<&Path>,
    steps: &mut Vec<Step>,
) -> Result<(Instance, String), String> {
    match state {
        None => {
            let instance = plugin.create_in(tables).map_err(|e| e.to_string())?;
            Ok((instance, format!("freshly created by {}", plugin.info().version)))
        }
        Some(path) => {
            let (schema, bytes, label) = snapshot(path, &plugin.info().name)?;
            let instance = timed(
                steps,
                &format!("{} import (snapshot)", plugin.info().version),
                schema,
                bytes.len(),
                || plugin.import_in(tables, schema, &bytes),
            )
            .map_err(|e| e.to_string())?;
            Ok((instance, label))
        }
    }
}

fn timed<T>(steps: &mut Vec<Step>, what: &str, schema: u32, bytes: usize, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    steps.push(Step {
        what: what.to_owned(),
        schema,
        bytes,
        took: started.elapsed(),
    });
    out
}

fn export(instance: &Instance, schema: u32, steps: &mut Vec<Step>, what: &str) -> Result<Vec<u8>, String> {
    let started = Instant::now();
    let bytes = instance.export(schema).map_err(|e| format!("{what}: {e}"))?;
    steps.push(Step {
        what: what.to_owned(),
        schema,
        bytes: bytes.len(),
        took: started.elapsed(),
    });
    Ok(bytes.to_vec())
}

/// The migration both ways; returns where the state came from.
fn migrate(
    old: &Arc<Plugin>,
    new: &Arc<Plugin>,
    tables: &Arc<TableStore>,
    state: Option<&Path>,
    steps: &mut Vec<Step>,
    rules: &mut Vec<Rule>,
) -> String {
    let (o, n) = (old.info(), new.info());
    let (Some(up), Some(down)) = (
        choose_schema(o.state_schema, &o.exports, n.state_schema, &n.imports),
        choose_schema(n.state_schema, &n.exports, o.state_schema, &o.imports),
    ) else {
        return "not migrated: no shared schema".to_owned();
    };
    let result = (|| -> Result<(bool, String), (String, String)> {
        let (first, label) = start(old, tables, state, steps).map_err(|e| (e, "no state".to_owned()))?;
        let fail = |e: String| (e, label.clone());
        let before = export(
            &first,
            o.state_schema,
            steps,
            &format!("{} export (own schema)", o.version),
        )
        .map_err(fail)?;
        let bytes = export(&first, up, steps, &format!("{} export", o.version)).map_err(fail)?;
        let upgraded = timed(steps, &format!("{} import", n.version), up, bytes.len(), || {
            new.import_in(tables, up, &bytes)
        })
        .map_err(|e| fail(e.to_string()))?;
        let bytes = export(
            &upgraded,
            down,
            steps,
            &format!("{} export (rollback)", n.version),
        )
        .map_err(fail)?;
        let back = timed(
            steps,
            &format!("{} import (rollback)", o.version),
            down,
            bytes.len(),
            || old.import_in(tables, down, &bytes),
        )
        .map_err(|e| fail(e.to_string()))?;
        let after = export(
            &back,
            o.state_schema,
            steps,
            &format!("{} export (own schema)", o.version),
        )
        .map_err(fail)?;
        Ok((before == after, label))
    })();
    match result {
        Ok((same, label)) => {
            rules.push(rule(
                "the round trip returns the same bytes",
                same,
                if same {
                    format!(
                        "{} → {} (schema {up}) → {} (schema {down}): identical",
                        o.version, n.version, o.version
                    )
                } else {
                    format!(
                        "{} → {} (schema {up}) → {} (schema {down}): the state came back different: \
                         the upgrade or the rollback loses or changes data",
                        o.version, n.version, o.version
                    )
                },
            ));
            label
        }
        Err((error, label)) => {
            rules.push(rule("the migration runs", false, error));
            label
        }
    }
}

/// Without an old library: the new one's own snapshot round trip.
fn round_trip(
    plugin: &Arc<Plugin>,
    tables: &Arc<TableStore>,
    state: Option<&Path>,
    steps: &mut Vec<Step>,
    rules: &mut Vec<Rule>,
) -> String {
    let schema = plugin.info().state_schema;
    let version = plugin.info().version.clone();
    let result = (|| -> Result<(bool, String), (String, String)> {
        let (first, label) = start(plugin, tables, state, steps).map_err(|e| (e, "no state".to_owned()))?;
        let fail = |e: String| (e, label.clone());
        let before = export(&first, schema, steps, &format!("{version} export")).map_err(fail)?;
        let again = timed(steps, &format!("{version} import"), schema, before.len(), || {
            plugin.import_in(tables, schema, &before)
        })
        .map_err(|e| fail(e.to_string()))?;
        let after = export(&again, schema, steps, &format!("{version} export")).map_err(fail)?;
        Ok((before == after, label))
    })();
    match result {
        Ok((same, label)) => {
            rules.push(rule(
                "a snapshot round trip returns the same bytes",
                same,
                if same {
                    "export, import, export: identical"
                } else {
                    "export, import, export: the bytes differ"
                },
            ));
            label
        }
        Err((error, label)) => {
            rules.push(rule("the snapshot round trip runs", false, error));
            label
        }
    }
}
