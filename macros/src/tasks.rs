//! Periodic real-time tasks: `task(<fn>, period = "1 ms", wcet = "200 us", deadline =
//! "800 us", cpu = 1)`, repeatable, `deadline` optional (it defaults to the period), `cpu`
//! optional (the macro places the task; see [`analysis::partition`]).
//!
//! Part of resolution. Each entry is checked on its own (function name first, known keys
//! once each, durations, `0 < wcet <= deadline <= period`), then the set: names unique, a
//! real-time scheduler declared (`sched = edf` or `sched = rm`: a choice, so never added
//! for the app), and schedulable under it ([`analysis`]). Decisions:
//!
//! - Deadlines are constrained (`deadline <= period`): a task whose deadline is longer than
//!   its period could have several jobs pending, which neither the analysis here nor the
//!   runtime (one job per release, run to completion) handles.
//! - Whether the function exists, and is a `fn()`, is rustc's to say: the generated
//!   `job: || run_task(<fn>)` carries the span of the name in the attribute, so "cannot
//!   find value" or `run_task`'s own message (an `async` function, one that returns a
//!   value) points there. A task's function is a name in the module that holds `main` or
//!   a path (`jobs::control`, `generic::<u32>`); its name in reports is the last segment.
//! - A task's priority is computed here for every policy (deadline-monotonic, which is
//!   rate-monotonic when deadlines equal periods; 0 = highest); the runtime uses it under RM.
//!   It is the same order on every CPU, so one number serves each CPU's run queue.
//! - `cpu = k` is a CPU number below `sched(cpus = N)` (1 when not written, so only
//!   `cpu = 0` then): pinned tasks stay there, the others are placed first-fit decreasing,
//!   and each CPU's set is checked with the exact test of the policy.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use crate::analysis::{self, Policy, partition};
use crate::duration;
use crate::errors::Errors;
use crate::hint;
use crate::hint::or_list;
use crate::parse::{Entry, Written};
use crate::registry::Subsystem;

/// The name of a task entry in the attribute.
pub const KEYWORD: &str = "task";

const KEYS: &[&str] = &["period", "wcet", "deadline", "cpu"];

/// The most CPUs an app has (`sched(cpus = N)`'s upper bound).
const MAX_CPUS: u16 = 64;

const EXAMPLE: &str = "task(control, period = \"1 ms\", wcet = \"200 us\")";

/// A checked task, ready to be generated.
#[derive(Debug)]
pub struct Task {
    /// The function's name or path, with its spans in the attribute.
    pub job: syn::Path,
    pub period: u64,
    pub deadline: u64,
    pub wcet: u64,
    /// 0 = highest.
    pub priority: u32,
    /// The CPU it runs on: pinned with `cpu = k` or placed by the partitioning.
    pub cpu: u16,
}

impl Task {
    /// The task's name: its function's, without `r#`.
    pub fn name(&self) -> String {
        last_name(&self.job)
    }
}

/// The subsystem that runs periodic tasks (`sched`), as declared.
#[derive(Debug)]
pub enum Scheduler<'t> {
    /// Not declared.
    Missing { spec: &'t Subsystem },
    /// Declared, with errors that leave its value unknown (already reported).
    Unknown,
    /// Declared with a value that runs no periodic tasks (`coop`), written or by default.
    NotRealtime {
        spec: &'t Subsystem,
        value: &'static str,
        written: bool,
    },
    /// Declared with a real-time policy, written at `span`, on `cpus` CPUs.
    Realtime {
        policy: Policy,
        span: Span,
        cpus: u16,
    },
}

/// The last segment of a task's path, without `r#`: its name in reports.
fn last_name(path: &syn::Path) -> String {
    path.segments
        .last()
        .map(|segment| segment.ident.unraw().to_string())
        .unwrap_or_default()
}

/// One task entry, checked on its own.
struct Declared {
    job: syn::Path,
    period: u64,
    deadline: u64,
    wcet: u64,
    /// `cpu = k`, with the span of `k`.
    cpu: Option<(u16, Span)>,
}

/// The checked task set.
#[derive(Debug, Default)]
pub struct Tasks {
    /// In declaration order, with their priorities.
    pub tasks: Vec<Task>,
    /// Why the set is schedulable, when a real-time policy runs it: one line, or with
    /// several CPUs a line for the partitioning and one per CPU.
    pub summary: Option<Vec<String>>,
    /// Which tasks run on which CPU, `cpu 0: a, b; cpu 1: c`, under a real-time policy.
    pub placement: Option<String>,
}

