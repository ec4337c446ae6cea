//! Version ordering on the volume: numeric-aware, semver-ish, no dependency.

use std::cmp::Ordering;

/// Compares two versions numeric-aware: runs of digits compare as numbers (`1.10` > `1.9`),
/// other runs compare as text; a pre-release (`1.0.0-rc1`, after the first `-`) sorts before
/// its release (`1.0.0`). `+build` metadata is compared like text. Ties fall back to plain
/// string order, so the order is total.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (a_core, a_pre) = split_pre(a);
    let (b_core, b_pre) = split_pre(b);
    natural(a_core, b_core)
        .then_with(|| match (a_pre, b_pre) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => natural(x, y),
        })
        .then_with(|| a.cmp(b))
}

fn split_pre(v: &str) -> (&str, Option<&str>) {
    match v.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (v, None),
    }
}

/// Compares digit runs as numbers and everything else as text.
fn natural(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (chunk(a), chunk(b)) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some((x, x_rest)), Some((y, y_rest))) => {
                let x_num = x.starts_with(|c: char| c.is_ascii_digit());
                let y_num = y.starts_with(|c: char| c.is_ascii_digit());
                let ord = match (x_num, y_num) {
                    (true, true) => {
                        let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                        x.len().cmp(&y.len()).then_with(|| x.cmp(y))
                    }
                    // A number sorts before text at the same position (`1.0` < `1.x`).
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) => x.cmp(y),
                };
                if ord != Ordering::Equal {
                    return ord;
                }
                (a, b) = (x_rest, y_rest);
            }
        }
    }
}

/// Splits off the leading run of digits or of non-digits.
fn chunk(s: &str) -> Option<(&str, &str)> {
    let first = s.chars().next()?;
    let digit = first.is_ascii_digit();
    let end = s.find(|c: char| c.is_ascii_digit() != digit).unwrap_or(s.len());
    Some(s.split_at(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_aware_semverish_order() {
        let mut v = vec![
            "1.10.0",
            "1.2.0",
            "1.0.0",
            "1.0.0-rc2",
            "1.0.0-rc10",
            "0.9",
            "2",
            "1.0.0-alpha",
        ];
        v.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(
            v,
            [
                "0.9",
                "1.0.0-alpha",
                "1.0.0-rc2",
                "1.0.0-rc10",
                "1.0.0",
                "1.2.0",
                "1.10.0",
                "2"
            ]
        );
        assert_eq!(compare_versions("v01", "v1"), Ordering::Less);
        assert_eq!(compare_versions("1.0", "1.0"), Ordering::Equal);
    }
}
