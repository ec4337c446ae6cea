//! The rules `molt check` checks on what a library's descriptor says: alone, and as the
//! successor of another.

use crate::loader::PluginInfo;
use molt_abi::choose_schema;
use std::collections::BTreeSet;

/// One rule and whether the library (pair) keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rule {
    /// What the rule says.
    pub rule: String,
    /// Kept?
    pub ok: bool,
    /// What was found.
    pub detail: String,
}

pub(super) fn rule(rule: &str, ok: bool, detail: impl Into<String>) -> Rule {
    Rule {
        rule: rule.to_owned(),
        ok,
        detail: detail.into(),
    }
}

/// The rules one library keeps by itself (`export_app!` checks them at compile time; a
/// library built against an older molt-abi may not).
pub(super) fn own_rules(info: &PluginInfo) -> Vec<Rule> {
    let dupes = |list: &[u32]| list.len() != list.iter().collect::<BTreeSet<_>>().len();
    vec![
        rule(
            "IMPORTS include SCHEMA (a restart restores snapshots through it)",
            info.imports.contains(&info.state_schema),
            format!("schema {}, imports {:?}", info.state_schema, info.imports),
        ),
        rule(
            "EXPORTS include SCHEMA (else upgrades go through an older schema and lose what it lacks)",
            info.exports.contains(&info.state_schema),
            format!("schema {}, exports {:?}", info.state_schema, info.exports),
        ),
        rule(
            "no schema listed twice",
            !dupes(&info.imports) && !dupes(&info.exports),
            format!("imports {:?}, exports {:?}", info.imports, info.exports),
        ),
    ]
}

/// The rules a pair keeps: same app, a schema each way.
pub(super) fn pair_rules(old: &PluginInfo, new: &PluginInfo) -> Vec<Rule> {
    let up = choose_schema(old.state_schema, &old.exports, new.state_schema, &new.imports);
    let down = choose_schema(new.state_schema, &new.exports, old.state_schema, &old.imports);
    vec![
        rule(
            "same app",
            old.name == new.name,
            format!("{:?} → {:?}", old.name, new.name),
        ),
        rule(
            "a schema for the upgrade",
            up.is_some(),
            match up {
                Some(s) => format!("schema {s}"),
                None => format!(
                    "{} exports {:?}, {} imports {:?}: nothing shared",
                    old.version, old.exports, new.version, new.imports
                ),
            },
        ),
        table_rule(
            "a record conversion for the upgrade",
            old.table_schema,
            new.table_schema,
            new.table_upgrades.contains(&old.table_schema),
        ),
        table_rule(
            "a record conversion for the rollback",
            new.table_schema,
            old.table_schema,
            new.table_downgrades.contains(&old.table_schema),
        ),
        rule(
            "a schema for the rollback",
            down.is_some(),
            match down {
                Some(s) => format!("schema {s}"),
                None => format!(
                    "{} exports {:?}, {} imports {:?}: nothing shared",
                    new.version, new.exports, old.version, old.imports
                ),
            },
        ),
    ]
}

/// Tables: the records need converting only when the table schemas differ (0: no tables).
fn table_rule(name: &str, from: u32, to: u32, hook: bool) -> Rule {
    let (ok, detail) = match (from, to) {
        (0, 0) => (true, "no tables".to_owned()),
        (a, b) if a == b => (
            true,
            format!("table schema {a} both sides: records stay as they are"),
        ),
        (a, b) => (
            hook,
            format!(
                "table schema {a} → {b}: {}",
                if hook {
                    "the new version converts"
                } else {
                    "no hook converts the records"
                }
            ),
        ),
    };
    rule(name, ok, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(schema: u32, imports: &[u32], exports: &[u32], tables: (u32, &[u32], &[u32])) -> PluginInfo {
        PluginInfo {
            name: "app".into(),
            version: format!("{schema}.0.0"),
            state_schema: schema,
            imports: imports.to_vec(),
            exports: exports.to_vec(),
            table_schema: tables.0,
            table_upgrades: tables.1.to_vec(),
            table_downgrades: tables.2.to_vec(),
            tick_interval_ms: 0,
            abi_version: 2,
            merges: Vec::new(),
            library: "libapp.so".into(),
            sha256: String::new(),
        }
    }

    fn failed(rules: &[Rule]) -> Vec<&str> {
        rules.iter().filter(|r| !r.ok).map(|r| r.rule.as_str()).collect()
    }

    #[test]
    fn own_lists() {
        assert!(failed(&own_rules(&info(2, &[1, 2], &[2, 1], (0, &[], &[])))).is_empty());
        let bad = own_rules(&info(2, &[1], &[1, 1], (0, &[], &[])));
        assert_eq!(failed(&bad).len(), 3, "{bad:?}");
    }

    #[test]
    fn pairs() {
        let v1 = info(1, &[1], &[1], (0, &[], &[]));
        assert!(failed(&pair_rules(&v1, &info(2, &[1, 2], &[2, 1], (0, &[], &[])))).is_empty());
        let no_way = pair_rules(&v1, &info(3, &[3], &[3], (0, &[], &[])));
        assert_eq!(
            failed(&no_way),
            ["a schema for the upgrade", "a schema for the rollback"]
        );
        let t1 = info(1, &[1], &[1], (1, &[], &[]));
        let t2_up_only = info(1, &[1], &[1], (2, &[1], &[]));
        assert_eq!(
            failed(&pair_rules(&t1, &t2_up_only)),
            ["a record conversion for the rollback"]
        );
    }
}
