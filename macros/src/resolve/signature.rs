//! `main`'s signature: a plain `fn main` whose parameters are handles of declared
//! subsystems, each taken once.

use proc_macro2::Span;
use syn::spanned::Spanned;

use super::subsystems::Chosen;
use crate::errors::Errors;
use crate::hint;
use crate::registry::Subsystem;

/// Checks `main`'s signature and matches its parameters to subsystems.
pub fn check<'t>(
    main: &syn::ItemFn,
    table: &'t [Subsystem],
    chosen: &[Option<Chosen<'t>>],
    errors: &mut Errors,
) -> Vec<(&'t str, Span)> {
    let sig = &main.sig;
    let plain = "`#[unikernel]` main must be a plain `fn main(..)`";
    for attr in &main.attrs {
        if is_unikernel_attr(attr) {
            errors.push(syn::Error::new_spanned(
                attr,
                "`#[unikernel]` is applied twice; declare every subsystem in one `#[unikernel(...)]`",
            ));
        }
    }
    if sig.ident != "main" {
        errors.push(syn::Error::new(
            sig.ident.span(),
            format!(
                "`#[unikernel]` goes on the app's `fn main`, not on `fn {}`; rename it to `main`",
                sig.ident
            ),
        ));
    }
    let mut not = |span: Span, what: &str| {
        errors.push(syn::Error::new(span, format!("{plain}, not `{what}`")));
    };
    if let Some(token) = &sig.constness {
        not(token.span, "const");
    }
    if let Some(token) = &sig.asyncness {
        not(token.span, "async");
    }
    if let Some(token) = &sig.unsafety {
        not(token.span, "unsafe");
    }
    if let Some(abi) = &sig.abi {
        let text = match &abi.name {
            Some(name) => format!("extern {}", quote::quote!(#name)),
            None => "extern".to_owned(),
        };
        not(abi.extern_token.span, &text);
    }
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.generics,
            format!("{plain}, without generic parameters"),
        ));
    }
    if let Some(where_clause) = &sig.generics.where_clause {
        errors.push(syn::Error::new(
            where_clause.where_token.span,
            format!("{plain}, without a `where` clause"),
        ));
    }
    if let Some(variadic) = &sig.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            format!("{plain}, without `...`"),
        ));
    }

    let handles: Vec<&str> = table.iter().filter_map(|s| s.handle).collect();
    let mut args: Vec<(&'t str, Span)> = Vec::new();
    let mut takers: Vec<String> = Vec::new();
    for input in &sig.inputs {
        let typed = match input {
            syn::FnArg::Receiver(receiver) => {
                errors.push(syn::Error::new(
                    receiver.self_token.span,
                    format!(
                        "{plain}, without `self`: the app's entry is a free function, not a \
                         method; move it out of the `impl` or trait"
                    ),
                ));
                continue;
            }
            syn::FnArg::Typed(typed) => typed,
        };
        let ty = &*typed.ty;
        let Some(handle) = handle_name(ty) else {
            let message = match ty {
                syn::Type::Reference(reference) => match handle_name(&reference.elem) {
                    Some(name) if handles.contains(&name.to_string().as_str()) => {
                        format!("handles are taken by value: write `{name}`, not a reference")
                    }
                    _ => "this type is not a subsystem handle".to_owned(),
                },
                _ => "this type is not a subsystem handle".to_owned(),
            };
            errors.push(syn::Error::new_spanned(
                ty,
                format!(
                    "{message}; `#[unikernel]` main takes handles of declared subsystems: {}",
                    hint::list(&handles)
                ),
            ));
            continue;
        };
        let handle_text = handle.to_string();
        let Some(rank) = table
            .iter()
            .position(|s| s.handle == Some(handle_text.as_str()))
        else {
            let more = match hint::closest(&handle_text, handles.iter().copied()) {
                Some(near) => format!("; did you mean `{near}`?"),
                None => format!(
                    "; `#[unikernel]` main takes handles of declared subsystems: {}",
                    hint::list(&handles)
                ),
            };
            errors.push(syn::Error::new(
                handle.span(),
                format!("`{handle_text}` is not a subsystem handle{more}"),
            ));
            continue;
        };
        let spec = &table[rank];
        if chosen[rank].is_none() {
            errors.push(syn::Error::new_spanned(
                typed,
                format!(
                    "`{handle_text}` is the handle of `{}`, which is not declared; add `{}` to `#[unikernel(...)]`",
                    spec.name,
                    spec.declaration()
                ),
            ));
            continue;
        }
        let pattern = &typed.pat;
        let pattern = quote::quote!(#pattern).to_string();
        if let Some(first) = args.iter().position(|(name, _)| *name == spec.name) {
            errors.push(syn::Error::new_spanned(
                typed,
                format!(
                    "`{handle_text}` is already taken by parameter `{}`; `main` can take each handle once",
                    takers[first]
                ),
            ));
            continue;
        }
        takers.push(pattern);
        args.push((spec.name, ty.span()));
    }
    args
}

/// Whether `attr` is (another) `#[unikernel]`, by the last segment of its path.
pub fn is_unikernel_attr(attr: &syn::Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|segment| segment.ident == "unikernel")
}

/// The last segment of a plain type path: `Console` in `unikernel::Console`.
fn handle_name(ty: &syn::Type) -> Option<&syn::Ident> {
    match ty {
        syn::Type::Path(path) if path.qself.is_none() => {
            path.path.segments.last().map(|segment| &segment.ident)
        }
        syn::Type::Paren(paren) => handle_name(&paren.elem),
        syn::Type::Group(group) => handle_name(&group.elem),
        _ => None,
    }
}

/// The error for an item that is not a function, at its keyword.
pub fn not_a_fn(item: &syn::Item) -> syn::Error {
    let (span, what): (Span, &str) = match item {
        syn::Item::Struct(item) => (item.struct_token.span, "a struct"),
        syn::Item::Enum(item) => (item.enum_token.span, "an enum"),
        syn::Item::Union(item) => (item.union_token.span, "a union"),
        syn::Item::Mod(item) => (item.mod_token.span, "a module"),
        syn::Item::Impl(item) => (item.impl_token.span, "an impl block"),
        syn::Item::Trait(item) => (item.trait_token.span, "a trait"),
        syn::Item::Static(item) => (item.static_token.span, "a static"),
        syn::Item::Const(item) => (item.const_token.span, "a const"),
        syn::Item::Type(item) => (item.type_token.span, "a type alias"),
        syn::Item::Use(item) => (item.use_token.span, "a `use`"),
        syn::Item::ForeignMod(item) => (item.abi.extern_token.span, "an extern block"),
        syn::Item::Verbatim(tokens) => match syn::parse2::<syn::TraitItemFn>(tokens.clone()) {
            // `fn main();`: a trait's method or an extern block's function.
            Ok(declaration) if declaration.default.is_none() => {
                return syn::Error::new(
                    declaration.sig.fn_token.span,
                    "`#[unikernel]` goes on the app's `fn main` with a body, at module level, \
                     not on a declaration without one",
                );
            }
            _ => (tokens.span(), "this item"),
        },
        other => (other.span(), "this item"),
    };
    syn::Error::new(
        span,
        format!("`#[unikernel]` goes on the app's `fn main`, not on {what}"),
    )
}
