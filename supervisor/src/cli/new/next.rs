//! `molt new NAME --next-of PATH`: the next version of an app crate made by `molt new`.
//!
//! The new crate starts as a copy of the previous one with the next state schema, N+1, laid
//! out like schema N for now: `state.rs` gains `encode_v{N+1}`/`decode_v{N+1}` (which call
//! schema N's, ready to be changed) and their arms in `export`/`import`; `IMPORTS` gains N+1
//! and `EXPORTS` lists N+1 first and keeps N, so both the upgrade and the rollback work from
//! the start. `src/migration.rs` tests both against the previous crate, a dev-dependency
//! (the entry symbols do not clash: see `molt_abi::export_app!`).
//!
//! Only crates shaped like `molt new`'s output are accepted (the schema lines and the
//! `state.rs` arms are found by their text); anything else is refused with what was missing.

use super::template::{self, Values};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

/// What the previous version is.
#[derive(Debug, PartialEq, Eq)]
struct Previous {
    package: String,
    version: String,
    lib: String,
    type_name: String,
    schema: u32,
    imports: Vec<u32>,
    exports: Vec<u32>,
}

/// The files of the next version of the crate at `previous`.
pub fn files(previous: &Path, values: Values) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let previous = previous
        .canonicalize()
        .with_context(|| format!("--next-of {}: no such directory", previous.display()))?;
    let manifest = read(&previous.join("Cargo.toml"))?;
    let lib_rs = read(&previous.join("src/lib.rs"))?;
    let state_rs = read(&previous.join("src/state.rs"))?;
    let prev = describe(&manifest, &lib_rs)?;
    let (n, next) = (prev.schema, prev.schema + 1);
    let major: u64 = prev
        .version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    let dev_dependencies = format!(
        "\n# The previous version, for the migration tests (src/migration.rs).\n[dev-dependencies]\n{} = {{ path = {} }}\n",
        prev.package,
        toml::Value::String(previous.display().to_string())
    );
    let values = values
        .set("version", format!("{}.0.0", major + 1))
        .set("dev_dependencies", dev_dependencies)
        .set("Type", prev.type_name.as_str())
        .set("PrevType", prev.type_name.as_str())
        .set("prev_crate", prev.package.as_str())
        .set("prev_version", prev.version.as_str())
        .set("prev_schema", n.to_string())
        .set("prev_lib", prev.lib.as_str());

    let mut imports = prev.imports.clone();
    imports.push(next);
    let mut exports = vec![next];
    exports.extend(&prev.exports);
    let lib_rs = replace_line(
        &lib_rs,
        "const SCHEMA: u32 =",
        &format!("const SCHEMA: u32 = {next};"),
    )?;
    let lib_rs = replace_line(
        &lib_rs,
        "const IMPORTS:",
        &format!("const IMPORTS: &'static [u32] = &{imports:?};"),
    )?;
    let lib_rs = replace_line(
        &lib_rs,
        "const EXPORTS:",
        &format!("const EXPORTS: &'static [u32] = &{exports:?};"),
    )?;
    let lib_rs = if lib_rs.contains("mod migration;") {
        lib_rs
    } else {
        format!("{lib_rs}\n#[cfg(test)]\nmod migration;\n")
    };
    let state_rs = next_state(&state_rs, n)?;

    let mut files = vec![
        (PathBuf::from("Cargo.toml"), values.render(template::CARGO_TOML)),
        (PathBuf::from(".gitignore"), values.render(template::GITIGNORE)),
        (PathBuf::from("src/lib.rs"), lib_rs),
        (PathBuf::from("src/state.rs"), state_rs),
        (
            PathBuf::from("src/migration.rs"),
            values.render(template::MIGRATION_RS),
        ),
    ];
    // Every other source file as it is.
    for path in walk(&previous.join("src"))? {
        let relative = path.strip_prefix(&previous).unwrap_or(&path).to_owned();
        if !files.iter().any(|(p, _)| *p == relative) {
            files.push((relative, read(&path)?));
        }
    }
    Ok(files)
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("--next-of: cannot read {}", path.display()))
}

/// Reads names and schemas out of the previous crate's manifest and `lib.rs`.
fn describe(manifest: &str, lib_rs: &str) -> anyhow::Result<Previous> {
    let manifest: toml::Table = manifest
        .parse()
        .context("--next-of: Cargo.toml is not valid TOML")?;
    let text = |section: &str, key: &str| {
        manifest
            .get(section)
            .and_then(|s| s.get(key))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let package = text("package", "name").context("--next-of: Cargo.toml has no package name")?;
    let version = text("package", "version").unwrap_or_else(|| "0.0.0".to_owned());
    let lib = text("lib", "name").unwrap_or_else(|| package.replace('-', "_"));
    if super::KEYWORDS.contains(&lib.as_str()) {
        bail!("--next-of: the previous crate's library is named `{lib}`, a Rust keyword, which the next version cannot `use`: rename it (`[lib] name`)");
    }
    let value_of = |prefix: &str| {
        lib_rs
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(|rest| rest.trim_end_matches(';').trim().to_owned())
    };
    let not_molt_new = |what: &str| {
        anyhow::anyhow!("--next-of works on crates made by `molt new`: src/lib.rs has no {what}")
    };
    let schema: u32 = value_of("const SCHEMA: u32 =")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| not_molt_new("`const SCHEMA: u32 = N;` line"))?;
    let list = |prefix: &str| -> anyhow::Result<Vec<u32>> {
        let raw = value_of(prefix).ok_or_else(|| not_molt_new(prefix))?;
        let inner = raw
            .trim_start_matches('&')
            .trim_start_matches('[')
            .trim_end_matches(']');
        inner
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse()
                    .map_err(|_| not_molt_new(&format!("plain list in `{prefix}`")))
            })
            .collect()
    };
    let imports = list("const IMPORTS: &'static [u32] =")?;
    let exports = list("const EXPORTS: &'static [u32] =")?;
    let type_name = value_of("molt_abi::export_app!(")
        .map(|s| s.trim_end_matches(')').trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| not_molt_new("`molt_abi::export_app!(Type);` line"))?;
    Ok(Previous {
        package,
        version,
        lib,
        type_name,
        schema,
        imports,
        exports,
    })
}

