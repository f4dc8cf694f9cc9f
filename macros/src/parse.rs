//! Stage 1, syntax: the attribute's tokens into [`Attr`], the item into a [`syn::Item`].
//!
//! Grammar (no meaning is attached here; spans are kept for every part):
//!
//! ```text
//! attr    := (entry ("," entry)* ","?)?
//! entry   := IDENT ("=" value)? ("(" (option ("," option)* ","?)? ")")?
//! option  := IDENT ("=" value)? | PATH
//! PATH    := IDENT "::" ...              (a task's function: `jobs::control`)
//! value   := LITERAL | IDENT
//! ```
//!
//! e.g. `console(log = debug), heap = "4 MiB", net(ipv4 = "10.0.2.15/24", gateway =
//! "10.0.2.2"), sched = edf(on_miss = panic), task(control, period = "1 ms")`.
//!
//! The attribute is split at its top-level commas and each entry is parsed on its own, so
//! one malformed entry does not hide the errors of the others. A syntax error inside an
//! entry's parentheses is kept with the entry ([`Options::error`]) rather than reported
//! here: whether it matters depends on the subsystem (an unknown subsystem, or one that
//! takes no options, gets one clearer error instead), which is for `resolve` to decide.

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::ToTokens;

use crate::errors::Errors;

/// `#[unikernel(...)]`'s arguments.
#[derive(Debug)]
pub struct Attr {
    pub entries: Vec<Entry>,
}

/// `name = value (options)`.
#[derive(Debug)]
pub struct Entry {
    pub name: syn::Ident,
    pub value: Option<Written>,
    pub options: Option<Options>,
    /// Whether the entry had a syntax error after its name (already reported): its value
    /// and options are then not to be trusted.
    pub malformed: bool,
}

/// `(key, key = value, ...)`.
#[derive(Debug)]
pub struct Options {
    /// The parentheses, for errors about the list as a whole.
    pub span: Span,
    pub entries: Vec<OptionEntry>,
    /// The syntax errors inside the parentheses, if any.
    pub error: Option<syn::Error>,
}

/// `key`, `key = value`, or a path (`jobs::control`).
#[derive(Debug)]
pub struct OptionEntry {
    /// The name, or a path's last segment.
    pub key: syn::Ident,
    pub value: Option<Written>,
    /// The whole path, when the option is one (only a task's function may be).
    pub path: Option<syn::Path>,
}

/// A value after `=`: a literal (`"1 MiB"`, `4096`) or a name (`edf`). What each subsystem
/// or option accepts is for `resolve` to say.
#[derive(Debug, Clone)]
pub enum Written {
    Lit(syn::Lit),
    Ident(syn::Ident),
}

impl Written {
    pub fn span(&self) -> Span {
        match self {
            Written::Lit(lit) => lit.span(),
            Written::Ident(ident) => ident.span(),
        }
    }
}

impl ToTokens for Written {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            Written::Lit(lit) => lit.to_tokens(tokens),
            Written::Ident(ident) => ident.to_tokens(tokens),
        }
    }
}

/// Parses the attribute's arguments, collecting every syntax error.
pub fn attr(tokens: TokenStream, errors: &mut Errors) -> Attr {
    let mut entries = Vec::new();
    for chunk in split_commas(tokens, "a subsystem name") {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => {
                errors.push(error);
                continue;
            }
        };
        let mut chunk_errors = Errors::default();
        if let Some((name, value, rest)) = name_and_value(&chunk, &mut chunk_errors, "a subsystem")
        {
            let options = match rest.first() {
                Some(TokenTree::Group(group)) if group.delimiter() == Delimiter::Parenthesis => {
                    let options = options(group.stream(), group.span());
                    trailing(&rest[1..], "`)`", &mut chunk_errors);
                    Some(options)
                }
                _ => {
                    trailing_after_name(rest, &name, value.as_ref(), true, &mut chunk_errors);
                    None
                }
            };
            entries.push(Entry {
                name,
                value,
                options,
                malformed: !chunk_errors.is_empty(),
            });
        }
        errors.append(chunk_errors);
    }
    Attr { entries }
}