/// Checks the task entries against the scheduler and each other, and the set for
/// schedulability. Returns the tasks with their priorities (none if any error).
pub fn resolve(entries: &[&Entry], scheduler: &Scheduler, errors: &mut Errors) -> Tasks {
    let mut task_errors = Errors::default();
    let declared: Vec<Option<Declared>> = entries
        .iter()
        .map(|entry| declared(entry, &mut task_errors))
        .collect();

    let mut names: Vec<String> = Vec::new();
    for task in declared.iter().flatten() {
        let name = last_name(&task.job);
        if names.contains(&name) {
            task_errors.push(syn::Error::new(
                task.job.span(),
                format!("task `{name}` is declared twice; declare each task once"),
            ));
        }
        names.push(name);
    }

    if let Some(first) = entries.first() {
        scheduler_error(first, scheduler, &mut task_errors);
    }

    let ok = task_errors.is_empty() && declared.iter().all(Option::is_some);
    errors.append(task_errors);
    let Scheduler::Realtime { policy, span, cpus } = scheduler else {
        return Tasks::default();
    };
    if !ok {
        return Tasks::default();
    }
    let declared: Vec<Declared> = declared.into_iter().flatten().collect();
    let mut pins_ok = true;
    for (task, name) in declared.iter().zip(&names) {
        if let Some((cpu, cpu_span)) = task.cpu
            && cpu >= *cpus
        {
            errors.push(syn::Error::new(
                cpu_span,
                out_of_range(name, cpu, *cpus, *policy),
            ));
            pins_ok = false;
        }
    }
    if !pins_ok {
        return Tasks::default();
    }
    let analysed: Vec<analysis::Task> = declared
        .iter()
        .zip(&names)
        .map(|(task, name)| analysis::Task {
            name,
            period: task.period,
            deadline: task.deadline,
            wcet: task.wcet,
        })
        .collect();
    let pinned: Vec<Option<u16>> = declared
        .iter()
        .map(|task| task.cpu.map(|(cpu, _)| cpu))
        .collect();
    let partition = match partition::partition(*policy, &analysed, &pinned, *cpus) {
        Ok(partition) => partition,
        Err(unpartitionable) => {
            let span = match unpartitionable.blame() {
                Some(task) => declared[task].job.span(),
                None => *span,
            };
            errors.push(syn::Error::new(span, unpartitionable.to_string()));
            return Tasks::default();
        }
    };
    let summary = partition.summary(*policy, &analysed);
    let placement = partition.placement(&analysed);
    let priorities = analysis::priorities(&analysed);
    let tasks = declared
        .into_iter()
        .zip(priorities)
        .zip(partition.cpu_of)
        .map(|((task, priority), cpu)| Task {
            job: task.job,
            period: task.period,
            deadline: task.deadline,
            wcet: task.wcet,
            priority,
            cpu,
        })
        .collect();
    Tasks {
        tasks,
        summary: Some(summary),
        placement: Some(placement),
    }
}

/// The error for `cpu = k` on an app with `cpus` CPUs, `k >= cpus`.
fn out_of_range(task: &str, cpu: u16, cpus: u16, policy: Policy) -> String {
    let there_are = match cpus {
        1 => "the app has 1 CPU, cpu 0 (`cpus` of `sched` is 1 unless written)".to_owned(),
        2 => "the app has 2 CPUs, cpu 0 and cpu 1".to_owned(),
        _ => format!("the app has {cpus} CPUs, cpu 0 to cpu {}", cpus - 1),
    };
    let policy = policy.name().to_lowercase();
    let fix = if cpu < MAX_CPUS {
        format!(
            "; to run it there, declare `sched = {policy}(cpus = {})`",
            cpu + 1
        )
    } else {
        format!("; an app has at most {MAX_CPUS} CPUs")
    };
    format!("task `{task}` is pinned to cpu {cpu}, but {there_are}{fix}")
}

