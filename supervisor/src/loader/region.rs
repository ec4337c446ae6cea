//! [`Region`]: the host-owned buffer a swap's export is written into (molt-abi's `HostBuf`).
//!
//! Anonymous memory mapped for the purpose, not the allocator's: it is sized and pre-faulted
//! before the pause (`MADV_POPULATE_WRITE`, huge pages where the kernel gives them), grows in
//! place or moves without a copy (`mremap`), and goes back to the kernel the moment it is
//! dropped (`munmap`), never lingering in an allocator's free lists. It is host memory, so it
//! can outlive the plugin that wrote it and the one that keeps it.

use molt_abi::HostBuf;
use std::ptr::NonNull;

/// An anonymous mapping of `cap` bytes, the first `len` written.
pub struct Region {
    ptr: NonNull<u8>,
    len: usize,
    cap: usize,
}

// SAFETY: a `Region` owns its mapping outright (no aliasing pointer survives a call that lent
// it), and plain memory may be read, written and unmapped from any thread.
unsafe impl Send for Region {}
// SAFETY: `&Region` only reads the written bytes.
unsafe impl Sync for Region {}

const PAGE: usize = 4096;
const HUGE: usize = 2 << 20;

impl Region {
    /// A region that maps nothing yet.
    pub fn empty() -> Region {
        Region {
            ptr: NonNull::dangling(),
            len: 0,
            cap: 0,
        }
    }

    /// A region with room for `cap` bytes, every page faulted in now (call it while traffic
    /// flows: the export then writes into memory that is already there). An empty region when
    /// `cap` is 0 or the mapping fails (the export then maps as it writes).
    pub fn prefaulted(cap: usize) -> Region {
        let mut region = Region::empty();
        if cap > 0 && region.grow(cap) {
            region.populate();
        }
        region
    }

    /// Bytes the region holds without growing.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// The written bytes.
    pub fn as_slice(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `ptr..ptr + cap` is our live mapping and the first `len <= cap` bytes were
        // written by an export; nothing writes them while `&self` is held.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// Lends the region to an export as molt-abi's `HostBuf`, from `len` 0. The caller passes
    /// the result to one call and then [`Region::written`] with it; the region must not move
    /// meanwhile (it is borrowed mutably for as long as the `HostBuf` is used).
    pub(crate) fn lend(&mut self) -> HostBuf {
        self.len = 0;
        HostBuf {
            ptr: self.ptr.as_ptr(),
            len: 0,
            cap: self.cap,
            ctx: (self as *mut Region).cast(),
            grow: grow_region,
        }
    }

    /// Takes back what an export wrote into the buffer [`Region::lend`] made; `false` when
    /// the plugin left it inconsistent (a length past the capacity, a pointer of its own).
    pub(crate) fn written(&mut self, buf: &HostBuf) -> bool {
        if buf.ptr != self.ptr.as_ptr() || buf.cap != self.cap || buf.len > self.cap {
            self.len = 0;
            return false;
        }
        self.len = buf.len;
        self.shrink_to_fit();
        true
    }

    /// Gives back the pages past the written bytes (the room left for growth): whoever keeps
    /// the region keeps only what it holds.
    fn shrink_to_fit(&mut self) {
        let Some(keep) = self.len.checked_next_multiple_of(PAGE) else {
            return;
        };
        if keep == 0 || keep >= self.cap {
            return;
        }
        // SAFETY: our own live mapping; shrinking in place (no MREMAP_MAYMOVE) keeps its
        // address and the first `keep >= len` bytes, and unmaps only pages past `len`.
        let shrunk = unsafe { libc::mremap(self.ptr.as_ptr().cast(), self.cap, keep, 0) };
        if shrunk != libc::MAP_FAILED {
            self.cap = keep;
        }
    }

    /// Maps or remaps for at least `min_cap` bytes, keeping the written ones.
    fn grow(&mut self, min_cap: usize) -> bool {
        if min_cap <= self.cap {
            return true;
        }
        let Some(cap) = min_cap.checked_next_multiple_of(PAGE) else {
            return false;
        };
        let ptr = if self.cap == 0 {
            // SAFETY: a fresh private anonymous mapping; no existing memory is touched.
            unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    cap,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            }
        } else {
            // SAFETY: `ptr`/`cap` describe our own live mapping; MREMAP_MAYMOVE may move it,
            // keeping its contents, and we take the new address below. No pointer into the
            // old one survives: a `HostBuf` that lent it is updated by `grow_region`.
            unsafe { libc::mremap(self.ptr.as_ptr().cast(), self.cap, cap, libc::MREMAP_MAYMOVE) }
        };
        if ptr == libc::MAP_FAILED {
            tracing::warn!(bytes = cap, error = %std::io::Error::last_os_error(), "mapping an export buffer failed");
            return false;
        }
        if cap >= HUGE {
            // SAFETY: advice on our own mapping; it changes no contents. A kernel without
            // transparent huge pages refuses it, which is fine.
            unsafe { libc::madvise(ptr, cap, libc::MADV_HUGEPAGE) };
        }
        self.ptr = NonNull::new(ptr.cast()).expect("mmap returned a null mapping");
        self.cap = cap;
        true
    }

