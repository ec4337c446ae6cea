//! A bounds check of an ELF file's headers before `dlopen` sees it.
//!
//! `dlopen` maps the load segments a file's program headers describe; mapping past the end of
//! a file succeeds, and the first touch of such a page kills the process with `SIGBUS`. A
//! library cut off half way through a copy is exactly that file. So before `dlopen`, the loader
//! checks that every part the headers point at lies inside the file. Non-ELF files are left to
//! `dlopen`, whose own message ("invalid ELF header") says it well.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// A part of the file that lies (partly) past its end.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PastEnd {
    /// Which part, e.g. `section headers` or `load segment 2`.
    pub what: String,
    /// Where that part ends.
    pub needed: u64,
    /// The file's length.
    pub len: u64,
}

/// Checks `path`. `Ok(Err(..))` when the file is an ELF file that is cut short; `Ok(Ok(()))`
/// when it is whole or not ELF at all (then `dlopen` refuses it with its own message).
pub(crate) fn check_extent(path: &Path) -> std::io::Result<Result<(), PastEnd>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut bytes = Vec::new();
    // The ELF header and the program headers are at the start of the file; 64 KiB covers them
    // for any library a linker writes.
    file.by_ref().take(64 * 1024).read_to_end(&mut bytes)?;
    Ok(check_bytes(&bytes, len))
}

/// Field reader for one ELF class and byte order.
struct Elf<'a> {
    bytes: &'a [u8],
    wide: bool,
    big_endian: bool,
}

impl Elf<'_> {
    /// An unsigned field of `size` bytes at `at`, or `None` past the bytes read.
    fn uint(&self, at: u64, size: usize) -> Option<u64> {
        let at = usize::try_from(at).ok()?;
        let raw = self.bytes.get(at..at.checked_add(size)?)?;
        let mut value = 0u64;
        for i in 0..size {
            let byte = if self.big_endian {
                raw[i]
            } else {
                raw[size - 1 - i]
            };
            value = (value << 8) | u64::from(byte);
        }
        Some(value)
    }

    /// An address-sized field (`ElfN_Off`, `ElfN_Xword`…).
    fn word(&self, at: u64) -> Option<u64> {
        self.uint(at, if self.wide { 8 } else { 4 })
    }
}

fn check_bytes(bytes: &[u8], len: u64) -> Result<(), PastEnd> {
    const PT_LOAD: u64 = 1;
    let past = |what: String, needed: u64| Err(PastEnd { what, needed, len });
    if bytes.len() < 6 || &bytes[..4] != b"\x7fELF" {
        return Ok(());
    }
    let elf = Elf {
        bytes,
        wide: bytes[4] == 2,
        big_endian: bytes[5] == 2,
    };
    // Offsets of e_phoff, e_shoff, e_phentsize, e_phnum, e_shentsize, e_shnum.
    let (phoff, shoff, phentsize) = if elf.wide { (32, 40, 54) } else { (28, 32, 42) };
    let header_len = if elf.wide { 64 } else { 52 };
    if len < header_len {
        return past("ELF header".to_owned(), header_len);
    }
    let field = |at: u64, size: usize| elf.uint(at, size).unwrap_or(0);
    let (ph_at, sh_at) = (elf.word(phoff).unwrap_or(0), elf.word(shoff).unwrap_or(0));
    let (ph_size, ph_count) = (field(phentsize, 2), field(phentsize + 2, 2));
    let (sh_size, sh_count) = (field(phentsize + 4, 2), field(phentsize + 6, 2));
    let ph_end = ph_at.saturating_add(ph_size.saturating_mul(ph_count));
    if ph_end > len {
        return past("program headers".to_owned(), ph_end);
    }
    let sh_end = sh_at.saturating_add(sh_size.saturating_mul(sh_count));
    if sh_end > len {
        return past("section headers".to_owned(), sh_end);
    }
    // p_offset and p_filesz inside each program header.
    let (p_offset, p_filesz) = if elf.wide { (8, 32) } else { (4, 16) };
    for i in 0..ph_count {
        let at = ph_at + i * ph_size;
        // Program headers beyond the bytes read: the file is whole up to ph_end, checked above.
        let Some(kind) = elf.uint(at, 4) else { break };
        if kind != PT_LOAD {
            continue;
        }
        let offset = elf.word(at + p_offset).unwrap_or(0);
        let end = offset.saturating_add(elf.word(at + p_filesz).unwrap_or(0));
        if end > len {
            return past(format!("load segment {i}"), end);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 64-bit little-endian ELF header with one program header and `shnum` section headers.
    fn elf64(load_end: u64, shoff: u64, shnum: u16) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56];
        b[..6].copy_from_slice(b"\x7fELF\x02\x01");
        b[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        b[40..48].copy_from_slice(&shoff.to_le_bytes()); // e_shoff
        b[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        b[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        b[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
        b[60..62].copy_from_slice(&shnum.to_le_bytes()); // e_shnum
        b[64..68].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        b[64 + 32..64 + 40].copy_from_slice(&load_end.to_le_bytes()); // p_filesz, p_offset 0
        b
    }

    #[test]
    fn whole_files_pass_and_cut_ones_name_the_part() {
        assert_eq!(check_bytes(&elf64(1000, 1000, 2), 1128), Ok(()));
        let cut = check_bytes(&elf64(1000, 1000, 2), 1100).unwrap_err();
        assert_eq!((cut.what.as_str(), cut.needed), ("section headers", 1128));
        let cut = check_bytes(&elf64(5000, 100, 0), 1000).unwrap_err();
        assert_eq!((cut.what.as_str(), cut.needed), ("load segment 0", 5000));
        assert_eq!(
            check_bytes(&elf64(0, 0, 0)[..20], 20).unwrap_err().what,
            "ELF header"
        );
    }

    #[test]
    fn non_elf_is_left_to_dlopen() {
        assert_eq!(check_bytes(b"#!/bin/sh\n", 10), Ok(()));
        assert_eq!(check_bytes(b"", 0), Ok(()));
    }
}
