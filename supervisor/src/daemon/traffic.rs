//! App traffic: requests go to the serving version, or get a 503 while none serves.

use super::Supervisor;
use crate::front::{Reply, Service};
use molt_abi::{Request, Response};
use std::sync::Arc;

impl Service for Supervisor {
    fn try_serve(&self, req: &Request<'_>) -> Option<Reply> {
        match self.engine.get() {
            Some(engine) => engine.try_handle(req).map(|served| Reply {
                response: served.response,
                version: served.version,
            }),
            None => Some(self.serve(req)),
        }
    }

    fn serve(&self, req: &Request<'_>) -> Reply {
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
