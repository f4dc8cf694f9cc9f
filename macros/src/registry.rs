//! The one table of subsystems `#[unikernel(...)]` knows.
//!
//! Adding a subsystem means adding one [`Subsystem`] entry to [`SUBSYSTEMS`] (and writing its
//! lib crate with the init function the entry names); parsing, resolution and code generation
//! read everything else from here.
//!
//! # Boot order
//!
//! The order of [`SUBSYSTEMS`] IS the boot order: the generated entry initialises the
//! declared subsystems (and the dependencies added for them) in table order, whatever order
//! the attribute lists them in. It is fixed and documented so that a reader of the expansion
//! never has to guess:
//!
//! 1. `console`: first, so that every later failure can be printed;
//! 2. `heap`: before anything that allocates;
//! 3. `args`: parses the command line into allocated strings;
//! 4. `irq`: the interrupt controllers, before anything that takes interrupts;
//! 5. `timer`: the clock and one-shot timer (needs `irq`);
//! 6. `sched`: the scheduler, with the real-time tasks of the attribute (needs `timer`);
//! 7. `net`: the network device and TCP/IP stack (needs `heap`, which is a choice, and
//!    `irq` and `timer`, which are added).
//!
//! Later subsystems slot in after these: `blk`, ... A subsystem must come after
//! everything it needs (a unit test checks it).
//!
//! # Dependency policy
//!
//! A subsystem lists what it [`needs`](Subsystem::needs). When the app does not declare a
//! needed subsystem, resolution applies the policy of the *needed* one
//! ([`Subsystem::policy`]): one whose declaration involves no choice (no required value) is
//! added automatically with its defaults; one that needs a choice (the heap's size, an IP
//! address) is a compile error on the dependent that says what to write. So `sched` alone
//! boots `irq`, `timer` and `sched` (neither `irq` nor `timer` takes a value), and `task(..)`
//! without `sched` is an error: the policy (`edf` or `rm`) is a choice.
//!
//! # Values
//!
//! A choice among names is written as a name (`sched = edf`, `console(log = debug)`; the
//! same name in a string, `"debug"`, is accepted too); a quantity with a unit is a string
//! (`heap = "4 MiB"`, `period = "1 ms"`).

use crate::analysis;

/// One subsystem, as the macro sees it.
#[derive(Debug)]
pub struct Subsystem {
    /// The name written in `#[unikernel(...)]`, and the stage name passed to `mark`.
    pub name: &'static str,
    /// The type of the handle `main` may take, a re-export at the root of the `unikernel`
    /// crate (`::unikernel::Console`), or `None` for subsystems without a handle.
    pub handle: Option<&'static str>,
    /// The value written as `name = value`, if the subsystem takes one.
    pub value: Option<ValueSpec>,
    /// The options written as `name(key = value, ...)`.
    pub options: &'static [OptionSpec],
    /// The subsystems this one needs, initialised before it.
    pub needs: &'static [&'static str],
    /// The init function in `::unikernel::__private`.
    pub init: &'static str,
    /// The arguments of the init call, in order.
    pub init_args: &'static [InitArg],
    /// Whether this subsystem provides the global allocator (`__UNIKERNEL_HEAP`). When no
    /// declared subsystem does, the expansion installs `NoHeap`, which fails every
    /// allocation with a clear message.
    pub global_allocator: bool,
    /// The values of this subsystem under which it runs the periodic `task(..)` entries of
    /// the attribute, each with the schedulability analysis that checks them (empty: it
    /// runs none). At most one subsystem has any.
    pub realtime: &'static [(&'static str, analysis::Policy)],
}

/// The value of `name = value`.
#[derive(Debug)]
pub struct ValueSpec {
    /// What the value is, for messages: "a size".
    pub what: &'static str,
    /// A typical value, shown in hints: `heap = "1 MiB"`.
    pub example: &'static str,
    /// The value used when the app writes the bare name, or `None` if the app must choose.
    pub default: Option<&'static str>,
    /// How the value is checked and passed to the init call.
    pub kind: Kind,
}

/// One option key of `name(key = value, ...)`.
#[derive(Debug)]
pub struct OptionSpec {
    pub key: &'static str,
    /// The value used when the option is not written.
    pub default: &'static str,
    pub kind: Kind,
    /// The subsystem values the option means something for (`None`: all); writing it with
    /// another value is an error.
    pub applies_to: Option<&'static [&'static str]>,
}

