//! The byte reader state import uses.

use molt_abi::AppError;

/// Reads the little-endian encoding, refusing anything truncated with a message that names
/// the schema and the byte offset.
pub struct Reader<'a> {
    schema: u32,
    rest: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    /// A reader of `bytes` in schema `schema` (named in its errors).
    pub fn new(schema: u32, bytes: &'a [u8]) -> Self {
        Reader {
            schema,
            rest: bytes,
            offset: 0,
        }
    }

    /// An import error, prefixed with the schema.
    pub fn error(&self, message: String) -> AppError {
        AppError(format!("kv schema {}: {message}", self.schema))
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], AppError> {
        if self.rest.len() < n {
            return Err(self.error(format!(
                "truncated at byte {}: {what} needs {n} bytes, {} left",
                self.offset,
                self.rest.len()
            )));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        self.offset += n;
        Ok(head)
    }

    /// A `u64`; `what` names it in the error.
    pub fn u64(&mut self, what: &str) -> Result<u64, AppError> {
        let bytes = self.take(8, what)?;
        Ok(u64::from_le_bytes(bytes.try_into().expect("took 8 bytes")))
    }

    /// A `u32`; `what` names it in the error.
    pub fn u32(&mut self, what: &str) -> Result<u32, AppError> {
        let bytes = self.take(4, what)?;
        Ok(u32::from_le_bytes(bytes.try_into().expect("took 4 bytes")))
    }

    /// A length-prefixed byte string.
    pub fn bytes(&mut self, entry: u64, what: &str) -> Result<&'a [u8], AppError> {
        let len = self.u32(&format!("entry {entry}: {what} length"))? as usize;
        self.take(len, &format!("entry {entry}: {what}"))
    }

    /// A length-prefixed UTF-8 key.
    pub fn str(&mut self, entry: u64) -> Result<&'a str, AppError> {
        let offset = self.offset;
        let bytes = self.bytes(entry, "key")?;
        std::str::from_utf8(bytes)
            .map_err(|e| self.error(format!("entry {entry} at byte {offset}: key is not UTF-8: {e}")))
    }
}
