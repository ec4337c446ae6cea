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

    /// `n` bytes; `what` names them in the error, and is only called on one (an import
    /// formats nothing per entry).
    #[inline]
    fn take(&mut self, n: usize, what: impl FnOnce() -> String) -> Result<&'a [u8], AppError> {
        if self.rest.len() < n {
            return Err(self.error(format!(
                "truncated at byte {}: {} needs {n} bytes, {} left",
                self.offset,
                what(),
                self.rest.len()
            )));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        self.offset += n;
        Ok(head)
    }

    #[inline]
    fn array<const N: usize>(&mut self, what: impl FnOnce() -> String) -> Result<[u8; N], AppError> {
        let bytes = self.take(N, what)?;
        Ok(bytes.try_into().expect("took N bytes"))
    }

    /// A `u64`; `what` names it in the error.
    pub fn u64(&mut self, what: &str) -> Result<u64, AppError> {
        self.array(|| what.to_owned()).map(u64::from_le_bytes)
    }

    /// A `u32`; `what` names it in the error.
    pub fn u32(&mut self, what: &str) -> Result<u32, AppError> {
        self.array(|| what.to_owned()).map(u32::from_le_bytes)
    }

    /// A `u64` of entry `entry`, `what` naming it in the error (`entry 3: write counter`).
    #[inline]
    pub fn entry_u64(&mut self, entry: u64, what: &str) -> Result<u64, AppError> {
        self.array(|| format!("entry {entry}: {what}"))
            .map(u64::from_le_bytes)
    }

    /// A length-prefixed byte string of entry `entry`.
    #[inline]
    pub fn bytes(&mut self, entry: u64, what: &str) -> Result<&'a [u8], AppError> {
        let len = self
            .array(|| format!("entry {entry}: {what} length"))
            .map(u32::from_le_bytes)? as usize;
        self.take(len, || format!("entry {entry}: {what}"))
    }

    /// A length-prefixed UTF-8 key.
    #[inline]
    pub fn str(&mut self, entry: u64) -> Result<&'a str, AppError> {
        let offset = self.offset;
        let bytes = self.bytes(entry, "key")?;
        std::str::from_utf8(bytes)
            .map_err(|e| self.error(format!("entry {entry} at byte {offset}: key is not UTF-8: {e}")))
    }
}
