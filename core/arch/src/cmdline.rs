//! The kernel command line: `[kernel flags] -- [app arguments]`.
//!
//! Kernel flags are the words before the first `--` that start with `unikernel.`: bare
//! (`unikernel.timeline`) or with a value (`unikernel.log=debug`). Without a `--` the whole
//! line is searched for them, and the other words are the app's. A key given twice takes
//! its last value, so a flag appended to a command line overrides an earlier one. This is
//! the one reader of kernel flags: the boot path, the console, the interrupt controllers
//! and the clock all ask it.

/// What every kernel flag starts with.
pub const FLAG_PREFIX: &str = "unikernel.";
/// The word that ends the kernel flags; the app's arguments follow it.
pub const SEPARATOR: &str = "--";

/// The line cut at its first `--` word: the kernel's part, and the app's part after it
/// (`None` without a `--`).
pub fn split(line: &str) -> (&str, Option<&str>) {
    let bytes = line.as_bytes();
    let separates = |at: usize| {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(at + SEPARATOR.len()).copied();
        before.is_none_or(|b| b.is_ascii_whitespace())
            && after.is_none_or(|b| b.is_ascii_whitespace())
    };
    match line.match_indices(SEPARATOR).find(|&(at, _)| separates(at)) {
        // Both cuts are next to ASCII bytes, so on character boundaries.
        Some((at, _)) => (&line[..at], Some(&line[at + SEPARATOR.len()..])),
        None => (line, None),
    }
}

/// The kernel's words of a line: up to the first `--`.
fn kernel_words(line: &str) -> impl Iterator<Item = &str> {
    line.split_ascii_whitespace()
        .take_while(|word| *word != SEPARATOR)
}

/// Whether `word` is a kernel flag (it starts with `unikernel.`).
pub fn is_flag(word: &str) -> bool {
    word.starts_with(FLAG_PREFIX)
}

/// One kernel flag: `unikernel.<name>` or `unikernel.<name>=<value>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flag<'a> {
    pub name: &'a str,
    pub value: Option<&'a str>,
}

/// The kernel flags of a command line. Reading them walks the line's words, without
/// copying or allocating: on the boot path, before any heap exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelFlags<'a> {
    line: &'a str,
}

impl<'a> KernelFlags<'a> {
    /// The flags of `line` (only its part before any `--`).
    pub fn parse(line: &'a str) -> Self {
        Self { line }
    }

    /// Every flag, in command-line order.
    pub fn iter(&self) -> impl Iterator<Item = Flag<'a>> + use<'a> {
        kernel_words(self.line)
            .filter_map(|word| word.strip_prefix(FLAG_PREFIX))
            .map(|flag| match flag.split_once('=') {
                Some((name, value)) => Flag {
                    name,
                    value: Some(value),
                },
                None => Flag {
                    name: flag,
                    value: None,
                },
            })
    }

    /// Whether the bare flag `unikernel.<name>` is given.
    pub fn has(&self, name: &str) -> bool {
        self.find(name).0
    }

    /// The value of `unikernel.<name>=<value>`; the last one where the key is repeated.
    pub fn value(&self, name: &str) -> Option<&'a str> {
        self.find(name).1
    }

    /// Whether the bare flag `unikernel.<name>` is given, and the last value of
    /// `unikernel.<name>=<value>`: one walk of the words serves both questions, so the
    /// image holds one copy of it.
    fn find(&self, name: &str) -> (bool, Option<&'a str>) {
        let (mut bare, mut value) = (false, None);
        for word in kernel_words(self.line) {
            // Byte comparisons only, no search for `=`: the boot path and every exit ask.
            match word
                .strip_prefix(FLAG_PREFIX)
                .and_then(|flag| flag.strip_prefix(name))
            {
                Some("") => bare = true,
                Some(rest) => value = rest.strip_prefix('=').or(value),
                None => {}
            }
        }
        (bare, value)
    }

    /// The value of `unikernel.<name>=<value>` parsed as a `T`; `None` where the flag is
    /// missing or its (last) value does not parse.
    pub fn parsed<T: core::str::FromStr>(&self, name: &str) -> Option<T> {
        self.value(name)?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    fn flags(line: &str) -> Vec<Flag<'_>> {
        KernelFlags::parse(line).iter().collect()
    }

    #[test]
    fn kernel_flags_end_at_the_separator() {
        let line = "unikernel.log=debug unikernel.timeline -- unikernel.idle app";
        let kernel = KernelFlags::parse(line);
        assert!(kernel.has("timeline"));
        assert!(!kernel.has("idle"), "after `--` it is the app's word");
        assert_eq!(kernel.value("log"), Some("debug"));
        assert_eq!(
            split(line),
            (
                "unikernel.log=debug unikernel.timeline ",
                Some(" unikernel.idle app")
            )
        );
    }

    #[test]
    fn app_arguments_follow_the_separator() {
        assert_eq!(split("-- a b"), ("", Some(" a b")));
        assert_eq!(split("a --b -- c -- d"), ("a --b ", Some(" c -- d")));
        assert_eq!(split("a b"), ("a b", None));
        assert_eq!(split("a --"), ("a ", Some("")));
        assert_eq!(split(""), ("", None));
        assert_eq!(split("x--y"), ("x--y", None), "only a whole word separates");
    }

    #[test]
    fn without_a_separator_the_whole_line_is_searched() {
        let kernel = KernelFlags::parse("fast unikernel.irq=pic 10");
        assert_eq!(kernel.value("irq"), Some("pic"));
        assert_eq!(
            flags("fast unikernel.irq=pic 10"),
            [Flag {
                name: "irq",
                value: Some("pic")
            }]
        );
    }

    #[test]
    fn bare_flags_and_values_are_told_apart() {
        let kernel = KernelFlags::parse("unikernel.timeline=0 unikernel.idle");
        assert!(
            !kernel.has("timeline"),
            "a flag with a value is not the bare flag"
        );
        assert_eq!(kernel.value("timeline"), Some("0"));
        assert!(kernel.has("idle"));
        assert_eq!(kernel.value("idle"), None);
    }

    #[test]
    fn a_repeated_key_takes_its_last_value() {
        let kernel = KernelFlags::parse("unikernel.log=info unikernel.log unikernel.log=trace");
        assert_eq!(kernel.value("log"), Some("trace"));
        assert!(kernel.has("log"));
        assert_eq!(flags("unikernel.log=info unikernel.log=trace").len(), 2);
    }

    #[test]
    fn names_match_whole() {
        let kernel =
            KernelFlags::parse("unikernel.timers=1 unikernel.timer_advance=0 unikernel.x=a=b");
        assert_eq!(kernel.value("timer"), None);
        assert_eq!(kernel.value("timer_advance"), Some("0"));
        assert_eq!(
            kernel.value("x"),
            Some("a=b"),
            "the value runs from the first `=`"
        );
        assert!(!KernelFlags::parse("xunikernel.idle unikernel.").has("idle"));
    }

    #[test]
    fn values_parse_to_types() {
        let kernel = KernelFlags::parse("unikernel.timer_advance=2500 unikernel.n=x");
        assert_eq!(kernel.parsed::<u64>("timer_advance"), Some(2500));
        assert_eq!(kernel.parsed::<u64>("n"), None);
        assert_eq!(kernel.parsed::<u64>("missing"), None);
    }

    #[test]
    fn words_are_flags_by_their_prefix() {
        assert!(is_flag("unikernel.log=info"));
        assert!(!is_flag("virtio_mmio.device=512@0xfeb00e00:12"));
        assert!(!is_flag("--"));
    }
}
