//! Minimal PVH images of a few instructions, for the monitor's boot tests (`monitor.rs`,
//! `monitor_smp.rs`), which include it with `#[path = "common/pvh.rs"] mod pvh;`: not
//! every test file that uses `common` builds images.

/// Where the image is loaded and linked: 1 MiB, as our kernels.
const BASE: u64 = 0x10_0000;
/// Where the notes start, in the file and above [`BASE`].
const NOTES: usize = 0xb0;
/// Where the code starts: the PVH entry.
const CODE: usize = 0x100;
/// XEN_ELFNOTE_PHYS32_ENTRY: the PVH entry's note type.
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

/// An image whose code is `code` at 1 MiB + 0x100, entered in 32-bit protected mode with
/// paging off, with Xen's PVH entry note and, given `manifest` (e.g. `"irq cpus=2"`), the
/// manifest note that lists it; a temporary file, removed when dropped.
pub fn elf(name: &str, code: &[u8], manifest: Option<&str>) -> tempfile::TempPath {
    let mut elf = vec![0u8; CODE];
    elf.extend_from_slice(code);
    let put = |elf: &mut Vec<u8>, at: usize, bytes: &[u8]| {
        elf[at..at + bytes.len()].copy_from_slice(bytes)
    };
    // ELF header.
    put(&mut elf, 0, b"\x7fELF\x02\x01\x01");
    put(&mut elf, 16, &2u16.to_le_bytes()); // ET_EXEC
    put(&mut elf, 18, &62u16.to_le_bytes()); // x86_64
    put(&mut elf, 20, &1u32.to_le_bytes());
    put(&mut elf, 24, &(BASE + CODE as u64).to_le_bytes()); // e_entry
    put(&mut elf, 32, &64u64.to_le_bytes()); // e_phoff
    put(&mut elf, 52, &64u16.to_le_bytes()); // e_ehsize
    put(&mut elf, 54, &56u16.to_le_bytes()); // e_phentsize
    put(&mut elf, 56, &2u16.to_le_bytes()); // e_phnum
    // The notes: Xen's PVH entry, then the manifest.
    let mut notes = Vec::new();
    let entry = (BASE + CODE as u64) as u32;
    note(
        &mut notes,
        "Xen",
        XEN_ELFNOTE_PHYS32_ENTRY,
        &entry.to_le_bytes(),
    );
    if let Some(manifest) = manifest {
        // NUL-terminated and padded to 4 bytes, the padding counted in its size.
        let mut desc = manifest.as_bytes().to_vec();
        desc.resize((desc.len() + 1).next_multiple_of(4), 0);
        note(
            &mut notes,
            unikernel_abi::manifest::NAME,
            unikernel_abi::manifest::NOTE_TYPE,
            &desc,
        );
    }
    assert!(NOTES + notes.len() <= CODE, "the notes overlap the code");
    put(&mut elf, NOTES, &notes);
    let size = elf.len() as u64;
    // PT_LOAD: the whole file at 1 MiB, R-X.
    let load = 64;
    put(&mut elf, load, &1u32.to_le_bytes());
    put(&mut elf, load + 4, &5u32.to_le_bytes());
    put(&mut elf, load + 16, &BASE.to_le_bytes());
    put(&mut elf, load + 24, &BASE.to_le_bytes());
    put(&mut elf, load + 32, &size.to_le_bytes());
    put(&mut elf, load + 40, &size.to_le_bytes());
    put(&mut elf, load + 48, &0x1000u64.to_le_bytes());
    // PT_NOTE over the notes.
    let note = 64 + 56;
    put(&mut elf, note, &4u32.to_le_bytes());
    put(&mut elf, note + 8, &(NOTES as u64).to_le_bytes());
    put(&mut elf, note + 16, &(BASE + NOTES as u64).to_le_bytes());
    put(&mut elf, note + 24, &(BASE + NOTES as u64).to_le_bytes());
    put(&mut elf, note + 32, &(notes.len() as u64).to_le_bytes());
    put(&mut elf, note + 40, &(notes.len() as u64).to_le_bytes());
    put(&mut elf, note + 48, &4u64.to_le_bytes());
    let mut file = tempfile::Builder::new()
        .prefix(&format!("runner-test-{name}-"))
        .suffix(".elf")
        .tempfile()
        .expect("a temporary file");
    std::io::Write::write_all(&mut file, &elf).expect("write the test image");
    file.into_temp_path()
}

/// Appends an ELF note: owner `name` (NUL-terminated), type `kind`, description `desc`,
/// each field padded to 4 bytes.
fn note(notes: &mut Vec<u8>, name: &str, kind: u32, desc: &[u8]) {
    notes.extend((name.len() as u32 + 1).to_le_bytes());
    notes.extend((desc.len() as u32).to_le_bytes());
    notes.extend(kind.to_le_bytes());
    notes.extend(name.as_bytes());
    notes.push(0);
    notes.resize(notes.len().next_multiple_of(4), 0);
    notes.extend(desc);
    notes.resize(notes.len().next_multiple_of(4), 0);
}
