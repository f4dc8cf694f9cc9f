//! `stack = "<size>"`: the size of the stack `main` runs on, when the 256 KiB the boot
//! entry gives it is not right. Not a subsystem: it starts nothing, it decides where the
//! boot continues. Whole pages, from 16 KiB (the kernel's fault stacks) to 1 GiB; the
//! stack comes out of the VM's memory, with an unmapped guard page below it.

use super::values::check;
use crate::errors::Errors;
use crate::parse::Entry;
use crate::registry::{GIB, KIB, Kind};

/// The name of the entry in the attribute.
pub const KEYWORD: &str = "stack";

const SIZES: Kind = Kind::Size {
    min: 16 * KIB,
    max: GIB,
    multiple_of: 4 * KIB,
};

const EXAMPLE: &str = "stack = \"1 MiB\"";

/// The size the app chose, if it wrote one stack entry with a valid size.
pub fn resolve(entries: &[&Entry], errors: &mut Errors) -> Option<u64> {
    let (first, rest) = entries.split_first()?;
    for entry in rest {
        errors.push(syn::Error::new(
            entry.name.span(),
            "`stack` is declared twice; declare it once",
        ));
    }
    if let Some(options) = &first.options {
        errors.push(syn::Error::new(
            options.span,
            format!("`stack` takes a size, not options: `{EXAMPLE}`"),
        ));
        return None;
    }
    if first.malformed {
        return None;
    }
    let Some(value) = &first.value else {
        errors.push(syn::Error::new(
            first.name.span(),
            format!(
                "`stack` needs a size: `{EXAMPLE}` (without it, `main` runs on the boot entry's 256 KiB)"
            ),
        ));
        return None;
    };
    match check(value, &SIZES, KEYWORD, EXAMPLE, false, errors)? {
        crate::value::Value::Bytes(bytes) => Some(bytes),
        _ => None,
    }
}
