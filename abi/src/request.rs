//! The request a plugin is asked to serve, borrowed from the host for one call.

use crate::ffi::{Bytes, Header, Slice};

/// An HTTP-shaped request, borrowed for the duration of one `handle` call.
///
/// It is `#[repr(C)]`: the host builds it with [`Request::new`] from its own buffers and passes
/// a pointer; the plugin reads it through the accessors. Nothing in it may be kept after the
/// call returns: copy what you need.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Request<'a> {
    method: Bytes<'a>,
    path: Bytes<'a>,
    query: Bytes<'a>,
    headers: Slice<'a, Header<'a>>,
    body: Bytes<'a>,
}

impl<'a> Request<'a> {
    /// Borrows the parts of a request. `query` excludes the `?`.
    pub fn new(
        method: &'a str,
        path: &'a str,
        query: &'a str,
        headers: &'a [Header<'a>],
        body: &'a [u8],
    ) -> Self {
        Request {
            method: Bytes::from_str(method),
            path: Bytes::from_str(path),
            query: Bytes::from_str(query),
            headers: Slice::new(headers),
            body: Bytes::new(body),
        }
    }

    /// The method, e.g. `GET`.
    pub fn method(&self) -> &'a str {
        self.method.as_str()
    }

    /// The path, e.g. `/count/apples`.
    pub fn path(&self) -> &'a str {
        self.path.as_str()
    }

    /// The query string without the `?` (empty when there is none).
    pub fn query(&self) -> &'a str {
        self.query.as_str()
    }

    /// The value of a query parameter, if present (no percent-decoding).
    pub fn query_param(&self, name: &str) -> Option<&'a str> {
        self.query()
            .split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// All headers, as name/value byte pairs.
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        self.headers
            .as_slice()
            .iter()
            .map(|h| (h.name.as_slice(), h.value.as_slice()))
    }

    /// The first header with this name (ASCII case-insensitive), as UTF-8.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The body.
    pub fn body(&self) -> &'a [u8] {
        self.body.as_slice()
    }

    /// The path split on `/`, without empty segments: `/incr/a` → `["incr", "a"]`.
    pub fn segments(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.path().split('/').filter(|s| !s.is_empty())
    }
}

/// An owned response, built by the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a status and a body.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// `200 OK` with a text body.
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Self::new(200, body).with_header("content-type", "text/plain; charset=utf-8")
    }

    /// `404 Not Found`.
    pub fn not_found() -> Self {
        Self::new(404, "not found\n")
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The body as UTF-8 text (lossy), handy in tests.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Encodes headers as `u32 LE name length, name, u32 LE value length, value`, repeated.
pub fn encode_headers(headers: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(headers.iter().map(|(n, v)| 8 + n.len() + v.len()).sum());
    for (name, value) in headers {
        for part in [name, value] {
            out.extend_from_slice(&(part.len() as u32).to_le_bytes());
            out.extend_from_slice(part.as_bytes());
        }
    }
    out
}

/// Decodes what [`encode_headers`] wrote; `None` when the bytes are malformed.
pub fn decode_headers(mut bytes: &[u8]) -> Option<Vec<(String, String)>> {
    fn take<'b>(bytes: &mut &'b [u8]) -> Option<&'b str> {
        let len = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        let part = bytes.get(4..4 + len)?;
        *bytes = &bytes[4 + len..];
        std::str::from_utf8(part).ok()
    }
    let mut headers = Vec::new();
    while !bytes.is_empty() {
        let name = take(&mut bytes)?.to_owned();
        let value = take(&mut bytes)?.to_owned();
        headers.push((name, value));
    }
    Some(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let h = vec![
            ("a".to_owned(), "1".to_owned()),
            ("x-long".to_owned(), "v".repeat(300)),
        ];
        assert_eq!(decode_headers(&encode_headers(&h)).unwrap(), h);
        assert_eq!(decode_headers(&[]).unwrap(), vec![]);
        assert!(
            decode_headers(&[9, 0, 0, 0, b'a']).is_none(),
            "truncated input is refused"
        );
    }

    #[test]
    fn request_accessors() {
        let headers = [Header::new(b"Content-Type", b"text/plain")];
        let req = Request::new("POST", "/incr/a", "n=3&x", &headers, b"hi");
        assert_eq!(req.method(), "POST");
        assert_eq!(req.segments().collect::<Vec<_>>(), ["incr", "a"]);
        assert_eq!(req.query_param("n"), Some("3"));
        assert_eq!(req.query_param("x"), Some(""));
        assert_eq!(req.query_param("y"), None);
        assert_eq!(req.header("content-type"), Some("text/plain"));
        assert_eq!(req.body(), b"hi");
    }
}