fn options(tokens: TokenStream, span: Span) -> Options {
    let mut errors = Errors::default();
    let mut entries = Vec::new();
    for chunk in split_commas(tokens, "an option name") {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => {
                errors.push(error);
                continue;
            }
        };
        let mut chunk_errors = Errors::default();
        if starts_a_path(&chunk) {
            match syn::parse2::<syn::Path>(chunk.iter().cloned().collect()) {
                Ok(path) => entries.push(OptionEntry {
                    key: path.segments.last().expect("a path").ident.clone(),
                    value: None,
                    path: Some(path),
                }),
                Err(error) => chunk_errors.push(error),
            }
        } else if let Some((key, value, rest)) =
            name_and_value(&chunk, &mut chunk_errors, "an option")
        {
            trailing_after_name(rest, &key, value.as_ref(), false, &mut chunk_errors);
            // A malformed option is reported once, here, and not looked at again.
            if chunk_errors.is_empty() {
                entries.push(OptionEntry {
                    key,
                    value,
                    path: None,
                });
            }
        }
        errors.append(chunk_errors);
    }
    Options {
        span,
        entries,
        error: errors.into_error(),
    }
}

/// `IDENT ::` or `:: IDENT`: a path.
fn starts_a_path(chunk: &[TokenTree]) -> bool {
    let colon = |token: Option<&TokenTree>| matches!(token, Some(TokenTree::Punct(p)) if p.as_char() == ':');
    match chunk.first() {
        Some(TokenTree::Ident(_)) => colon(chunk.get(1)) && colon(chunk.get(2)),
        first => colon(first) && colon(chunk.get(1)),
    }
}

/// Splits at top-level commas. An empty piece before a comma is an error at that comma; a
/// trailing comma is fine.
pub fn split_commas(tokens: TokenStream, what: &str) -> Vec<syn::Result<Vec<TokenTree>>> {
    let mut chunks = Vec::new();
    let mut chunk = Vec::new();
    for token in tokens {
        match token {
            TokenTree::Punct(punct) if punct.as_char() == ',' => {
                if chunk.is_empty() {
                    chunks.push(Err(syn::Error::new(
                        punct.span(),
                        format!("expected {what} before `,`"),
                    )));
                } else {
                    chunks.push(Ok(std::mem::take(&mut chunk)));
                }
            }
            token => chunk.push(token),
        }
    }
    if !chunk.is_empty() {
        chunks.push(Ok(chunk));
    }
    chunks
}

/// `IDENT ("=" LITERAL)?`, returning what follows (nothing after a malformed value).
fn name_and_value<'a>(
    chunk: &'a [TokenTree],
    errors: &mut Errors,
    what: &str,
) -> Option<(syn::Ident, Option<Written>, &'a [TokenTree])> {
    let name = match &chunk[0] {
        TokenTree::Ident(ident) => ident.clone(),
        other => {
            errors.push(syn::Error::new(
                other.span(),
                format!("expected {what} name, found `{other}`"),
            ));
            return None;
        }
    };
    let rest = &chunk[1..];
    let Some(TokenTree::Punct(eq)) = rest.first() else {
        return Some((name, None, rest));
    };
    if eq.as_char() != '=' || rest.get(1).is_some_and(is_joined_punct(eq)) {
        return Some((name, None, rest));
    }
    match rest.get(1) {
        Some(TokenTree::Literal(literal)) => {
            let lit = syn::Lit::new(literal.clone());
            Some((name, Some(Written::Lit(lit)), &rest[2..]))
        }
        Some(TokenTree::Ident(ident)) => {
            Some((name, Some(Written::Ident(ident.clone())), &rest[2..]))
        }
        Some(other) => {
            errors.push(syn::Error::new(
                other.span(),
                format!(
                    "expected a value after `=`, such as `\"1 MiB\"` or `edf`, found `{other}`"
                ),
            ));
            Some((name, None, &[]))
        }
        None => {
            errors.push(syn::Error::new(eq.span(), "expected a value after `=`"));
            Some((name, None, &[]))
        }
    }
}

