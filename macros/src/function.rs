//! `#[unikernel::function(route = "POST /resize", heap = "8 MiB", timeout = "100 ms")]` and
//! `#[unikernel::init]`: serverless functions, many in one crate, one image each.
//!
//! A function's attribute holds its own options (`route`, required; `mode`, `timeout`,
//! `max_request`, `memory`) and, like `#[unikernel]`'s, the subsystems its image starts,
//! minus `net` (requests come over the monitor's request channel) and `function` (always
//! there). Those are resolved with `#[unikernel]`'s own pipeline ([`crate::resolve`])
//! against a `main` made for the function, so every error `#[unikernel]` reports is
//! reported here too, at the same tokens.
//!
//! The expansion, for `#[unikernel::function(route = "GET /hello")] fn hello(request:
//! Request) -> Response`:
//!
//! ```ignore
//! fn hello(request: Request) -> Response { .. }                  // the user's, unchanged
//!
//! // Crate-wide uniqueness: a second function of the same name, or a second function on
//! // the same route, is rustc's "defined multiple times" at its name or route.
//! #[macro_export] macro_rules! __unikernel_function_named_hello { () => {} }
//! #[macro_export] macro_rules! __unikernel_route_declared_twice_GET_s_hello { () => {} }
//!
//! // Type checks at the user's spans, in every build but the image's own (whose entry makes
//! // the same calls): the handler's call, the state's type.
//! const _: () = { fn __unikernel_check(request: Request) { let _ = respond(hello(request)); } };
//!
//! // The image's entry, only in the build of this function's image (`cargo uk functions
//! // build` sets UNIKERNEL_FUNCTION=hello).
//! const _: () = {
//!     <#[unikernel(heap = "4 MiB", function(max_request = "1 MiB"))]'s expansion of:>
//!     fn main(__unikernel_function: Function) -> ! {
//!         __unikernel_function.serve(|request| respond(hello(request)))
//!     }
//!     static __UNIKERNEL_FUNCTION: FunctionNote<..> = ..;       // route, mode, timeout, ..
//! };
//! ```
//!
//! One build of the crate per function, each with only that function's entry, allocator and
//! manifest: the other functions are dead code the linker drops. The selection is an
//! environment variable read here rather than a `cfg` in the expansion: rustc would warn
//! about an unknown `cfg` name in every plain build of the crate. The function note
//! (`unikernel_abi::function::NOTE_TYPE`) carries what the gateway needs to serve the image.
//!
//! A state parameter (`model: &Model`) is filled by `#[unikernel::init] fn init() -> Model`,
//! which implements `FunctionState` for `Model`: the entry runs it once, before the first
//! request (so in `snapshot` mode before the snapshot). A state type no `init` returns is
//! rustc's error at the parameter's type, worded by `FunctionState`'s
//! `#[diagnostic::on_unimplemented]`.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::errors::Errors;
use crate::parse;
use crate::registry::{Kind, SUBSYSTEMS};
use crate::value::{Value, check_text};
use crate::{duration, generate, resolve};

/// The heap of a function that declares none.
pub const DEFAULT_HEAP: &str = "4 MiB";
/// The request buffer of a function that declares no `max_request`.
pub const DEFAULT_MAX_REQUEST: u64 = 1 << 20;
/// The timeout of a function that declares none.
pub const DEFAULT_TIMEOUT_NS: u64 = 10_000_000_000;
/// What a VM needs besides the heap and the request buffer: the image (at most 2 MiB),
/// page tables, stacks, the low megabyte.
const MEMORY_OVERHEAD: u64 = 8 << 20;

const MIB: u64 = 1 << 20;

/// HTTP methods a route may name.
const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

/// The options of a function that are not subsystems.
const OWN_KEYS: &[&str] = &["route", "mode", "timeout", "max_request", "memory"];

/// The serving modes; `snapshot` is the default.
const MODES: &[&str] = &["fresh", "snapshot", "warm"];

/// A function's own options, each with its span.
#[derive(Debug)]
struct Options {
    method: String,
    path: String,
    mode: &'static str,
    timeout_ns: u64,
    max_request: u64,
    memory: Option<u64>,
}

/// The environment variable that selects the function whose image a build makes
/// (`cargo uk functions build` sets it, as its own `SELECT_VARIABLE` says, and passes
/// `--cfg unikernel_function="<name>"` so that cargo rebuilds the crate for each function).
pub const SELECT_VARIABLE: &str = "UNIKERNEL_FUNCTION";

