//! What `main`'s body shows: `Self` (so `main` sits in an `impl` or a trait, where the
//! attribute cannot see it directly), and `ExitCode::from(<literal>)` with a status the
//! system reserves.

use proc_macro2::Span;
use syn::visit::Visit;
use unikernel_abi::status;

use crate::errors::Errors;

/// Checks `main`'s signature and body for `Self` and for reserved exit statuses.
pub fn check(main: &syn::ItemFn, errors: &mut Errors) {
    let mut visitor = Body::default();
    visitor.visit_signature(&main.sig);
    visitor.visit_block(&main.block);
    if let Some(span) = visitor.self_type {
        errors.push(syn::Error::new(
            span,
            "`#[unikernel]` main cannot use `Self`: the app's entry is a free function, not an \
             associated one; move `main` out of the `impl` or trait",
        ));
    }
    for (status, span) in visitor.statuses {
        errors.push(syn::Error::new(span, reserved(status)));
    }
}

/// The message for `ExitCode::from(status)` with `status` above the app's range.
fn reserved(code: u8) -> String {
    let app = format!(
        "`main`'s statuses are 0 to {}, so that none is mistaken for the system's",
        status::APP_MAX
    );
    match status::meaning(code) {
        Some(meaning) => format!("exit status {code} is reserved (\"{meaning}\"); {app}"),
        None => format!(
            "exit status {code} is outside 0-{}: the VM would report it as status {}; {app}",
            status::APP_MAX,
            status::OUT_OF_RANGE
        ),
    }
}

#[derive(Default)]
struct Body {
    /// The first `Self`.
    self_type: Option<Span>,
    /// `ExitCode::from(<literal>)` above the app's range.
    statuses: Vec<(u8, Span)>,
}

impl<'ast> Visit<'ast> for Body {
    /// Items nested in `main` have a `Self` of their own, and are not `main`.
    fn visit_item(&mut self, _: &'ast syn::Item) {}

    /// `self` (whose type is `Self`) is reported as a receiver already.
    fn visit_receiver(&mut self, _: &'ast syn::Receiver) {}

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if let Some(first) = path.segments.first()
            && first.ident == "Self"
            && self.self_type.is_none()
        {
            self.self_type = Some(first.ident.span());
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
        if is_exit_code_from(&call.func)
            && let [argument] = call.args.iter().collect::<Vec<_>>()[..]
            && let Some(literal) = int_literal(argument)
            && let Ok(code) = literal.base10_parse::<u8>()
            && code > status::APP_MAX
        {
            self.statuses.push((code, literal.span()));
        }
        syn::visit::visit_expr_call(self, call);
    }
}

/// `ExitCode::from`, `unikernel::ExitCode::from`, ...
fn is_exit_code_from(func: &syn::Expr) -> bool {
    let syn::Expr::Path(path) = func else {
        return false;
    };
    let segments: Vec<_> = path.path.segments.iter().map(|s| &s.ident).collect();
    matches!(&segments[..], [.., ty, from] if *ty == "ExitCode" && *from == "from")
}

/// `200`, `200u8`, `(200)`, `200 as u8`.
fn int_literal(expr: &syn::Expr) -> Option<&syn::LitInt> {
    match expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(literal),
            ..
        }) => Some(literal),
        syn::Expr::Paren(inner) => int_literal(&inner.expr),
        syn::Expr::Group(inner) => int_literal(&inner.expr),
        syn::Expr::Cast(cast) => int_literal(&cast.expr),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn messages(main: proc_macro2::TokenStream) -> Vec<String> {
        let main: syn::ItemFn = syn::parse2(main).unwrap();
        let mut errors = Errors::default();
        check(&main, &mut errors);
        errors.messages()
    }

    #[test]
    fn reserved_statuses_in_main_are_errors() {
        let found = messages(quote!(
            fn main() -> ExitCode {
                if a {
                    return ExitCode::from(101);
                }
                if b {
                    return unikernel::ExitCode::from(124u8);
                }
                if c {
                    return ExitCode::from((200 as u8));
                }
                ExitCode::from(100)
            }
        ));
        assert_eq!(
            found,
            [
                "exit status 101 is reserved (\"it panicked\"); `main`'s statuses are 0 to 100, so that none is mistaken for the system's",
                "exit status 124 is reserved (\"the guest did not exit in time\"); `main`'s statuses are 0 to 100, so that none is mistaken for the system's",
                "exit status 200 is outside 0-100: the VM would report it as status 104; `main`'s statuses are 0 to 100, so that none is mistaken for the system's",
            ]
        );
    }

    #[test]
    fn every_status_above_100_is_an_error_and_none_below() {
        for code in 0..=255u8 {
            let literal = proc_macro2::Literal::u8_unsuffixed(code);
            let found = messages(quote!(
                fn main() -> ExitCode {
                    ExitCode::from(#literal)
                }
            ));
            assert_eq!(found.len(), usize::from(code > 100), "{code}: {found:?}");
        }
        // Computed statuses are checked at run time.
        assert!(
            messages(quote!(
                fn main() -> ExitCode {
                    ExitCode::from(code)
                }
            ))
            .is_empty()
        );
    }

    #[test]
    fn self_shows_main_is_in_an_impl() {
        let found = messages(quote!(
            fn main() -> ExitCode {
                Self::run()
            }
        ));
        assert_eq!(found.len(), 1);
        assert!(found[0].starts_with("`#[unikernel]` main cannot use `Self`"));
        let nested = messages(quote!(
            fn main() -> ExitCode {
                struct S;
                impl S {
                    fn new() -> Self {
                        S
                    }
                }
                ExitCode::SUCCESS
            }
        ));
        assert!(nested.is_empty(), "{nested:?}");
    }
}
