//! `GET`, `PUT` and `DELETE /kv/{key}`, the same in every version.

use crate::shard::Entry;
use crate::store::Store;
use molt_abi::{Request, Response};

impl<V: Entry> Store<V> {
    /// Answers a request on `/kv/{key}`: `GET` → `200` with the value
    /// (`application/octet-stream`) or `404`; `PUT` → `201` for a new key, `200` when it
    /// replaced a value, `413` over `u32::MAX` bytes; `DELETE` → `204` or `404`; any other
    /// method → `405`.
    pub fn handle_key(&self, req: &Request<'_>, key: &str) -> Response {
        match req.method() {
            "GET" => match self.get(key) {
                Some(value) => {
                    Response::new(200, value).with_header("content-type", "application/octet-stream")
                }
                None => Response::not_found(),
            },
            "PUT" => {
                if req.body().len() > u32::MAX as usize {
                    return Response::new(413, "values are at most u32::MAX bytes\n");
                }
                if self.put(key, req.body().to_vec()) {
                    Response::new(201, "created\n")
                } else {
                    Response::ok("replaced\n")
                }
            }
            "DELETE" if self.delete(key) => Response::new(204, Vec::new()),
            "DELETE" => Response::not_found(),
            _ => Response::new(405, "method not allowed\n").with_header("allow", "GET, PUT, DELETE"),
        }
    }
}
