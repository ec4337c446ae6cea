use super::*;

/// A 64-bit little-endian ELF header of `kind` for `machine`, with one program header (a load
/// segment ending at `load_end`) and `shnum` section headers at `shoff`.
fn elf64(machine: u16, kind: u16, load_end: u64, shoff: u64, shnum: u16) -> Vec<u8> {
    let mut b = vec![0u8; 64 + 56];
    b[..7].copy_from_slice(b"\x7fELF\x02\x01\x01");
    b[16..18].copy_from_slice(&kind.to_le_bytes()); // e_type
    b[18..20].copy_from_slice(&machine.to_le_bytes()); // e_machine
    b[20..24].copy_from_slice(&1u32.to_le_bytes()); // e_version
    b[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    b[40..48].copy_from_slice(&shoff.to_le_bytes()); // e_shoff
    b[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    b[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    b[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
    b[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
    b[60..62].copy_from_slice(&shnum.to_le_bytes()); // e_shnum
    b[64..68].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    b[64 + 32..64 + 40].copy_from_slice(&load_end.to_le_bytes()); // p_filesz, p_offset 0
    b
}

fn run(bytes: &[u8]) -> Result<ElfFacts, ElfError> {
    check(bytes, bytes.len() as u64)
}

#[test]
fn cut_files_name_the_part_that_does_not_fit() {
    let mut whole = elf64(HOST_MACHINE, elf::ET_DYN, 100, 1000, 2);
    whole.resize(1100, 0);
    let cut = run(&whole).unwrap_err();
    assert_eq!(
        cut,
        ElfError::Truncated {
            what: "section headers".into(),
            needed: 1128,
            len: 1100
        }
    );
    let mut short = elf64(HOST_MACHINE, elf::ET_DYN, 5000, 0, 0);
    short.resize(1000, 0);
    assert!(
        matches!(run(&short), Err(ElfError::Truncated { ref what, needed: 5000, .. }) if what == "load segment 0")
    );
    assert!(matches!(run(&whole[..20]), Err(ElfError::Truncated { ref what, .. }) if what == "ELF header"));
}

#[test]
fn another_machine_gets_its_own_message() {
    let other = if HOST_MACHINE == elf::EM_AARCH64 {
        elf::EM_X86_64
    } else {
        elf::EM_AARCH64
    };
    let err = run(&elf64(other, elf::ET_DYN, 100, 0, 0)).unwrap_err();
    assert!(matches!(err, ElfError::Machine { .. }), "{err}");
    assert!(err.to_string().starts_with("built for "), "{err}");
    let mut narrow = elf64(elf::EM_386, elf::ET_DYN, 100, 0, 0);
    narrow[4] = elf::ELFCLASS32;
    let err = run(&narrow).unwrap_err();
    assert!(err.to_string().contains("x86 (i386) (32-bit)"), "{err}");
}

#[test]
fn executables_and_non_elf_files_are_refused_by_name() {
    let err = run(&elf64(HOST_MACHINE, elf::ET_EXEC, 100, 0, 0)).unwrap_err();
    assert!(
        err.to_string()
            .contains("not a shared library: its ELF type is an executable"),
        "{err}"
    );
    let err = run(b"#!/bin/sh\nexit 0\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        r##"not an ELF file (it starts with "#!/bin/s")"##
    );
    assert_eq!(
        run(b"").unwrap_err().to_string(),
        "not an ELF file (it starts with nothing: it is empty)"
    );
}

#[test]
fn a_shared_object_without_the_entry_symbol_is_refused_before_anything_opens_it() {
    // The C library is a shared object that is no molt app.
    let libc = [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib/aarch64-linux-gnu/libc.so.6",
        "/usr/lib64/libc.so.6",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).is_file());
    let Some(libc) = libc else { return };
    let file = File::open(libc).unwrap();
    assert_eq!(precheck(&file).unwrap_err(), ElfError::NoEntry);
}
