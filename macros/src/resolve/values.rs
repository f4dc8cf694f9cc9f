//! One written value (`"1 MiB"`, `edf`, `"10.0.2.15/24"`) against the kind the registry
//! gives it: the text is taken from the literal, checked, and turned into a [`Value`].

use syn::ext::IdentExt;

use crate::errors::Errors;
use crate::hint;
use crate::parse::Written;
use crate::value::{Kind, Value, check_text};

/// Checks a written value of `kind` (for `subject`, whose usual form is `example`).
pub fn check(
    value: &Written,
    kind: &Kind,
    subject: &str,
    example: &str,
    is_subsystem: bool,
    errors: &mut Errors,
) -> Option<Value> {
    let text = match (kind, value) {
        (Kind::Flag, _) => {
            errors.push(syn::Error::new(
                value.span(),
                format!("`{subject}` takes no value; write it alone to turn it on"),
            ));
            return None;
        }
        (Kind::Ipv4Cidr { .. } | Kind::Ipv4Address { .. }, Written::Lit(syn::Lit::Str(text)))
            if text.value().trim().is_empty() =>
        {
            errors.push(syn::Error::new(
                value.span(),
                format!("`{subject}` is empty; write an address, such as `{example}`"),
            ));
            return None;
        }
        (_, Written::Lit(syn::Lit::Str(text))) => text.value(),
        (Kind::OneOf { .. }, Written::Ident(ident)) => ident.unraw().to_string(),
        (Kind::Count { .. }, Written::Lit(syn::Lit::Int(number))) => {
            number.base10_digits().to_owned()
        }
        _ => {
            let expected = match kind {
                Kind::Size { .. } => format!("a size string, such as `{example}`"),
                Kind::OneOf { values, .. } => format!("one of: {}", written(values)),
                Kind::Ipv4Cidr { .. } | Kind::Ipv4Address { .. } => {
                    format!("an address in a string, such as `{example}`")
                }
                Kind::Count { .. } => format!("a whole number, such as `{example}`"),
                Kind::Flag => unreachable!("handled above"),
            };
            errors.push(syn::Error::new(
                value.span(),
                format!("`{subject}` takes {expected}"),
            ));
            return None;
        }
    };
    check_text(&text, kind, subject, is_subsystem)
        .map_err(|message| errors.push(syn::Error::new(value.span(), message)))
        .ok()
}

fn written(values: &[(&str, &str)]) -> String {
    let names: Vec<&str> = values.iter().map(|(written, _)| *written).collect();
    hint::list(&names)
}
