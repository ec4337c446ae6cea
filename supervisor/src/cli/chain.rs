//! One line for an error and its causes, each said once.
//!
//! Many of molt's typed errors put their cause in their own message ("library …: dlopen
//! failed: <cause>") so that a log line or an HTTP refusal read on its own is complete, and
//! also expose that cause as [`Error::source`] for callers that walk the chain. anyhow's
//! alternate form (`{:#}`) prints every link of the chain, so such a cause came out twice.
//! [`line`] walks the chain the same way and leaves out a link whose text the line already
//! holds.

use std::error::Error;

/// `error` and its causes, outermost first, joined with `": "`, skipping any cause whose text
/// an outer message already contains. For an `anyhow::Error`, pass `&*error`: its contexts
/// are links of the same chain.
pub(crate) fn line(error: &(dyn Error + 'static)) -> String {
    let mut out = String::new();
    let mut next = Some(error);
    while let Some(link) = next {
        next = link.source();
        let text = link.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("library lib.so: dlopen failed: {source}")]
    struct Outer {
        source: std::io::Error,
    }

    fn outer() -> Outer {
        Outer {
            source: std::io::Error::other("missing libfoo.so.1"),
        }
    }

    #[test]
    fn a_cause_the_message_already_holds_is_said_once() {
        let e = anyhow::Error::from(outer());
        // What anyhow alone prints: the cause twice.
        assert_eq!(
            format!("{e:#}"),
            "library lib.so: dlopen failed: missing libfoo.so.1: missing libfoo.so.1"
        );
        assert_eq!(line(&*e), "library lib.so: dlopen failed: missing libfoo.so.1");
        assert_eq!(line(&outer()), line(&*e));
    }

    #[test]
    fn context_and_causes_the_message_does_not_hold_are_kept() {
        let e = anyhow::Error::from(std::io::Error::other("permission denied"))
            .context("reading the manifest")
            .context("push counter 2.0.0");
        assert_eq!(
            line(&*e),
            "push counter 2.0.0: reading the manifest: permission denied"
        );
    }
}