/// `#[unikernel::function(..)]` on `item`; `selected` is the function whose image is being
/// built, if any (the value of [`SELECT_VARIABLE`]).
pub fn expand_function(
    attr: TokenStream,
    item: TokenStream,
    selected: Option<&str>,
) -> TokenStream {
    let mut errors = Errors::default();
    let function = match syn::parse2::<syn::ItemFn>(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            let span = item
                .clone()
                .into_iter()
                .next()
                .map_or_else(Span::call_site, |token| token.span());
            let error = syn::Error::new(
                span,
                "`#[unikernel::function]` goes on a function: `fn name(request: Request) -> Response`",
            );
            let error = error.to_compile_error();
            return quote!(#error #item);
        }
    };

    let (own, subsystems) = split(attr, &mut errors);
    let known: Vec<&str> = OWN_KEYS
        .iter()
        .copied()
        .chain(SUBSYSTEMS.iter().map(|spec| spec.name))
        .filter(|name| !matches!(*name, "net" | "function"))
        .collect();
    let options = options(&own, &mut errors);
    let signature = signature(&function, &mut errors);

    // The subsystems, with a default heap and the function subsystem itself, resolved as
    // `#[unikernel]` resolves them.
    let mut declared = TokenStream::new();
    let mut has_heap = false;
    for chunk in &subsystems {
        let name = chunk_name(chunk);
        match name.as_deref() {
            Some("net") => {
                errors.push(syn::Error::new(
                    chunk[0].span(),
                    "a function gets no network stack: its requests come over the monitor's request channel; remove `net`",
                ));
                continue;
            }
            Some("function") => {
                errors.push(syn::Error::new(
                    chunk[0].span(),
                    "`#[unikernel::function]` starts the `function` subsystem itself; set its buffer with `max_request = \"<size>\"`",
                ));
                continue;
            }
            Some("heap") => has_heap = true,
            Some(name) if !known.contains(&name) && !matches!(name, "task" | "stack") => {
                errors.push(syn::Error::new(
                    chunk[0].span(),
                    format!(
                        "unknown option `{name}` of `#[unikernel::function]`{}",
                        crate::hint::suffix(name, &known)
                    ),
                ));
                continue;
            }
            _ => {}
        }
        declared.extend(chunk.iter().cloned());
        declared.extend(quote!(,));
    }
    if !has_heap {
        declared.extend(quote!(heap = #DEFAULT_HEAP,));
    }
    let max_request = options
        .as_ref()
        .map_or(DEFAULT_MAX_REQUEST, |o| o.max_request);
    let max_request_text = format!("{max_request} B");
    declared.extend(quote!(function(max_request = #max_request_text)));
    let attr = parse::attr(declared, &mut errors);
    let main = entry_main(&function, signature.as_ref());
    let mut resolve_errors = Errors::default();
    let plan = resolve::resolve(&attr, &main, SUBSYSTEMS, &mut resolve_errors);
    // `#[unikernel]`'s words, for a function's attribute.
    for error in resolve_errors.into_error().into_iter().flatten() {
        let message = error
            .to_string()
            .replace("`#[unikernel(...)]`", "`#[unikernel::function(...)]`")
            .replace("`#[unikernel]` main takes", "a function takes");
        errors.push(syn::Error::new(error.span(), message));
    }

    // Kept out of line (unless the user says otherwise), so that the image's symbols and a
    // panic's backtrace name the function.
    let mut function = function;
    if !function
        .attrs
        .iter()
        .any(|attr| attr.path().is_ident("inline"))
    {
        function.attrs.push(syn::parse_quote!(#[inline(never)]));
    }
    let user_function = &function;
    let (Some(options), Some(signature), true) = (options, signature, errors.is_empty()) else {
        let errors = errors.into_error().map(|errors| errors.to_compile_error());
        return quote! {
            #errors
            #user_function
        };
    };

    let name = function.sig.ident.to_string();
    let heap = plan
        .boot
        .iter()
        .find(|resolved| resolved.spec.name == "heap")
        .and_then(|resolved| match resolved.value {
            Some(Value::Bytes(bytes)) => Some(bytes),
            _ => None,
        })
        .unwrap_or(0);
    let memory_mib = options
        .memory
        .unwrap_or_else(|| heap + options.max_request + MEMORY_OVERHEAD)
        .div_ceil(MIB);
    let note = function_note(&name, &options, memory_mib, signature.state.is_some());
    let entry = generate::entry(&plan, main);
    let unique = uniqueness(&function.sig.ident, &options, &own);
    // In the function's own image the entry makes the same calls: checked once.
    let check = (selected != Some(name.as_str())).then(|| check(&function, &signature));
    let image = (selected == Some(name.as_str())).then(|| {
        quote! {
            const _: () = {
                #entry

                #note
            };
        }
    });
    quote! {
        #user_function

        #unique

        #check

        #image
    }
}

/// `#[unikernel::init]` on `item`.
pub fn expand_init(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    if let Some(token) = attr.into_iter().next() {
        errors.push(syn::Error::new(
            token.span(),
            "`#[unikernel::init]` takes no options: write `#[unikernel::init]`",
        ));
    }
    let init = match syn::parse2::<syn::ItemFn>(item.clone()) {
        Ok(init) => init,
        Err(_) => {
            let span = item
                .clone()
                .into_iter()
                .next()
                .map_or_else(Span::call_site, |token| token.span());
            let error = syn::Error::new(
                span,
                "`#[unikernel::init]` goes on a function: `fn init() -> State`",
            )
            .to_compile_error();
            return quote!(#error #item);
        }
    };
    let sig = &init.sig;
    plain_function(sig, "`#[unikernel::init]`", &mut errors);
    if let Some(input) = sig.inputs.first() {
        errors.push(syn::Error::new(
            input.span(),
            "`#[unikernel::init]` takes no parameters: it makes the state the functions take by reference",
        ));
    }
    let state = match &sig.output {
        syn::ReturnType::Type(_, ty) if !is_unit_or_never(ty) => Some(ty.clone()),
        syn::ReturnType::Type(_, ty) => {
            errors.push(syn::Error::new(
                ty.span(),
                "`#[unikernel::init]` returns the state the functions take: `fn init() -> State`",
            ));
            None
        }
        syn::ReturnType::Default => {
            errors.push(syn::Error::new(
                sig.ident.span(),
                "`#[unikernel::init]` returns the state the functions take: `fn init() -> State`",
            ));
            None
        }
    };
    let (Some(state), true) = (state, errors.is_empty()) else {
        let errors = errors.into_error().map(|errors| errors.to_compile_error());
        return quote!(#errors #init);
    };
    let name = &sig.ident;
    let once = quote_spanned! {name.span()=>
        #[doc(hidden)]
        #[macro_export]
        macro_rules! __unikernel_init_is_declared_more_than_once {
            () => {};
        }
    };
    quote! {
        #init

        #once

        impl ::unikernel::__private::FunctionState for #state {
            #[inline(always)]
            fn init() -> Self {
                #name()
            }
        }
    }
}

/// The attribute's top-level entries, split into the function's own (`route`, ...) and the
/// subsystems'.
fn split(attr: TokenStream, errors: &mut Errors) -> (Vec<Vec<TokenTree>>, Vec<Vec<TokenTree>>) {
    let mut own = Vec::new();
    let mut subsystems = Vec::new();
    let chunks = parse::split_commas(attr, "an option");
    for chunk in chunks {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => {
                errors.push(error);
                continue;
            }
        };
        match chunk_name(&chunk) {
            Some(name) if OWN_KEYS.contains(&name.as_str()) => own.push(chunk),
            _ => subsystems.push(chunk),
        }
    }
    (own, subsystems)
}

fn chunk_name(chunk: &[TokenTree]) -> Option<String> {
    match chunk.first() {
        Some(TokenTree::Ident(ident)) => Some(ident.to_string()),
        _ => None,
    }
}

/// `key = value` of an own option: its name, its text (a string, or a name for `mode`),
/// and the value's span.
fn key_value(chunk: &[TokenTree], errors: &mut Errors) -> Option<(String, String, Span)> {
    let key = chunk_name(chunk)?;
    let example = match key.as_str() {
        "route" => "route = \"GET /hello\"",
        "mode" => "mode = \"snapshot\"",
        "timeout" => "timeout = \"100 ms\"",
        "memory" => "memory = \"64 MiB\"",
        _ => "max_request = \"1 MiB\"",
    };
    let expected = |span| {
        syn::Error::new(
            span,
            format!("`#[unikernel::function]` option `{key}` is written `{example}`"),
        )
    };
    match chunk {
        [_, TokenTree::Punct(eq), value] if eq.as_char() == '=' => {
            match syn::parse2::<syn::Lit>(value.clone().into()) {
                Ok(syn::Lit::Str(text)) => Some((key, text.value(), text.span())),
                _ => match value {
                    TokenTree::Ident(name) if key == "mode" => {
                        Some((key, name.to_string(), name.span()))
                    }
                    other => {
                        errors.push(expected(other.span()));
                        None
                    }
                },
            }
        }
        [name, ..] => {
            errors.push(expected(name.span()));
            None
        }
        [] => None,
    }
}

/// The function's own options, each checked; `None` when one is wrong (reported).
fn options(own: &[Vec<TokenTree>], errors: &mut Errors) -> Option<Options> {
    let mut seen: Vec<String> = Vec::new();
    let mut route = None;
    let mut mode = "snapshot";
    let mut timeout_ns = DEFAULT_TIMEOUT_NS;
    let mut max_request = DEFAULT_MAX_REQUEST;
    let mut memory = None;
    let mut ok = true;
    for chunk in own {
        let Some((key, text, span)) = key_value(chunk, errors) else {
            ok = false;
            continue;
        };
        if seen.contains(&key) {
            errors.push(syn::Error::new(
                chunk[0].span(),
                format!(
                    "`{key}` is given twice; give each option of `#[unikernel::function]` once"
                ),
            ));
            ok = false;
            continue;
        }
        seen.push(key.clone());
        let result = match key.as_str() {
            "route" => parse_route(&text).map(|parsed| route = Some(parsed)),
            "mode" => match MODES.iter().find(|known| **known == text) {
                Some(known) => {
                    mode = known;
                    Ok(())
                }
                None => Err(format!(
                    "unknown mode `{text}`{}",
                    crate::hint::suffix(&text, MODES)
                )),
            },
            "timeout" => parse_timeout(&text).map(|ns| timeout_ns = ns),
            "max_request" => size(&text, "max_request", 4 << 10).map(|bytes| max_request = bytes),
            _ => size(&text, "memory", 16 * MIB).map(|bytes| memory = Some(bytes)),
        };
        if let Err(message) = result {
            errors.push(syn::Error::new(span, message));
            ok = false;
        }
    }
    let Some((method, path)) = route else {
        if ok && !seen.iter().any(|key| key == "route") {
            errors.push(syn::Error::new(
                Span::call_site(),
                "`#[unikernel::function]` needs a route: `#[unikernel::function(route = \"GET /hello\")]`",
            ));
        }
        return None;
    };
    ok.then_some(Options {
        method,
        path,
        mode,
        timeout_ns,
        max_request,
        memory,
    })
}

/// `"POST /resize"` into its method and path.
pub fn parse_route(text: &str) -> Result<(String, String), String> {
    let expected = "a route is a method and a path: `\"GET /hello\"`";
    let mut parts = text.split(' ').filter(|part| !part.is_empty());
    let (Some(method), Some(path), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("`\"{text}\"` is not a route; {expected}"));
    };
    if !METHODS.contains(&method) {
        let upper = method.to_ascii_uppercase();
        let hint = if METHODS.contains(&upper.as_str()) {
            format!("; write `{upper}`")
        } else {
            format!("; expected one of: {}", crate::hint::list(METHODS))
        };
        return Err(format!("unknown method `{method}`{hint}"));
    }
    if !path.starts_with('/') {
        return Err(format!(
            "the path `{path}` does not start with `/`; {expected}"
        ));
    }
    if let Some(bad) = path
        .chars()
        .find(|c| !(c.is_ascii_graphic()) || matches!(c, '?' | '#'))
    {
        return Err(format!(
            "the path `{path}` holds `{}`: a route's path is plain ASCII, without a query or fragment",
            bad.escape_default()
        ));
    }
    Ok((method.to_owned(), path.to_owned()))
}

fn parse_timeout(text: &str) -> Result<u64, String> {
    let ns = duration::parse(text).map_err(|error| {
        duration::DURATION.message(error, text, "100 ms", || {
            "`timeout` is out of range; expected between 1 ms and 1 h".into()
        })
    })?;
    if !(1_000_000..=3_600_000_000_000).contains(&ns) {
        return Err(format!(
            "`timeout` of `{}` is out of range; expected between 1 ms and 1 h",
            text.trim()
        ));
    }
    Ok(ns)
}

fn size(text: &str, subject: &str, min: u64) -> Result<u64, String> {
    let kind = Kind::Size {
        min,
        max: 1 << 30,
        multiple_of: 1,
    };
    match check_text(text, &kind, subject, false)? {
        Value::Bytes(bytes) => Ok(bytes),
        _ => unreachable!("a size is bytes"),
    }
}

/// What a function's signature takes: the request, then optionally the state (`&State`),
/// then handles of its subsystems.
#[derive(Debug)]
struct Signature {
    /// The state's type, when the function takes one.
    state: Option<syn::Type>,
    /// The types of the handle parameters, in order.
    handles: Vec<syn::Type>,
}

fn signature(function: &syn::ItemFn, all_errors: &mut Errors) -> Option<Signature> {
    let sig = &function.sig;
    let mut errors = Errors::default();
    let errors = &mut errors;
    plain_function(sig, "`#[unikernel::function]`", errors);
    let mut inputs = sig.inputs.iter();
    let wrong = "`#[unikernel::function]` must have signature `fn(Request) -> Response`, or `fn(Request, &State) -> Response` with `#[unikernel::init] fn init() -> State`";
    match inputs.next() {
        Some(syn::FnArg::Typed(_)) => {}
        Some(syn::FnArg::Receiver(receiver)) => {
            errors.push(syn::Error::new(receiver.span(), wrong));
        }
        None => errors.push(syn::Error::new(sig.paren_token.span.join(), wrong)),
    }
    let mut state = None;
    let mut handles = Vec::new();
    for (index, input) in inputs.enumerate() {
        let syn::FnArg::Typed(typed) = input else {
            errors.push(syn::Error::new(input.span(), wrong));
            continue;
        };
        match &*typed.ty {
            syn::Type::Reference(reference) if index == 0 => {
                if reference.mutability.is_some() {
                    errors.push(syn::Error::new(
                        reference.span(),
                        "the state is shared by every request: take it as `&State`, not `&mut State`",
                    ));
                }
                state = Some((*reference.elem).clone());
            }
            syn::Type::Reference(reference) => errors.push(syn::Error::new(
                reference.span(),
                "the state comes right after the request: `fn(Request, &State, ..handles)`",
            )),
            ty => handles.push(ty.clone()),
        }
    }
    match &sig.output {
        syn::ReturnType::Default => errors.push(syn::Error::new(
            sig.paren_token.span.close(),
            "`#[unikernel::function]` returns its response: add `-> Response`",
        )),
        syn::ReturnType::Type(_, ty) if is_unit_or_never(ty) => {
            errors.push(syn::Error::new(ty.span(), wrong));
        }
        syn::ReturnType::Type(..) => {}
    }
    let ok = errors.is_empty();
    all_errors.append(std::mem::take(errors));
    ok.then_some(Signature { state, handles })
}

/// Not `async`, `const`, `unsafe`, `extern`, generic or variadic.
fn plain_function(sig: &syn::Signature, what: &str, errors: &mut Errors) {
    let qualifier = [
        sig.asyncness.map(|token| (token.span, "async")),
        sig.constness.map(|token| (token.span, "const")),
        sig.unsafety.map(|token| (token.span, "unsafe")),
        sig.abi
            .as_ref()
            .map(|abi| (abi.extern_token.span, "extern")),
    ];
    for (span, word) in qualifier.into_iter().flatten() {
        errors.push(syn::Error::new(
            span,
            format!("{what} goes on a plain `fn`, not an `{word} fn`"),
        ));
    }
    if let Some(param) = sig.generics.params.first() {
        errors.push(syn::Error::new(
            param.span(),
            format!("{what} cannot be generic: each function is one image"),
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new(
            variadic.span(),
            format!("{what} cannot be variadic"),
        ));
    }
}

fn is_unit_or_never(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Never(_))
        || matches!(ty, syn::Type::Tuple(tuple) if tuple.elems.is_empty())
}

/// The `main` the function's image runs: `#[unikernel]` resolves its handles and
/// generates its boot.
fn entry_main(function: &syn::ItemFn, signature: Option<&Signature>) -> syn::ItemFn {
    let name = &function.sig.ident;
    let handle_types = signature.map_or(&[][..], |signature| &signature.handles[..]);
    // At the types' spans, so that `#[unikernel]`'s errors about a handle point there.
    let handles: Vec<syn::Ident> = handle_types
        .iter()
        .enumerate()
        .map(|(index, ty)| format_ident!("__unikernel_handle_{}", index, span = ty.span()))
        .collect();
    let params = handles
        .iter()
        .zip(handle_types)
        .map(|(handle, ty)| quote!(#handle: #ty));
    let (state, state_arg) = match signature.and_then(|signature| signature.state.as_ref()) {
        Some(ty) => {
            let init =
                quote_spanned!(ty.span()=> <#ty as ::unikernel::__private::FunctionState>::init());
            (
                quote!(let __unikernel_state = #init;),
                quote!(&__unikernel_state,),
            )
        }
        None => (TokenStream::new(), TokenStream::new()),
    };
    let output_span = match &function.sig.output {
        syn::ReturnType::Type(_, ty) => ty.span(),
        syn::ReturnType::Default => name.span(),
    };
    let call = quote_spanned!(name.span()=> #name(__unikernel_request, #state_arg #(#handles),*));
    let respond = quote_spanned!(output_span=> ::unikernel::__private::respond(#call));
    syn::parse_quote! {
        fn main(__unikernel_function: ::unikernel::Function, #(#params),*) -> ! {
            #state
            __unikernel_function.serve(|__unikernel_request| #respond)
        }
    }
}

/// The items that make a second function of the same name, or a second function on the
/// same route, a compile error ("defined multiple times") at its name or its route.
fn uniqueness(name: &syn::Ident, options: &Options, own: &[Vec<TokenTree>]) -> TokenStream {
    let route_span = own
        .iter()
        .find(|chunk| chunk_name(chunk).as_deref() == Some("route"))
        .and_then(|chunk| chunk.get(2))
        .map_or_else(Span::call_site, TokenTree::span);
    let named = format_ident!(
        "__unikernel_function_named_{}",
        name.to_string().trim_start_matches("r#"),
        span = name.span()
    );
    let route = format_ident!(
        "__unikernel_route_declared_twice_{}",
        route_ident(&options.method, &options.path),
        span = route_span
    );
    let named = quote_spanned! {name.span()=>
        #[doc(hidden)]
        #[macro_export]
        macro_rules! #named {
            () => {};
        }
    };
    let route = quote_spanned! {route_span=>
        #[doc(hidden)]
        #[macro_export]
        macro_rules! #route {
            () => {};
        }
    };
    quote!(#named #route)
}

/// A route as the tail of an identifier: `POST /resize` -> `POST_s_resize`; every byte
/// that is not a letter or digit is `_s` (`/`) or `_xHH`, so that different routes never
/// meet.
pub fn route_ident(method: &str, path: &str) -> String {
    let mut ident = String::from(method);
    ident.push('_');
    for byte in path.bytes() {
        match byte {
            b'/' => ident.push_str("_s"),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => ident.push(byte as char),
            other => ident.push_str(&format!("_x{other:02x}")),
        }
    }
    ident
}

/// The handler's call and the state's type, checked in every build (the entry exists only
/// in the image's), at the user's spans.
fn check(function: &syn::ItemFn, signature: &Signature) -> TokenStream {
    let main = entry_main(function, Some(signature));
    let body = &main.block;
    let inputs = &main.sig.inputs;
    quote! {
        const _: () = {
            #[allow(dead_code, unreachable_code, unused_variables)]
            fn __unikernel_check(#inputs) {
                let _ = || #body;
            }
        };
    }
}

/// The function note: what the gateway needs to serve the image.
fn function_note(name: &str, options: &Options, memory_mib: u64, state: bool) -> TokenStream {
    let text = format!(
        "name={name}\nmethod={}\npath={}\nmode={}\ntimeout_ms={}\nmax_request={}\nmemory_mib={memory_mib}\nstate={}\n",
        options.method,
        options.path,
        options.mode,
        options.timeout_ns.div_ceil(1_000_000),
        options.max_request,
        u8::from(state),
    );
    let mut desc = text.into_bytes();
    desc.resize(desc.len().next_multiple_of(4), 0);
    let len = desc.len();
    let desc = syn::LitByteStr::new(&desc, Span::call_site());
    quote! {
        #[cfg_attr(target_os = "none", unsafe(link_section = ".note.unikernel"))]
        #[used]
        static __UNIKERNEL_FUNCTION: ::unikernel::__private::FunctionNote<#len> =
            ::unikernel::__private::FunctionNote::function(*#desc);
    }
}
