//! `molt new NAME [--dir D] [--abi-path P] [--next-of PATH]`: start an app crate.
//!
//! The crate builds as it is: `cargo test` runs tests of its hooks, `cargo build --release`
//! writes `target/release/lib<name>.so`, and `molt check` accepts that library. It finds
//! `molt-abi` through a path dependency, so it builds offline: by default the `abi/` directory
//! of the molt source tree this binary was built from (known at build time), else `--abi-path`.
//! It has a `[workspace]` table of its own, so a workspace around its directory does not
//! swallow it. `--next-of` starts the next version of an existing app crate instead (see
//! `next.rs`).

mod next;
mod template;

use anyhow::{bail, Context};
use clap::Args;
use std::path::{Path, PathBuf};
use template::Values;

/// `molt new` arguments.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// The crate's name (lower case letters, digits, `-` and `_`; starts with a letter). It is
    /// also the app's name, except with `--next-of`, which keeps the previous version's.
    name: String,
    /// Where to write the crate (default: `./NAME`). Must not exist, or be empty.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The `abi/` directory of a molt source tree (default: the one this `molt` was built from).
    #[arg(long, value_name = "DIR")]
    abi_path: Option<PathBuf>,
    /// Start the next version of the app crate at PATH (made by `molt new`): a copy with the
    /// next state schema, and a migration test against PATH.
    #[arg(long, value_name = "PATH")]
    next_of: Option<PathBuf>,
}

/// Writes the crate and says what to run next.
pub fn run(args: NewArgs) -> anyhow::Result<()> {
    check_name(&args.name)?;
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    if dir.exists()
        && std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!(
            "{} already exists and is not empty: nothing written",
            dir.display()
        );
    }
    let abi = abi_path(args.abi_path.as_deref())?;
    let lib = args.name.replace('-', "_");
    let values = Values::default()
        .set("crate", args.name.as_str())
        .set("lib", lib.as_str())
        .set("abi", toml_string(&abi));
    let files = match &args.next_of {
        None => first_version(
            values
                .set("app", args.name.as_str())
                .set("Type", template::type_name(&args.name)),
        ),
        Some(previous) => next::files(previous, values)?,
    };
    for (relative, contents) in &files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!(
        "created {} (crate {}, molt-abi at {})",
        dir.display(),
        args.name,
        abi.display()
    );
    println!("  cd {} && cargo test && cargo build --release", dir.display());
    println!("  molt check target/release/lib{lib}.so");
    Ok(())
}

/// The files of a first version: schema 1.
fn first_version(values: Values) -> Vec<(PathBuf, String)> {
    let values = values.set("version", "1.0.0").set("dev_dependencies", "");
    [
        ("Cargo.toml", template::CARGO_TOML),
        (".gitignore", template::GITIGNORE),
        ("src/lib.rs", template::LIB_RS),
        ("src/state.rs", template::STATE_RS),
        ("src/tests.rs", template::TESTS_RS),
    ]
    .into_iter()
    .map(|(path, text)| (PathBuf::from(path), values.render(text)))
    .collect()
}

/// Rust's keywords, strict and reserved (edition 2021, and `gen`, reserved in 2024): the
/// crate's name is also a module path (`use <name>::…`) and, capitalised, a type's name.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false",
    "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while",
    "abstract", "become", "box", "do", "final", "gen", "macro", "override", "priv", "try", "typeof",
    "unsized", "virtual", "yield",
];

/// The longest crate name crates.io takes.
const MAX_NAME: usize = 64;

/// Refuses names cargo or Rust would refuse later, with the rule.
fn check_name(name: &str) -> anyhow::Result<()> {
    if name.len() > MAX_NAME {
        bail!(
            "crate name of {} characters refused: at most {MAX_NAME} (crates.io's limit)",
            name.len()
        );
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !first_ok || !rest_ok {
        bail!("crate name {name:?} refused: use lower case letters, digits, `-` and `_`, starting with a letter");
    }
    if ["test", "molt-abi", "molt_abi", "std", "core", "alloc"].contains(&name) {
        bail!("crate name {name:?} refused: it clashes with a crate the app depends on");
    }
    let path = name.replace('-', "_");
    if KEYWORDS.contains(&path.as_str()) {
        bail!("crate name {name:?} refused: `{path}` is a Rust keyword, and the name is used as a module path and a type's name");
    }
    Ok(())
}

/// The `abi/` directory to depend on, absolute, checked to be molt-abi.
fn abi_path(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../abi");
    let path = given.unwrap_or(&built_from);
    let manifest = std::fs::read_to_string(path.join("Cargo.toml")).with_context(|| match given {
        Some(_) => format!("--abi-path {}: no Cargo.toml there", path.display()),
        None => format!(
            "the molt source tree this binary was built from is gone ({} has no Cargo.toml): \
             pass --abi-path DIR (the abi/ directory of a molt checkout)",
            path.display()
        ),
    })?;
    if !manifest.contains("name = \"molt-abi\"") {
        bail!(
            "{} is not molt-abi's directory (its Cargo.toml names another package)",
            path.display()
        );
    }
    path.canonicalize()
        .with_context(|| format!("cannot resolve {}", path.display()))
}

/// A path as a TOML string (quoted and escaped).
fn toml_string(path: &Path) -> String {
    toml::Value::String(path.display().to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("sessions").is_ok() && check_name("my-app_2").is_ok());
        for bad in [
            "", "2app", "App", "my app", "../x", "std", "self", "fn", "type", "gen", "async",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"a".repeat(MAX_NAME)).is_ok());
        assert!(check_name(&"a".repeat(MAX_NAME + 1)).is_err());
        assert!(check_name("fn-x").is_ok(), "only a whole keyword is refused");
    }

    #[test]
    fn every_placeholder_of_a_first_version_is_filled() {
        let values = Values::default()
            .set("crate", "x")
            .set("lib", "x")
            .set("abi", "\"/abi\"")
            .set("app", "x")
            .set("Type", "X");
        let files = first_version(values);
        assert_eq!(files.len(), 5);
        assert!(files.iter().all(|(_, text)| !text.contains("{{")));
    }
}
