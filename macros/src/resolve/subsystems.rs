//! The attribute's entries against the registry: unknown and duplicate subsystems, each
//! declared one's value and options (and its validator's rules), and the dependencies
//! added for them.

use proc_macro2::Span;

use super::stack;
use super::values::check;
use crate::errors::Errors;
use crate::parse::{Attr, Entry, Options, Written};
use crate::registry::{Declared, Kind, Policy, RENAMED, Subsystem, lookup};
use crate::value::{Value, check_text};
use crate::{hint, tasks};

/// One subsystem to initialise.
#[derive(Debug)]
pub struct Resolved<'t> {
    pub spec: &'t Subsystem,
    /// The value (`name = value`, or its default) when the subsystem takes one.
    pub value: Option<Value>,
    /// The value of every option, in the order of `spec.options` (defaults filled in).
    pub options: Vec<Value>,
    /// The declared subsystem this one was added for, when it was not declared itself.
    pub added_for: Option<&'t str>,
}

/// A subsystem while resolving: declared, or added as a dependency.
pub struct Chosen<'t> {
    pub resolved: Resolved<'t>,
    /// Where the subsystem was declared or, for an added one, the declaration it was
    /// added for: errors about its dependencies point there.
    pub span: Span,
    /// Its 1-based position in the attribute, if declared.
    pub position: Option<usize>,
    /// Where its value was written, if it was.
    pub value_span: Option<Span>,
    /// Whether its declaration had errors that leave its value unknown.
    pub unsure: bool,
}

/// The declared subsystems, by boot rank, the `task(..)` entries (kept for the
/// subsystem that runs them) and the `stack = ..` entries.
pub fn declared<'t, 'a>(
    attr: &'a Attr,
    table: &'t [Subsystem],
    errors: &mut Errors,
) -> (Vec<Option<Chosen<'t>>>, Vec<&'a Entry>, Vec<&'a Entry>) {
    let mut chosen: Vec<Option<Chosen<'t>>> = table.iter().map(|_| None).collect();

    // Declared subsystems (and tasks, kept for later when some subsystem runs them).
    let runs_tasks = table.iter().any(|s| !s.realtime.is_empty());
    let mut names: Vec<&str> = table.iter().map(|s| s.name).collect();
    if runs_tasks {
        names.push(tasks::KEYWORD);
    }
    names.push(stack::KEYWORD);
    let mut task_entries: Vec<&Entry> = Vec::new();
    let mut stack_entries: Vec<&Entry> = Vec::new();
    for (index, entry) in attr.entries.iter().enumerate() {
        let name = entry.name.to_string();
        if runs_tasks && name == tasks::KEYWORD {
            task_entries.push(entry);
            continue;
        }
        if name == stack::KEYWORD {
            stack_entries.push(entry);
            continue;
        }
        // An old name is an error, and is then read as the new one, so that nothing
        // else (`main`'s handle of it) is reported as undeclared.
        let renamed = RENAMED
            .iter()
            .find(|(old, _)| *old == name && lookup(table, old).is_none());
        if let Some((old, new)) = renamed {
            errors.push(syn::Error::new(
                entry.name.span(),
                format!("`{old}` is now `{new}`; write `{new}`"),
            ));
        }
        let Some((rank, spec)) = lookup(table, renamed.map_or(name.as_str(), |(_, new)| new))
        else {
            errors.push(syn::Error::new(
                entry.name.span(),
                format!("unknown subsystem `{name}`{}", hint::suffix(&name, &names)),
            ));
            continue;
        };
        if let Some(first) = &chosen[rank] {
            let first = first.position.unwrap_or_default();
            errors.push(syn::Error::new(
                entry.name.span(),
                format!(
                    "`{name}` is declared twice (first as entry {first} of `#[unikernel(...)]`); \
                     declare each subsystem once"
                ),
            ));
            continue;
        }
        let (resolved, unsure) = if entry.malformed {
            (defaults(spec), true)
        } else {
            let resolved = declare(entry, spec, errors);
            let unsure = spec.value.is_some() && resolved.value.is_none();
            (resolved, unsure)
        };
        chosen[rank] = Some(Chosen {
            resolved,
            span: entry.name.span(),
            position: Some(index + 1),
            value_span: entry.value.as_ref().map(Written::span),
            unsure,
        });
    }

    (chosen, task_entries, stack_entries)
}

