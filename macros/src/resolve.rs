//! Stage 2, semantics: which subsystems boot, in what order, with which values, and what
//! `main` takes. Every problem is reported, each at the smallest token that causes it.
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

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::spanned::Spanned;

use crate::Errors;
use crate::hint;
use crate::parse::{Attr, Entry, Options, Written};
use crate::registry::{Kind, Policy, Subsystem, lookup};
use crate::size;
use crate::tasks::{self, Scheduler, Tasks};

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
    /// The periodic tasks, with their priorities and the analysis' verdict (none unless a
    /// real-time scheduler is declared).
    pub tasks: Tasks,
}

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

/// A checked value, ready to be generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A number of bytes.
    Bytes(u64),
    /// `::unikernel::__private::<ty>::<variant>`.
    Variant {
        ty: &'static str,
        variant: &'static str,
    },
    /// An IPv4 address, with its prefix length if the kind has one: `Some(..)`.
    Ipv4 { octets: [u8; 4], prefix: Option<u8> },
    /// An optional value that was not written: `None`.
    Absent,
    /// A flag: `true` when written.
    Bool(bool),
}

/// A subsystem while resolving: declared, or added as a dependency.
struct Chosen<'t> {
    resolved: Resolved<'t>,
    /// Where the subsystem was declared or, for an added one, the declaration it was
    /// added for: errors about its dependencies point there.
    span: Span,
    /// Its 1-based position in the attribute, if declared.
    position: Option<usize>,
    /// Where its value was written, if it was.
    value_span: Option<Span>,
    /// Whether its declaration had errors that leave its value unknown.
    unsure: bool,
}

/// Resolves the attribute and `main` against `table`. The plan is only meaningful when no
/// error was pushed.
pub fn resolve<'t>(
    attr: &Attr,
    main: &syn::ItemFn,
    table: &'t [Subsystem],
    errors: &mut Errors,
) -> Plan<'t> {
    let mut chosen: Vec<Option<Chosen<'t>>> = table.iter().map(|_| None).collect();

    // Declared subsystems (and tasks, kept for later when some subsystem runs them).
    let runs_tasks = table.iter().any(|s| !s.realtime.is_empty());
    let mut names: Vec<&str> = table.iter().map(|s| s.name).collect();
    if runs_tasks {
        names.push(tasks::KEYWORD);
    }
    let mut task_entries: Vec<&Entry> = Vec::new();
    for (index, entry) in attr.entries.iter().enumerate() {
        let name = entry.name.to_string();
        if runs_tasks && name == tasks::KEYWORD {
            task_entries.push(entry);
            continue;
        }
        let Some((rank, spec)) = lookup(table, &name) else {
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
            let resolved = declared(entry, spec, errors);
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

    // Dependencies: each chosen subsystem is looked at once, added ones included.
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

    let tasks = match table.iter().position(|s| !s.realtime.is_empty()) {
        Some(rank) => tasks::resolve(
            &task_entries,
            &scheduler(&table[rank], &chosen[rank]),
            errors,
        ),
        None => Tasks::default(),
    };

    let args = signature(main, table, &chosen, errors);
    let never = matches!(&main.sig.output, syn::ReturnType::Type(_, ty) if matches!(**ty, syn::Type::Never(_)));
    Plan {
        boot: chosen.into_iter().flatten().map(|c| c.resolved).collect(),
        args,
        never,
        tasks,
    }
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
        },
        None => Scheduler::NotRealtime {
            spec,
            value,
            written: chosen.value_span.is_some(),
        },
    }
}

/// The name the app writes for a resolved one-of value of `spec` (`edf` for `Policy::Edf`).
fn written_name(spec: &Subsystem, value: &Value) -> Option<&'static str> {
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

/// The subsystem as declared: its value and options checked.
fn declared<'t>(entry: &Entry, spec: &'t Subsystem, errors: &mut Errors) -> Resolved<'t> {
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
        option_rules(entry, spec, &resolved, errors);
    }
    resolved
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
                or_list(&values)
            ),
        ));
    }
}

