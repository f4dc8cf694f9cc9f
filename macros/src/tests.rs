//! Host tests of resolution (against the real table and a test-only one) and snapshots of
//! whole expansions. Parsing, sizes, hints and the table have their own tests next to them.
//!
//! The expansion snapshots (insta) live in `macros/tests/snapshots/`; after a change, review
//! them with `cargo insta review` (or regenerate with `INSTA_UPDATE=always cargo test -p
//! unikernel-macros`) and read every diff before committing.

use proc_macro2::TokenStream;
use quote::quote;

use crate::errors::Errors;
use crate::registry::{InitArg, Kind, SUBSYSTEMS, Subsystem, ValueSpec};
use crate::resolve::Plan;
use crate::value::Value;
use crate::{parse, resolve};

fn resolve_with(
    table: &'static [Subsystem],
    attr: TokenStream,
    item: TokenStream,
) -> Result<Plan<'static>, Vec<String>> {
    let mut errors = Errors::default();
    let attr = parse::attr(attr, &mut errors);
    let main: syn::ItemFn = syn::parse2(item).expect("test items are functions");
    let plan = resolve::resolve(&attr, &main, table, &mut errors);
    match errors.messages() {
        messages if messages.is_empty() => Ok(plan),
        messages => Err(messages),
    }
}

fn ok(attr: TokenStream, item: TokenStream) -> Plan<'static> {
    resolve_with(SUBSYSTEMS, attr, item).unwrap_or_else(|errors| panic!("{errors:#?}"))
}

fn errors(attr: TokenStream, item: TokenStream) -> Vec<String> {
    match resolve_with(SUBSYSTEMS, attr, item) {
        Ok(plan) => panic!("expected errors, got {plan:#?}"),
        Err(errors) => errors,
    }
}

fn boot_order(plan: &Plan) -> Vec<&'static str> {
    plan.boot.iter().map(|r| r.spec.name).collect()
}

fn main_fn() -> TokenStream {
    quote!(
        fn main() {}
    )
}

#[test]
fn boot_order_is_the_registry_order() {
    let plan = ok(quote!(args, heap = "1 MiB", console), main_fn());
    assert_eq!(boot_order(&plan), ["console", "heap", "args"]);
    assert_eq!(plan.boot[1].value, Some(Value::Bytes(1 << 20)));
    assert!(plan.boot.iter().all(|r| r.added_for.is_none()));
    assert!(!plan.never);
}

#[test]
fn nothing_declared_is_fine() {
    let plan = ok(quote!(), main_fn());
    assert!(plan.boot.is_empty());
}

#[test]
fn console_log_level() {
    let plan = ok(quote!(console), main_fn());
    let info = Value::Variant {
        ty: "LevelFilter",
        variant: "Info",
    };
    assert_eq!(plan.boot[0].options, [info]);
    let plan = ok(quote!(console(log = "trace",)), main_fn());
    let trace = Value::Variant {
        ty: "LevelFilter",
        variant: "Trace",
    };
    assert_eq!(plan.boot[0].options, [trace]);
}

/// "expected one of: " and every name the attribute takes, in table order (so that a new
/// subsystem changes no test here).
fn every_name() -> String {
    let names: Vec<String> = SUBSYSTEMS
        .iter()
        .map(|s| s.name)
        .chain([crate::tasks::KEYWORD, "stack"])
        .map(|name| format!("`{name}`"))
        .collect();
    format!("expected one of: {}", names.join(", "))
}

#[test]
fn every_name_lists_the_table() {
    assert!(every_name().starts_with("expected one of: `console`, `heap`, "));
    assert!(every_name().ends_with(", `task`, `stack`"));
}

#[test]
fn unknown_subsystems() {
    assert_eq!(
        errors(quote!(consle, gpu), main_fn()),
        [
            "unknown subsystem `consle`; did you mean `console`?",
            format!("unknown subsystem `gpu`; {}", every_name()).as_str(),
        ]
    );
}

#[test]
fn a_renamed_subsystem_names_its_new_name() {
    assert_eq!(
        errors(quote!(console, timer), main_fn()),
        ["`timer` is now `clock`; write `clock`"]
    );
    // Read as `clock` after the error: `main` may take its handle, nothing else is reported.
    assert_eq!(
        errors(
            quote!(timer),
            quote!(
                fn main(clock: Clock) {}
            )
        ),
        ["`timer` is now `clock`; write `clock`"]
    );
}

#[test]
fn duplicates() {
    assert_eq!(
        errors(
            quote!(console, heap = "1 MiB", console(log = "off")),
            main_fn()
        ),
        [
            "`console` is declared twice (first as entry 1 of `#[unikernel(...)]`); declare each subsystem once"
        ]
    );
}

#[test]
fn values() {
    assert_eq!(
        errors(
            quote!(console = "serial", heap, args = 1),
            quote!(
                fn main() {}
            )
        ),
        [
            "`console` takes no value; its options go in parentheses: `console(log = info)`",
            "`heap` needs a size: write `heap = \"1 MiB\"`",
            "`args` takes no value; write `args`",
        ]
    );
    assert_eq!(
        errors(quote!(heap = 4), main_fn()),
        ["`heap` takes a size string, such as `heap = \"1 MiB\"`"]
    );
    assert_eq!(
        errors(quote!(heap(1 MiB)), main_fn()),
        ["`heap` takes a value, not options: write `heap = \"1 MiB\"`"]
    );
}

