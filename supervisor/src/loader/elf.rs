//! The ELF pre-check: what can be learnt about a library without running any of its code.
//!
//! The file is read with the `object` crate (through a [`ReadCache`], so a large file is not
//! read whole), never mapped or opened by the dynamic loader. The checks, in order:
//! - it is an ELF file at all, of this machine's class and architecture (an ELF built for
//!   another machine gets its own message, not `dlopen`'s "No such file or directory");
//! - it is a shared object (`ET_DYN`);
//! - every part its headers point at lies inside the file: `dlopen` maps the load segments the
//!   program headers describe, mapping past the end of a file succeeds, and the first touch of
//!   such a page kills the process with `SIGBUS` (a library cut off half way through a copy is
//!   exactly that file);
//! - its dynamic symbol table defines exactly one entry symbol, `molt_app_descriptor` or a
//!   per-crate `molt_app_descriptor_<crate>` (what `export_app!` exports), as a function (a
//!   data object of that name, a plain `int`, would be called as code); two entry symbols mean
//!   two apps linked into one library;
//! - and it counts the constructors the library runs when it is opened (`.init_array`
//!   entries), which `molt check` reports.

use molt_abi::{ENTRY_PREFIX, ENTRY_SYMBOL};
use object::elf::{self, FileHeader64};
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader, Sym};
use object::read::ReadCache;
use object::{Endianness, ReadRef};
use std::fs::File;

/// What the pre-check learnt about a library that passed it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ElfFacts {
    /// The architecture it was built for, e.g. `x86-64`.
    pub machine: String,
    /// How many constructors run when it is opened (`.init_array` entries). Rust's standard
    /// library and the C runtime add one each, so a Rust cdylib has at least two.
    pub constructors: u64,
    /// The file's length in bytes.
    pub len: u64,
    /// The entry symbol's name (`molt_app_descriptor` or `molt_app_descriptor_<crate>`).
    #[serde(default)]
    pub entry: String,
}

/// Why the pre-check refused a file. Nothing of the file was run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ElfError {
    /// The file does not start with the ELF magic.
    #[error("not an ELF file (it starts with {start})")]
    NotElf {
        /// The first bytes, escaped.
        start: String,
    },
    /// An ELF file for another architecture or word size.
    #[error("built for {found}, this supervisor runs on {expected}")]
    Machine {
        /// What the file says it is for.
        found: String,
        /// This machine.
        expected: String,
    },
    /// An ELF file that is not a shared object (an executable, an object file…).
    #[error("not a shared library: its ELF type is {found}")]
    NotShared {
        /// The ELF type.
        found: String,
    },
    /// The headers point past the end of the file: a truncated copy.
    #[error("truncated ELF file: {what} ends at byte {needed}, the file has {len}")]
    Truncated {
        /// The part of the file that does not fit (`section headers`, `load segment 2`, …).
        what: String,
        /// Where that part ends.
        needed: u64,
        /// The file's length.
        len: u64,
    },
    /// The headers or tables cannot be parsed.
    #[error("malformed ELF file: {0}")]
    Malformed(String),
    /// No entry symbol in the dynamic symbol table.
    #[error(
        "no entry symbol `molt_app_descriptor` in its dynamic symbol table \
         (is `molt_abi::export_app!` missing?)"
    )]
    NoEntry,
    /// More than one entry symbol: two apps linked into one library (say, v2 depending on
    /// v1 as a normal dependency instead of a dev-dependency).
    #[error(
        "it exports several entry symbols ({names}): two apps are linked into one library \
         (does it depend on another version of the app outside [dev-dependencies]?)"
    )]
    SeveralEntries {
        /// Their names.
        names: String,
    },
    /// The entry symbol is there but is not a function.
    #[error("its `molt_app_descriptor` symbol is {kind}, not a function: not a molt app")]
    EntryNotFunction {
        /// What it is (`a data object`, …).
        kind: String,
    },
    /// The file could not be read.
    #[error("cannot read it: {0}")]
    Io(String),
}