/// "`a`", "`a` or `b`", "`a`, `b` or `c`".
pub fn or_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
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
            None if matches!(spec_option.kind, Kind::Flag { .. }) => {
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

/// Checks a written value of `kind` (for `subject`, whose usual form is `example`).
fn check(
    value: &Written,
    kind: &Kind,
    subject: &str,
    example: &str,
    is_subsystem: bool,
    errors: &mut Errors,
) -> Option<Value> {
    let text = match (kind, value) {
        (Kind::Flag { .. }, _) => {
            errors.push(syn::Error::new(
                value.span(),
                format!("`{subject}` takes no value; write it alone to turn it on"),
            ));
            return None;
        }
        (Kind::Ipv4 { .. }, Written::Lit(syn::Lit::Str(text)))
            if text.value().trim().is_empty() =>
        {
            errors.push(syn::Error::new(
                value.span(),
                format!("`{subject}` is empty; write an address, such as `{example}`"),
            ));
            return None;
        }
        (_, Written::Lit(syn::Lit::Str(text))) => text.value(),
        (Kind::OneOf { .. }, Written::Ident(ident)) => ident.unraw().to_string(),
        _ => {
            let expected = match kind {
                Kind::Size { .. } => format!("a size string, such as `{example}`"),
                Kind::OneOf { values, .. } => format!("one of: {}", written(values)),
                Kind::Ipv4 { .. } => format!("an address in a string, such as `{example}`"),
                Kind::Flag { .. } => unreachable!("handled above"),
            };
            errors.push(syn::Error::new(
                value.span(),
                format!("`{subject}` takes {expected}"),
            ));
            return None;
        }
    };
    check_text(&text, kind, subject, is_subsystem)
        .map_err(|message| errors.push(syn::Error::new(value.span(), message)))
        .ok()
}

/// Checks the text of a value for `subject` (a subsystem, `is_subsystem`, or an option).
fn check_text(text: &str, kind: &Kind, subject: &str, is_subsystem: bool) -> Result<Value, String> {
    match kind {
        Kind::Size {
            min,
            max,
            multiple_of,
        } => {
            let range = format!(
                "expected between {} and {}",
                size::format(*min),
                size::format(*max)
            );
            let bytes = size::parse(text).map_err(|error| {
                size::SIZE.message(error, text, "1 MiB", || {
                    format!("`{subject}` size is out of range; {range}")
                })
            })?;
            if bytes == 0 {
                let remove = if is_subsystem {
                    format!(", or remove `{subject}` to run without it")
                } else {
                    String::new()
                };
                return Err(format!("`{subject}` size is zero; {range}{remove}"));
            }
            if bytes < *min || bytes > *max {
                return Err(format!(
                    "`{subject}` size `{}` is out of range; {range}",
                    text.trim()
                ));
            }
            if !bytes.is_multiple_of(*multiple_of) {
                let up = bytes.div_ceil(*multiple_of) * multiple_of;
                return Err(format!(
                    "`{subject}` size `{}` is not a multiple of {}; use `\"{}\"`",
                    text.trim(),
                    size::format(*multiple_of),
                    size::format(up)
                ));
            }
            Ok(Value::Bytes(bytes))
        }
        Kind::Ipv4 { .. } if text.is_empty() => Ok(Value::Absent),
        Kind::Ipv4 { prefix, .. } => parse_ipv4(text, *prefix, subject),
        Kind::Flag { .. } => match text {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("`{subject}` is on or off")),
        },
        Kind::OneOf { ty, values } => values
            .iter()
            .find(|(written, _)| *written == text)
            .map(|(_, variant)| Value::Variant { ty, variant })
            .ok_or_else(|| {
                let names: Vec<&str> = values.iter().map(|(written, _)| *written).collect();
                format!(
                    "unknown value `{text}` for `{subject}`{}",
                    hint::suffix(text, &names)
                )
            }),
    }
}

