//! Stage 3, code generation: the boot entry, straight-line, in boot order.
//!
//! For `#[unikernel(console, heap = "1 MiB")] fn main() -> ExitCode` the expansion is (see
//! `tests/snapshots/` for complete ones):
//!
//! ```ignore
//! #[allow(dead_code)]
//! fn main() {
//!     #[doc(hidden)]
//!     #[macro_export]
//!     macro_rules! __unikernel_entry_point_is_defined_more_than_once { () => {}; }
//!
//!     #[allow(dead_code)]
//!     fn __unikernel_user_main() -> ExitCode { /* the user's body */ }
//!
//!     #[cfg_attr(target_os = "none", global_allocator)]
//!     static __UNIKERNEL_HEAP: ::unikernel::__private::Heap = ::unikernel::__private::Heap::new();
//!
//!     #[cfg_attr(target_os = "none", unsafe(no_mangle))]
//!     fn __unikernel_boot() -> ! {
//!         let __unikernel_console = ::unikernel::__private::init_console(::unikernel::__private::LevelFilter::Info);
//!         ::unikernel::__private::mark("console");
//!         ::unikernel::__private::init_heap(&__UNIKERNEL_HEAP, 1048576usize);
//!         ::unikernel::__private::mark("heap");
//!         ::unikernel::__private::mark("main");
//!         ::unikernel::__private::exit(::unikernel::__private::Termination::report(__unikernel_user_main()))
//!     }
//!
//!     ::unikernel::__private::host_main()
//! }
//! ```
//!
//! - Every generated item lives in the body of a `fn main` that replaces the user's: a
//!   function is legal wherever the attribute can be (a module, a block, an `impl`, a trait
//!   with a body), it adds no name to the app's module that the app did not write, and a
//!   second entry in the same module is one "defined multiple times", not one per item.
//!   The kernel reaches `__unikernel_boot` by its symbol only.
//! - On the host the app is an ordinary binary whose `main` explains that it runs in a VM.
//!   In a kernel build (`#![no_main]`) that `main` is dead code; without `#![no_main]`,
//!   rustc's own error for it ("using `fn main` requires the standard library") says to
//!   add `#![no_main]`, which is the fix.
//! - The boot function and the allocator static exist on every target, so that a host build
//!   (`cargo check`, trybuild, rust-analyzer) type-checks the init calls and `main`'s
//!   handles and return type exactly as the kernel build does; only `no_mangle` and
//!   `global_allocator` are limited to the kernel. Their names start with `_`, so the host
//!   build does not warn that they are unused.
//! - The `#[macro_export]` macro is defined once per crate: a second `#[unikernel]` entry in
//!   the same binary, in any module, is rustc's "the name
//!   `__unikernel_entry_point_is_defined_more_than_once` is defined multiple times" at the
//!   second attribute. (Proc-macro state would not do: rust-analyzer's long-lived server
//!   would remember entries that no longer exist.)
//! - On an error the expansion is the errors, the user's function and an allocator static
//!   ([`fallback`]): a kernel build then shows our errors and nothing else.
//! - With `stack = "<size>"`, `__unikernel_boot` only calls `run_main_on_stack(<bytes>,
//!   __unikernel_start)`, and `__unikernel_start` holds the init calls and `main`'s.
//! - When `main` returns `!`, it is called directly: `exit(report(main()))` would not
//!   compile under edition 2024's never-type fallback.
//! - With `sched`, the periodic tasks are a `static __UNIKERNEL_TASKS: [TaskSpec; N]` in the
//!   same block (task functions are items of `main`'s module, which the block sees, or
//!   paths), passed to `init_sched` in a `SchedConfig`. Each `job: || run_task(<fn>)`
//!   carries the span of the function's name in the attribute, so that rustc's "cannot
//!   find value", or `run_task`'s message for an `async` function, points there.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::registry::{Declared, InitArg};
use crate::resolve::{self, Plan, Resolved};
use crate::tasks::Tasks;
use crate::value::Value;

/// The name `main` gets in the expansion.
const USER_MAIN: &str = "__unikernel_user_main";