    /// Faults every page in now (`MADV_POPULATE_WRITE`, Linux 5.14; touching one byte per
    /// page on an older kernel).
    fn populate(&mut self) {
        // SAFETY: our own live mapping of `cap` bytes; populating writes nothing visible.
        let populated =
            unsafe { libc::madvise(self.ptr.as_ptr().cast(), self.cap, libc::MADV_POPULATE_WRITE) };
        if populated != 0 {
            for offset in (0..self.cap).step_by(PAGE) {
                // SAFETY: `offset < cap`, inside our mapping; the region holds nothing yet
                // (`len` is 0), so writing a zero over a zero changes nothing.
                unsafe { self.ptr.as_ptr().add(offset).write_volatile(0) };
            }
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if self.cap > 0 {
            // SAFETY: our own mapping, unmapped once; no slice of it outlives `&self`.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.cap) };
        }
    }
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region")
            .field("len", &self.len)
            .field("cap", &self.cap)
            .finish()
    }
}

/// `HostBuf::grow` of a lent [`Region`].
unsafe extern "C" fn grow_region(buf: *mut HostBuf, min_cap: usize) -> bool {
    let grown = std::panic::catch_unwind(|| {
        // SAFETY: the plugin passes the `HostBuf` we lent it (molt-abi's contract), whose ctx
        // is the region `lend` borrowed mutably for the call.
        let (buf, region) = unsafe { (&mut *buf, &mut *(*buf).ctx.cast::<Region>()) };
        if buf.len > region.cap {
            return false;
        }
        region.len = buf.len;
        if !region.grow(min_cap) {
            return false;
        }
        buf.ptr = region.ptr.as_ptr();
        buf.cap = region.cap;
        true
    });
    grown.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_grows_keeping_what_was_written() {
        let mut region = Region::prefaulted(10);
        assert_eq!(region.capacity(), PAGE);
        let mut buf = region.lend();
        // SAFETY: `buf` describes the region, lent for this block.
        unsafe {
            buf.ptr.write_bytes(7, 3);
            buf.len = 3;
            assert!((buf.grow)(&mut buf, 3 * HUGE));
            buf.ptr.add(2 * HUGE).write(9);
            buf.len = 2 * HUGE + 1;
        }
        assert!(region.written(&buf));
        assert_eq!(
            region.capacity(),
            2 * HUGE + PAGE,
            "nothing past the written bytes is kept"
        );
        assert_eq!(&region.as_slice()[..3], &[7, 7, 7]);
        assert_eq!(region.as_slice()[2 * HUGE], 9);
        let mut buf = region.lend();
        buf.len = buf.cap + 1;
        assert!(!region.written(&buf), "a length past the capacity is refused");
        assert!(region.as_slice().is_empty());
    }
}
