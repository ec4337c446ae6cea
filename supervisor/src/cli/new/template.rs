//! The files `molt new` writes, with their `{{placeholders}}` filled in.

use std::collections::BTreeMap;

/// `Cargo.toml`.
pub const CARGO_TOML: &str = include_str!("files/Cargo.toml.in");
/// `.gitignore`.
pub const GITIGNORE: &str = include_str!("files/gitignore.in");
/// `src/lib.rs`: the app, schema 1.
pub const LIB_RS: &str = include_str!("files/lib.rs.in");
/// `src/state.rs`: schema 1 as bytes.
pub const STATE_RS: &str = include_str!("files/state.rs.in");
/// `src/tests.rs`: routes, snapshot round trip, malformed state.
pub const TESTS_RS: &str = include_str!("files/tests.rs.in");
/// `src/migration.rs` of a next version: upgrade from and rollback to the previous one.
pub const MIGRATION_RS: &str = include_str!("files/migration.rs.in");

/// The values of the placeholders.
#[derive(Debug, Default)]
pub struct Values(BTreeMap<&'static str, String>);

impl Values {
    /// Sets `{{key}}`.
    pub fn set(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.0.insert(key, value.into());
        self
    }

    /// `template` with every `{{key}}` replaced. Panics on a placeholder without a value: the
    /// templates are part of this binary, so that is a bug here, caught by the tests.
    pub fn render(&self, template: &str) -> String {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .unwrap_or_else(|| panic!("unclosed placeholder in a template: {after:.40}"));
            let key = &after[..end];
            match self.0.get(key) {
                Some(value) => out.push_str(value),
                None => panic!("template placeholder {{{{{key}}}}} has no value"),
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }
}

/// `some-app` → `SomeApp`: the app type's name.
pub fn type_name(crate_name: &str) -> String {
    crate_name
        .split(['-', '_'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_single_braces_kept() {
        let values = Values::default().set("name", "x");
        assert_eq!(
            values.render("a {{name}} /items/{key} {{name}}"),
            "a x /items/{key} x"
        );
        assert_eq!(type_name("my-app_2"), "MyApp2");
    }

    #[test]
    #[should_panic(expected = "has no value")]
    fn a_missing_value_is_a_bug() {
        Values::default().render("{{nothing}}");
    }
}