/// Tasks without a real-time scheduler: one error, at the first `task`.
fn scheduler_error(first: &Entry, scheduler: &Scheduler, errors: &mut Errors) {
    let choices = |spec: &Subsystem| {
        let kind = &spec.value.as_ref().expect("a scheduler has values").kind;
        let choices: Vec<String> = spec
            .realtime
            .iter()
            .map(|(value, _)| format!("`{} = {}`", spec.name, kind.written(value)))
            .collect();
        or_list(&choices)
    };
    let message = match scheduler {
        Scheduler::Missing { spec } => format!(
            "`task` needs a real-time scheduler: add {} to `#[unikernel(...)]`",
            choices(spec)
        ),
        Scheduler::NotRealtime {
            spec,
            value,
            written,
        } => {
            let name = spec.name;
            let actual = if *written {
                format!("`{name} = {value}`")
            } else {
                format!("`{name}` (which means `{name} = {value}`)")
            };
            format!(
                "`task` needs a real-time scheduler: write {} instead of {actual}, which runs no periodic tasks",
                choices(spec)
            )
        }
        Scheduler::Unknown | Scheduler::Realtime { .. } => return,
    };
    errors.push(syn::Error::new(first.name.span(), message));
}

/// Checks one `task(..)` entry; `None` if it has errors (pushed).
fn declared(entry: &Entry, errors: &mut Errors) -> Option<Declared> {
    if let Some(value) = &entry.value {
        errors.push(syn::Error::new(
            value.span(),
            format!("`task` takes no value; write `{EXAMPLE}`"),
        ));
        return None;
    }
    let Some(options) = &entry.options else {
        errors.push(syn::Error::new(
            entry.name.span(),
            format!("`task` needs its function and timing: write `{EXAMPLE}`"),
        ));
        return None;
    };
    let mut ok = !entry.malformed;
    if let Some(error) = &options.error {
        errors.push(error.clone());
        ok = false;
    }
    let job = match options.entries.first() {
        Some(first) if first.value.is_none() && !KEYS.contains(&first.key.to_string().as_str()) => {
            Some(
                first
                    .path
                    .clone()
                    .unwrap_or_else(|| syn::Path::from(first.key.clone())),
            )
        }
        _ => {
            // A path further on is reported as misplaced, below.
            if options.entries.iter().all(|option| option.path.is_none()) {
                errors.push(syn::Error::new(
                    options.span,
                    format!("`task` needs the name of its function first: `{EXAMPLE}`"),
                ));
            }
            ok = false;
            None
        }
    };
    let task_name = job.as_ref().map(last_name);
    let rest = &options.entries[usize::from(job.is_some())..];

    // (nanoseconds, span of the value) for period, wcet, deadline.
    let mut values: [Option<(u64, Span)>; 3] = [None; 3];
    let mut seen = [false; 4];
    let mut cpu: Option<(u16, Span)> = None;
    // A misspelt key (`perod`) is reported once, not again as a missing `period`.
    let mut unknown_keys = false;
    for option in rest {
        if let Some(path) = &option.path {
            errors.push(syn::Error::new_spanned(
                path,
                format!("a path goes first in `task`, as its function: `{EXAMPLE}`"),
            ));
            ok = false;
            continue;
        }
        let key = option.key.to_string();
        let Some(index) = KEYS.iter().position(|k| *k == key) else {
            errors.push(syn::Error::new(
                option.key.span(),
                format!(
                    "unknown option `{key}` for `task`{}",
                    hint::suffix(&key, KEYS)
                ),
            ));
            ok = false;
            unknown_keys = true;
            continue;
        };
        if std::mem::replace(&mut seen[index], true) {
            errors.push(syn::Error::new(
                option.key.span(),
                format!("option `{key}` of `task` is given twice"),
            ));
            ok = false;
            continue;
        }
        if key == "cpu" {
            match cpu_value(option.value.as_ref(), option.key.span(), errors) {
                Some(k) => cpu = Some(k),
                None => ok = false,
            }
            continue;
        }
        let Some(value) = &option.value else {
            errors.push(syn::Error::new(
                option.key.span(),
                format!(
                    "option `{key}` of `task` needs a duration, such as `{key} = \"{}\"`",
                    example(&key)
                ),
            ));
            ok = false;
            continue;
        };
        match duration_value(value, &key, task_name.as_deref(), errors) {
            Some(ns) => values[index] = Some((ns, value.span())),
            None => ok = false,
        }
    }
    let job = job?;
    let name = last_name(&job);
    if name == "main" {
        errors.push(syn::Error::new(
            job.span(),
            "`main` is the app's entry, not a task; give the task a function of its own",
        ));
        return None;
    }
    let missing: Vec<String> = KEYS[..2]
        .iter()
        .zip(&seen)
        .filter(|&(_, seen)| !seen)
        .map(|(key, _)| format!("`{key}`"))
        .collect();
    if !missing.is_empty() && options.error.is_none() && !unknown_keys {
        errors.push(syn::Error::new(
            job.span(),
            format!(
                "task `{name}` needs {}: write `task({name}, period = \"1 ms\", wcet = \"200 us\")`",
                missing.join(" and ")
            ),
        ));
        return None;
    }
    let [Some(period), Some(wcet), deadline] = values else {
        return None;
    };
    if !ok {
        return None;
    }

    let show = |ns: u64| duration::format(ns);
    if let Some((deadline, span)) = deadline
        && deadline > period.0
    {
        errors.push(syn::Error::new(
            span,
            format!(
                "`deadline` of task `{name}` ({}) is longer than its `period` ({}); \
                     `#[unikernel]` supports constrained deadlines only: `deadline` <= `period`",
                show(deadline),
                show(period.0)
            ),
        ));
        ok = false;
    }
    if wcet.0 > period.0 {
        errors.push(syn::Error::new(
            wcet.1,
            format!(
                "`wcet` of task `{name}` ({}) is longer than its `period` ({}): a job could not \
                 finish before the next one is released",
                show(wcet.0),
                show(period.0)
            ),
        ));
        ok = false;
    } else if let Some((deadline, _)) = deadline
        && wcet.0 > deadline
    {
        errors.push(syn::Error::new(
            wcet.1,
            format!(
                "`wcet` of task `{name}` ({}) is longer than its `deadline` ({}): no job could \
                 meet its deadline",
                show(wcet.0),
                show(deadline)
            ),
        ));
        ok = false;
    }
    ok.then(|| Declared {
        job,
        period: period.0,
        deadline: deadline.map_or(period.0, |(deadline, _)| deadline),
        wcet: wcet.0,
        cpu,
    })
}