/// How a value (or an option's value) is written and passed on.
#[derive(Debug)]
pub enum Kind {
    /// A size string such as `"1 MiB"`, passed as a `usize` count of bytes.
    Size {
        /// The smallest accepted size, in bytes.
        min: u64,
        /// The largest accepted size, in bytes.
        max: u64,
        /// Sizes must be a multiple of this many bytes.
        multiple_of: u64,
    },
    /// One name of a fixed set (`edf`, or `"edf"`), passed as
    /// `::unikernel::__private::<ty>::<variant>`.
    OneOf {
        ty: &'static str,
        /// `(written, variant)` pairs.
        values: &'static [(&'static str, &'static str)],
    },
    /// An IPv4 address in a string: `"10.0.2.2"`, or with its prefix length (`prefix`):
    /// `"10.0.2.15/24"`. Passed as `Some([10, 0, 2, 2])` / `Some(([10, 0, 2, 15], 24))`, or
    /// `None` when not written (its default is the empty string).
    Ipv4 {
        prefix: bool,
        /// A typical value, for messages.
        example: &'static str,
        /// Another option this one makes no sense without (`gateway` without `ipv4`).
        needs: Option<&'static str>,
        /// The option that may replace this one; when neither is written, it is an error
        /// (`net` needs `ipv4` or `dhcp`).
        unless: Option<&'static str>,
        /// An option holding an address with a prefix that this address must lie in
        /// (the gateway must be on the interface's network).
        within: Option<&'static str>,
    },
    /// An option written bare (`net(dhcp)`), on when written: passed as `true` or `false`
    /// (its default is `"false"`).
    Flag {
        /// Options that cannot be written with it.
        conflicts: &'static [&'static str],
    },
}

/// One argument of a subsystem's init call.
#[derive(Debug)]
pub enum InitArg {
    /// The subsystem's value (`name = value`).
    Value,
    /// The value of the option with this key, or its default.
    Option(&'static str),
    /// `&__UNIKERNEL_HEAP`, the global allocator static.
    GlobalAllocator,
    /// `&__UNIKERNEL_TASKS`, the static array of the attribute's periodic tasks.
    Tasks,
    /// `::unikernel::__private::<ty> { field: arg, .. }`.
    Config {
        ty: &'static str,
        fields: &'static [(&'static str, InitArg)],
    },
}

impl Kind {
    /// `text` as the app writes it: `"1 MiB"` for a size, `edf` for a name.
    pub fn written(&self, text: &str) -> String {
        match self {
            Kind::Size { .. } => format!("\"{text}\""),
            Kind::Ipv4 { example, .. } if text.is_empty() => format!("\"{example}\""),
            Kind::Ipv4 { .. } => format!("\"{text}\""),
            Kind::OneOf { .. } | Kind::Flag { .. } => text.to_owned(),
        }
    }
}

impl ValueSpec {
    /// `what` without its article: "size".
    pub fn noun(&self) -> &'static str {
        self.what
            .strip_prefix("an ")
            .or_else(|| self.what.strip_prefix("a "))
            .unwrap_or(self.what)
    }
}

/// What happens when a needed subsystem is not declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Added automatically, with its defaults.
    AutoAdd,
    /// A compile error saying what to write.
    Require,
}

impl Subsystem {
    /// The policy for this subsystem when another one needs it and the app did not declare
    /// it: only a subsystem whose declaration involves no choice is added automatically.
    pub fn policy(&self) -> Policy {
        match &self.value {
            Some(ValueSpec { default: None, .. }) => Policy::Require,
            _ => Policy::AutoAdd,
        }
    }

    /// How to declare this subsystem, for hints: `console`, `heap = "1 MiB"`, `net(dhcp)`.
    pub fn declaration(&self) -> String {
        let required_flag = self.options.iter().find_map(|option| match option.kind {
            Kind::Ipv4 {
                unless: Some(flag), ..
            } => Some(flag),
            _ => None,
        });
        match &self.value {
            Some(value) if value.default.is_none() => {
                format!("{} = {}", self.name, value.kind.written(value.example))
            }
            None if required_flag.is_some() => {
                format!("{}({})", self.name, required_flag.unwrap_or_default())
            }
            _ => self.name.to_owned(),
        }
    }
}

pub const KIB: u64 = 1 << 10;
pub const GIB: u64 = 1 << 30;

const LOG_LEVELS: &[(&str, &str)] = &[
    ("off", "Off"),
    ("error", "Error"),
    ("warn", "Warn"),
    ("info", "Info"),
    ("debug", "Debug"),
    ("trace", "Trace"),
];

const POLICIES: &[(&str, &str)] = &[
    ("coop", "Coop"),
    ("fixed", "Fixed"),
    ("edf", "Edf"),
    ("rm", "Rm"),
];

const ON_MISS: &[(&str, &str)] = &[("log", "Log"), ("panic", "Panic")];