/// The architecture this supervisor was built for, as an ELF `e_machine`.
const HOST_MACHINE: u16 = if cfg!(target_arch = "x86_64") {
    elf::EM_X86_64
} else if cfg!(target_arch = "aarch64") {
    elf::EM_AARCH64
} else if cfg!(target_arch = "riscv64") {
    elf::EM_RISCV
} else if cfg!(target_arch = "powerpc64") {
    elf::EM_PPC64
} else if cfg!(target_arch = "s390x") {
    elf::EM_S390
} else {
    elf::EM_NONE
};

/// A readable name of an ELF machine.
fn machine_name(machine: u16, wide: bool) -> String {
    let name = match machine {
        elf::EM_X86_64 => "x86-64",
        elf::EM_386 => "x86 (i386)",
        elf::EM_AARCH64 => "aarch64",
        elf::EM_ARM => "32-bit arm",
        elf::EM_RISCV if wide => "riscv64",
        elf::EM_RISCV => "riscv32",
        elf::EM_PPC64 => "ppc64",
        elf::EM_PPC => "ppc",
        elf::EM_S390 => "s390x",
        elf::EM_MIPS => "mips",
        other => return format!("ELF machine {other}"),
    };
    let class = if wide { "64-bit" } else { "32-bit" };
    format!("{name} ({class})")
}

/// Pre-checks the library open as `file` (see the module docs). Reads the file, runs nothing.
pub fn precheck(file: &File) -> Result<ElfFacts, ElfError> {
    let len = file.metadata().map_err(|e| ElfError::Io(e.to_string()))?.len();
    let cache = ReadCache::new(file);
    check(&cache, len)
}

/// The ELF pre-check (as `precheck` does it on a file) of a library's bytes held in memory
/// (the fuzz target's way in).
pub fn precheck_bytes(bytes: &[u8]) -> Result<ElfFacts, ElfError> {
    check(bytes, bytes.len() as u64)
}

fn check<'a, R: ReadRef<'a>>(data: R, len: u64) -> Result<ElfFacts, ElfError> {
    let ident = data
        .read_bytes_at(0, len.min(20))
        .map_err(|()| ElfError::Io("read failed".into()))?;
    if ident.len() < 4 || &ident[..4] != b"\x7fELF" {
        return Err(ElfError::NotElf {
            start: escape_start(ident),
        });
    }
    let expected = machine_name(HOST_MACHINE, true);
    let header_len = if ident.get(4) == Some(&elf::ELFCLASS32) {
        52
    } else {
        64
    };
    if len < header_len || ident.len() < 20 {
        return Err(ElfError::Truncated {
            what: "ELF header".into(),
            needed: header_len,
            len,
        });
    }
    let big = ident[5] == elf::ELFDATA2MSB;
    let machine = if big {
        u16::from_be_bytes([ident[18], ident[19]])
    } else {
        u16::from_le_bytes([ident[18], ident[19]])
    };
    let wide = ident[4] == elf::ELFCLASS64;
    let native_order = big == cfg!(target_endian = "big");
    if !wide || machine != HOST_MACHINE || !native_order {
        let mut found = machine_name(machine, wide);
        if !native_order {
            found.push_str(if big { ", big-endian" } else { ", little-endian" });
        }
        return Err(ElfError::Machine { found, expected });
    }
    let header = FileHeader64::<Endianness>::parse(data).map_err(malformed)?;
    let endian = header.endian().map_err(malformed)?;
    let kind = header.e_type(endian);
    if kind != elf::ET_DYN {
        let found = match kind {
            elf::ET_EXEC => "an executable (ET_EXEC)".to_owned(),
            elf::ET_REL => "an object file (ET_REL)".to_owned(),
            elf::ET_CORE => "a core dump (ET_CORE)".to_owned(),
            other => format!("{other}"),
        };
        return Err(ElfError::NotShared { found });
    }
    extent(header, endian, len)?;
    segments(header, endian, data, len)?;
    let sections = header.sections(endian, data).map_err(malformed)?;
    let symbols = sections
        .symbols(endian, data, elf::SHT_DYNSYM)
        .map_err(malformed)?;
    let fixed = ENTRY_SYMBOL.strip_suffix(b"\0").unwrap_or(ENTRY_SYMBOL);
    let entries: Vec<(&[u8], u8)> = symbols
        .iter()
        .filter(|sym| sym.st_shndx(endian) != elf::SHN_UNDEF)
        .filter_map(|sym| {
            let name = sym.name(endian, symbols.strings()).ok()?;
            (name == fixed || name.starts_with(ENTRY_PREFIX.as_bytes())).then_some((name, sym.st_type()))
        })
        .collect();
    if entries.len() > 1 {
        let names: Vec<String> = entries
            .iter()
            .map(|(name, _)| String::from_utf8_lossy(name).into_owned())
            .collect();
        return Err(ElfError::SeveralEntries {
            names: names.join(", "),
        });
    }
    let entry_name = entries
        .first()
        .map(|(name, _)| String::from_utf8_lossy(name).into_owned())
        .unwrap_or_default();
    match entries.first().map(|(_, kind)| *kind) {
        None => return Err(ElfError::NoEntry),
        Some(elf::STT_FUNC) => {}
        Some(other) => {
            let kind = match other {
                elf::STT_OBJECT => "a data object (STT_OBJECT)".to_owned(),
                elf::STT_NOTYPE => "untyped (STT_NOTYPE)".to_owned(),
                elf::STT_TLS => "a thread-local (STT_TLS)".to_owned(),
                elf::STT_GNU_IFUNC => "an indirect function (STT_GNU_IFUNC)".to_owned(),
                other => format!("of symbol type {other}"),
            };
            return Err(ElfError::EntryNotFunction { kind });
        }
    }
    let constructors = sections
        .iter()
        .filter(|s| s.sh_type(endian) == elf::SHT_INIT_ARRAY)
        .map(|s| s.sh_size(endian) / 8)
        .sum();
    Ok(ElfFacts {
        machine: machine_name(machine, wide),
        constructors,
        len,
        entry: entry_name,
    })
}

