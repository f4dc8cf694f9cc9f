//! Partitioned scheduling on several CPUs: every task runs on one CPU only, and each CPU
//! schedules its own tasks with the app's policy, so each CPU's set is checked with the
//! exact one-processor test of that policy ([`super::check`]).
//!
//! The placement: tasks pinned with `cpu = k` go to their CPU first; each CPU's pinned set
//! must pass on its own (nothing placed later can help it). The free tasks are then placed
//! first-fit decreasing: by utilisation `C/T`, largest first (ties: shorter deadline, then
//! declaration order), each on the lowest-numbered CPU whose set still passes the exact test
//! with it added. A CPU where the test cannot decide (a limit of the analysis) does not
//! admit the task. Bin packing is NP-hard and first-fit decreasing is a heuristic: a set it
//! rejects may still have a partition, which pinning can then state.
//!
//! With one CPU this is exactly the one-processor check, with its messages.

use std::cmp::Ordering;
use std::fmt;

use super::{Policy, Proof, Task, Unschedulable, Utilisation, check, percent, task_percent};
use crate::analysis::big::Big;

/// An accepted placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// The CPU of every task, indexed like the tasks.
    pub cpu_of: Vec<u16>,
    /// Per CPU: its tasks (indices, in declaration order) and why they are schedulable.
    pub cpus: Vec<(Vec<usize>, Proof)>,
}

/// Why no placement was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unpartitionable<'a> {
    /// One CPU: the one-processor verdict, as is.
    Single(Unschedulable<'a>),
    /// The tasks pinned to one CPU fail its test on their own.
    PinnedOverload {
        /// The failing CPU's verdict (its tasks indexed as in `on_cpu[cpu]`).
        verdict: Unschedulable<'a>,
        /// Every task, and every CPU's pinned tasks.
        tasks: Vec<Task<'a>>,
        on_cpu: Vec<Vec<usize>>,
        /// The task to point at: the one the test blames, or the last pinned there.
        blame: usize,
    },
    /// A free task fits on no CPU.
    NoFit {
        policy: Policy,
        task: usize,
        tasks: Vec<Task<'a>>,
        /// The tasks on each CPU when `task` was tried, and which were pinned.
        on_cpu: Vec<Vec<usize>>,
        pinned: Vec<bool>,
        /// Per CPU, the verdict on its set with `task` added.
        refusals: Vec<Unschedulable<'a>>,
    },
}

/// Places `tasks` on `cpus` CPUs (`pinned[i]`: the CPU written for task `i`, each below
/// `cpus`), each CPU checked under `policy`.
pub fn partition<'a>(
    policy: Policy,
    tasks: &[Task<'a>],
    pinned: &[Option<u16>],
    cpus: u16,
) -> Result<Partition, Box<Unpartitionable<'a>>> {
    assert_eq!(tasks.len(), pinned.len(), "a pin (or none) per task");
    assert!(
        pinned.iter().flatten().all(|&cpu| cpu < cpus),
        "pins are checked against the CPU count first"
    );
    let check_on = |set: &[usize]| {
        let subset: Vec<Task<'a>> = set.iter().map(|&i| tasks[i]).collect();
        check(policy, &subset)
    };
    if cpus <= 1 {
        return match check(policy, tasks) {
            Ok(proof) => Ok(Partition {
                cpu_of: vec![0; tasks.len()],
                cpus: vec![((0..tasks.len()).collect(), proof)],
            }),
            Err(verdict) => Err(Box::new(Unpartitionable::Single(verdict))),
        };
    }

    let mut on_cpu: Vec<Vec<usize>> = vec![Vec::new(); usize::from(cpus)];
    for (i, cpu) in pinned.iter().enumerate() {
        if let Some(cpu) = cpu {
            on_cpu[usize::from(*cpu)].push(i);
        }
    }
    for (cpu, set) in on_cpu.iter().enumerate() {
        if let Err(mut verdict) = check_on(set) {
            verdict.cpu = Some(u16::try_from(cpu).expect("cpus is a u16"));
            let blame = match verdict.blame() {
                Some(local) => set[local],
                None => *set.last().expect("an empty set is schedulable"),
            };
            return Err(Box::new(Unpartitionable::PinnedOverload {
                verdict,
                tasks: tasks.to_vec(),
                on_cpu,
                blame,
            }));
        }
    }

    let mut free: Vec<usize> = (0..tasks.len()).filter(|&i| pinned[i].is_none()).collect();
    free.sort_by(|&a, &b| decreasing_utilisation(&tasks[a], &tasks[b]).then(a.cmp(&b)));
    for task in free {
        let mut refusals = Vec::new();
        let mut placed = false;
        for (cpu, set) in on_cpu.iter_mut().enumerate() {
            let mut with = set.clone();
            with.push(task);
            with.sort_unstable();
            match check_on(&with) {
                Ok(_) => {
                    *set = with;
                    placed = true;
                    break;
                }
                Err(mut verdict) => {
                    verdict.cpu = Some(u16::try_from(cpu).expect("cpus is a u16"));
                    refusals.push(verdict);
                }
            }
        }
        if !placed {
            return Err(Box::new(Unpartitionable::NoFit {
                policy,
                task,
                tasks: tasks.to_vec(),
                on_cpu,
                pinned: pinned.iter().map(Option::is_some).collect(),
                refusals,
            }));
        }
    }

    let mut cpu_of = vec![0u16; tasks.len()];
    let mut proven = Vec::with_capacity(on_cpu.len());
    for (cpu, set) in on_cpu.into_iter().enumerate() {
        for &i in &set {
            cpu_of[i] = u16::try_from(cpu).expect("cpus is a u16");
        }
        let proof = check_on(&set).expect("every CPU's set passed when its last task was added");
        proven.push((set, proof));
    }
    Ok(Partition {
        cpu_of,
        cpus: proven,
    })
}