/// Every subsystem, in boot order (see the module documentation).
pub static SUBSYSTEMS: &[Subsystem] = &[
    Subsystem {
        name: "console",
        handle: Some("Console"),
        value: None,
        options: &[OptionSpec {
            key: "log",
            default: "info",
            kind: Kind::OneOf {
                ty: "LevelFilter",
                values: LOG_LEVELS,
            },
            applies_to: None,
        }],
        needs: &[],
        init: "init_console",
        init_args: &[InitArg::Option("log")],
        global_allocator: false,
        realtime: &[],
    },
    Subsystem {
        name: "heap",
        handle: None,
        value: Some(ValueSpec {
            what: "a size",
            example: "1 MiB",
            default: None,
            kind: Kind::Size {
                min: 4 * KIB,
                max: 64 * GIB,
                multiple_of: 4 * KIB,
            },
        }),
        options: &[],
        needs: &[],
        init: "init_heap",
        init_args: &[InitArg::GlobalAllocator, InitArg::Value],
        global_allocator: true,
        realtime: &[],
    },
    Subsystem {
        name: "args",
        handle: Some("Args"),
        value: None,
        options: &[],
        needs: &["heap"],
        init: "init_args",
        init_args: &[],
        global_allocator: false,
        realtime: &[],
    },
    Subsystem {
        name: "irq",
        handle: Some("Irq"),
        value: None,
        options: &[],
        needs: &[],
        init: "init_irq",
        init_args: &[],
        global_allocator: false,
        realtime: &[],
    },
    Subsystem {
        name: "timer",
        handle: Some("Clock"),
        value: None,
        options: &[],
        needs: &["irq"],
        init: "init_timer",
        init_args: &[],
        global_allocator: false,
        realtime: &[],
    },
    Subsystem {
        name: "sched",
        handle: Some("Sched"),
        value: Some(ValueSpec {
            what: "a policy",
            example: "edf",
            default: Some("coop"),
            kind: Kind::OneOf {
                ty: "Policy",
                values: POLICIES,
            },
        }),
        options: &[OptionSpec {
            key: "on_miss",
            default: "log",
            kind: Kind::OneOf {
                ty: "OnMiss",
                values: ON_MISS,
            },
            applies_to: Some(&["edf", "rm"]),
        }],
        needs: &["timer"],
        init: "init_sched",
        init_args: &[InitArg::Config {
            ty: "SchedConfig",
            fields: &[
                ("policy", InitArg::Value),
                ("tasks", InitArg::Tasks),
                ("on_miss", InitArg::Option("on_miss")),
            ],
        }],
        global_allocator: false,
        realtime: &[("edf", analysis::Policy::Edf), ("rm", analysis::Policy::Rm)],
    },
    Subsystem {
        name: "net",
        handle: Some("Net"),
        value: None,
        options: &[
            OptionSpec {
                key: "ipv4",
                default: "",
                kind: Kind::Ipv4 {
                    prefix: true,
                    example: "10.0.2.15/24",
                    needs: None,
                    unless: Some("dhcp"),
                    within: None,
                },
                applies_to: None,
            },
            OptionSpec {
                key: "gateway",
                default: "",
                kind: Kind::Ipv4 {
                    prefix: false,
                    example: "10.0.2.2",
                    needs: Some("ipv4"),
                    unless: None,
                    within: Some("ipv4"),
                },
                applies_to: None,
            },
            OptionSpec {
                key: "dhcp",
                default: "false",
                kind: Kind::Flag {
                    conflicts: &["ipv4", "gateway"],
                },
                applies_to: None,
            },
        ],
        needs: &["heap", "irq", "timer"],
        init: "init_net",
        init_args: &[
            InitArg::Option("ipv4"),
            InitArg::Option("gateway"),
            InitArg::Option("dhcp"),
        ],
        global_allocator: false,
        realtime: &[],
    },
];

