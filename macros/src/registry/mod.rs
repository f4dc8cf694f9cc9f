//! The one table of subsystems `#[unikernel(...)]` knows.
//!
//! Adding a subsystem means adding one [`Subsystem`] entry to [`SUBSYSTEMS`] (with, if its
//! options have rules between them, its validator function), writing its lib crate, and
//! the init function the entry names in the facade's `__private`; parsing, resolution and
//! code generation read everything else from here. `macros/README.md` lists the steps.
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
//! 5. `clock`: the clock and one-shot timer (needs `irq`);
//! 6. `sched`: the scheduler, with the real-time tasks of the attribute (needs `clock`);
//! 7. `rand`: the random-number generator, seeded from the CPU and the VMM;
//! 8. `net`: the network device and TCP/IP stack (needs `heap`, which is a choice, and
//!    `irq`, `clock` and `rand`, which are added);
//! 9. `fs`: read-only files from the initrd the VMM loaded (needs `heap`, for its index);
//! 10. `disk`: a FAT file system on the VMM's virtio-blk device (needs `heap`; adds `irq`);
//! 11. `function`: the request channel of a function image (needs `heap`), last so that it
//!     can hook into `rand` and `clock` when they boot (reseeding and setting the wall clock
//!     before each request).
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
//! address) is a compile error on the dependent that says what to write.
//!
//! # Wiring
//!
//! An entry's init call takes the handles of what it needs ([`InitArg::Handle`]), and the
//! calls in [`Subsystem::then`] hand hooks from one subsystem to another, so that the
//! generated boot function shows every dependency and every hook. So `sched` alone
//! boots `irq`, `clock` and `sched` (neither `irq` nor `clock` takes a value), and `task(..)`
//! without `sched` is an error: the policy (`edf` or `rm`) is a choice.
//!
//! # Values
//!
//! A choice among names is written as a name (`sched = edf`, `console(log = debug)`; the
//! same name in a string, `"debug"`, is accepted too); a quantity with a unit is a string
//! (`heap = "4 MiB"`, `period = "1 ms"`).

use crate::analysis;
pub use crate::value::Kind;

mod net;
mod spec;

pub use spec::{Call, Declared, InitArg, OptionSpec, Policy, Subsystem, ValueSpec};

