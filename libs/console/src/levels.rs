//! Log levels per module, from the value of `unikernel.log=`: directives separated by
//! commas, each a level for every module (`info`) or for one module and the modules below
//! it (`net=debug`). A module is named by its path (`smoltcp`, `unikernel_net::device`),
//! or, for the kernel's own crates, without the `unikernel_` prefix (`net` is
//! `unikernel_net`). The longest matching module decides; the last bare level, else the
//! attribute's `log = "..."`, is the default. Read in place: no copy, no allocation.

use log::LevelFilter;

/// The levels of one `unikernel.log=` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogLevels<'a> {
    spec: &'a str,
    default: LevelFilter,
}

/// What the kernel's own crates are called, before the subsystem's name.
const KERNEL_CRATE_PREFIX: &str = "unikernel_";

impl<'a> LogLevels<'a> {
    /// The levels of `spec`, with `default` where it names no level for everything.
    pub fn new(spec: &'a str, default: LevelFilter) -> Self {
        Self { spec, default }
    }

    /// The valid directives: (module, level), module `None` for a bare level.
    fn directives(&self) -> impl Iterator<Item = (Option<&'a str>, LevelFilter)> + use<'a> {
        self.spec
            .split_terminator(',')
            .filter(|directive| !directive.is_empty())
            .filter_map(|directive| parse(directive).ok())
    }

    /// The directives that are neither `<level>` nor `<module>=<level>`.
    pub fn invalid(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        self.spec
            .split(',')
            .filter(|directive| !directive.is_empty() && parse(directive).is_err())
    }

    fn fallback(&self) -> LevelFilter {
        self.directives()
            .filter(|(module, _)| module.is_none())
            .last()
            .map_or(self.default, |(_, level)| level)
    }

    /// The level for records of `target` (a module path).
    pub fn level_for(&self, target: &str) -> LevelFilter {
        let mut best: Option<(usize, LevelFilter)> = None;
        for (module, level) in self.directives() {
            if let Some(module) = module
                && covers(module, target)
                && best.is_none_or(|(length, _)| module.len() >= length)
            {
                best = Some((module.len(), level));
            }
        }
        best.map_or_else(|| self.fallback(), |(_, level)| level)
    }

    /// The most verbose level of any module: what `log::set_max_level` gets, so that
    /// records no module wants cost nothing.
    pub fn max(&self) -> LevelFilter {
        self.directives()
            .map(|(_, level)| level)
            .fold(self.fallback(), Ord::max)
    }
}

fn parse(directive: &str) -> Result<(Option<&str>, LevelFilter), ()> {
    match directive.split_once('=') {
        Some((module, level)) if !module.is_empty() => {
            Ok((Some(module), level.parse().map_err(drop)?))
        }
        Some(_) => Err(()),
        None => Ok((None, directive.parse().map_err(drop)?)),
    }
}

/// Whether `module` is `target` or one of its parents, also with the kernel's crate prefix.
fn covers(module: &str, target: &str) -> bool {
    let below = |target: &str| {
        target
            .strip_prefix(module)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    };
    below(target) || target.strip_prefix(KERNEL_CRATE_PREFIX).is_some_and(below)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use LevelFilter::{Debug, Info, Off, Trace, Warn};

    #[test]
    fn one_level_for_everything() {
        let levels = LogLevels::new("debug", Info);
        assert_eq!(levels.level_for("unikernel_net"), Debug);
        assert_eq!(levels.max(), Debug);
        let unset = LogLevels::new("", Warn);
        assert_eq!(unset.level_for("hello"), Warn);
        assert_eq!(unset.max(), Warn);
        assert_eq!(unset.invalid().count(), 0);
    }

    #[test]
    fn modules_by_path_and_by_subsystem_name() {
        let levels = LogLevels::new("net=debug,info", Warn);
        assert_eq!(levels.level_for("unikernel_net"), Debug);
        assert_eq!(levels.level_for("unikernel_net::device"), Debug);
        assert_eq!(levels.level_for("net"), Debug);
        assert_eq!(levels.level_for("network"), Info);
        assert_eq!(levels.level_for("unikernel_network"), Info);
        assert_eq!(levels.level_for("smoltcp::iface"), Info);
        assert_eq!(levels.max(), Debug);
    }

    #[test]
    fn the_longest_module_decides() {
        let levels = LogLevels::new("smoltcp=warn,smoltcp::iface=trace,off", Info);
        assert_eq!(levels.level_for("smoltcp::iface::interface"), Trace);
        assert_eq!(levels.level_for("smoltcp::socket"), Warn);
        assert_eq!(levels.level_for("hello"), Off);
        assert_eq!(levels.max(), Trace);
    }

    #[test]
    fn bad_directives_are_named_and_skipped() {
        let levels = LogLevels::new("net=loud,=debug,chatty,clock=debug", Info);
        assert_eq!(
            levels.invalid().collect::<std::vec::Vec<_>>(),
            ["net=loud", "=debug", "chatty"]
        );
        assert_eq!(levels.level_for("unikernel_net"), Info);
        assert_eq!(levels.level_for("unikernel_clock"), Debug);
    }
}