/// First-fit decreasing's order: larger `C/T` first (compared exactly, `C_a·T_b` against
/// `C_b·T_a`), then the shorter deadline.
fn decreasing_utilisation(a: &Task, b: &Task) -> Ordering {
    let a_share = u128::from(a.wcet) * u128::from(b.period);
    let b_share = u128::from(b.wcet) * u128::from(a.period);
    b_share.cmp(&a_share).then(a.deadline.cmp(&b.deadline))
}

impl Partition {
    /// The placement in one line, `cpu 0: a, b; cpu 1: c` (`cpu 1: -` for an idle CPU).
    pub fn placement(&self, tasks: &[Task]) -> String {
        self.cpus
            .iter()
            .enumerate()
            .map(|(cpu, (set, _))| format!("cpu {cpu}: {}", names(tasks, set)))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Why the placement is schedulable, one line per CPU (a single line for one CPU).
    pub fn summary(&self, policy: Policy, tasks: &[Task]) -> Vec<String> {
        if let [(_, proof)] = self.cpus.as_slice() {
            return vec![proof.summary(policy, tasks)];
        }
        let mut lines = vec![format!(
            "partitioned onto {} CPUs by first-fit decreasing utilisation, each CPU's tasks \
             checked on their own",
            self.cpus.len()
        )];
        for (cpu, (set, proof)) in self.cpus.iter().enumerate() {
            let subset: Vec<Task> = set.iter().map(|&i| tasks[i]).collect();
            lines.push(if set.is_empty() {
                format!("cpu {cpu}: no tasks")
            } else {
                format!(
                    "cpu {cpu}: {}: {}",
                    names(tasks, set),
                    proof.summary(policy, &subset)
                )
            });
        }
        lines
    }
}

fn names(tasks: &[Task], set: &[usize]) -> String {
    if set.is_empty() {
        return "-".to_owned();
    }
    let names: Vec<&str> = set.iter().map(|&i| tasks[i].name).collect();
    names.join(", ")
}

impl Unpartitionable<'_> {
    /// The task the error points at, if one is to blame (else the scheduler is).
    pub fn blame(&self) -> Option<usize> {
        match self {
            Unpartitionable::Single(verdict) => verdict.blame(),
            Unpartitionable::PinnedOverload { blame, .. } => Some(*blame),
            Unpartitionable::NoFit { task, .. } => Some(*task),
        }
    }
}

/// `a 60.0%, b 30.0% (pinned) (total 90.0%)`: a CPU's tasks and its utilisation.
fn cpu_line(tasks: &[Task], set: &[usize], pinned: &dyn Fn(usize) -> bool) -> String {
    let subset: Vec<Task> = set.iter().map(|&i| tasks[i]).collect();
    let utilisation = Utilisation::of(&subset).percent();
    if set.is_empty() {
        return "no tasks (total 0.0%)".to_owned();
    }
    let shares: Vec<String> = set
        .iter()
        .map(|&i| {
            let mark = if pinned(i) { " (pinned)" } else { "" };
            format!("{} {}{mark}", tasks[i].name, task_percent(&tasks[i]))
        })
        .collect();
    format!("{} (total {utilisation})", shares.join(", "))
}

