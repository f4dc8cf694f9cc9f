//! Stage 2, semantics: which subsystems boot, in what order, with which values, and what
//! `main` takes. Every problem is reported, each at the smallest token that causes it.
//!
//! [`subsystems`]: the attribute's entries against the registry, their values, options and
//! dependencies; [`values`]: one written value against its kind; [`signature`]: `main`;
//! [`body`]: what `main`'s body shows (`Self`, reserved exit statuses); [`stack`]: the
//! size of `main`'s stack.
//!
//! Decisions worth knowing (all covered by tests):
//! - Subsystems boot in registry order, whatever order the attribute lists them in.
//! - A needed subsystem that is not declared is added with its defaults if it involves no
//!   choice, else it is an error on the dependent (see `registry`'s dependency policy).
//! - `main` must be called `main` and be a plain function: not `async`, `const`, `unsafe`
//!   or `extern`, without generics, a `where` clause or `self`.
//! - Parameters are matched to subsystems by the last segment of their type's path
//!   (`Console`, `unikernel::Console`); the pattern is free (`console`, `_`, `mut c`), since
//!   the generated code only calls `main`. A handle can be taken once. Handles of
//!   subsystems added as dependencies may be taken too.
//! - The return type is left to rustc: the generated code passes `main`'s value to
//!   `Termination::report` at the span of the return type. Only `!` is special-cased.
//! - `task(..)` entries are not subsystems: they belong to the subsystem with real-time
//!   values (`sched`), and are checked in [`tasks`](crate::tasks), schedulability included.
//! - An option that applies to some values only (`on_miss` of `sched = edf | rm`) is an
//!   error with another value, rather than silently ignored.

mod body;
mod signature;
mod stack;
mod subsystems;
mod values;

use proc_macro2::Span;

use crate::errors::Errors;
use crate::parse::Attr;
use crate::registry::Subsystem;
use crate::tasks::{self, Scheduler, Tasks};
use crate::value::Value;

pub use signature::{is_unikernel_attr, not_a_fn};
pub use subsystems::Resolved;
use subsystems::{Chosen, written_name};

/// What the generated code does.
#[derive(Debug)]
pub struct Plan<'t> {
    /// The subsystems to initialise, in boot order.
    pub boot: Vec<Resolved<'t>>,
    /// For each parameter of `main`, the subsystem whose handle it takes, and the span of
    /// the parameter's type.
    pub args: Vec<(&'t str, Span)>,
    /// Whether `main` returns `!`.
    pub never: bool,
    /// The size of `main`'s stack in bytes, when the app chose one (`stack = "1 MiB"`).
    pub stack: Option<u64>,
    /// The periodic tasks, with their priorities and the analysis' verdict (none unless a
    /// real-time scheduler is declared).
    pub tasks: Tasks,
}

/// Resolves the attribute and `main` against `table`. The plan is only meaningful when no
/// error was pushed.
pub fn resolve<'t>(
    attr: &Attr,
    main: &syn::ItemFn,
    table: &'t [Subsystem],
    errors: &mut Errors,
) -> Plan<'t> {
    let (mut chosen, task_entries, stack_entries) = subsystems::declared(attr, table, errors);
    let stack = stack::resolve(&stack_entries, errors);
    subsystems::add_dependencies(table, &mut chosen, errors);

    let tasks = match table.iter().position(|s| !s.realtime.is_empty()) {
        Some(rank) => tasks::resolve(
            &task_entries,
            &scheduler(&table[rank], &chosen[rank]),
            errors,
        ),
        None => Tasks::default(),
    };

    let args = signature::check(main, table, &chosen, errors);
    body::check(main, errors);
    let never = matches!(&main.sig.output, syn::ReturnType::Type(_, ty) if matches!(**ty, syn::Type::Never(_)));
    Plan {
        boot: chosen.into_iter().flatten().map(|c| c.resolved).collect(),
        args,
        never,
        stack,
        tasks,
    }
}

/// The CPU count of the scheduler (`sched(cpus = N)`), 1 if not written or not valid.
fn cpus(spec: &Subsystem, chosen: &Chosen) -> u16 {
    spec.options
        .iter()
        .position(|option| option.key == "cpus")
        .and_then(|index| match chosen.resolved.options.get(index) {
            Some(Value::Count(cpus)) => Some(*cpus),
            _ => None,
        })
        .unwrap_or(1)
}

/// The state of the subsystem that runs periodic tasks, for [`tasks::resolve`].
fn scheduler<'t>(spec: &'t Subsystem, chosen: &Option<Chosen<'t>>) -> Scheduler<'t> {
    let Some(chosen) = chosen else {
        return Scheduler::Missing { spec };
    };
    if chosen.unsure {
        return Scheduler::Unknown;
    }
    let value = chosen
        .resolved
        .value
        .as_ref()
        .and_then(|value| written_name(spec, value));
    let Some(value) = value else {
        return Scheduler::Unknown;
    };
    match spec.realtime.iter().find(|(name, _)| *name == value) {
        Some(&(_, policy)) => Scheduler::Realtime {
            policy,
            span: chosen.value_span.unwrap_or(chosen.span),
            cpus: cpus(spec, chosen),
        },
        None => Scheduler::NotRealtime {
            spec,
            value,
            written: chosen.value_span.is_some(),
        },
    }
}