/// Adds what the chosen subsystems need: each chosen subsystem is looked at once, added
/// ones included.
pub fn add_dependencies<'t>(
    table: &'t [Subsystem],
    chosen: &mut [Option<Chosen<'t>>],
    errors: &mut Errors,
) {
    let mut done = vec![false; table.len()];
    while let Some(rank) = (0..table.len()).find(|&r| chosen[r].is_some() && !done[r]) {
        done[rank] = true;
        let dependent = chosen[rank].as_ref().expect("just found");
        let (dependent_name, span) = (table[rank].name, dependent.span);
        let root = dependent.resolved.added_for.unwrap_or(dependent_name);
        for need in table[rank].needs {
            let Some((need_rank, spec)) = lookup(table, need) else {
                panic!("registry: `{dependent_name}` needs unknown `{need}`");
            };
            if chosen[need_rank].is_some() {
                continue;
            }
            match spec.policy() {
                Policy::AutoAdd => {
                    chosen[need_rank] = Some(Chosen {
                        resolved: Resolved {
                            added_for: Some(root),
                            ..defaults(spec)
                        },
                        span,
                        position: None,
                        value_span: None,
                        unsure: false,
                    });
                }
                Policy::Require => {
                    let via = if root == dependent_name {
                        String::new()
                    } else {
                        format!(" (added for `{root}`)")
                    };
                    let noun = spec.value.as_ref().map_or("value", |v| v.noun());
                    errors.push(syn::Error::new(
                        span,
                        format!(
                            "`{dependent_name}`{via} needs `{need}`: add `{}` (or the {} you \
                             need) to `#[unikernel(...)]`",
                            spec.declaration(),
                            noun,
                        ),
                    ));
                }
            }
        }
    }
}

/// The subsystem as declared: its value and options checked.
fn declare<'t>(entry: &Entry, spec: &'t Subsystem, errors: &mut Errors) -> Resolved<'t> {
    let name = spec.name;
    let mut resolved = defaults(spec);
    let options_instead_of_value = entry.value.is_none()
        && spec.options.is_empty()
        && spec.value.as_ref().is_some_and(|v| v.default.is_none())
        && entry.options.is_some();

    match (&spec.value, &entry.value) {
        (None, Some(lit)) => {
            let options = match spec.options.first() {
                Some(option) => format!(
                    "; its options go in parentheses: `{name}({} = {})`",
                    option.key,
                    option.kind.written(option.default)
                ),
                None => format!("; write `{name}`"),
            };
            errors.push(syn::Error::new(
                lit.span(),
                format!("`{name}` takes no value{options}"),
            ));
        }
        (Some(value), Some(lit)) => {
            let example = format!("{name} = {}", value.kind.written(value.example));
            resolved.value = check(lit, &value.kind, name, &example, true, errors);
        }
        (Some(value), None) if value.default.is_none() && !options_instead_of_value => {
            errors.push(syn::Error::new(
                entry.name.span(),
                format!(
                    "`{name}` needs {}: write `{name} = {}`",
                    value.what,
                    value.kind.written(value.example)
                ),
            ));
        }
        _ => {}
    }

    if let Some(options) = &entry.options {
        if spec.options.is_empty() {
            no_options(options, spec, options_instead_of_value, errors);
        } else {
            check_options(options, spec, &mut resolved, errors);
            if let Some(value) = resolved.value.as_ref().and_then(|v| written_name(spec, v)) {
                options_apply(options, spec, value, entry.value.is_some(), errors);
            }
        }
    }
    if entry
        .options
        .as_ref()
        .is_none_or(|options| options.error.is_none())
    {
        validate(entry, spec, &resolved, errors);
    }
    resolved
}

/// Runs the entry's validator over its checked options.
fn validate(entry: &Entry, spec: &Subsystem, resolved: &Resolved, errors: &mut Errors) {
    let spans = spec
        .options
        .iter()
        .map(|option| {
            let written = entry.options.as_ref()?;
            let entry = written.entries.iter().find(|e| e.key == option.key)?;
            Some(entry.key.span())
        })
        .collect();
    let declared = Declared {
        name: entry.name.span(),
        spec,
        values: &resolved.options,
        spans,
    };
    for error in (spec.validate)(&declared) {
        errors.push(error);
    }
}