/// Checks `cpu = k`: a whole number, written bare (`key` spans the key, for a missing value).
fn cpu_value(value: Option<&Written>, key: Span, errors: &mut Errors) -> Option<(u16, Span)> {
    let expected = "`cpu` takes the number of a CPU, such as `cpu = 1` (0 is the boot CPU)";
    let Some(value) = value else {
        errors.push(syn::Error::new(key, expected));
        return None;
    };
    let parsed = match value {
        Written::Lit(syn::Lit::Int(number)) if number.suffix().is_empty() => {
            number.base10_parse::<u16>().ok()
        }
        _ => None,
    };
    match parsed {
        Some(cpu) => Some((cpu, value.span())),
        None => {
            errors.push(syn::Error::new(value.span(), expected));
            None
        }
    }
}

/// A typical value of `key`, for hints.
fn example(key: &str) -> &'static str {
    match key {
        "wcet" => "200 us",
        "deadline" => "800 us",
        _ => "1 ms",
    }
}

/// Checks a duration written for `key` (of task `task`, when its name is known).
fn duration_value(
    value: &Written,
    key: &str,
    task: Option<&str>,
    errors: &mut Errors,
) -> Option<u64> {
    let text = match value {
        Written::Lit(syn::Lit::Str(text)) => text.value(),
        Written::Lit(syn::Lit::Int(number)) => {
            errors.push(syn::Error::new(
                value.span(),
                format!(
                    "`{key}` takes a duration string with a unit, such as `{key} = \"{} ms\"`",
                    number.base10_digits()
                ),
            ));
            return None;
        }
        _ => {
            errors.push(syn::Error::new(
                value.span(),
                format!(
                    "`{key}` takes a duration string, such as `{key} = \"{}\"`",
                    example(key)
                ),
            ));
            return None;
        }
    };
    let message = match duration::parse(&text) {
        Ok(0) => format!(
            "`{key}`{} is zero; a duration must be more than 0",
            task.map(|task| format!(" of task `{task}`"))
                .unwrap_or_default()
        ),
        Ok(ns) => return Some(ns),
        Err(error) => duration::DURATION.message(error, &text, example(key), || {
            format!(
                "duration `\"{text}\"` is too long; the longest is {}",
                duration::format(u64::MAX / 1_000_000_000 * 1_000_000_000)
            )
        }),
    };
    errors.push(syn::Error::new(value.span(), message));
    None
}
