//! App traffic: requests go to the serving version, or get a 503 while none serves, or once
//! a handoff has sealed this supervisor (each request holds the seal shared while it runs, so
//! sealing drains them: see `handoff`).

use super::Supervisor;
use crate::front::{Reply, Service};
use molt_abi::{Request, Response};
use std::sync::Arc;

impl Service for Supervisor {
    fn try_serve(&self, req: &Request<'_>) -> Option<Reply> {
        // A seal being taken (a handoff draining) makes this fail: `serve` then waits for it.
        let sealed = self.handoffs.try_traffic()?;
        if *sealed {
            drop(sealed);
            return Some(self.sealed_reply());
        }
        match self.engine.get() {
            Some(engine) => engine.try_handle(req).map(|served| Reply {
                response: served.response,
                version: served.version,
            }),
            None => Some(self.serve(req)),
        }
    }

    fn serve(&self, req: &Request<'_>) -> Reply {
        let sealed = self.handoffs.traffic();
        if *sealed {
            drop(sealed);
            return self.sealed_reply();
        }
        match self.engine.get() {
            Some(engine) => {
                let served = engine.handle(req);
                Reply {
                    response: served.response,
                    version: served.version,
                }
            }
            None => Reply {
                response: Response::new(503, format!("no version of {} is serving yet\n", self.config.app)),
                version: Arc::from(""),
            },
        }
    }
}

impl Supervisor {
    /// The 503 a sealed supervisor answers, saying where its state went.
    fn sealed_reply(&self) -> Reply {
        Reply {
            response: Response::new(503, self.handoffs.sealed_reason()),
            version: Arc::from(""),
        }
    }
}