/// The expansion of a valid app.
pub fn entry(plan: &Plan, mut main: syn::ItemFn) -> TokenStream {
    main.sig.ident = syn::Ident::new(USER_MAIN, main.sig.ident.span());
    let user_main = &main.sig.ident;

    let allocator = if plan.boot.iter().any(|r| r.spec.global_allocator) {
        quote!(::unikernel::__private::Heap = ::unikernel::__private::Heap::new())
    } else {
        quote!(::unikernel::__private::NoHeap = ::unikernel::__private::NoHeap)
    };

    let booted: Vec<&str> = plan.boot.iter().map(|r| r.spec.name).collect();
    let inits = plan.boot.iter().map(|resolved| init(resolved, &booted));
    let manifest = manifest(plan);
    let tasks = plan
        .boot
        .iter()
        .any(|r| r.spec.init_args.iter().any(uses_tasks))
        .then(|| tasks(&plan.tasks));

    let args = plan.args.iter().map(|&(name, span)| {
        let handle = format_ident!("__unikernel_{}", name, span = span);
        quote!(#handle)
    });
    let tail = if plan.never {
        quote!(#user_main(#(#args),*))
    } else {
        // The call is spanned at the return type, so that rustc's complaint about a type
        // that is not `Termination` points there.
        let span = match &main.sig.output {
            syn::ReturnType::Type(_, ty) => ty.span(),
            syn::ReturnType::Default => Span::call_site(),
        };
        let user_main = syn::Ident::new(USER_MAIN, span);
        let call = quote_spanned!(span=> #user_main(#(#args),*));
        quote! {
            ::unikernel::__private::exit(::unikernel::__private::Termination::report(#call))
        }
    };

    let start = quote! {
        #(#inits)*
        ::unikernel::__private::mark("main");
        #tail
    };
    // With `stack = ".."`, the boot continues on a stack of that size.
    let boot = match plan.stack {
        None => quote! {
            #[cfg_attr(target_os = "none", unsafe(no_mangle))]
            fn __unikernel_boot() -> ! {
                #start
            }
        },
        Some(bytes) => {
            let bytes = Value::Bytes(bytes);
            quote! {
                #[cfg_attr(target_os = "none", unsafe(no_mangle))]
                fn __unikernel_boot() -> ! {
                    ::unikernel::__private::run_main_on_stack(#bytes, __unikernel_start)
                }

                fn __unikernel_start() -> ! {
                    #start
                }
            }
        }
    };
    let allocator_static = allocator_static(allocator);
    quote! {
        #[allow(dead_code)]
        fn main() {
            // Exported at the crate root whatever the nesting: the check is crate-wide.
            #[doc(hidden)]
            #[macro_export]
            #[allow(non_local_definitions)]
            macro_rules! __unikernel_entry_point_is_defined_more_than_once {
                () => {};
            }

            #[allow(dead_code)]
            #main

            #allocator_static

            #tasks

            #manifest

            #boot

            ::unikernel::__private::host_main()
        }
    }
}

/// `static __UNIKERNEL_HEAP`, the kernel's global allocator: `Heap` or `NoHeap`.
fn allocator_static(ty_and_value: TokenStream) -> TokenStream {
    quote! {
        #[cfg_attr(target_os = "none", global_allocator)]
        static __UNIKERNEL_HEAP: #ty_and_value;
    }
}

/// `NoHeap`, which fails every allocation; on error paths it stands in for whatever the
/// app would have had, so that rustc does not add "no global memory allocator found".
fn no_heap() -> TokenStream {
    allocator_static(quote!(
        ::unikernel::__private::NoHeap = ::unikernel::__private::NoHeap
    ))
}

/// The image's manifest: the subsystems it starts, in boot order, as an ELF note the VMM
/// reads to provide only what the image needs (an interrupt controller, a network device).
fn manifest(plan: &Plan) -> TokenStream {
    let mut names: Vec<String> = plan.boot.iter().map(|r| r.spec.name.to_owned()).collect();
    // `cpus=N` tells the VMM how many vCPUs to give (one when absent).
    if let Some(cpus) = cpus(plan).filter(|&cpus| cpus > 1) {
        names.push(format!("cpus={cpus}"));
    }
    let mut desc = names.join(" ").into_bytes();
    desc.resize(desc.len().next_multiple_of(4).max(4), 0);
    let len = desc.len();
    let desc = syn::LitByteStr::new(&desc, Span::call_site());
    quote! {
        #[cfg_attr(target_os = "none", unsafe(link_section = ".note.unikernel"))]
        #[used]
        static __UNIKERNEL_MANIFEST: ::unikernel::__private::Manifest<#len> =
            ::unikernel::__private::Manifest::new(*#desc);
    }
}

/// The CPU count `sched(cpus = N)` declares, when the app has `sched`.
fn cpus(plan: &Plan) -> Option<u16> {
    let sched = plan.boot.iter().find(|r| r.spec.name == "sched")?;
    let index = sched.spec.options.iter().position(|o| o.key == "cpus")?;
    match sched.options[index] {
        Value::Count(cpus) => Some(cpus),
        _ => None,
    }
}

fn uses_tasks(arg: &InitArg) -> bool {
    match arg {
        InitArg::Tasks => true,
        InitArg::Config { fields, .. } => fields.iter().any(|(_, arg)| uses_tasks(arg)),
        _ => false,
    }
}

/// `static __UNIKERNEL_TASKS: [TaskSpec; N] = [TaskSpec { .. }, ..];`, documented with the
/// analysis' verdict (per CPU when there are several), and `const TASK_PLACEMENT: &str`,
/// which tasks run on which CPU, for `main` to print.
fn tasks(tasks: &Tasks) -> TokenStream {
    let Tasks {
        tasks,
        summary,
        placement,
    } = tasks;
    let count = syn::LitInt::new(&tasks.len().to_string(), Span::call_site());
    let specs = tasks.iter().map(|task| {
        let name = task.name();
        // A non-capturing closure is a `fn()`; `run_task` says in its own words why a
        // function that is `async` or returns a value is not a task's.
        let path = &task.job;
        let job = quote_spanned!(path.span()=> || ::unikernel::__private::run_task(#path));
        let ns = |ns: u64| nanoseconds(ns);
        let (period, deadline, wcet) = (ns(task.period), ns(task.deadline), ns(task.wcet));
        let priority = syn::LitInt::new(&task.priority.to_string(), Span::call_site());
        let cpu = syn::LitInt::new(&task.cpu.to_string(), Span::call_site());
        quote! {
            ::unikernel::__private::TaskSpec {
                name: #name,
                job: #job,
                period_ns: #period,
                deadline_ns: #deadline,
                wcet_ns: #wcet,
                priority: #priority,
                cpu: #cpu,
            }
        }
    });
    // The verdict as a sentence; with several CPUs, a list of them follows, one each.
    let doc = summary.iter().flatten().enumerate().map(|(i, line)| {
        let line = if i == 0 {
            let mut chars = line.chars();
            let first = chars.next().map(|c| c.to_uppercase().collect::<String>());
            format!(" {}{}.", first.unwrap_or_default(), chars.as_str())
        } else {
            format!(" - {line}.")
        };
        quote!(#[doc = #line])
    });
    // Written in the block that also holds `main`, which sees it by its plain name.
    let placement = placement.as_deref().map(|placement| {
        quote! {
            /// Which periodic tasks run on which CPU, as the attribute placed them.
            #[allow(dead_code)]
            const TASK_PLACEMENT: &str = #placement;
        }
    });
    // On the host nothing calls the boot function, so nothing would use the static and the
    // task functions would be reported as never used; rustc counts what an item with
    // `allow(dead_code)` refers to as used.
    quote! {
        #(#doc)*
        #[allow(dead_code)]
        static __UNIKERNEL_TASKS: [::unikernel::__private::TaskSpec; #count] = [#(#specs),*];
        #placement
    }
}

/// `1_000_000`: nanoseconds, digits grouped for the reader of the expansion.
fn nanoseconds(ns: u64) -> syn::LitInt {
    let digits = ns.to_string();
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push('_');
        }
        grouped.push(digit);
    }
    syn::LitInt::new(&grouped, Span::call_site())
}

/// `let __unikernel_<name> = init_<name>(args..);`, the calls that follow it (hooks handed
/// over, a start; those `only_with` subsystems of which one is not in `booted` left out),
/// and `mark("<name>");`.
fn init(resolved: &Resolved, booted: &[&str]) -> TokenStream {
    let spec = resolved.spec;
    let init = call(resolved, spec.init, spec.init_args);
    let name = spec.name;
    let statement = match spec.handle {
        Some(_) => {
            let handle = format_ident!("__unikernel_{}", name);
            quote!(let #handle = #init;)
        }
        None => quote!(#init;),
    };
    let then = spec
        .then
        .iter()
        .filter(|then| then.only_with.iter().all(|other| booted.contains(other)))
        .map(|then| call(resolved, then.function, then.args));
    quote! {
        #statement
        #(#then;)*
        ::unikernel::__private::mark(#name);
    }
}

/// `::unikernel::__private::<function>(<args>)`
fn call(resolved: &Resolved, function: &str, args: &[InitArg]) -> TokenStream {
    let function = format_ident!("{}", function);
    let args = args.iter().map(|arg| init_arg(resolved, arg));
    quote!(::unikernel::__private::#function(#(#args),*))
}

fn init_arg(resolved: &Resolved, arg: &InitArg) -> TokenStream {
    let spec = resolved.spec;
    match arg {
        InitArg::Value => {
            let value = resolved
                .value
                .as_ref()
                .expect("resolve fills in every value");
            quote!(#value)
        }
        InitArg::Option(key) => {
            let index = spec
                .options
                .iter()
                .position(|option| option.key == *key)
                .expect("the registry's init arguments name its options");
            let value = &resolved.options[index];
            quote!(#value)
        }
        InitArg::Handle(name) => {
            let handle = format_ident!("__unikernel_{}", name);
            quote!(&#handle)
        }
        InitArg::GlobalAllocator => quote!(&__UNIKERNEL_HEAP),
        InitArg::Tasks => quote!(&__UNIKERNEL_TASKS),
        InitArg::Config { ty, fields } => {
            let ty = format_ident!("{}", ty);
            let fields = fields.iter().map(|(field, arg)| {
                let field = format_ident!("{}", field);
                let arg = init_arg(resolved, arg);
                quote!(#field: #arg)
            });
            quote!(::unikernel::__private::#ty { #(#fields),* })
        }
        InitArg::Build(build) => build(&Declared {
            name: Span::call_site(),
            spec,
            values: &resolved.options,
            spans: Vec::new(),
        }),
    }
}

/// The expansion when there are errors: the errors, next to the user's function (renamed as
/// usual, so that the rest of the crate and the IDE keep working), and a `main` holding an
/// allocator, so that rustc adds nothing to our errors: no "`main` function not found" on
/// the host, no "no global memory allocator found" in a kernel build.
pub fn fallback(mut main: syn::ItemFn, errors: syn::Error) -> TokenStream {
    if main.sig.ident == "main" {
        main.sig.ident = syn::Ident::new(USER_MAIN, main.sig.ident.span());
    }
    // A second `#[unikernel]` (reported) would expand again; a `self` parameter would add
    // rustc's own error to ours.
    main.attrs.retain(|attr| !resolve::is_unikernel_attr(attr));
    main.sig.inputs = std::mem::take(&mut main.sig.inputs)
        .into_iter()
        .filter(|input| matches!(input, syn::FnArg::Typed(_)))
        .collect();
    let errors = errors.to_compile_error();
    let allocator = no_heap();
    quote! {
        #errors

        #[allow(dead_code, unused_variables)]
        #main

        #[allow(dead_code)]
        fn main() {
            #allocator
        }
    }
}

/// The expansion for an item that is not a function: the item, untouched, the errors, and
/// an allocator (in a function, which is legal wherever the item was).
pub fn unchanged(item: TokenStream, errors: syn::Error) -> TokenStream {
    let errors = errors.to_compile_error();
    let allocator = no_heap();
    quote! {
        #errors
        #item

        #[allow(dead_code)]
        fn __unikernel_fallback() {
            #allocator
        }
    }
}
