//! The manifest note: an ELF note `#[unikernel]` puts in every image, listing the
//! subsystems the image starts in boot order, so that a VMM provides only what the image
//! needs (an interrupt controller, a network device) without reading its symbols.
//!
//! Layout (an ELF note): name [`NAME`] (NUL-terminated, padded to 4 bytes), type
//! [`NOTE_TYPE`], and as its description the subsystem names separated by spaces, padded
//! with NULs to a multiple of 4 bytes.

/// The note's owner name.
pub const NAME: &str = "Unikernel";
/// The note's type.
pub const NOTE_TYPE: u32 = 1;
/// The section the note is placed in.
pub const SECTION: &str = ".note.unikernel";

/// The name field: [`NAME`], its NUL, and padding to a multiple of 4 bytes.
const NAME_FIELD: [u8; 12] = *b"Unikernel\0\0\0";

/// The note as it lies in the image (writer side): `desc` is the padded description.
#[repr(C)]
#[derive(Debug)]
pub struct Note<const N: usize> {
    name_size: u32,
    desc_size: u32,
    kind: u32,
    name: [u8; 12],
    desc: [u8; N],
}

impl<const N: usize> Note<N> {
    /// The note with description `desc` (the names, space separated, NUL padded to a
    /// multiple of 4 bytes).
    pub const fn new(desc: [u8; N]) -> Self {
        Self::with_type(NOTE_TYPE, desc)
    }

    /// The function note of a function image (see `crate::function::NOTE_TYPE`).
    pub const fn function(desc: [u8; N]) -> Self {
        Self::with_type(crate::function::NOTE_TYPE, desc)
    }

    const fn with_type(kind: u32, desc: [u8; N]) -> Self {
        assert!(
            N.is_multiple_of(4),
            "the manifest's description is padded to 4 bytes"
        );
        Self {
            name_size: NAME.len() as u32 + 1,
            desc_size: N as u32,
            kind,
            name: NAME_FIELD,
            desc,
        }
    }
}

/// Reader side: the subsystem names in a note's description, in boot order.
pub fn subsystems(desc: &[u8]) -> impl Iterator<Item = &str> {
    tokens(desc).filter(|token| !token.contains('='))
}

/// Every word of a note's description: the subsystem names and `key=value` settings.
fn tokens(desc: &[u8]) -> impl Iterator<Item = &str> {
    let end = desc.iter().position(|&b| b == 0).unwrap_or(desc.len());
    core::str::from_utf8(&desc[..end])
        .unwrap_or("")
        .split_ascii_whitespace()
}

/// The token that gives the CPU count: `cpus=N`, present only when N > 1.
pub const CPUS_TOKEN: &str = "cpus=";

/// Reader side: how many CPUs the image runs on (its `cpus=N` token; 1 without one or
/// with an unreadable count).
pub fn cpus(desc: &[u8]) -> u16 {
    tokens(desc)
        .find_map(|token| token.strip_prefix(CPUS_TOKEN)?.parse().ok())
        .filter(|&cpus| cpus >= 1)
        .unwrap_or(1)
}

/// Whether a note with this owner name (without its NUL) and type is the manifest.
pub fn is_manifest(name: &[u8], kind: u32) -> bool {
    name == NAME.as_bytes() && kind == NOTE_TYPE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_header_names_the_owner_and_the_sizes() {
        let note = Note::new(*b"console heap\0\0\0\0");
        assert_eq!(note.name_size, 10);
        assert_eq!(note.desc_size, 16);
        assert_eq!(note.kind, NOTE_TYPE);
        assert_eq!(&note.name[..10], b"Unikernel\0");
        assert_eq!(core::mem::size_of::<Note<16>>(), 12 + 12 + 16);
    }

    #[test]
    fn the_reader_splits_the_names_and_drops_the_padding() {
        let names: [&str; 3] = {
            let mut it = subsystems(b"console heap irq\0\0\0\0");
            [it.next().unwrap(), it.next().unwrap(), it.next().unwrap()]
        };
        assert_eq!(names, ["console", "heap", "irq"]);
        assert_eq!(subsystems(b"\0\0\0\0").count(), 0);
        let mut smp = subsystems(b"irq sched cpus=4");
        assert_eq!(smp.next(), Some("irq"));
        assert_eq!(smp.next(), Some("sched"));
        assert_eq!(smp.next(), None);
        assert!(is_manifest(b"Unikernel", 1));
        assert!(!is_manifest(b"Xen", 1));
    }

    #[test]
    fn the_cpu_count_comes_from_its_token_and_is_one_without() {
        assert_eq!(cpus(b"console irq clock sched cpus=4\0\0"), 4);
        assert_eq!(cpus(b"console sched\0\0\0"), 1);
        assert_eq!(cpus(b"cpus=0\0\0"), 1);
        assert_eq!(cpus(b"cpus=x\0\0"), 1);
    }
}
