//! The versions kept loaded behind the active one, for fast rollback.
//!
//! Like OTP's release handler, rollback means "back to the previously active version": the
//! kept versions form a stack. A swap pushes the version it replaced; a rollback pops the top
//! and forgets the version it rolled away from (to return to it, swap to it again). So
//! v1 → v2 → v3, rollback, rollback runs v2 then v1, and never bounces back to v3.

use crate::loader::Plugin;
use std::collections::VecDeque;
use std::sync::Arc;

/// Previously active plugins, oldest first, at most `limit` of them.
#[derive(Debug)]
pub(crate) struct Generations {
    kept: VecDeque<Arc<Plugin>>,
    limit: usize,
}

impl Generations {
    pub(crate) fn new(limit: usize) -> Generations {
        Generations {
            kept: VecDeque::new(),
            limit,
        }
    }

    /// Keeps `plugin`, the version a swap just replaced. Beyond the limit the oldest is
    /// dropped: its library unloads when the last `Arc` (perhaps an abandoned hook's) goes.
    pub(crate) fn push(&mut self, plugin: Arc<Plugin>) {
        self.kept.push_back(plugin);
        while self.kept.len() > self.limit {
            if let Some(oldest) = self.kept.pop_front() {
                tracing::debug!(plugin = %oldest.id(), "no longer kept for rollback");
            }
        }
    }

    /// The version a rollback would return to.
    pub(crate) fn previous(&self) -> Option<Arc<Plugin>> {
        self.kept.back().cloned()
    }

    /// Forgets the version a rollback just returned to (it is active now).
    pub(crate) fn pop(&mut self) {
        self.kept.pop_back();
    }

    /// Kept versions, newest first.
    pub(crate) fn list(&self) -> Vec<Arc<Plugin>> {
        self.kept.iter().rev().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(g: &Generations) -> Vec<String> {
        g.list().iter().map(|p| p.info().version.clone()).collect()
    }

    #[test]
    fn a_bounded_stack() {
        let plugin = |v| Plugin::from_app::<crate::engine::test_apps::V1>(v);
        let mut g = Generations::new(2);
        assert!(g.previous().is_none());
        for v in ["1", "2", "3"] {
            g.push(plugin(v));
        }
        assert_eq!(versions(&g), ["3", "2"], "the oldest is dropped");
        assert_eq!(
            g.previous().map(|p| p.info().version.clone()).as_deref(),
            Some("3")
        );
        g.pop();
        assert_eq!(versions(&g), ["2"]);
        assert!(Generations::new(0).previous().is_none());
    }
}
