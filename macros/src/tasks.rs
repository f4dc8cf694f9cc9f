//! Periodic real-time tasks: `task(<fn>, period = "1 ms", wcet = "200 us", deadline =
//! "800 us")`, repeatable, `deadline` optional (it defaults to the period).
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

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use crate::analysis::{self, Policy};
use crate::duration;
use crate::errors::Errors;
use crate::hint;
use crate::hint::or_list;
use crate::parse::{Entry, Written};
use crate::registry::Subsystem;

/// The name of a task entry in the attribute.
pub const KEYWORD: &str = "task";

const KEYS: &[&str] = &["period", "wcet", "deadline"];

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
    /// Declared with a real-time policy, written at `span`.
    Realtime { policy: Policy, span: Span },
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
}

/// The checked task set.
#[derive(Debug, Default)]
pub struct Tasks {
    /// In declaration order, with their priorities.
    pub tasks: Vec<Task>,
    /// Why the set is schedulable, when a real-time policy runs it.
    pub summary: Option<String>,
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
    let Scheduler::Realtime { policy, span } = scheduler else {
        return Tasks::default();
    };
    if !ok {
        return Tasks::default();
    }
    let declared: Vec<Declared> = declared.into_iter().flatten().collect();
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
    let proof = match analysis::check(*policy, &analysed) {
        Ok(proof) => proof,
        Err(unschedulable) => {
            let span = match unschedulable.blame() {
                Some(task) => declared[task].job.span(),
                None => *span,
            };
            errors.push(syn::Error::new(span, unschedulable.to_string()));
            return Tasks::default();
        }
    };
    let summary = proof.summary(*policy, &analysed);
    let priorities = analysis::priorities(&analysed);
    let tasks = declared
        .into_iter()
        .zip(priorities)
        .map(|(task, priority)| Task {
            job: task.job,
            period: task.period,
            deadline: task.deadline,
            wcet: task.wcet,
            priority,
        })
        .collect();
    Tasks {
        tasks,
        summary: Some(summary),
    }
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
    let mut seen = [false; 3];
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
    })
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
