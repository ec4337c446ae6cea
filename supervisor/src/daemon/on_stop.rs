//! `molt run --handoff-on-stop TARGET`: on SIGTERM, before traffic stops, hand the state to a
//! live peer behind TARGET other than this supervisor (docs/DESIGN.md, "Handoff"). The
//! coordinator is the one `molt handoff` runs, pointed at this supervisor's own control API.
//! When no peer takes the state, nothing was lost: the final snapshot keeps it, as without the
//! flag, and `molt absorb` can merge it later.

use super::Supervisor;
use crate::control::ControlClient;
use crate::handoff::{peer, Departing, HandoffOptions};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

impl Supervisor {
    /// Hands the state to a peer behind `target` (see the module docs); logs the outcome.
    pub(super) fn hand_off_on_stop(&self, control: SocketAddr, target: &str, opts: &HandoffOptions) {
        if self.engine.get().is_none() {
            tracing::info!("handoff on stop: nothing serves, nothing to hand off");
            return;
        }
        let token = self.config.token.clone();
        let lookup = opts.step_timeout.min(std::time::Duration::from_secs(5));
        let to = match peer::choose(
            target,
            &self.config.app,
            &self.handoffs.boot_id,
            token.as_deref(),
            lookup,
        ) {
            Ok(to) => to,
            Err(e) => {
                tracing::error!(error = %e, "handoff on stop: no peer takes the state; it goes to the final snapshot");
                return;
            }
        };
        // Our own control API, on loopback when it listens on every address.
        let own = match control.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => {
                SocketAddr::new(Ipv4Addr::LOCALHOST.into(), control.port())
            }
            IpAddr::V6(ip) if ip.is_unspecified() => {
                SocketAddr::new(Ipv6Addr::LOCALHOST.into(), control.port())
            }
            _ => control,
        };
        let from = ControlClient::new(&format!("http://{own}"), token);
        let id = crate::handoff::new_id();
        tracing::info!(handoff = %id, to = %to.base(), "handoff on stop");
        match (Departing { from: &from, to: &to }).run(&id, opts) {
            Ok(report) => tracing::info!(
                handoff = %id, to = %to.base(), bytes = report.begun.state_bytes,
                took_ms = report.total.as_millis() as u64,
                grace_ms = opts.grace.map_or(0, |g| g.as_millis() as u64),
                "handoff on stop: the state is the peer's"
            ),
            Err(failure) => tracing::error!(
                handoff = %id, step = %failure.step, error = %failure,
                "handoff on stop failed: the state stays here and goes to the final snapshot"
            ),
        }
    }
}
