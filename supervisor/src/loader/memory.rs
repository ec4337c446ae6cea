//! Handing freed memory back to the kernel after a swap.
//!
//! When a swap destroys the replaced instance, what it freed goes back to the allocator, not
//! to the kernel: glibc keeps freed heap pages in its arenas (only the top of the main heap is
//! trimmed by itself), so the process would keep the old state's footprint resident after
//! every swap. [`release_free_memory`] asks glibc to give back every whole free page of every
//! arena (`malloc_trim(0)`); the swap calls it after the gate reopened, on its own thread.
//! The export buffer itself needs no such call: it is a mapping of its own, unmapped when
//! dropped (see `region`).

/// Returns the allocator's free pages to the kernel; `true` when some memory was released.
pub fn release_free_memory() -> bool {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: `malloc_trim` takes each arena's lock while it trims it, so it is safe to
        // call from any thread at any time; it frees nothing that is allocated.
        unsafe { libc::malloc_trim(0) != 0 }
    }
    #[cfg(not(target_env = "gnu"))]
    {
        false
    }
}