/// Checks that the program headers, the section headers and every load segment lie inside
/// the file's `len` bytes.
fn extent(header: &FileHeader64<Endianness>, endian: Endianness, len: u64) -> Result<(), ElfError> {
    let past = |what: String, needed: u64| {
        if needed > len {
            Err(ElfError::Truncated { what, needed, len })
        } else {
            Ok(())
        }
    };
    let ph_end = header.e_phoff(endian).saturating_add(
        u64::from(header.e_phentsize(endian)).saturating_mul(u64::from(header.e_phnum(endian))),
    );
    past("program headers".into(), ph_end)?;
    let sh_end = header.e_shoff(endian).saturating_add(
        u64::from(header.e_shentsize(endian)).saturating_mul(u64::from(header.e_shnum(endian))),
    );
    past("section headers".into(), sh_end)?;
    Ok(())
}

/// Checks every load segment against `len` (needs the program headers, read from `data`).
fn segments<'a, R: ReadRef<'a>>(
    header: &FileHeader64<Endianness>,
    endian: Endianness,
    data: R,
    len: u64,
) -> Result<(), ElfError> {
    for (i, ph) in header
        .program_headers(endian, data)
        .map_err(malformed)?
        .iter()
        .enumerate()
    {
        if ph.p_type(endian) != elf::PT_LOAD {
            continue;
        }
        let end = ph.p_offset(endian).saturating_add(ph.p_filesz(endian));
        if end > len {
            return Err(ElfError::Truncated {
                what: format!("load segment {i}"),
                needed: end,
                len,
            });
        }
    }
    Ok(())
}

fn malformed(e: object::read::Error) -> ElfError {
    ElfError::Malformed(e.to_string())
}

/// The first bytes of a file that is not ELF, escaped and cut short, for a message.
fn escape_start(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(8)];
    if shown.is_empty() {
        return "nothing: it is empty".to_owned();
    }
    format!("\"{}\"", shown.escape_ascii())
}

#[cfg(test)]
mod tests;