/// Options written for a value they do not apply to (`sched(on_miss = panic)`: `coop`).
fn options_apply(
    options: &Options,
    spec: &Subsystem,
    value: &str,
    value_written: bool,
    errors: &mut Errors,
) {
    let name = spec.name;
    let mut reported: Vec<&str> = Vec::new();
    for option in &options.entries {
        let Some(spec_option) = spec.options.iter().find(|o| option.key == o.key) else {
            continue;
        };
        let Some(applies_to) = spec_option.applies_to else {
            continue;
        };
        if applies_to.contains(&value) || reported.contains(&spec_option.key) {
            continue;
        }
        reported.push(spec_option.key);
        let kind = &spec.value.as_ref().expect("options apply to values").kind;
        let values: Vec<String> = applies_to
            .iter()
            .map(|v| format!("`{name} = {}`", kind.written(v)))
            .collect();
        let actual = if value_written {
            format!("`{name} = {}`", kind.written(value))
        } else {
            format!("`{name}` (which means `{name} = {}`)", kind.written(value))
        };
        errors.push(syn::Error::new(
            option.key.span(),
            format!(
                "option `{}` of `{name}` only applies to {}, not to {actual}",
                spec_option.key,
                hint::or_list(&values)
            ),
        ));
    }
}

fn no_options(options: &Options, spec: &Subsystem, instead_of_value: bool, errors: &mut Errors) {
    let name = spec.name;
    if instead_of_value {
        let value = spec.value.as_ref().expect("checked by the caller");
        errors.push(syn::Error::new(
            options.span,
            format!(
                "`{name}` takes a value, not options: write `{name} = {}`",
                value.kind.written(value.example)
            ),
        ));
    } else if options.error.is_some() || options.entries.is_empty() {
        errors.push(syn::Error::new(
            options.span,
            format!("`{name}` takes no options; write `{}`", spec.declaration()),
        ));
    } else {
        for option in &options.entries {
            errors.push(syn::Error::new(
                option.key.span(),
                format!(
                    "unknown option `{}` for `{name}`; it takes none",
                    option.key
                ),
            ));
        }
    }
}

fn check_options<'t>(
    options: &Options,
    spec: &'t Subsystem,
    resolved: &mut Resolved<'t>,
    errors: &mut Errors,
) {
    let name = spec.name;
    if let Some(error) = &options.error {
        errors.push(error.clone());
    }
    let keys: Vec<&str> = spec.options.iter().map(|o| o.key).collect();
    let mut seen: Vec<String> = Vec::new();
    for option in &options.entries {
        if let Some(path) = &option.path {
            errors.push(syn::Error::new_spanned(
                path,
                format!("expected an option of `{name}`, found a path"),
            ));
            continue;
        }
        let key = option.key.to_string();
        let Some(index) = keys.iter().position(|k| *k == key) else {
            errors.push(syn::Error::new(
                option.key.span(),
                format!(
                    "unknown option `{key}` for `{name}`{}",
                    hint::suffix(&key, &keys)
                ),
            ));
            continue;
        };
        if seen.contains(&key) {
            errors.push(syn::Error::new(
                option.key.span(),
                format!("option `{key}` of `{name}` is given twice"),
            ));
            continue;
        }
        seen.push(key.clone());
        let spec_option = &spec.options[index];
        let example = format!("{key} = {}", spec_option.kind.written(spec_option.default));
        match &option.value {
            Some(lit) => {
                if let Some(value) = check(lit, &spec_option.kind, &key, &example, false, errors) {
                    resolved.options[index] = value;
                }
            }
            None if matches!(spec_option.kind, Kind::Flag) => {
                resolved.options[index] = Value::Bool(true);
            }
            None => errors.push(syn::Error::new(
                option.key.span(),
                format!("option `{key}` needs a value, such as `{example}`"),
            )),
        }
    }
}

/// A subsystem with its default value and options.
fn defaults(spec: &Subsystem) -> Resolved<'_> {
    let default = |kind: &Kind, text: &str| {
        check_text(text, kind, spec.name, true).unwrap_or_else(|message| {
            panic!(
                "registry: bad default `{text}` in `{}`: {message}",
                spec.name
            )
        })
    };
    Resolved {
        spec,
        value: spec
            .value
            .as_ref()
            .and_then(|value| Some(default(&value.kind, value.default?))),
        options: spec
            .options
            .iter()
            .map(|option| default(&option.kind, option.default))
            .collect(),
        added_for: None,
    }
}

/// The name the app writes for a resolved one-of value of `spec` (`edf` for `Policy::Edf`).
pub fn written_name(spec: &Subsystem, value: &Value) -> Option<&'static str> {
    let (Some(value_spec), Value::Variant { variant, .. }) = (&spec.value, value) else {
        return None;
    };
    let Kind::OneOf { values, .. } = &value_spec.kind else {
        return None;
    };
    values
        .iter()
        .find(|(_, v)| v == variant)
        .map(|(written, _)| *written)
}
