//! The `args` subsystem: the app's part of the kernel command line, split into arguments
//! the way a shell would (quotes and backslashes), so `cargo uk run app -- "a b" c` gives
//! `["a b", "c"]`.
//!
//! The command line is `[kernel flags] [-- app arguments]`, cut where
//! `unikernel_arch::cmdline` cuts it: kernel flags are the words starting with
//! `unikernel.`; without a `--`, every other word is an app argument.
//! Parameters a VMM appends after everything else (QEMU microvm and Firecracker announce
//! each virtio-mmio device as `virtio_mmio.device=<size>@<base>:<irq>`) are the kernel's,
//! never the app's, even after the `--`.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use unikernel_arch::cmdline;

/// The handle `main` takes for its arguments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Args {
    args: Vec<String>,
}

impl Args {
    /// Splits the app's arguments out of a kernel command line.
    pub fn parse(cmdline: &str) -> Self {
        let args = match cmdline::split(without_vmm_params(cmdline)) {
            (_, Some(app_part)) => split(app_part),
            (kernel_part, None) => split(kernel_part)
                .into_iter()
                .filter(|word| !cmdline::is_flag(word))
                .collect(),
        };
        Self { args }
    }

    /// The value of `--name=value` or `--name value`, if given.
    pub fn value_of(&self, name: &str) -> Option<&str> {
        let mut iter = self.args.iter();
        while let Some(arg) = iter.next() {
            let Some(rest) = arg
                .strip_prefix("--")
                .and_then(|rest| rest.strip_prefix(name))
            else {
                continue;
            };
            if let Some(value) = rest.strip_prefix('=') {
                return Some(value);
            }
            if rest.is_empty() {
                return iter.next().map(String::as_str);
            }
        }
        None
    }
}

impl core::ops::Deref for Args {
    type Target = [String];

    fn deref(&self) -> &[String] {
        &self.args
    }
}

impl<'a> IntoIterator for &'a Args {
    type Item = &'a String;
    type IntoIter = core::slice::Iter<'a, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.args.iter()
    }
}

/// What a VMM appends to the command line (see the crate documentation).
const VMM_PARAMS: &[&str] = &["virtio_mmio.device="];

/// `line` without the VMM's parameters at its end. Only plain words count: an argument
/// that was quoted (`'virtio_mmio.device=x'`) is the app's.
fn without_vmm_params(line: &str) -> &str {
    let mut line = line.trim_end();
    loop {
        let start = line.rfind(char::is_whitespace).map_or(0, |space| space + 1);
        let word = &line[start..];
        let appended = VMM_PARAMS.iter().any(|param| word.starts_with(param))
            && !word.contains(['\'', '"', '\\']);
        if !appended || word.is_empty() {
            return line;
        }
        line = line[..start].trim_end();
    }
}

/// Splits like a POSIX shell: whitespace separates words, single quotes keep everything,
/// double quotes keep everything but `\"` and `\\`, a backslash outside quotes escapes
/// the next character. An unterminated quote runs to the end of the line.
fn split(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => {
                let word = word.get_or_insert_with(String::new);
                word.extend(chars.by_ref().take_while(|&c| c != '\''));
            }
            '"' => {
                let word = word.get_or_insert_with(String::new);
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some(escaped @ ('"' | '\\')) => word.push(escaped),
                            Some(other) => {
                                word.push('\\');
                                word.push(other);
                            }
                            None => word.push('\\'),
                        },
                        c => word.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).extend(chars.next()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn args(line: &str) -> Vec<String> {
        Args::parse(line).args
    }

    #[test]
    fn words_after_the_separator_belong_to_the_app() {
        assert_eq!(args("unikernel.timeline -- a b"), vec!["a", "b"]);
        assert_eq!(args("-- unikernel.timeline"), vec!["unikernel.timeline"]);
    }

    #[test]
    fn without_a_separator_kernel_flags_are_dropped() {
        assert_eq!(args("unikernel.log=debug fast  10"), vec!["fast", "10"]);
        assert!(args("").is_empty());
    }

    #[test]
    fn quotes_and_escapes_group_words() {
        assert_eq!(
            args(r#"-- "a b" 'c "d"' e\ f "g\"h" """#),
            vec!["a b", "c \"d\"", "e f", "g\"h", ""]
        );
    }

    #[test]
    fn unterminated_quotes_run_to_the_end() {
        assert_eq!(args("-- 'a b"), vec!["a b"]);
    }

    #[test]
    fn devices_the_vmm_appends_are_not_app_arguments() {
        let line = "unikernel.timeline -- a b virtio_mmio.device=512@0xfeb00e00:12 \
                    virtio_mmio.device=512@0xfeb00c00:11";
        assert_eq!(args(line), vec!["a", "b"]);
        assert_eq!(
            args("-- virtio_mmio.device=512@0xfeb00e00:12"),
            Vec::<String>::new()
        );
        assert_eq!(
            args("virtio_mmio.device=512@0xfeb00e00:12"),
            Vec::<String>::new()
        );
        // Quoted by the runner, or followed by an app argument: the app's.
        assert_eq!(
            args("-- 'virtio_mmio.device=x'"),
            vec!["virtio_mmio.device=x"]
        );
        assert_eq!(
            args("-- virtio_mmio.device=x y"),
            vec!["virtio_mmio.device=x", "y"]
        );
    }

    #[test]
    fn options_can_be_looked_up() {
        let args = Args::parse("-- --mode=fast --count 3 --flag");
        assert_eq!(args.value_of("mode"), Some("fast"));
        assert_eq!(args.value_of("count"), Some("3"));
        assert_eq!(args.value_of("flag"), None);
        assert_eq!(args.value_of("missing"), None);
    }
}