/// `a.b.c.d` or, with `prefix`, `a.b.c.d/len`.
fn parse_ipv4(text: &str, prefix: bool, subject: &str) -> Result<Value, String> {
    let text = text.trim();
    let (address, length) = match (prefix, text.split_once('/')) {
        (true, Some((address, length))) => (address, Some(length)),
        (true, None) => {
            return Err(format!(
                "`{subject}` needs the prefix length after the address: `\"{text}/24\"`"
            ));
        }
        (false, Some((address, _))) => {
            return Err(format!(
                "`{subject}` is an address without a prefix length: `\"{address}\"`"
            ));
        }
        (false, None) => (text, None),
    };
    let octets = address
        .parse::<std::net::Ipv4Addr>()
        .map_err(|_| {
            format!("`\"{address}\"` is not an IPv4 address; write four numbers from 0 to 255, such as `\"10.0.2.15\"`")
        })?
        .octets();
    let prefix = match length {
        None => None,
        Some(length) => Some(
            length
                .parse::<u8>()
                .ok()
                .filter(|&length| (1..=32).contains(&length))
                .ok_or_else(|| {
                    format!(
                        "prefix length `/{length}` of `{subject}` is out of range; expected 1 to 32"
                    )
                })?,
        ),
    };
    Ok(Value::Ipv4 { octets, prefix })
}

/// The rules between a subsystem's options (`net` needs `ipv4` or `dhcp`, not both; the
/// gateway needs an address and lies on its network), checked once the options are.
fn option_rules(entry: &Entry, spec: &Subsystem, resolved: &Resolved, errors: &mut Errors) {
    let name = spec.name;
    let span_of = |key: &str| {
        entry
            .options
            .as_ref()
            .and_then(|options| options.entries.iter().find(|option| option.key == key))
            .map(|option| option.key.span())
    };
    let value_of = |key: &str| {
        spec.options
            .iter()
            .position(|option| option.key == key)
            .map(|index| &resolved.options[index])
    };
    let written = |key: &str| span_of(key).is_some();
    for (index, option) in spec.options.iter().enumerate() {
        match option.kind {
            Kind::Flag { conflicts } if written(option.key) => {
                for other in conflicts.iter().filter(|other| written(other)) {
                    errors.push(syn::Error::new(
                        span_of(other).expect("written"),
                        format!(
                            "`{name}` takes `{other}` or `{}`, not both; remove one",
                            option.key
                        ),
                    ));
                }
            }
            Kind::Ipv4 {
                needs,
                unless,
                within,
                example,
                ..
            } => {
                let key = option.key;
                if let Some(needed) = needs
                    && written(key)
                    && !written(needed)
                    && !unless_written(spec, needed, &written)
                {
                    errors.push(syn::Error::new(
                        span_of(key).expect("written"),
                        format!("option `{key}` of `{name}` needs `{needed}` too"),
                    ));
                }
                if let Some(flag) = unless
                    && !written(key)
                    && !written(flag)
                    && !entry.malformed
                {
                    errors.push(syn::Error::new(
                        entry.name.span(),
                        format!(
                            "`{name}` needs `{key}` or `{flag}`: write `{name}({key} = \"{example}\")` or `{name}({flag})`"
                        ),
                    ));
                }
                if let (
                    Some(network),
                    Value::Ipv4 {
                        octets: address, ..
                    },
                ) = (within, &resolved.options[index])
                    && let Some(Value::Ipv4 {
                        octets: net,
                        prefix: Some(prefix),
                    }) = value_of(network)
                {
                    let mask = u32::MAX.checked_shl(32 - u32::from(*prefix)).unwrap_or(0);
                    if u32::from_be_bytes(*address) & mask != u32::from_be_bytes(*net) & mask {
                        let [a, b, c, d] = *net;
                        errors.push(syn::Error::new(
                            span_of(key).expect("written"),
                            format!(
                                "`{key}` of `{name}` is not on the network of `{network}` ({a}.{b}.{c}.{d}/{prefix})"
                            ),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
}

/// Whether the option that may replace `key` (its `unless`) is written.
fn unless_written(spec: &Subsystem, key: &str, written: &dyn Fn(&str) -> bool) -> bool {
    spec.options.iter().any(|option| {
        option.key == key
            && matches!(option.kind, Kind::Ipv4 { unless: Some(flag), .. } if written(flag))
    })
}

fn written(values: &[(&str, &str)]) -> String {
    let names: Vec<&str> = values.iter().map(|(written, _)| *written).collect();
    hint::list(&names)
}

/// Checks `main`'s signature and matches its parameters to subsystems.
fn signature<'t>(
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
                    format!("{plain}, without `self`; it takes handles of declared subsystems"),
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
        other => (other.span(), "this item"),
    };
    syn::Error::new(
        span,
        format!("`#[unikernel]` goes on the app's `fn main`, not on {what}"),
    )
}