/// The headline of a one-CPU verdict without its subject: what failed.
fn failing_point(verdict: &Unschedulable) -> String {
    let text = verdict.to_string();
    let headline = text.lines().next().unwrap_or_default();
    let what = headline.split_once(": ").map_or(headline, |(_, what)| what);
    if verdict.undecided() {
        format!("cannot decide: {what}")
    } else {
        what.to_owned()
    }
}

/// `Σ C_i/T_i` of all tasks against the CPU count, exactly.
fn total(tasks: &[Task], cpus: usize) -> String {
    let utilisation = Utilisation::of(tasks);
    let capacity = Big::from(u128::try_from(cpus).expect("cpus fits")).mul(&utilisation.den);
    let relation = match utilisation.num.cmp(&capacity) {
        Ordering::Greater => ">",
        _ => "<=",
    };
    format!(
        "total utilisation {} {relation} {}% ({cpus} CPUs)",
        percent(&utilisation.num, &utilisation.den),
        cpus * 100
    )
}

impl fmt::Display for Unpartitionable<'_> {
    /// The compile error: a headline, then each CPU's numbers, one line each.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unpartitionable::Single(verdict) => write!(f, "{verdict}"),
            Unpartitionable::PinnedOverload {
                verdict,
                tasks,
                on_cpu,
                ..
            } => {
                // The one-CPU message, then the other CPUs' pinned tasks for context.
                write!(f, "{verdict}")?;
                let failing = verdict.cpu.map(usize::from);
                for (cpu, set) in on_cpu.iter().enumerate() {
                    if Some(cpu) != failing {
                        write!(f, "\n  cpu {cpu}: {}", cpu_line(tasks, set, &|_| false))?;
                    }
                }
                write!(
                    f,
                    "\n  tasks pinned with `cpu = k` stay on their CPU: move one to another CPU, \
                     or leave out its `cpu` to let the macro place it"
                )
            }
            Unpartitionable::NoFit {
                policy,
                task,
                tasks,
                on_cpu,
                pinned,
                refusals,
            } => {
                let cpus = on_cpu.len();
                let failing = &tasks[*task];
                write!(
                    f,
                    "task set cannot be partitioned onto {cpus} CPUs under {}: `{}` ({}) fits on \
                     no CPU",
                    policy.name(),
                    failing.name,
                    task_percent(failing),
                )?;
                for (cpu, (set, refusal)) in on_cpu.iter().zip(refusals).enumerate() {
                    write!(
                        f,
                        "\n  cpu {cpu}: {}; adding `{}`: {}",
                        cpu_line(tasks, set, &|i| pinned[i]),
                        failing.name,
                        failing_point(refusal)
                    )?;
                }
                let placed: Vec<usize> = on_cpu.iter().flatten().copied().collect();
                let unplaced: Vec<&str> = (0..tasks.len())
                    .filter(|i| !placed.contains(i) && i != task)
                    .map(|i| tasks[i].name)
                    .collect();
                if !unplaced.is_empty() {
                    write!(f, "\n  not placed yet: {}", unplaced.join(", "))?;
                }
                write!(
                    f,
                    "\n  {}; tasks are placed by first-fit decreasing utilisation and each runs \
                     on one CPU only",
                    total(tasks, cpus)
                )?;
                let more = if cpus < 64 {
                    format!(
                        "declare more CPUs (`sched = {}(cpus = {})`), ",
                        policy.name().to_lowercase(),
                        cpus + 1
                    )
                } else {
                    String::new()
                };
                write!(
                    f,
                    "\n  {more}shorten a `wcet`, or pin tasks with `cpu = k` if you know a \
                     placement that fits"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Textbook multiprocessor cases, worked out by hand above each test; times in ms.

    use proptest::prelude::*;

    use super::*;
    use crate::analysis::Reason;

    const MS: u64 = 1_000_000;

    fn task(name: &'static str, wcet: u64, period: u64) -> Task<'static> {
        Task::new(name, wcet * MS, period * MS)
    }

    fn free(n: usize) -> Vec<Option<u16>> {
        vec![None; n]
    }

    /// Three tasks of utilisation 0.6 on 2 CPUs: the total, 1.8, is below the capacity of 2,
    /// yet any two of them on one CPU make 1.2 > 1, and there are 3 tasks for 2 CPUs. No
    /// partition exists, under either policy.
    #[test]
    fn three_tasks_of_sixty_percent_do_not_fit_two_cpus() {
        let tasks = [task("a", 6, 10), task("b", 6, 10), task("c", 6, 10)];
        for policy in [Policy::Edf, Policy::Rm] {
            let error = partition(policy, &tasks, &free(3), 2).unwrap_err();
            let Unpartitionable::NoFit {
                task,
                on_cpu,
                refusals,
                ..
            } = &*error
            else {
                panic!("expected NoFit, got {error:?}");
            };
            assert_eq!(*task, 2);
            assert_eq!(on_cpu, &[vec![0], vec![1]]);
            assert!(refusals.iter().all(|r| r.reason == Reason::Overloaded));
            assert_eq!(error.blame(), Some(2));
        }
        let error = partition(Policy::Edf, &tasks, &free(3), 2).unwrap_err();
        assert_eq!(
            error.to_string(),
            "task set cannot be partitioned onto 2 CPUs under EDF: `c` (60.0%) fits on no CPU\n  \
             cpu 0: a 60.0% (total 60.0%); adding `c`: total utilisation 120.0% > 100%\n  \
             cpu 1: b 60.0% (total 60.0%); adding `c`: total utilisation 120.0% > 100%\n  \
             total utilisation 180.0% <= 200% (2 CPUs); tasks are placed by first-fit \
             decreasing utilisation and each runs on one CPU only\n  \
             declare more CPUs (`sched = edf(cpus = 3)`), shorten a `wcet`, or pin tasks with \
             `cpu = k` if you know a placement that fits"
        );
        // A third CPU holds them.
        let three = partition(Policy::Edf, &tasks, &free(3), 3).unwrap();
        assert_eq!(three.cpu_of, [0, 1, 2]);
    }

    /// Dhall's effect (Dhall & Liu 1978): on m = 2 CPUs, two light tasks (C 20, T 100: 20%)
    /// and a heavy one (C 1000, T 1010: 99.0%), in ns. Global EDF releases all at 0 and runs
    /// the two light jobs first (deadline 100 < 1010) on both CPUs; the heavy job starts at
    /// 20 and ends at 1020 > 1010: a miss at a total utilisation of 1.39 out of 2.
    /// Partitioning puts the heavy task alone on cpu 0 (placed first, largest utilisation)
    /// and the light ones on cpu 1 (99.0% + 20% > 100% on cpu 0), where each CPU meets
    /// every deadline.
    #[test]
    fn partitioning_avoids_dhalls_effect() {
        let tasks = [
            Task::new("light_a", 20, 100),
            Task::new("light_b", 20, 100),
            Task::new("heavy", 1000, 1010),
        ];
        for policy in [Policy::Edf, Policy::Rm] {
            let placed = partition(policy, &tasks, &free(3), 2).unwrap();
            assert_eq!(placed.cpu_of, [1, 1, 0]);
            assert_eq!(
                placed.placement(&tasks),
                "cpu 0: heavy; cpu 1: light_a, light_b"
            );
        }
    }

    /// Utilisations 0.5, 0.3, 0.7, 0.5 on 2 CPUs (total 2.0). First fit in declaration
    /// order: a (0.5) and b (0.8) on cpu 0, c (0.7) on cpu 1, then d needs 1.3 or 1.2: no
    /// fit. First-fit decreasing: c (0.7) on cpu 0, a on cpu 1 (1.2 on cpu 0), d on cpu 1
    /// (1.0), b on cpu 0 (1.0): both CPUs exactly full.
    #[test]
    fn decreasing_order_finds_what_declaration_order_misses() {
        let tasks = [
            task("a", 5, 10),
            task("b", 3, 10),
            task("c", 7, 10),
            task("d", 5, 10),
        ];
        let mut declaration_order: Vec<Vec<Task>> = vec![Vec::new(), Vec::new()];
        let mut unplaced = Vec::new();
        for t in tasks {
            let fits = declaration_order.iter_mut().find(|cpu| {
                let mut with = cpu.to_vec();
                with.push(t);
                check(Policy::Edf, &with).is_ok()
            });
            match fits {
                Some(cpu) => cpu.push(t),
                None => unplaced.push(t.name),
            }
        }
        assert_eq!(unplaced, ["d"]);

        let placed = partition(Policy::Edf, &tasks, &free(4), 2).unwrap();
        assert_eq!(placed.cpu_of, [1, 0, 0, 1]);
        assert_eq!(placed.cpus[0].1, Proof::Utilisation);
    }

    /// Equal utilisations go by the shorter deadline: (C 2, D 4, T 10) before (C 2, T 10).
    #[test]
    fn ties_go_to_the_shorter_deadline() {
        let a = Task::constrained("a", 2 * MS, 10 * MS, 10 * MS);
        let b = Task::constrained("b", 2 * MS, 4 * MS, 10 * MS);
        assert_eq!(decreasing_utilisation(&b, &a), Ordering::Less);
        assert_eq!(decreasing_utilisation(&task("x", 1, 2), &b), Ordering::Less);
    }

    /// Two tasks of 60% pinned to cpu 1 overload it (120%) while cpu 0 has nothing: pins are
    /// kept, so this is an error about cpu 1, blamed on the last task pinned there.
    #[test]
    fn pinned_overload_on_one_cpu_while_another_idles() {
        let tasks = [task("a", 6, 10), task("b", 6, 10), task("c", 1, 10)];
        let pins = [Some(1), Some(1), None];
        let error = partition(Policy::Edf, &tasks, &pins, 2).unwrap_err();
        let Unpartitionable::PinnedOverload { verdict, blame, .. } = &*error else {
            panic!("expected PinnedOverload, got {error:?}");
        };
        assert_eq!(verdict.cpu, Some(1));
        assert_eq!(verdict.reason, Reason::Overloaded);
        assert_eq!(*blame, 1);
        assert_eq!(
            error.to_string(),
            "task set of cpu 1 is not schedulable under EDF: total utilisation 120.0% > 100%\n  \
             a: 6 ms / 10 ms = 60.0%\n  \
             b: 6 ms / 10 ms = 60.0%\n  \
             cpu 0: no tasks (total 0.0%)\n  \
             tasks pinned with `cpu = k` stay on their CPU: move one to another CPU, or leave \
             out its `cpu` to let the macro place it"
        );
        // Unpinned, the same tasks spread out.
        let placed = partition(Policy::Edf, &tasks, &free(3), 2).unwrap();
        assert_eq!(placed.cpu_of, [0, 1, 0]);
    }

    /// Under RM the blame is the task the response-time analysis finds late: Buttazzo's set
    /// (C 1, T 4), (2, 6), (4, 10) pinned to cpu 0 fails at the third (R = 11 > 10).
    #[test]
    fn pinned_response_time_failure_blames_the_late_task() {
        let tasks = [task("t1", 1, 4), task("t2", 2, 6), task("t3", 4, 10)];
        let error = partition(Policy::Rm, &tasks, &[Some(0), Some(0), Some(0)], 2).unwrap_err();
        assert_eq!(error.blame(), Some(2));
        assert!(error.to_string().starts_with(
            "task set of cpu 0 is not schedulable under RM: `t3` can take 11 ms to respond"
        ));
        // Free: t3 (40%) goes first, to cpu 0; t2 (33.3%) joins it (R2 = 2, R3 = 4 + 2 = 6
        // <= 10); t1 there would bring back R3 = 11, so it goes to cpu 1.
        let placed = partition(Policy::Rm, &tasks, &free(3), 2).unwrap();
        assert_eq!(placed.cpu_of, [1, 0, 0]);
    }

    /// A CPU where the analysis cannot decide does not admit the task: `hp` (99.9999%) pinned
    /// to cpu 0 leaves `lo` an undecided response time there (sched_rm_undecided.rs), so it
    /// goes to cpu 1; pinned there instead, the error is "cannot decide", as with one CPU.
    #[test]
    fn an_undecided_cpu_does_not_admit() {
        let tasks = [
            Task::new("hp", MS - 1, MS),
            Task::new("lo", 2 * MS, 3_000_000 * MS),
        ];
        let placed = partition(Policy::Rm, &tasks, &[Some(0), None], 2).unwrap();
        assert_eq!(placed.cpu_of, [0, 1]);
        let error = partition(Policy::Rm, &tasks, &[Some(0), Some(0)], 2).unwrap_err();
        let Unpartitionable::PinnedOverload { verdict, .. } = &*error else {
            panic!("expected PinnedOverload, got {error:?}");
        };
        assert!(verdict.undecided());
        assert!(
            error
                .to_string()
                .starts_with("cannot decide whether the task set of cpu 0 is schedulable")
        );
        // With one CPU the message is the one-processor one, unchanged.
        let single = partition(Policy::Rm, &tasks, &free(2), 1).unwrap_err();
        assert_eq!(
            single.to_string(),
            check(Policy::Rm, &tasks).unwrap_err().to_string()
        );
    }

    #[test]
    fn one_cpu_is_the_one_processor_check() {
        let tasks = [task("a", 1, 4), task("b", 2, 6)];
        let placed = partition(Policy::Rm, &tasks, &free(2), 1).unwrap();
        assert_eq!(placed.cpu_of, [0, 0]);
        assert_eq!(
            placed.summary(Policy::Rm, &tasks),
            [check(Policy::Rm, &tasks)
                .unwrap()
                .summary(Policy::Rm, &tasks)]
        );
        assert_eq!(placed.placement(&tasks), "cpu 0: a, b");
    }

    const NAMES: [&str; 8] = ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"];

    /// A task `(wcet, deadline, period)` in µs, with `0 < wcet <= deadline <= period`, and
    /// maybe a pin.
    fn random_task() -> impl Strategy<Value = (u64, u64, u64, Option<u16>)> {
        (
            prop::sample::select(vec![2u64, 3, 4, 5, 6, 8, 10, 12, 15, 20]),
            0.0f64..1.0,
            0.0f64..1.0,
            prop::option::weighted(0.25, 0u16..4),
        )
            .prop_map(|(period_ms, d, c, pin)| {
                let period = period_ms * 1000;
                let deadline = ((period as f64 * (0.5 + d / 2.0)) as u64).max(1);
                let wcet = ((deadline as f64 * c * 0.8) as u64).max(1);
                (wcet, deadline, period, pin)
            })
    }

    proptest! {
        /// Every accepted partition places each task once, keeps its pin, and passes the
        /// one-processor exact test on every CPU; every refusal is a failing exact test.
        #[test]
        fn accepted_partitions_pass_the_exact_test_per_cpu(
            drawn in prop::collection::vec(random_task(), 1..8),
            cpus in 1u16..4,
            rm in any::<bool>(),
        ) {
            let policy = if rm { Policy::Rm } else { Policy::Edf };
            let tasks: Vec<Task> = drawn
                .iter()
                .zip(NAMES)
                .map(|(&(wcet, deadline, period, _), name)| Task {
                    name,
                    period: period * 1000,
                    deadline: deadline * 1000,
                    wcet: wcet * 1000,
                })
                .collect();
            let pins: Vec<Option<u16>> = drawn
                .iter()
                .map(|&(.., pin)| pin.filter(|&cpu| cpu < cpus))
                .collect();
            match partition(policy, &tasks, &pins, cpus).map_err(|error| *error) {
                Ok(placed) => {
                    prop_assert_eq!(placed.cpus.len(), usize::from(cpus));
                    let mut seen = vec![0; tasks.len()];
                    for (cpu, (set, _)) in placed.cpus.iter().enumerate() {
                        let subset: Vec<Task> = set.iter().map(|&i| tasks[i]).collect();
                        prop_assert!(check(policy, &subset).is_ok());
                        for &i in set {
                            seen[i] += 1;
                            prop_assert_eq!(usize::from(placed.cpu_of[i]), cpu);
                            if let Some(pin) = pins[i] {
                                prop_assert_eq!(pin, placed.cpu_of[i]);
                            }
                        }
                    }
                    prop_assert!(seen.iter().all(|&n| n == 1));
                }
                Err(Unpartitionable::NoFit { task, on_cpu, refusals, .. }) => {
                    prop_assert_eq!(refusals.len(), usize::from(cpus));
                    for set in &on_cpu {
                        let mut with: Vec<Task> = set.iter().map(|&i| tasks[i]).collect();
                        with.push(tasks[task]);
                        prop_assert!(check(policy, &with).is_err());
                    }
                }
                Err(Unpartitionable::PinnedOverload { verdict, .. }) => {
                    let cpu = verdict.cpu.expect("a pinned overload names its CPU");
                    let subset: Vec<Task> = (0..tasks.len())
                        .filter(|&i| pins[i] == Some(cpu))
                        .map(|i| tasks[i])
                        .collect();
                    prop_assert!(check(policy, &subset).is_err());
                }
                Err(Unpartitionable::Single(_)) => {
                    prop_assert_eq!(cpus, 1);
                    prop_assert!(check(policy, &tasks).is_err());
                }
            }
        }
    }
}