/// The subsystem named `name` in `table`, with its position (its boot rank).
pub fn lookup<'t>(table: &'t [Subsystem], name: &str) -> Option<(usize, &'t Subsystem)> {
    table
        .iter()
        .enumerate()
        .find(|(_, subsystem)| subsystem.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_handles_are_unique() {
        for (i, a) in SUBSYSTEMS.iter().enumerate() {
            for b in &SUBSYSTEMS[i + 1..] {
                assert_ne!(a.name, b.name);
                if a.handle.is_some() {
                    assert_ne!(a.handle, b.handle);
                }
            }
        }
    }

    #[test]
    fn every_subsystem_boots_after_what_it_needs() {
        for (rank, subsystem) in SUBSYSTEMS.iter().enumerate() {
            for need in subsystem.needs {
                let (need_rank, _) = lookup(SUBSYSTEMS, need)
                    .unwrap_or_else(|| panic!("`{}` needs unknown `{need}`", subsystem.name));
                assert!(
                    need_rank < rank,
                    "`{}` boots before `{need}`",
                    subsystem.name
                );
            }
        }
    }

    #[test]
    fn console_boots_first() {
        assert_eq!(SUBSYSTEMS[0].name, "console");
    }

    fn check_init_arg(subsystem: &Subsystem, arg: &InitArg) {
        match arg {
            InitArg::Value => assert!(subsystem.value.is_some(), "{}", subsystem.name),
            InitArg::Option(key) => {
                let mut keys = subsystem.options.iter().map(|option| option.key);
                assert!(keys.any(|k| k == *key), "{}", subsystem.name)
            }
            InitArg::GlobalAllocator => assert!(subsystem.global_allocator),
            InitArg::Tasks => assert!(!subsystem.realtime.is_empty(), "{}", subsystem.name),
            InitArg::Config { fields, .. } => {
                for (_, arg) in *fields {
                    check_init_arg(subsystem, arg);
                }
            }
        }
    }

    fn names(kind: &Kind) -> Vec<&'static str> {
        match kind {
            Kind::OneOf { values, .. } => values.iter().map(|(written, _)| *written).collect(),
            Kind::Size { .. } | Kind::Ipv4 { .. } | Kind::Flag { .. } => Vec::new(),
        }
    }

    #[test]
    fn init_args_and_defaults_are_consistent() {
        for subsystem in SUBSYSTEMS {
            for arg in subsystem.init_args {
                check_init_arg(subsystem, arg);
            }
            let values = subsystem
                .value
                .as_ref()
                .map(|v| names(&v.kind))
                .unwrap_or_default();
            for option in subsystem.options {
                if let Kind::OneOf { .. } = option.kind {
                    assert!(names(&option.kind).contains(&option.default));
                }
                for value in option.applies_to.unwrap_or_default() {
                    assert!(values.contains(value), "{}: {value}", subsystem.name);
                }
            }
            for (value, _) in subsystem.realtime {
                assert!(values.contains(value), "{}: {value}", subsystem.name);
            }
            if let Some(ValueSpec {
                default: Some(default),
                kind: kind @ Kind::OneOf { .. },
                ..
            }) = &subsystem.value
            {
                assert!(names(kind).contains(default), "{}", subsystem.name);
            }
        }
        let allocators = SUBSYSTEMS.iter().filter(|s| s.global_allocator).count();
        assert!(allocators <= 1);
        let realtime = SUBSYSTEMS.iter().filter(|s| !s.realtime.is_empty()).count();
        assert!(realtime <= 1);
    }

    #[test]
    fn sched_boots_after_timer_and_irq() {
        let names: Vec<&str> = SUBSYSTEMS.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            ["console", "heap", "args", "irq", "timer", "sched", "net"]
        );
        let sched = lookup(SUBSYSTEMS, "sched").unwrap().1;
        assert_eq!(sched.policy(), Policy::AutoAdd);
        assert_eq!(
            lookup(SUBSYSTEMS, "timer").unwrap().1.policy(),
            Policy::AutoAdd
        );
        assert_eq!(sched.value.as_ref().unwrap().kind.written("edf"), "edf");
    }

    #[test]
    fn policy_follows_from_the_value() {
        let heap = lookup(SUBSYSTEMS, "heap").unwrap().1;
        let console = lookup(SUBSYSTEMS, "console").unwrap().1;
        assert_eq!(heap.policy(), Policy::Require);
        assert_eq!(console.policy(), Policy::AutoAdd);
        assert_eq!(heap.declaration(), "heap = \"1 MiB\"");
        assert_eq!(console.declaration(), "console");
        assert_eq!(heap.value.as_ref().unwrap().noun(), "size");
        assert_eq!(
            lookup(SUBSYSTEMS, "net").unwrap().1.declaration(),
            "net(dhcp)"
        );
    }

    #[test]
    fn option_rules_name_options_of_their_subsystem() {
        for subsystem in SUBSYSTEMS {
            let keys: Vec<&str> = subsystem.options.iter().map(|o| o.key).collect();
            for option in subsystem.options {
                let named: Vec<&str> = match option.kind {
                    Kind::Ipv4 {
                        needs,
                        unless,
                        within,
                        ..
                    } => [needs, unless, within].into_iter().flatten().collect(),
                    Kind::Flag { conflicts } => conflicts.to_vec(),
                    _ => Vec::new(),
                };
                for key in named {
                    assert!(keys.contains(&key), "{}: {key}", subsystem.name);
                }
            }
        }
    }
}