/// `=` directly followed by another punctuation (`==`, `=>`) is not our `=`.
fn is_joined_punct(eq: &proc_macro2::Punct) -> impl Fn(&TokenTree) -> bool + '_ {
    move |next| eq.spacing() == proc_macro2::Spacing::Joint && matches!(next, TokenTree::Punct(_))
}

/// Tokens left after `name` or `name = value`, where none (or only `(...)`) may follow.
fn trailing_after_name(
    rest: &[TokenTree],
    name: &syn::Ident,
    value: Option<&Written>,
    takes_options: bool,
    errors: &mut Errors,
) {
    let Some(first) = rest.first() else { return };
    let (after, expected) = match (value, takes_options) {
        (None, true) => (format!("`{name}`"), "`,`, `=` or `(`"),
        (None, false) => (format!("`{name}`"), "`,` or `=`"),
        (Some(_), true) => ("the value".to_owned(), "`,` or `(`"),
        (Some(_), false) => ("the value".to_owned(), "`,`"),
    };
    let mut message = format!("expected {expected} after {after}, found `{first}`");
    // `heap = 1 MiB`: a number and a unit, meant as one size string.
    if let (Some(Written::Lit(syn::Lit::Int(number))), [TokenTree::Ident(unit)]) = (value, rest) {
        message = format!(
            "{message}; write the number and its unit as one string: `\"{} {unit}\"`",
            number.base10_digits()
        );
    }
    errors.push(syn::Error::new(first.span(), message));
}

fn trailing(rest: &[TokenTree], after: &str, errors: &mut Errors) {
    if let Some(first) = rest.first() {
        errors.push(syn::Error::new(
            first.span(),
            format!("expected `,` after {after}, found `{first}`"),
        ));
    }
}