#[test]
fn sizes() {
    let heap = |size: &str| {
        let size = syn::LitStr::new(size, proc_macro2::Span::call_site());
        resolve_with(SUBSYSTEMS, quote!(heap = #size), main_fn())
            .map(|plan| plan.boot[0].value.clone().unwrap())
    };
    assert_eq!(heap("4 KiB"), Ok(Value::Bytes(4096)));
    assert_eq!(heap("64GiB"), Ok(Value::Bytes(64 << 30)));
    let error = |size: &str| heap(size).unwrap_err().join("\n");
    assert_eq!(
        error("0 MiB"),
        "`heap` size is zero; expected between 4 KiB and 64 GiB, or remove `heap` to run without it"
    );
    assert_eq!(
        error("1 TiB"),
        "`heap` size `1 TiB` is out of range; expected between 4 KiB and 64 GiB"
    );
    assert_eq!(
        error("512 B"),
        "`heap` size `512 B` is out of range; expected between 4 KiB and 64 GiB"
    );
    assert_eq!(
        error("99999999999999999999999 GiB"),
        "`heap` size is out of range; expected between 4 KiB and 64 GiB"
    );
    assert_eq!(
        error("6 KiB"),
        "`heap` size `6 KiB` is not a multiple of 4 KiB; use `\"8 KiB\"`"
    );
    assert_eq!(error("1 MB"), "unknown size unit `MB`; did you mean `MiB`?");
    assert_eq!(
        error("1 parsec"),
        "unknown size unit `parsec`; expected one of: `B`, `KiB`, `MiB`, `GiB`"
    );
    assert_eq!(
        error("lots"),
        "`\"lots\"` is not a size; write a whole number and a unit, such as `\"1 MiB\"`"
    );
    assert_eq!(
        error("4096"),
        "size `\"4096\"` has no unit; expected one of: `B`, `KiB`, `MiB`, `GiB`"
    );
    assert_eq!(
        error("1.5 MiB"),
        "sizes are whole numbers; write `\"1536 KiB\"`"
    );
}

#[test]
fn options() {
    assert_eq!(
        errors(
            quote!(
                console(baud = 9600, log, lgo = "x", log = "verbose", log = "warn"),
                args(x)
            ),
            quote!(
                fn main() {}
            )
        ),
        [
            "unknown option `baud` for `console`; expected one of: `log`",
            "option `log` needs a value, such as `log = info`",
            "unknown option `lgo` for `console`; did you mean `log`?",
            "option `log` of `console` is given twice",
            "option `log` of `console` is given twice",
            "unknown option `x` for `args`; it takes none",
            "`args` needs `heap`: add `heap = \"1 MiB\"` (or the size you need) to `#[unikernel(...)]`",
        ]
    );
    assert_eq!(
        errors(
            quote!(console(log = "inf"), heap = "1 MiB", args()),
            main_fn()
        ),
        [
            "unknown value `inf` for `log`; did you mean `info`?",
            "`args` takes no options; write `args`",
        ]
    );
    assert_eq!(
        errors(quote!(console(log = 3)), main_fn()),
        ["`log` takes one of: `off`, `error`, `warn`, `info`, `debug`, `trace`"]
    );
    // Syntax errors inside the parentheses are reported where options exist...
    assert_eq!(
        errors(quote!(console(log = )), main_fn()),
        ["expected a value after `=`"]
    );
    // ... and replaced by one clearer error where they do not.
    assert_eq!(
        errors(quote!(heap = "1 MiB", args(1, 2)), main_fn()),
        ["`args` takes no options; write `args`"]
    );
    // An unknown subsystem's options are not looked at.
    assert_eq!(
        errors(quote!(gpu(1)), main_fn()),
        [format!("unknown subsystem `gpu`; {}", every_name()).as_str()]
    );
}

#[test]
fn a_dependency_that_needs_a_choice_is_an_error() {
    assert_eq!(
        errors(quote!(console, args), main_fn()),
        [
            "`args` needs `heap`: add `heap = \"1 MiB\"` (or the size you need) to `#[unikernel(...)]`"
        ]
    );
}

/// A table in which `timer` needs `irq` (no choice: added) and `net` needs `timer` (added,
/// and with it `irq`) and `heap` (a choice: an error).
static TEST_TABLE: &[Subsystem] = &[
    Subsystem {
        name: "heap",
        handle: None,
        value: Some(ValueSpec {
            what: "a size",
            example: "1 MiB",
            default: None,
            kind: Kind::Size {
                min: 4096,
                max: 1 << 30,
                multiple_of: 4096,
            },
        }),
        options: &[],
        declare_as: None,
        validate: |_| Vec::new(),
        needs: &[],
        init: "init_heap",
        init_args: &[InitArg::GlobalAllocator, InitArg::Value],
        then: &[],
        global_allocator: true,
        realtime: &[],
    },
    Subsystem {
        name: "irq",
        handle: None,
        value: None,
        options: &[],
        declare_as: None,
        validate: |_| Vec::new(),
        needs: &[],
        init: "init_irq",
        init_args: &[],
        then: &[],
        global_allocator: false,
        realtime: &[],
    },
    Subsystem {
        name: "timer",
        handle: Some("Clock"),
        value: Some(ValueSpec {
            what: "a tick",
            example: "1 ms",
            default: Some("4 KiB"),
            kind: Kind::Size {
                min: 4096,
                max: 1 << 20,
                multiple_of: 4096,
            },
        }),
        options: &[],
        declare_as: None,
        validate: |_| Vec::new(),
        needs: &["irq"],
        init: "init_timer",
        init_args: &[InitArg::Value],
        then: &[],
        global_allocator: false,
        realtime: &[],
    },
    Subsystem {
        name: "net",
        handle: Some("Net"),
        value: None,
        options: &[],
        declare_as: None,
        validate: |_| Vec::new(),
        needs: &["timer", "heap"],
        init: "init_net",
        init_args: &[],
        then: &[],
        global_allocator: false,
        realtime: &[],
    },
];

#[test]
fn a_dependency_without_a_choice_is_added() {
    let plan = resolve_with(TEST_TABLE, quote!(timer), main_fn()).unwrap();
    assert_eq!(boot_order(&plan), ["irq", "timer"]);
    assert_eq!(plan.boot[0].added_for, Some("timer"));
    assert_eq!(plan.boot[1].added_for, None);
    // Transitively, in boot order, with defaults; the handle of an added one can be taken.
    let plan = resolve_with(
        TEST_TABLE,
        quote!(net, heap = "8 KiB"),
        quote!(
            fn main(clock: Clock, net: Net) {}
        ),
    )
    .unwrap();
    assert_eq!(boot_order(&plan), ["heap", "irq", "timer", "net"]);
    assert_eq!(plan.boot[1].added_for, Some("net"));
    assert_eq!(plan.boot[2].added_for, Some("net"));
    assert_eq!(plan.boot[2].value, Some(Value::Bytes(4096)));
    let args: Vec<_> = plan.args.iter().map(|(name, _)| *name).collect();
    assert_eq!(args, ["timer", "net"]);
}

#[test]
fn added_dependencies_still_need_their_choices() {
    assert_eq!(
        resolve_with(TEST_TABLE, quote!(net), main_fn()).unwrap_err(),
        [
            "`net` needs `heap`: add `heap = \"1 MiB\"` (or the size you need) to `#[unikernel(...)]`"
        ]
    );
}

#[test]
fn handles() {
    let plan = ok(
        quote!(console, heap = "1 MiB", args),
        quote!(
            fn main(_: unikernel::Args, mut c: ::unikernel::Console) -> ExitCode {}
        ),
    );
    let args: Vec<_> = plan.args.iter().map(|(name, _)| *name).collect();
    assert_eq!(args, ["args", "console"]);

    assert_eq!(
        errors(
            quote!(console),
            quote!(
                fn main(
                    c: Console,
                    d: Console,
                    args: Args,
                    foo: Foo,
                    consol: Consol,
                    r: &Console,
                    t: (Console,),
                ) {
                }
            )
        ),
        [
            "`Console` is already taken by parameter `c`; `main` can take each handle once",
            "`Args` is the handle of `args`, which is not declared; add `args` to `#[unikernel(...)]`",
            "`Foo` is not a subsystem handle; `#[unikernel]` main takes handles of declared subsystems: `Console`, `Args`, `Irq`, `Clock`, `Sched`, `Rand`, `Net`, `Fs`, `Disk`, `Function`",
            "`Consol` is not a subsystem handle; did you mean `Console`?",
            "handles are taken by value: write `Console`, not a reference; `#[unikernel]` main takes handles of declared subsystems: `Console`, `Args`, `Irq`, `Clock`, `Sched`, `Rand`, `Net`, `Fs`, `Disk`, `Function`",
            "this type is not a subsystem handle; `#[unikernel]` main takes handles of declared subsystems: `Console`, `Args`, `Irq`, `Clock`, `Sched`, `Rand`, `Net`, `Fs`, `Disk`, `Function`",
        ]
    );
}

#[test]
fn signature() {
    assert_eq!(
        errors(
            quote!(),
            quote!(
                #[unikernel::unikernel(console)]
                const async unsafe extern "C" fn start<T>(self)
                where
                    T: Copy,
                {
                }
            )
        ),
        [
            "`#[unikernel]` is applied twice; declare every subsystem in one `#[unikernel(...)]`",
            "`#[unikernel]` goes on the app's `fn main`, not on `fn start`; rename it to `main`",
            "`#[unikernel]` main must be a plain `fn main(..)`, not `const`",
            "`#[unikernel]` main must be a plain `fn main(..)`, not `async`",
            "`#[unikernel]` main must be a plain `fn main(..)`, not `unsafe`",
            "`#[unikernel]` main must be a plain `fn main(..)`, not `extern \"C\"`",
            "`#[unikernel]` main must be a plain `fn main(..)`, without generic parameters",
            "`#[unikernel]` main must be a plain `fn main(..)`, without a `where` clause",
            "`#[unikernel]` main must be a plain `fn main(..)`, without `self`: the app's entry is a free function, not a method; move it out of the `impl` or trait",
        ]
    );
}

#[test]
fn never_returning_main() {
    let plan = ok(
        quote!(),
        quote!(
            fn main() -> ! {
                loop {}
            }
        ),
    );
    assert!(plan.never);
}

#[test]
fn all_errors_are_reported_together() {
    let errors = errors(
        quote!(consle, heap = "0 B", heap = "1 MiB", args(x), bogus =),
        quote!(
            async fn main(net: Net) {}
        ),
    );
    assert_eq!(
        errors,
        [
            "expected a value after `=`",
            "unknown subsystem `consle`; did you mean `console`?",
            "`heap` size is zero; expected between 4 KiB and 64 GiB, or remove `heap` to run without it",
            "`heap` is declared twice (first as entry 2 of `#[unikernel(...)]`); declare each subsystem once",
            "unknown option `x` for `args`; it takes none",
            format!("unknown subsystem `bogus`; {}", every_name()).as_str(),
            "`#[unikernel]` main must be a plain `fn main(..)`, not `async`",
            "`Net` is the handle of `net`, which is not declared; add `net(dhcp)` to `#[unikernel(...)]`",
        ]
    );
}

#[test]
fn an_expression_gets_one_error_and_nothing_else() {
    let out = crate::expand(quote!(console), quote!(|| {})).to_string();
    assert_eq!(
        out,
        ":: core :: compile_error ! { \"`#[unikernel]` goes on the app's `fn main`, not on an expression\" }"
    );
}

#[test]
fn items_that_are_not_functions() {
    let item: syn::Item = syn::parse2(quote!(
        struct Main;
    ))
    .unwrap();
    assert_eq!(
        resolve::not_a_fn(&item).to_string(),
        "`#[unikernel]` goes on the app's `fn main`, not on a struct"
    );
    // A trait's method (or an extern block's function) without a body.
    let item: syn::Item = syn::parse2(quote!(
        fn main() -> ExitCode;
    ))
    .unwrap();
    assert_eq!(
        resolve::not_a_fn(&item).to_string(),
        "`#[unikernel]` goes on the app's `fn main` with a body, at module level, not on a declaration without one"
    );
}

// Scheduling and real-time tasks.

fn variant(ty: &'static str, variant: &'static str) -> Value {
    Value::Variant { ty, variant }
}

#[test]
fn sched_adds_clock_and_irq() {
    let plan = ok(
        quote!(console, sched),
        quote!(
            fn main(clock: Clock, sched: Sched, irq: Irq) {}
        ),
    );
    assert_eq!(boot_order(&plan), ["console", "irq", "clock", "sched"]);
    assert_eq!(plan.boot[1].added_for, Some("sched"));
    assert_eq!(plan.boot[2].added_for, Some("sched"));
    assert_eq!(plan.boot[3].value, Some(variant("Policy", "Coop")));
    assert_eq!(
        plan.boot[3].options,
        [variant("OnMiss", "Log"), Value::Count(1)]
    );
    assert!(plan.tasks.tasks.is_empty());
    let plan = ok(quote!(clock), main_fn());
    assert_eq!(boot_order(&plan), ["irq", "clock"]);
}

#[test]
fn sched_policies() {
    let policy = |attr: TokenStream| ok(attr, main_fn()).boot[2].value.clone().unwrap();
    assert_eq!(policy(quote!(sched = coop)), variant("Policy", "Coop"));
    assert_eq!(policy(quote!(sched = fixed)), variant("Policy", "Fixed"));
    assert_eq!(policy(quote!(sched = edf)), variant("Policy", "Edf"));
    assert_eq!(policy(quote!(sched = "rm")), variant("Policy", "Rm"));
    let plan = ok(quote!(sched = rm(on_miss = panic), clock, irq), main_fn());
    assert_eq!(
        plan.boot[2].options,
        [variant("OnMiss", "Panic"), Value::Count(1)]
    );
    let smp = ok(quote!(sched(cpus = 2)), main_fn());
    assert_eq!(
        smp.boot[2].options,
        [variant("OnMiss", "Log"), Value::Count(2)]
    );
    assert_eq!(
        errors(quote!(sched(cpus = 0)), main_fn()),
        ["`cpus` is a whole number from 1 to 64, not `0`"]
    );
    assert_eq!(
        errors(quote!(sched(cpus = "two")), main_fn()),
        ["`cpus` is a whole number from 1 to 64, not `two`"]
    );
    assert!(plan.boot.iter().all(|r| r.added_for.is_none()));
    assert_eq!(
        errors(quote!(sched = edff, console(log = loud)), main_fn()),
        [
            "unknown value `edff` for `sched`; did you mean `edf`?",
            "unknown value `loud` for `log`; expected one of: `off`, `error`, `warn`, `info`, `debug`, `trace`",
        ]
    );
    assert_eq!(
        errors(quote!(sched = 1), main_fn()),
        ["`sched` takes one of: `coop`, `fixed`, `edf`, `rm`"]
    );
    assert_eq!(
        errors(quote!(sched(on_miss = panic)), main_fn()),
        [
            "option `on_miss` of `sched` only applies to `sched = edf` or `sched = rm`, not to `sched` (which means `sched = coop`)"
        ]
    );
    assert_eq!(
        errors(
            quote!(sched = fixed(on_miss = log, on_miss = panic)),
            main_fn()
        ),
        [
            "option `on_miss` of `sched` is given twice",
            "option `on_miss` of `sched` only applies to `sched = edf` or `sched = rm`, not to `sched = fixed`",
        ]
    );
    assert_eq!(
        errors(quote!(sched = edf(on_miss = retry)), main_fn()),
        ["unknown value `retry` for `on_miss`; expected one of: `log`, `panic`"]
    );
}

#[test]
fn tasks_get_checked_durations_and_priorities() {
    let plan = ok(
        quote!(
            console,
            sched = rm,
            task(report, period = "100 ms", wcet = "5 ms"),
            task(
                control,
                period = "1 ms",
                wcet = "200 µs",
                deadline = "800 us"
            ),
        ),
        main_fn(),
    );
    assert_eq!(boot_order(&plan), ["console", "irq", "clock", "sched"]);
    let tasks: Vec<_> = plan
        .tasks
        .tasks
        .iter()
        .map(|t| (t.name(), t.period, t.deadline, t.wcet, t.priority))
        .collect();
    assert_eq!(
        tasks,
        [
            ("report".to_owned(), 100_000_000, 100_000_000, 5_000_000, 1),
            ("control".to_owned(), 1_000_000, 800_000, 200_000, 0),
        ]
    );
}

#[test]
fn a_tasks_function_may_be_a_path() {
    let plan = ok(
        quote!(
            sched = edf,
            task(jobs::control, period = "1 ms", wcet = "200 us"),
            task(generic::<u32>, period = "2 ms", wcet = "200 us")
        ),
        main_fn(),
    );
    let names: Vec<_> = plan.tasks.tasks.iter().map(|t| t.name()).collect();
    assert_eq!(names, ["control", "generic"]);
    let job = &plan.tasks.tasks[0].job;
    assert_eq!(quote!(#job).to_string(), "jobs :: control");
    // One error each, in its own words.
    assert_eq!(
        errors(
            quote!(
                sched = edf,
                task(control, period = "1 ms", wcet = "1 us", jobs::other)
            ),
            main_fn()
        ),
        [
            "a path goes first in `task`, as its function: `task(control, period = \"1 ms\", wcet = \"200 us\")`"
        ]
    );
    assert_eq!(
        errors(quote!(console(a::b)), main_fn()),
        ["expected an option of `console`, found a path"]
    );
}

#[test]
fn task_entry_errors() {
    assert_eq!(
        errors(
            quote!(
                sched = edf,
                task,
                task = "x",
                task(period = "1 ms", wcet = "1 us"),
                task(a, period = "1 ms"),
                task(b, period = 1, wcet = fast, deadline),
                task(c, period = "1.5 ms", wcet = "2 sec", dedline = "1 ms"),
                task(d, period = "0 ms", wcet = "5", period = "2 ms"),
                task(e, period = "1 ms", wcet = "2 ms", deadline = "3 ms"),
                task(f, period = "1 ms", wcet = "300 us", deadline = "250 us"),
                task(g, period = "99999999999 s", wcet = "0.0000001 ns"),
                task(main, period = "1 ms", wcet = "1 us"),
            ),
            main_fn()
        ),
        [
            "`task` needs its function and timing: write `task(control, period = \"1 ms\", wcet = \"200 us\")`",
            "`task` takes no value; write `task(control, period = \"1 ms\", wcet = \"200 us\")`",
            "`task` needs the name of its function first: `task(control, period = \"1 ms\", wcet = \"200 us\")`",
            "task `a` needs `wcet`: write `task(a, period = \"1 ms\", wcet = \"200 us\")`",
            "`period` takes a duration string with a unit, such as `period = \"1 ms\"`",
            "`wcet` takes a duration string, such as `wcet = \"200 us\"`",
            "option `deadline` of `task` needs a duration, such as `deadline = \"800 us\"`",
            "durations are whole numbers; write `\"1500 us\"`",
            "unknown duration unit `sec`; did you mean `s`?",
            "unknown option `dedline` for `task`; did you mean `deadline`?",
            "`period` of task `d` is zero; a duration must be more than 0",
            "duration `\"5\"` has no unit; expected one of: `ns`, `us`, `ms`, `s`",
            "option `period` of `task` is given twice",
            "`deadline` of task `e` (3 ms) is longer than its `period` (1 ms); `#[unikernel]` supports constrained deadlines only: `deadline` <= `period`",
            "`wcet` of task `e` (2 ms) is longer than its `period` (1 ms): a job could not finish before the next one is released",
            "`wcet` of task `f` (300 us) is longer than its `deadline` (250 us): no job could meet its deadline",
            "duration `\"99999999999 s\"` is too long; the longest is 18446744073 s",
            "durations are whole numbers of nanoseconds",
            "`main` is the app's entry, not a task; give the task a function of its own",
        ]
    );
}

#[test]
fn task_sets_are_checked_as_a_whole() {
    assert_eq!(
        errors(
            quote!(
                task(a, period = "1 ms", wcet = "1 us"),
                task(b, period = "1 ms", wcet = "1 us"),
                task(a, period = "2 ms", wcet = "1 us"),
            ),
            main_fn()
        ),
        [
            "task `a` is declared twice; declare each task once",
            "`task` needs a real-time scheduler: add `sched = edf` or `sched = rm` to `#[unikernel(...)]`",
        ]
    );
    assert_eq!(
        errors(
            quote!(sched, task(a, period = "1 ms", wcet = "1 us")),
            main_fn()
        ),
        [
            "`task` needs a real-time scheduler: write `sched = edf` or `sched = rm` instead of `sched` (which means `sched = coop`), which runs no periodic tasks"
        ]
    );
    assert_eq!(
        errors(
            quote!(sched = fixed, task(a, period = "1 ms", wcet = "1 us")),
            main_fn()
        ),
        [
            "`task` needs a real-time scheduler: write `sched = edf` or `sched = rm` instead of `sched = fixed`, which runs no periodic tasks"
        ]
    );
    // A scheduler with an unknown value: its own error only, no second guess about tasks.
    assert_eq!(
        errors(
            quote!(sched = edg, task(a, period = "1 ms", wcet = "1 us")),
            main_fn()
        ),
        ["unknown value `edg` for `sched`; did you mean `edf`?"]
    );
}

#[test]
fn unschedulable_sets_are_errors() {
    // Buttazzo 2005, Fig. 1 (see analysis/tests.rs): U = 97.1%, fine for EDF, not for RM.
    let set = quote!(
        task(t1, period = "5 ms", wcet = "2 ms"),
        task(t2, period = "7 ms", wcet = "4 ms")
    );
    ok(quote!(sched = edf, #set), main_fn());
    let rm = errors(quote!(sched = rm, #set), main_fn());
    assert_eq!(rm.len(), 1);
    assert!(
        rm[0].starts_with("task set is not schedulable under RM: `t2` can take 8 ms to respond, after its deadline of 7 ms\n"),
        "{}",
        rm[0]
    );
    assert!(rm[0].ends_with("EDF would schedule this task set: write `sched = edf`"));
    let overloaded = quote!(
        task(a, period = "4 ms", wcet = "2 ms"),
        task(b, period = "5 ms", wcet = "3 ms")
    );
    assert_eq!(
        errors(quote!(sched = edf, #overloaded), main_fn()),
        [
            "task set is not schedulable under EDF: total utilisation 110.0% > 100%\n  a: 2 ms / 4 ms = 50.0%\n  b: 3 ms / 5 ms = 60.0%"
        ]
    );
}

#[test]
fn tasks_are_pinned_or_placed_on_cpus() {
    // Pinned where written, the rest placed by first-fit decreasing utilisation.
    let plan = ok(
        quote!(
            sched = edf(cpus = 2),
            task(a, period = "10 ms", wcet = "6 ms"),
            task(b, period = "10 ms", wcet = "6 ms", cpu = 0),
            task(c, period = "10 ms", wcet = "1 ms"),
        ),
        main_fn(),
    );
    let cpus: Vec<(String, u16)> = plan.tasks.tasks.iter().map(|t| (t.name(), t.cpu)).collect();
    assert_eq!(
        cpus,
        [
            ("a".to_owned(), 1),
            ("b".to_owned(), 0),
            ("c".to_owned(), 0)
        ]
    );
    assert_eq!(
        plan.tasks.placement.as_deref(),
        Some("cpu 0: b, c; cpu 1: a")
    );
    // With one CPU, `cpu = 0` is the only CPU there is.
    let one = ok(
        quote!(sched = rm, task(a, period = "1 ms", wcet = "1 us", cpu = 0)),
        main_fn(),
    );
    assert_eq!(one.tasks.tasks[0].cpu, 0);
    assert_eq!(
        errors(
            quote!(
                sched = rm,
                task(a, period = "1 ms", wcet = "1 us", cpu = 1),
                task(b, period = "1 ms", wcet = "1 us", cpu = "0"),
                task(c, period = "1 ms", wcet = "1 us", cpu),
                task(d, period = "1 ms", wcet = "1 us", cpu = 0, cpu = 0),
                task(e, period = "1 ms", wcet = "1 us", cpu = -1),
            ),
            main_fn()
        ),
        [
            "`cpu` takes the number of a CPU, such as `cpu = 1` (0 is the boot CPU)",
            "`cpu` takes the number of a CPU, such as `cpu = 1` (0 is the boot CPU)",
            "option `cpu` of `task` is given twice",
            // The attribute's parser sees no value it knows after `=`.
            "expected a value after `=`, such as `\"1 MiB\"` or `edf`, found `-`",
        ]
    );
    assert_eq!(
        errors(
            quote!(sched = rm, task(a, period = "1 ms", wcet = "1 us", cpu = 1)),
            main_fn()
        ),
        [
            "task `a` is pinned to cpu 1, but the app has 1 CPU, cpu 0 (`cpus` of `sched` is 1 unless written); to run it there, declare `sched = rm(cpus = 2)`"
        ]
    );
    assert_eq!(
        errors(
            quote!(
                sched = edf(cpus = 4),
                task(a, period = "1 ms", wcet = "1 us", cpu = 4),
                task(b, period = "1 ms", wcet = "1 us", cpu = 64),
            ),
            main_fn()
        ),
        [
            "task `a` is pinned to cpu 4, but the app has 4 CPUs, cpu 0 to cpu 3; to run it there, declare `sched = edf(cpus = 5)`",
            "task `b` is pinned to cpu 64, but the app has 4 CPUs, cpu 0 to cpu 3; an app has at most 64 CPUs",
        ]
    );
}

#[test]
fn unpartitionable_sets_are_errors() {
    let sixty = quote!(
        task(a, period = "10 ms", wcet = "6 ms"),
        task(b, period = "10 ms", wcet = "6 ms"),
        task(c, period = "10 ms", wcet = "6 ms"),
    );
    let error = errors(quote!(sched = rm(cpus = 2), #sixty), main_fn());
    assert_eq!(error.len(), 1);
    assert!(
        error[0].starts_with(
            "task set cannot be partitioned onto 2 CPUs under RM: `c` (60.0%) fits on no CPU\n"
        ),
        "{}",
        error[0]
    );
    ok(quote!(sched = rm(cpus = 3), #sixty), main_fn());
}

// Expansion snapshots.

/// Expands `attr` on `item` and renders the result, input included, for a reviewer.
fn render(attr: &str, item: &str) -> String {
    let tokens = |text: &str| text.parse::<TokenStream>().expect("valid tokens");
    let expansion = crate::expand(tokens(attr), tokens(item));
    let file: syn::File = syn::parse2(expansion).expect("the expansion is valid Rust");
    let input: String = format!("#[unikernel({attr})]\n{}", item.trim())
        .lines()
        .map(|line| format!("// {line}\n"))
        .collect();
    format!(
        "// The expansion of:\n//\n{input}\n{}",
        prettyplease::unparse(&file)
    )
}

fn check_snapshot(name: &str, actual: &str) {
    insta::with_settings!({
        snapshot_path => "../tests/snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, actual);
    });
}

/// Addresses that cannot be a host's, across prefixes: the network and broadcast
/// addresses (none on a `/31`, RFC 3021), a gateway that is the app itself, a `/32`.
#[test]
fn net_addresses_that_cannot_work() {
    let net = |ipv4: &str, gateway: Option<&str>| {
        let attr = match gateway {
            Some(gateway) => quote!(heap = "1 MiB", net(ipv4 = #ipv4, gateway = #gateway)),
            None => quote!(heap = "1 MiB", net(ipv4 = #ipv4)),
        };
        match resolve_with(SUBSYSTEMS, attr, main_fn()) {
            Ok(_) => Vec::new(),
            Err(errors) => errors,
        }
    };
    // Accepted: ordinary hosts, and both ends of a point-to-point /31.
    for (ipv4, gateway) in [
        ("10.0.2.15/24", Some("10.0.2.2")),
        ("10.0.2.1/24", Some("10.0.2.254")),
        ("172.16.0.1/12", Some("172.31.255.254")),
        ("10.0.0.0/31", Some("10.0.0.1")),
        ("10.0.0.1/31", Some("10.0.0.0")),
        ("192.168.1.1/30", Some("192.168.1.2")),
        ("10.0.2.15/24", None),
    ] {
        assert_eq!(
            net(ipv4, gateway),
            Vec::<String>::new(),
            "{ipv4} via {gateway:?}"
        );
    }
    assert_eq!(
        net("10.0.2.0/24", Some("10.0.2.2")),
        [
            "`ipv4` of `net`: 10.0.2.0 is the network address of 10.0.2.0/24, not a host's; the hosts are 10.0.2.1 to 10.0.2.254"
        ]
    );
    assert_eq!(
        net("10.0.2.255/24", None),
        [
            "`ipv4` of `net`: 10.0.2.255 is the broadcast address of 10.0.2.0/24, not a host's; the hosts are 10.0.2.1 to 10.0.2.254"
        ]
    );
    assert_eq!(
        net("10.0.2.15/24", Some("10.0.2.255")),
        [
            "`gateway` of `net`: 10.0.2.255 is the broadcast address of 10.0.2.0/24, not a host's; the hosts are 10.0.2.1 to 10.0.2.254"
        ]
    );
    assert_eq!(
        net("10.0.2.15/24", Some("10.0.2.0")),
        [
            "`gateway` of `net`: 10.0.2.0 is the network address of 10.0.2.0/24, not a host's; the hosts are 10.0.2.1 to 10.0.2.254"
        ]
    );
    assert_eq!(
        net("172.16.0.0/12", None),
        [
            "`ipv4` of `net`: 172.16.0.0 is the network address of 172.16.0.0/12, not a host's; the hosts are 172.16.0.1 to 172.31.255.254"
        ]
    );
    assert_eq!(net("192.168.1.3/30", None).len(), 1);
    // Addresses that are no host's on any network.
    assert_eq!(
        net("127.0.0.1/8", None),
        [
            "`ipv4` of `net`: 127.0.0.1 is a loopback address (127.0.0.0/8), which never leaves a host, not a host's address on a network"
        ]
    );
    for (ipv4, what) in [
        ("224.0.0.5/24", "a multicast address"),
        ("0.1.2.3/8", "in 0.0.0.0/8"),
        ("250.0.0.1/8", "in 240.0.0.0/4"),
        ("255.255.255.255/24", "the limited broadcast address"),
    ] {
        let found = net(ipv4, None);
        assert!(
            found.len() == 1 && found[0].contains(what),
            "{ipv4}: {found:?}"
        );
    }
    assert_eq!(net("10.0.0.1/8", Some("10.127.0.1")), Vec::<String>::new());
    assert_eq!(
        net("10.0.0.1/31", Some("10.0.0.1")),
        [
            "`gateway` of `net` is the app's own address (`ipv4`); the gateway is another host on 10.0.0.0/31, such as `\"10.0.0.0\"`"
        ]
    );
    assert_eq!(
        net("10.0.2.15/32", None),
        [
            "`ipv4` of `net` is a `/32`, a network of one address: no other host, not even a gateway, is reachable; write the network's prefix, such as `\"10.0.2.15/24\"` (a point-to-point link is a `/31`)"
        ]
    );
}

#[test]
fn the_main_stack_size() {
    assert_eq!(ok(quote!(console), main_fn()).stack, None);
    assert_eq!(
        ok(quote!(console, stack = "1 MiB"), main_fn()).stack,
        Some(1 << 20)
    );
    assert_eq!(
        ok(quote!(stack = "16 KiB"), main_fn()).stack,
        Some(16 << 10)
    );
    assert_eq!(
        errors(
            quote!(stack = "8 KiB", stack = "1 MiB", stack, stack(x)),
            main_fn()
        ),
        [
            "`stack` is declared twice; declare it once",
            "`stack` is declared twice; declare it once",
            "`stack` is declared twice; declare it once",
            "`stack` size `8 KiB` is out of range; expected between 16 KiB and 1 GiB",
        ]
    );
    assert_eq!(
        errors(quote!(stack), main_fn()),
        [
            "`stack` needs a size: `stack = \"1 MiB\"` (without it, `main` runs on the boot entry's 256 KiB)"
        ]
    );
    assert_eq!(
        errors(quote!(stack = "1000 B"), main_fn()),
        ["`stack` size `1000 B` is out of range; expected between 16 KiB and 1 GiB"]
    );
    assert_eq!(
        errors(quote!(stack = "18 KiB"), main_fn()),
        ["`stack` size `18 KiB` is not a multiple of 4 KiB; use `\"20 KiB\"`"]
    );
    assert_eq!(
        errors(quote!(stak = "1 MiB"), main_fn()),
        ["unknown subsystem `stak`; did you mean `stack`?"]
    );
}

#[test]
fn snapshot_stack() {
    let actual = render(
        r#"console, stack = "1 MiB""#,
        r#"
fn main() -> ExitCode {
    ExitCode::SUCCESS
}
"#,
    );
    check_snapshot("stack", &actual);
}

#[test]
fn snapshot_hello() {
    let actual = render(
        r#"console, heap = "1 MiB""#,
        r#"
fn main() -> ExitCode {
    println!("hello from a unikernel");
    ExitCode::SUCCESS
}"#,
    );
    check_snapshot("hello", &actual);
}

/// Every subsystem of the registry, each with options, and a task: the whole wiring.
#[test]
fn snapshot_all_subsystems() {
    let actual = render(
        r#"console(log = "debug"), heap = "16 MiB", args, irq, clock, sched = edf(on_miss = panic), task(control, period = "1 ms", wcet = "200 us"), rand, net(ipv4 = "10.0.2.15/24", gateway = "10.0.2.2"), fs, disk, function(max_request = "64 KiB")"#,
        r#"
/// The app.
#[inline(never)]
fn main(console: Console, args: unikernel::Args, irq: Irq, clock: Clock, sched: Sched, rand: Rand, net: Net, fs: Fs, disk: Disk, function: Function) -> Result<(), Error> {
    for arg in args.iter() {
        println!("{arg}");
    }
    Ok(())
}"#,
    );
    let declared: Vec<&str> = SUBSYSTEMS.iter().map(|s| s.name).collect();
    for name in declared {
        assert!(
            actual.contains(&format!("mark(\"{name}\")")),
            "the all_subsystems snapshot leaves out `{name}`"
        );
    }
    check_snapshot("all_subsystems", &actual);
}

#[test]
fn snapshot_args() {
    let actual = render(
        r#"args, console(log = "debug"), heap = "4MiB""#,
        r#"
fn main(console: Console, args: unikernel::Args) -> Result<(), Error> {
    Ok(())
}"#,
    );
    check_snapshot("args", &actual);
}

#[test]
fn snapshot_never_returning_without_heap() {
    let actual = render(
        "console",
        r#"
fn main() -> ! {
    loop {}
}"#,
    );
    check_snapshot("never_without_heap", &actual);
}

#[test]
fn snapshot_errors() {
    let actual = render(
        r#"consle, heap = "1 MB""#,
        r#"
fn main(console: Console) -> ExitCode {
    ExitCode::SUCCESS
}"#,
    );
    check_snapshot("errors", &actual);
}

#[test]
fn snapshot_realtime() {
    let actual = render(
        r#"console, sched = edf(on_miss = panic), task(control, period = "1 ms", wcet = "200 us"), task(report, period = "100 ms", wcet = "5 ms", deadline = "50 ms"), task(log_stats, period = "20 ms", wcet = "1500 us")"#,
        r#"
fn main(clock: Clock, sched: Sched) -> ExitCode {
    sched.run_for(Duration::from_secs(2));
    println!("{:?}", sched.stats());
    ExitCode::SUCCESS
}"#,
    );
    check_snapshot("realtime", &actual);
}

#[test]
fn snapshot_realtime_on_two_cpus() {
    let actual = render(
        r#"console, sched = rm(cpus = 2), task(control, period = "1 ms", wcet = "600 us"), task(filter, period = "2 ms", wcet = "1 ms"), task(report, period = "100 ms", wcet = "5 ms", cpu = 1)"#,
        r#"
fn main(sched: Sched) -> ExitCode {
    println!("tasks: {TASK_PLACEMENT}");
    sched.run_for(Duration::from_secs(2));
    ExitCode::SUCCESS
}"#,
    );
    check_snapshot("realtime_on_two_cpus", &actual);
}

#[test]
fn snapshot_sched_adds_clock_and_irq() {
    let actual = render(
        "console, sched",
        r#"
fn main(sched: Sched) {
    sched.spawn(|| println!("hello from a thread"));
}"#,
    );
    check_snapshot("sched_adds_clock_and_irq", &actual);
}

#[test]
fn net_static_address_or_dhcp() {
    let plan = ok(
        quote!(
            heap = "4 MiB",
            net(ipv4 = "10.0.2.15/24", gateway = "10.0.2.2")
        ),
        quote!(
            fn main(net: Net) {}
        ),
    );
    assert_eq!(boot_order(&plan), ["heap", "irq", "clock", "rand", "net"]);
    assert_eq!(
        plan.boot[3].added_for,
        Some("net"),
        "added: no choice to make"
    );
    let net = plan.boot.last().unwrap();
    assert_eq!(
        net.options,
        [
            Value::Ipv4Cidr {
                octets: [10, 0, 2, 15],
                prefix: 24
            },
            Value::Ipv4Address([10, 0, 2, 2]),
            Value::Bool(false),
        ]
    );
    let plan = ok(quote!(heap = "4 MiB", net(dhcp)), main_fn());
    let net = plan.boot.last().unwrap();
    assert_eq!(
        net.options,
        [Value::Absent, Value::Absent, Value::Bool(true)]
    );
    // A gateway is optional: the interface then reaches its own network only.
    ok(
        quote!(heap = "4 MiB", net(ipv4 = "192.168.7.2/24")),
        main_fn(),
    );
}

#[test]
fn net_misuse() {
    assert_eq!(
        errors(quote!(net(dhcp)), main_fn()),
        [
            "`net` needs `heap`: add `heap = \"1 MiB\"` (or the size you need) to `#[unikernel(...)]`"
        ]
    );
    assert_eq!(
        errors(quote!(heap = "1 MiB", net), main_fn()),
        ["`net` needs `ipv4` or `dhcp`: write `net(ipv4 = \"10.0.2.15/24\")` or `net(dhcp)`"]
    );
    assert_eq!(
        errors(
            quote!(heap = "1 MiB", net(dhcp, ipv4 = "10.0.2.15/24")),
            main_fn()
        ),
        ["`net` takes `ipv4` or `dhcp`, not both; remove one"]
    );
    assert_eq!(
        errors(
            quote!(heap = "1 MiB", net(ipv4 = "10.0.2.300/24")),
            main_fn()
        ),
        [
            "`\"10.0.2.300\"` is not an IPv4 address; write four numbers from 0 to 255, such as `\"10.0.2.15\"`"
        ]
    );
    assert_eq!(
        errors(quote!(heap = "1 MiB", net(ipv4 = "10.0.2.15")), main_fn()),
        ["`ipv4` needs the prefix length after the address: `\"10.0.2.15/24\"`"]
    );
    assert_eq!(
        errors(
            quote!(heap = "1 MiB", net(ipv4 = "10.0.2.15/33")),
            main_fn()
        ),
        ["prefix length `/33` of `ipv4` is out of range; expected 1 to 32"]
    );
    assert_eq!(
        errors(
            quote!(
                heap = "1 MiB",
                net(ipv4 = "10.0.2.15/24", gateway = "10.0.3.1")
            ),
            main_fn()
        ),
        ["`gateway` of `net` is not on the network of `ipv4` (10.0.2.15/24)"]
    );
    assert_eq!(
        errors(
            quote!(
                heap = "1 MiB",
                net(ipv4 = "10.0.2.15/24", gateway = "10.0.2.15")
            ),
            main_fn()
        ),
        [
            "`gateway` of `net` is the app's own address (`ipv4`); the gateway is another host on 10.0.2.0/24, such as `\"10.0.2.1\"`"
        ]
    );
    assert_eq!(
        errors(
            quote!(heap = "1 MiB", net(dhcp, gateway = "10.0.2.2")),
            main_fn()
        ),
        ["`net` takes `gateway` or `dhcp`, not both; remove one"]
    );
    assert_eq!(
        errors(quote!(heap = "1 MiB", net(dhcp = true)), main_fn()),
        ["`dhcp` takes no value; write it alone to turn it on"]
    );
    assert_eq!(
        errors(quote!(heap = "1 MiB", net(ipv4 = 10)), main_fn()),
        ["`ipv4` takes an address in a string, such as `ipv4 = \"10.0.2.15/24\"`"]
    );
    assert_eq!(
        errors(quote!(heap = "1 MiB", net(ipv6 = "::1")), main_fn()),
        [
            "unknown option `ipv6` for `net`; did you mean `ipv4`?",
            "`net` needs `ipv4` or `dhcp`: write `net(ipv4 = \"10.0.2.15/24\")` or `net(dhcp)`"
        ]
    );
}

#[test]
fn snapshot_net() {
    let actual = render(
        r#"console, heap = "16 MiB", net(ipv4 = "10.0.2.15/24", gateway = "10.0.2.2")"#,
        r#"
fn main(net: Net) -> ExitCode {
    let listener = TcpListener::bind(&net, 80).unwrap();
    ExitCode::SUCCESS
}"#,
    );
    check_snapshot("net", &actual);
}

#[test]
fn snapshot_net_dhcp() {
    let actual = render(
        r#"console, heap = "16 MiB", net(dhcp)"#,
        r#"
fn main(net: Net) -> ExitCode {
    ExitCode::SUCCESS
}"#,
    );
    check_snapshot("net_dhcp", &actual);
}

/// `function`'s hooks into `rand` and `clock` are called only when those boot: an image
/// without them links neither.
#[test]
fn function_hooks_only_the_subsystems_that_boot() {
    let main = "fn main(function: Function) -> ! { loop {} }";
    let alone = render(r#"heap = "1 MiB", function"#, main);
    assert!(alone.contains("init_function(1048576usize)"), "{alone}");
    assert!(!alone.contains("hook_rand_to_function"), "{alone}");
    assert!(!alone.contains("hook_clock_to_function"), "{alone}");
    let with_rand = render(
        r#"heap = "1 MiB", rand, function(max_request = "8 KiB")"#,
        main,
    );
    assert!(
        with_rand.contains("init_function(8192usize)"),
        "{with_rand}"
    );
    assert!(with_rand.contains("hook_rand_to_function"), "{with_rand}");
    assert!(!with_rand.contains("hook_clock_to_function"), "{with_rand}");
    // `sched` adds `clock`: an added subsystem counts as booting.
    let with_sched = render(r#"heap = "1 MiB", sched, function"#, main);
    assert!(
        with_sched.contains("hook_clock_to_function"),
        "{with_sched}"
    );
}

/// `#[unikernel::function(attr)] item`, expanded as in the build of `selected`'s image.
fn render_function(attr: &str, item: &str, selected: Option<&str>) -> String {
    let tokens = |text: &str| text.parse::<TokenStream>().expect("valid tokens");
    let expansion = crate::function::expand_function(tokens(attr), tokens(item), selected);
    let file: syn::File = syn::parse2(expansion).expect("the expansion is valid Rust");
    let input: String = format!("#[unikernel::function({attr})]\n{}", item.trim())
        .lines()
        .map(|line| format!("// {line}\n"))
        .collect();
    format!(
        "// The expansion of:\n//\n{input}// in the build of {selected:?}'s image\n\n{}",
        prettyplease::unparse(&file)
    )
}

const RESIZE: &str = r#"fn resize(request: Request, model: &Model, rand: Rand) -> Response {
    Response::text("resized")
}"#;
const RESIZE_ATTR: &str =
    r#"route = "POST /resize", heap = "8 MiB", timeout = "100 ms", rand, mode = warm"#;

/// A function with state and a handle, in the build of its own image: the whole entry.
#[test]
fn snapshot_function() {
    let actual = render_function(RESIZE_ATTR, RESIZE, Some("resize"));
    check_snapshot("function", &actual);
}

/// The entry (boot, allocator, manifest and function note) exists only in the build of the
/// function's own image; every build keeps the function, its checks and its uniqueness.
#[test]
fn a_function_has_an_entry_only_in_its_own_image() {
    for selected in [None, Some("other")] {
        let expansion = render_function(RESIZE_ATTR, RESIZE, selected);
        assert!(!expansion.contains("__unikernel_boot"), "{expansion}");
        assert!(!expansion.contains("global_allocator"), "{expansion}");
        assert!(expansion.contains("fn resize("), "{expansion}");
        assert!(expansion.contains("__unikernel_check"), "{expansion}");
        assert!(
            expansion.contains("__unikernel_route_declared_twice_POST__sresize"),
            "{expansion}"
        );
    }
    let own = render_function(RESIZE_ATTR, RESIZE, Some("resize"));
    assert!(own.contains("fn __unikernel_boot()"), "{own}");
    let compact: String = own.split_whitespace().collect();
    assert!(
        compact.contains("init_function(1048576usize,)"),
        "the default max_request: {own}"
    );
    assert!(own.contains("hook_rand_to_function"), "{own}");
    let note = "name=resize\\nmethod=POST\\npath=/resize\\nmode=warm\\ntimeout_ms=100\\nmax_request=1048576\\nmemory_mib=17\\nstate=1\\n";
    assert!(own.contains(note), "heap 8 + buffer 1 + 8 MiB: {own}");
}

#[test]
fn function_defaults_and_options() {
    let own = render_function(
        r#"route = "GET /a", max_request = "64 KiB", memory = "32 MiB""#,
        "fn a(_request: Request) -> Response { Response::text(\"\") }",
        Some("a"),
    );
    // The default heap, 4 MiB; the state flag off; the memory as written.
    assert!(
        own.contains("init_heap(&__UNIKERNEL_HEAP, 4194304usize)"),
        "{own}"
    );
    let compact: String = own.split_whitespace().collect();
    assert!(compact.contains("init_function(65536usize"), "{own}");
    assert!(
        own.contains(
            "mode=snapshot\\ntimeout_ms=10000\\nmax_request=65536\\nmemory_mib=32\\nstate=0"
        ),
        "{own}"
    );
}

#[test]
fn routes_are_a_method_and_a_plain_path() {
    use crate::function::{parse_route, route_ident};
    assert_eq!(
        parse_route("POST  /resize/x-1"),
        Ok(("POST".into(), "/resize/x-1".into()))
    );
    for bad in ["GET", "GET /a /b", "get /a", "GET a", "GET /a#b", "GET /é"] {
        assert!(parse_route(bad).is_err(), "{bad}");
    }
    // Different routes never share an identifier.
    let routes = ["/a_b", "/a/b", "/a-b", "/a_sb", "/u", "/_u"];
    let idents: std::collections::BTreeSet<String> =
        routes.iter().map(|path| route_ident("GET", path)).collect();
    assert_eq!(idents.len(), routes.len(), "{idents:?}");
}
