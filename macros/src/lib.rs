//! `#[unikernel(...)]`: the one place where an app says which subsystems it needs.
//!
//! ```ignore
//! #[unikernel(console, heap = "1 MiB", args)]
//! fn main(console: Console, args: Args) -> ExitCode { ... }
//! ```
//!
//! The attribute expands into the kernel's boot entry, which initialises the declared
//! subsystems (and those they need) in a fixed order, calls `main` with the handles it takes,
//! and exits the VM with the status `main` returns. The pipeline has one module per stage,
//! all on `proc_macro2` so that each is unit-tested on the host:
//!
//! - [`parse`]: the attribute's syntax (names, `= value`, `(options)`), with spans;
//! - [`resolve`]: meaning, against the table in [`registry`] (each entry with its own
//!   validator, such as `net`'s address rules): unknown and duplicate subsystems, values
//!   ([`value`]), options, dependencies, boot order, `main`'s signature, and the periodic
//!   tasks ([`tasks`]), whose schedulability [`analysis`] decides;
//! - [`generate`]: the expansion, the wiring diagram of the kernel: each init call takes
//!   the handles of the subsystems it needs, and every hook one subsystem hands another is
//!   a call of its own.
//!
//! `macros/README.md` says how to add a subsystem.
//!
//! Every error found is reported in the same build; the user's function is still emitted
//! next to them, so that the rest of the crate and the IDE keep working.

#![forbid(unsafe_code)]

use proc_macro2::TokenStream;

use errors::Errors;

mod analysis;
mod duration;
mod errors;
mod function;
mod generate;
mod hint;
mod parse;
mod quantity;
mod registry;
mod resolve;
mod size;
mod tasks;
mod value;

#[cfg(test)]
mod tests;

/// Declares a unikernel: the subsystems it boots, and its `main`.
///
/// Subsystems (in boot order): `console` (option `log = info`: one of `off`, `error`,
/// `warn`, `info`, `debug`, `trace`), `heap = "<size>"` (units `B`, `KiB`, `MiB`, `GiB`; from
/// 4 KiB to 64 GiB, a multiple of 4 KiB), `args` (needs `heap`), `irq`, `clock` (needs
/// `irq`, added for you), `sched = <policy>` (`coop`, the default, `fixed`, `edf` or `rm`;
/// option `on_miss = log | panic` for `edf` and `rm`; needs `clock`, added for you), `net`
/// (`net(ipv4 = "10.0.2.15/24", gateway = "10.0.2.2")` with the gateway optional, or
/// `net(dhcp)`; needs `heap`, which you declare, and `irq` and `clock`, added for you),
/// `fs`, `disk`, `function(max_request = "1 MiB")` (a function image's request channel;
/// `#[unikernel::function]` declares it).
///
/// `stack = "<size>"` (16 KiB to 1 GiB, whole pages) runs `main` on a stack of that size
/// instead of the boot entry's 256 KiB.
///
/// Real-time periodic tasks, under `sched = edf` or `sched = rm`, are declared as
/// `task(<fn>, period = "1 ms", wcet = "200 us", deadline = "800 us")` (`deadline` optional,
/// at most the period; durations in `ns`, `us`, `ms`, `s`), and the set is checked for
/// schedulability at compile time. `<fn>` is a `fn()` of `main`'s module, or a path to one
/// (`jobs::control`), run once per release.
///
/// `main` takes handles of declared subsystems (`Console`, `Args`, `Irq`, `Clock`, `Sched`,
/// `Net`, `Fs`, `Disk`, `Function`) and returns `()`, `ExitCode`, `Result<(), E>` or `!`. See the `unikernel` crate for the
/// full documentation.
#[proc_macro_attribute]
pub fn unikernel(
    attr: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    expand(attr.into(), item.into()).into()
}

/// Declares a serverless function: one image per function of the crate, which answers the
/// requests of its route.
///
/// ```ignore
/// #[unikernel::function(route = "POST /resize", heap = "8 MiB", timeout = "100 ms")]
/// fn resize(request: Request, model: &Model) -> Response { .. }
/// ```
///
/// Options: `route = "<METHOD> /<path>"` (required), `mode = fresh | snapshot | warm`
/// (default `snapshot`), `timeout = "<duration>"` (default 10 s), `max_request = "<size>"`
/// (the largest request and response, default 1 MiB), `memory = "<size>"` (the VM's, by
/// default the heap, the request buffer and 8 MiB), and the subsystems of
/// `#[unikernel(...)]` except `net` (`heap` defaults to 4 MiB). The function takes the
/// [`Request`], then optionally `&State` (made once by `#[unikernel::init]`), then handles
/// of its subsystems, and returns a `Response` (or a `String`, `&str`, or a `Result` of
/// those). `cargo uk functions build` builds its image.
#[proc_macro_attribute]
pub fn function(
    attr: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    let selected = std::env::var(function::SELECT_VARIABLE).ok();
    function::expand_function(attr.into(), item.into(), selected.as_deref()).into()
}

/// Makes the state the crate's functions take by reference, once per image, before the
/// first request (in `snapshot` mode, before the snapshot): `#[unikernel::init] fn init()
/// -> Model`. At most one per crate; the state is a type the crate defines.
#[proc_macro_attribute]
pub fn init(
    attr: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    function::expand_init(attr.into(), item.into()).into()
}

/// The whole pipeline, on `proc_macro2` tokens.
fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let attr = parse::attr(attr, &mut errors);
    let main = match parse::item(item.clone()) {
        Ok(syn::Item::Fn(main)) => main,
        Ok(other) => {
            errors.push(resolve::not_a_fn(&other));
            return generate::unchanged(item, errors.into_error().expect("just pushed"));
        }
        // Not an item: rustc expands attributes on expressions too (while refusing them),
        // where only one expression may come out.
        Err(_) => {
            let span = item
                .into_iter()
                .next()
                .map_or_else(proc_macro2::Span::call_site, |token| token.span());
            return syn::Error::new(
                span,
                "`#[unikernel]` goes on the app's `fn main`, not on an expression",
            )
            .to_compile_error();
        }
    };
    let plan = resolve::resolve(&attr, &main, registry::SUBSYSTEMS, &mut errors);
    match errors.into_error() {
        None => generate::entry(&plan, main),
        Some(errors) => generate::fallback(main, errors),
    }
}
