//! The shape of a registry entry: what the macro knows about a subsystem, and what an
//! entry's validator and builders see of a declaration.

use proc_macro2::{Span, TokenStream};

use crate::analysis;
use crate::value::{Kind, Value};

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
    /// How to declare it when its options hold a choice (`net(dhcp)`): such a subsystem is
    /// never added for another one.
    pub declare_as: Option<&'static str>,
    /// The rules between its options, checked once each option's value is; returns the
    /// errors, each at the token that breaks a rule.
    pub validate: fn(&Declared) -> Vec<syn::Error>,
    /// The subsystems this one needs, initialised before it.
    pub needs: &'static [&'static str],
    /// The init function in `::unikernel::__private`.
    pub init: &'static str,
    /// The arguments of the init call, in order.
    pub init_args: &'static [InitArg],
    /// Calls made right after the init call, in order: the hooks it hands to the
    /// subsystems it needs, and its start.
    pub then: &'static [Call],
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
    /// How the value is written and passed to the init call.
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

/// One argument of a generated call.
#[derive(Debug)]
pub enum InitArg {
    /// The subsystem's value (`name = value`).
    Value,
    /// The value of the option with this key, or its default.
    Option(&'static str),
    /// `&__unikernel_<name>`: the handle of a subsystem this one needs (or its own, in
    /// [`Subsystem::then`]).
    Handle(&'static str),
    /// `&__UNIKERNEL_HEAP`, the global allocator static.
    GlobalAllocator,
    /// `&__UNIKERNEL_TASKS`, the static array of the attribute's periodic tasks.
    Tasks,
    /// `::unikernel::__private::<ty> { field: arg, .. }`.
    Config {
        ty: &'static str,
        fields: &'static [(&'static str, InitArg)],
    },
    /// A value the entry builds from its options (`NetConfig::Static { .. }`).
    Build(fn(&Declared) -> TokenStream),
}

/// `::unikernel::__private::<function>(<args>);`
#[derive(Debug)]
pub struct Call {
    pub function: &'static str,
    pub args: &'static [InitArg],
    /// The call is made only when these subsystems boot too (declared or added), and may
    /// take their handles: a hook into a subsystem that is not needed (`function`'s into
    /// `rand`, which reseeds it when the app declares `rand`).
    pub only_with: &'static [&'static str],
}

/// A declared subsystem's options, as its validator and builders see them: each one's
/// checked value (or default), and where it was written.
#[derive(Debug)]
pub struct Declared<'a> {
    /// Where the subsystem's name is written.
    pub name: Span,
    pub spec: &'a Subsystem,
    /// The value of each option, in the order of `spec.options`.
    pub values: &'a [Value],
    /// Where each option's key is written, in the same order; `None` when it is not.
    pub spans: Vec<Option<Span>>,
}

impl Declared<'_> {
    /// The value of option `key` (its default when not written).
    pub fn value(&self, key: &str) -> &Value {
        let index = self.index(key);
        &self.values[index]
    }

    /// Where option `key` is written, if it is.
    pub fn span(&self, key: &str) -> Option<Span> {
        self.spans.get(self.index(key)).copied().flatten()
    }

    fn index(&self, key: &str) -> usize {
        self.spec
            .options
            .iter()
            .position(|option| option.key == key)
            .unwrap_or_else(|| panic!("registry: `{}` has no option `{key}`", self.spec.name))
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
            _ if self.declare_as.is_some() => Policy::Require,
            _ => Policy::AutoAdd,
        }
    }

    /// How to declare this subsystem, for hints: `console`, `heap = "1 MiB"`, `net(dhcp)`.
    pub fn declaration(&self) -> String {
        match (&self.value, self.declare_as) {
            (Some(value), _) if value.default.is_none() => {
                format!("{} = {}", self.name, value.kind.written(value.example))
            }
            (_, Some(declaration)) => declaration.to_owned(),
            _ => self.name.to_owned(),
        }
    }
}