/// The validator of a subsystem without rules between its options.
fn no_rules(_: &Declared) -> Vec<syn::Error> {
    Vec::new()
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
/// The most CPUs `sched(cpus = N)` accepts.
const MAX_CPUS: u16 = 64;

/// Names subsystems had before, with the name to write now: `timer` is `clock`.
pub const RENAMED: &[(&str, &str)] = &[("timer", "clock")];

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
        declare_as: None,
        validate: no_rules,
        needs: &[],
        init: "init_console",
        init_args: &[InitArg::Option("log")],
        then: &[],
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
        declare_as: None,
        validate: no_rules,
        needs: &[],
        init: "init_heap",
        init_args: &[InitArg::GlobalAllocator, InitArg::Value],
        then: &[],
        global_allocator: true,
        realtime: &[],
    },
    Subsystem {
        name: "args",
        handle: Some("Args"),
        value: None,
        options: &[],
        declare_as: None,
        validate: no_rules,
        needs: &["heap"],
        init: "init_args",
        init_args: &[],
        then: &[],
        global_allocator: false,
        realtime: &[],
    },
    Subsystem {
        name: "irq",
        handle: Some("Irq"),
        value: None,
        options: &[],
        declare_as: None,
        validate: no_rules,
        needs: &[],
        init: "init_irq",
        init_args: &[],
        then: &[],
        global_allocator: false,
        realtime: &[],
    },
    Subsystem {
        name: "clock",
        handle: Some("Clock"),
        value: None,
        options: &[],
        declare_as: None,
        validate: no_rules,
        needs: &["irq"],
        init: "init_clock",
        init_args: &[InitArg::Handle("irq")],
        then: &[],
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
        options: &[
            OptionSpec {
                key: "on_miss",
                default: "log",
                kind: Kind::OneOf {
                    ty: "OnMiss",
                    values: ON_MISS,
                },
                applies_to: Some(&["edf", "rm"]),
            },
            OptionSpec {
                key: "cpus",
                default: "1",
                kind: Kind::Count {
                    min: 1,
                    max: MAX_CPUS,
                },
                applies_to: None,
            },
        ],
        declare_as: None,
        validate: no_rules,
        needs: &["clock"],
        init: "init_sched",
        init_args: &[
            InitArg::Handle("clock"),
            InitArg::Config {
                ty: "SchedConfig",
                fields: &[
                    ("policy", InitArg::Value),
                    ("tasks", InitArg::Tasks),
                    ("on_miss", InitArg::Option("on_miss")),
                    ("cpus", InitArg::Option("cpus")),
                ],
            },
        ],
        then: &[
            Call {
                function: "hook_clock_to_sched",
                args: &[InitArg::Handle("clock"), InitArg::Handle("sched")],
                only_with: &[],
            },
            Call {
                function: "hook_interrupts_to_sched",
                args: &[InitArg::Handle("sched")],
                only_with: &[],
            },
            Call {
                function: "hook_waits_to_sched",
                args: &[InitArg::Handle("sched")],
                only_with: &[],
            },
            Call {
                function: "start_sched",
                args: &[InitArg::Handle("sched")],
                only_with: &[],
            },
        ],
        global_allocator: false,
        realtime: &[("edf", analysis::Policy::Edf), ("rm", analysis::Policy::Rm)],
    },
    Subsystem {
        name: "rand",
        handle: Some("Rand"),
        value: None,
        options: &[],
        declare_as: None,
        validate: no_rules,
        needs: &[],
        init: "init_rand",
        init_args: &[],
        then: &[],
        global_allocator: false,
        realtime: &[],
    },
    Subsystem {
        name: "net",
        handle: Some("Net"),
        value: None,
        options: net::OPTIONS,
        declare_as: Some("net(dhcp)"),
        validate: net::validate,
        needs: &["heap", "irq", "clock", "rand"],
        init: "init_net",
        init_args: &[
            InitArg::Handle("irq"),
            InitArg::Handle("clock"),
            InitArg::Handle("rand"),
            InitArg::Build(net::config),
        ],
        then: &[],
        global_allocator: false,
        realtime: &[],
    },
    Subsystem {
        name: "fs",
        handle: Some("Fs"),
        value: None,
        options: &[],
        declare_as: None,
        validate: no_rules,
        needs: &["heap"],
        init: "init_fs",
        init_args: &[],
        then: &[],
        global_allocator: false,
        realtime: &[],
    },
    Subsystem {
        name: "disk",
        handle: Some("Disk"),
        value: None,
        options: &[],
        declare_as: None,
        validate: no_rules,
        needs: &["heap", "irq"],
        init: "init_disk",
        init_args: &[InitArg::Handle("irq")],
        then: &[],
        global_allocator: false,
        realtime: &[],
    },
    Subsystem {
        name: "function",
        handle: Some("Function"),
        value: None,
        options: &[OptionSpec {
            key: "max_request",
            default: "1 MiB",
            kind: Kind::Size {
                min: 4 * KIB,
                max: GIB,
                multiple_of: 1,
            },
            applies_to: None,
        }],
        declare_as: None,
        validate: no_rules,
        needs: &["heap"],
        init: "init_function",
        init_args: &[InitArg::Option("max_request")],
        then: &[
            Call {
                function: "hook_rand_to_function",
                args: &[InitArg::Handle("rand"), InitArg::Handle("function")],
                only_with: &["rand"],
            },
            Call {
                function: "hook_clock_to_function",
                args: &[InitArg::Handle("clock"), InitArg::Handle("function")],
                only_with: &["clock"],
            },
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
        for (old, new) in RENAMED {
            assert!(lookup(SUBSYSTEMS, old).is_none(), "`{old}` is still a name");
            assert!(lookup(SUBSYSTEMS, new).is_some(), "`{new}` is not a name");
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
        check_arg(subsystem, arg, &[]);
    }

    /// `also`: subsystems whose handles the call may take besides those it needs (a
    /// [`Call::only_with`]).
    fn check_arg(subsystem: &Subsystem, arg: &InitArg, also: &[&str]) {
        match arg {
            InitArg::Value => assert!(subsystem.value.is_some(), "{}", subsystem.name),
            InitArg::Option(key) => {
                let mut keys = subsystem.options.iter().map(|option| option.key);
                assert!(keys.any(|k| k == *key), "{}", subsystem.name)
            }
            InitArg::Handle(name) => {
                let (_, needed) = lookup(SUBSYSTEMS, name).expect("a subsystem");
                assert!(needed.handle.is_some(), "`{name}` has no handle");
                assert!(
                    *name == subsystem.name
                        || subsystem.needs.contains(name)
                        || also.contains(name),
                    "`{}` takes the handle of `{name}` without needing it",
                    subsystem.name
                );
            }
            InitArg::GlobalAllocator => assert!(subsystem.global_allocator),
            InitArg::Tasks => assert!(!subsystem.realtime.is_empty(), "{}", subsystem.name),
            InitArg::Config { fields, .. } => {
                for (_, arg) in *fields {
                    check_init_arg(subsystem, arg);
                }
            }
            InitArg::Build(_) => {}
        }
    }

    #[test]
    fn init_args_and_defaults_are_consistent() {
        for subsystem in SUBSYSTEMS {
            for arg in subsystem.init_args {
                assert!(
                    !matches!(arg, InitArg::Handle(name) if *name == subsystem.name),
                    "`{}`'s init takes its own handle",
                    subsystem.name
                );
                check_init_arg(subsystem, arg);
            }
            for call in subsystem.then {
                for arg in call.args {
                    check_arg(subsystem, arg, call.only_with);
                }
                for other in call.only_with {
                    let (rank, _) = lookup(SUBSYSTEMS, other).expect("a subsystem");
                    let (own, _) = lookup(SUBSYSTEMS, subsystem.name).expect("itself");
                    assert!(
                        rank < own,
                        "`{}` hooks `{other}`, which boots later",
                        subsystem.name
                    );
                }
            }
            let values = subsystem
                .value
                .as_ref()
                .map(|v| v.kind.names())
                .unwrap_or_default();
            for option in subsystem.options {
                if let Kind::OneOf { .. } = option.kind {
                    assert!(option.kind.names().contains(&option.default));
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
                assert!(kind.names().contains(default), "{}", subsystem.name);
            }
        }
        let allocators = SUBSYSTEMS.iter().filter(|s| s.global_allocator).count();
        assert!(allocators <= 1);
        let realtime = SUBSYSTEMS.iter().filter(|s| !s.realtime.is_empty()).count();
        assert!(realtime <= 1);
    }

    #[test]
    fn sched_boots_after_clock_and_irq() {
        let rank = |name| lookup(SUBSYSTEMS, name).expect("in the table").0;
        assert!(rank("irq") < rank("clock") && rank("clock") < rank("sched"));
        assert!(rank("heap") < rank("args") && rank("clock") < rank("net"));
        assert!(rank("rand") < rank("net"));
        assert_eq!(
            lookup(SUBSYSTEMS, "rand").unwrap().1.policy(),
            Policy::AutoAdd
        );
        let sched = lookup(SUBSYSTEMS, "sched").unwrap().1;
        assert_eq!(sched.policy(), Policy::AutoAdd);
        assert_eq!(
            lookup(SUBSYSTEMS, "clock").unwrap().1.policy(),
            Policy::AutoAdd
        );
        assert_eq!(sched.value.as_ref().unwrap().kind.written("edf"), "edf");
    }

    #[test]
    fn policy_follows_from_the_choice() {
        let heap = lookup(SUBSYSTEMS, "heap").unwrap().1;
        let console = lookup(SUBSYSTEMS, "console").unwrap().1;
        let net = lookup(SUBSYSTEMS, "net").unwrap().1;
        assert_eq!(heap.policy(), Policy::Require);
        assert_eq!(console.policy(), Policy::AutoAdd);
        assert_eq!(net.policy(), Policy::Require);
        assert_eq!(heap.declaration(), "heap = \"1 MiB\"");
        assert_eq!(console.declaration(), "console");
        assert_eq!(heap.value.as_ref().unwrap().noun(), "size");
        assert_eq!(net.declaration(), "net(dhcp)");
    }
}