/// The item the attribute is on.
pub fn item(tokens: TokenStream) -> syn::Result<syn::Item> {
    syn::parse2(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(tokens: TokenStream) -> (Attr, Vec<String>) {
        let mut errors = Errors::default();
        let attr = attr(tokens, &mut errors);
        (attr, errors.messages())
    }

    fn lit_text(lit: &Option<Written>) -> Option<String> {
        lit.as_ref().map(|lit| quote!(#lit).to_string())
    }

    #[test]
    fn empty() {
        let (attr, errors) = parse(quote!());
        assert!(attr.entries.is_empty());
        assert!(errors.is_empty());
    }

    #[test]
    fn names_values_and_options() {
        let (attr, errors) = parse(quote!(
            console,
            heap = "4 MiB",
            net(ipv4 = "10.0.2.15/24", gateway = "10.0.2.2"),
            task(control, period = "1 ms", wcet = "200 us",),
            weird = 3(x),
        ));
        assert!(errors.is_empty(), "{errors:?}");
        let names: Vec<_> = attr.entries.iter().map(|e| e.name.to_string()).collect();
        assert_eq!(names, ["console", "heap", "net", "task", "weird"]);
        assert!(attr.entries[0].value.is_none() && attr.entries[0].options.is_none());
        assert_eq!(
            lit_text(&attr.entries[1].value).as_deref(),
            Some("\"4 MiB\"")
        );
        let net = attr.entries[2].options.as_ref().unwrap();
        assert!(net.error.is_none());
        let keys: Vec<_> = net.entries.iter().map(|o| o.key.to_string()).collect();
        assert_eq!(keys, ["ipv4", "gateway"]);
        assert_eq!(
            lit_text(&net.entries[1].value).as_deref(),
            Some("\"10.0.2.2\"")
        );
        let task = attr.entries[3].options.as_ref().unwrap();
        assert!(task.entries[0].value.is_none());
        assert_eq!(task.entries.len(), 3);
        assert_eq!(lit_text(&attr.entries[4].value).as_deref(), Some("3"));
        assert!(attr.entries[4].options.is_some());
    }

    #[test]
    fn names_as_values() {
        let (attr, errors) = parse(quote!(sched = edf(on_miss = panic), console(log = debug)));
        assert!(errors.is_empty(), "{errors:?}");
        assert!(matches!(&attr.entries[0].value, Some(Written::Ident(i)) if i == "edf"));
        let options = attr.entries[0].options.as_ref().unwrap();
        assert!(matches!(&options.entries[0].value, Some(Written::Ident(i)) if i == "panic"));
        assert_eq!(
            lit_text(&attr.entries[1].options.as_ref().unwrap().entries[0].value).as_deref(),
            Some("debug")
        );
        let (_, errors) = parse(quote!(sched = edf rm));
        assert_eq!(errors, ["expected `,` or `(` after the value, found `rm`"]);
    }

    #[test]
    fn malformed_entries_are_all_reported() {
        let (attr, errors) = parse(quote!("console", heap =, args heap, , x = -1, z = 1 MiB));
        assert_eq!(
            errors,
            [
                "expected a subsystem name, found `\"console\"`",
                "expected a value after `=`",
                "expected `,`, `=` or `(` after `args`, found `heap`",
                "expected a subsystem name before `,`",
                "expected a value after `=`, such as `\"1 MiB\"` or `edf`, found `-`",
                "expected `,` or `(` after the value, found `MiB`; write the number and its unit as one string: `\"1 MiB\"`",
            ]
        );
        // Entries whose name parsed are kept, so resolution can still check the names.
        let names: Vec<_> = attr.entries.iter().map(|e| e.name.to_string()).collect();
        assert_eq!(names, ["heap", "args", "x", "z"]);
        assert!(attr.entries.iter().all(|e| e.malformed));
        let (attr, _) = parse(quote!(console, heap = "1 MiB"));
        assert!(attr.entries.iter().all(|e| !e.malformed));
    }

    #[test]
    fn trailing_tokens() {
        let (_, errors) = parse(quote!(heap = "1 MiB" extra, console(log = "x") more, a == b));
        assert_eq!(
            errors,
            [
                "expected `,` or `(` after the value, found `extra`",
                "expected `,` after `)`, found `more`",
                "expected `,`, `=` or `(` after `a`, found `=`",
            ]
        );
        let (_, errors) = parse(quote!(heap[1]));
        assert_eq!(
            errors,
            ["expected `,`, `=` or `(` after `heap`, found `[1]`"]
        );
    }

    #[test]
    fn options_may_be_paths() {
        let (attr, errors) = parse(quote!(
            task(jobs::control, period = "1 ms"),
            task(::a::b),
            task(g::<u32>)
        ));
        assert!(errors.is_empty(), "{errors:?}");
        let first = &attr.entries[0].options.as_ref().unwrap().entries[0];
        assert_eq!(first.key, "control");
        let path = first.path.as_ref().unwrap();
        assert_eq!(quote!(#path).to_string(), "jobs :: control");
        let second = &attr.entries[1].options.as_ref().unwrap().entries[0];
        assert_eq!(second.key, "b");
        let third = &attr.entries[2].options.as_ref().unwrap().entries[0];
        assert_eq!(third.key, "g");
        let (attr, _) = parse(quote!(task(jobs::control = 3)));
        let options = attr.entries[0].options.as_ref().unwrap();
        assert!(options.entries.is_empty() && options.error.is_some());
    }

    #[test]
    fn option_errors_stay_with_their_entry() {
        let (attr, errors) = parse(quote!(heap(1 MiB), console(log = , 7)));
        assert!(errors.is_empty());
        let heap = attr.entries[0].options.as_ref().unwrap();
        assert!(heap.entries.is_empty());
        let message = heap.error.as_ref().unwrap().to_string();
        assert_eq!(message, "expected an option name, found `1`");
        let console = attr.entries[1].options.as_ref().unwrap();
        let messages: Vec<_> = console
            .error
            .clone()
            .unwrap()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            messages,
            [
                "expected a value after `=`",
                "expected an option name, found `7`"
            ]
        );
    }

    #[test]
    fn items() {
        assert!(matches!(
            item(quote!(
                fn main() {}
            )),
            Ok(syn::Item::Fn(_))
        ));
        assert!(matches!(
            item(quote!(
                struct S;
            )),
            Ok(syn::Item::Struct(_))
        ));
        assert!(item(quote!(fn)).is_err());
    }
}