/// `text` with the one line starting (after indentation) with `prefix` replaced by `line`.
fn replace_line(text: &str, prefix: &str, line: &str) -> anyhow::Result<String> {
    let mut found = false;
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            let indent = &l[..l.len() - l.trim_start().len()];
            if !found && l.trim_start().starts_with(prefix) {
                found = true;
                format!("{indent}{line}")
            } else {
                l.to_owned()
            }
        })
        .collect();
    if !found {
        bail!("--next-of works on crates made by `molt new`: no `{prefix}` line");
    }
    Ok(lines.join("\n") + "\n")
}

/// `state.rs` with schema `n + 1`: arms before schema `n`'s, and functions that start as
/// schema `n`'s layout.
fn next_state(state_rs: &str, n: u32) -> anyhow::Result<String> {
    let next = n + 1;
    let export_arm = format!("{n} => Ok(encode_v{n}(items)),");
    let import_arm = format!("{n} => decode_v{n}(bytes),");
    let mut out = Vec::new();
    let mut arms = 0;
    for line in state_rs.lines() {
        let indent = &line[..line.len() - line.trim_start().len()];
        if line.trim() == export_arm {
            out.push(format!("{indent}{next} => Ok(encode_v{next}(items)),"));
            arms += 1;
        } else if line.trim() == import_arm {
            out.push(format!("{indent}{next} => decode_v{next}(bytes),"));
            arms += 1;
        }
        out.push(line.to_owned());
    }
    if arms != 2 {
        bail!("--next-of works on crates made by `molt new`: src/state.rs has no `{export_arm}` and `{import_arm}` arms");
    }
    out.push(format!(
        "
/// Schema {next}. It starts laid out like schema {n} (`molt new --next-of` made it so); change
/// both functions when the shape changes, and keep schema {n}'s: upgrades from the previous
/// version import it and rollbacks to it export it.
pub fn encode_v{next}(items: &Items) -> Vec<u8> {{
    encode_v{n}(items)
}}

/// Schema {next}; see `encode_v{next}`.
pub fn decode_v{next}(bytes: &[u8]) -> Result<Items, AppError> {{
    decode_v{n}(bytes)
}}"
    ));
    Ok(out.join("\n") + "\n")
}

/// Every file under `dir`, sorted.
fn walk(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first() -> (String, String, String) {
        let values = Values::default()
            .set("crate", "notes")
            .set("lib", "notes")
            .set("abi", "\"/abi\"")
            .set("app", "notes")
            .set("Type", "Notes")
            .set("version", "1.0.0")
            .set("dev_dependencies", "");
        (
            values.render(template::CARGO_TOML),
            values.render(template::LIB_RS),
            values.render(template::STATE_RS),
        )
    }

    #[test]
    fn reads_a_first_version() {
        let (manifest, lib_rs, _) = first();
        let prev = describe(&manifest, &lib_rs).unwrap();
        assert_eq!(
            prev,
            Previous {
                package: "notes".into(),
                version: "1.0.0".into(),
                lib: "notes".into(),
                type_name: "Notes".into(),
                schema: 1,
                imports: vec![1],
                exports: vec![1],
            }
        );
    }

    #[test]
    fn the_next_state_has_both_schemas() {
        let (_, _, state_rs) = first();
        let next = next_state(&state_rs, 1).unwrap();
        assert!(next.contains("        2 => Ok(encode_v2(items)),\n        1 => Ok(encode_v1(items)),"));
        assert!(next.contains("        2 => decode_v2(bytes),\n        1 => decode_v1(bytes),"));
        assert!(next.contains("pub fn decode_v2(bytes: &[u8])"));
        // And again, from the result: schema 3.
        let third = next_state(&next, 2).unwrap();
        assert!(third.contains("3 => Ok(encode_v3(items)),\n        2 => Ok(encode_v2(items)),"));
        assert!(next_state("fn other() {}", 1).is_err());
    }

    #[test]
    fn other_crates_are_refused_with_what_is_missing() {
        let err = describe("[package]\nname = \"x\"\n", "pub struct X;").unwrap_err();
        assert!(err.to_string().contains("made by `molt new`"), "{err}");
    }
}
