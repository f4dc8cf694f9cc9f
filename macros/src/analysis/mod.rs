//! Schedulability analysis of periodic real-time tasks on one processor: plain Rust, no
//! proc-macro types, so that it is tested on the host against textbook task sets
//! (`analysis/tests.rs`).
//!
//! The model: every task is released at time 0 and then every `period` (synchronous,
//! periodic), each job runs for at most `wcet` and is due `deadline` after its release, with
//! `0 < wcet <= deadline <= period` (constrained deadlines; resolution enforces it). Times are
//! integer nanoseconds and every decision is made with exact integer arithmetic: `u128` for
//! times and demands, [`big::Big`] for utilisation sums (whose common denominator, the
//! product of the periods, outgrows any fixed width). Floats only appear in messages (the
//! Liu–Layland bound, which never decides).
//!
//! - EDF ([`edf`]): with implicit deadlines (every deadline equals its period) the set is
//!   schedulable iff `U = Σ C_i/T_i <= 1` (Liu & Layland 1973). Otherwise `U <= 1` is
//!   necessary and the processor-demand test decides (Baruah, Rosier & Howell 1990):
//!   `dbf(t) = Σ max(0, floor((t - D_i)/T_i) + 1)·C_i <= t` at every absolute deadline `t` up
//!   to a bound: the hyperperiod `H` (for constrained deadlines `dbf(t + H) = dbf(t) + U·H`,
//!   so nothing new happens after it) or, when `U < 1`, `L* = max(D_max, Σ(T_i - D_i)U_i /
//!   (1 - U))` (as `dbf(t) <= U·t + Σ(T_i - D_i)U_i`, a failure implies `t < L*`), whichever
//!   is smaller. Up to [`DEMAND_POINTS_LIMIT`] deadlines every one is checked in order;
//!   beyond, the first [`DEMAND_POINTS_LIMIT`] are (an early failure is a definite verdict)
//!   and then Quick Processor-demand Analysis decides (Zhang & Burns, "Schedulability
//!   analysis for real-time systems with EDF scheduling", IEEE TC 58(9), 2009): from the last
//!   deadline `t <= L`, step to `dbf(t)` while `dbf(t) < t` and to the previous deadline when
//!   they are equal; the set is schedulable iff this reaches `dbf(t) <= D_min` without meeting
//!   `dbf(t) > t`. It visits far fewer points than there are deadlines, except when `U` is
//!   within a hair of 1, where it is bounded by [`DEMAND_STEPS_LIMIT`].
//! - RM ([`rm`]): fixed priorities, rate-monotonic (deadline-monotonic when a deadline is
//!   shorter than its period: Leung & Whitehead 1982), ties broken by the shorter period and
//!   then by declaration order ([`priorities`]). Exact response-time analysis (Joseph &
//!   Pandya 1986; Audsley et al. 1993): `R_i = C_i + Σ_{j in hp(i)} ceil(R_i/T_j)·C_j`
//!   iterated from `C_i + Σ C_j` to its fixed point; schedulable iff `R_i <= D_i` for all.
//!   The iteration only grows, so it stops as soon as it passes `D_i` (a definite miss);
//!   [`RESPONSE_STEPS_LIMIT`] bounds the steps below the deadline.
//!   The Liu–Layland bound `n(2^{1/n} - 1)` is only reported, as a note.

mod big;
pub mod partition;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt;

use big::Big;

use crate::duration;

/// One periodic task; times in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Task<'a> {
    pub name: &'a str,
    pub period: u64,
    pub deadline: u64,
    pub wcet: u64,
}

#[cfg(test)]
impl<'a> Task<'a> {
    /// A task with an implicit deadline (equal to its period).
    pub fn new(name: &'a str, wcet: u64, period: u64) -> Task<'a> {
        Task {
            name,
            period,
            deadline: period,
            wcet,
        }
    }

    /// A task with a constrained deadline.
    pub fn constrained(name: &'a str, wcet: u64, deadline: u64, period: u64) -> Task<'a> {
        Task {
            name,
            period,
            deadline,
            wcet,
        }
    }
}

/// The real-time policies the analysis knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Edf,
    Rm,
}

/// Up to this many absolute deadlines the processor-demand test checks each in turn; beyond,
/// it checks this many and then runs QPA.
pub const DEMAND_POINTS_LIMIT: u128 = 1_000_000;

/// QPA steps before the set is rejected as too costly to analyse (at compile time) rather
/// than accepted unchecked.
pub const DEMAND_STEPS_LIMIT: u64 = 1_000_000;

/// Response-time iterations per task, below its deadline, before giving up.
pub const RESPONSE_STEPS_LIMIT: u64 = 1_000_000;

/// Why a task set is rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unschedulable<'a> {
    pub policy: Policy,
    /// The CPU whose task set this is, when the app has several.
    pub cpu: Option<u16>,
    pub tasks: Vec<Task<'a>>,
    pub reason: Reason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// `U > 1`: no policy can schedule the set on one processor.
    Overloaded,
    /// EDF's processor-demand test fails first at absolute deadline `at`.
    Demand { at: u128, demand: u128 },
    /// Under RM, `task` (the highest-priority failing one) misses its deadline.
    ResponseTime {
        task: usize,
        priorities: Vec<u32>,
        responses: Vec<Response>,
        edf_accepts: bool,
    },
    /// The processor-demand test would need to check more than [`DEMAND_POINTS_LIMIT`]
    /// deadlines, up to `bound` (`None`: the hyperperiod does not fit in 128 bits), and QPA
    /// did not decide within [`DEMAND_STEPS_LIMIT`] steps.
    TooManyDeadlines {
        points: Option<u128>,
        bound: Option<u128>,
    },
}

/// A worst-case response time found by response-time analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// The fixed point.
    Exact(u128),
    /// Past the deadline (this much and growing): a definite miss.
    MoreThan(u128),
    /// Still below the deadline after [`RESPONSE_STEPS_LIMIT`] steps: at least this much.
    Undecided(u128),
}

impl Response {
    fn meets(self, deadline: u64) -> bool {
        matches!(self, Response::Exact(r) if r <= u128::from(deadline))
    }
}

/// How a schedulable set was shown to be schedulable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// EDF, implicit deadlines: `U <= 1`.
    Utilisation,
    /// EDF, constrained deadlines: `dbf(t) <= t` at `points` deadlines up to `bound`.
    Demand { bound: u128, points: u128 },
    /// RM: every task's worst-case response time, indexed like the tasks.
    ResponseTimes(Vec<u128>),
}

/// Decides whether `tasks` are schedulable under `policy`.
pub fn check<'a>(policy: Policy, tasks: &[Task<'a>]) -> Result<Proof, Unschedulable<'a>> {
    match policy {
        Policy::Edf => edf(tasks),
        Policy::Rm => rm(tasks),
    }
}

/// `U = Σ C_i / T_i`, exactly: `num / den` with `den = Π T_i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utilisation {
    num: Big,
    den: Big,
}

impl Utilisation {
    pub fn of(tasks: &[Task]) -> Utilisation {
        let den = tasks
            .iter()
            .fold(Big::one(), |p, t| p.mul(&Big::from(t.period.into())));
        let num = tasks.iter().enumerate().fold(Big::zero(), |sum, (i, t)| {
            sum.add(&Self::scaled(tasks, i, t.wcet.into()))
        });
        Utilisation { num, den }
    }

    /// `x · Π_{j != i} T_j`: `x / T_i` over the common denominator.
    fn scaled(tasks: &[Task], i: usize, x: u128) -> Big {
        tasks
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .fold(Big::from(x), |p, (_, t)| p.mul(&Big::from(t.period.into())))
    }

    /// `U` compared with 1.
    pub fn cmp_one(&self) -> Ordering {
        self.num.cmp(&self.den)
    }

    /// `U` as a percentage for messages (see [`percent`]).
    pub fn percent(&self) -> String {
        percent(&self.num, &self.den)
    }
}

/// EDF: the utilisation test for implicit deadlines, the processor-demand test otherwise.
pub fn edf<'a>(tasks: &[Task<'a>]) -> Result<Proof, Unschedulable<'a>> {
    let fail = |reason| Unschedulable {
        policy: Policy::Edf,
        cpu: None,
        tasks: tasks.to_vec(),
        reason,
    };
    let utilisation = Utilisation::of(tasks);
    if utilisation.cmp_one() == Ordering::Greater {
        return Err(fail(Reason::Overloaded));
    }
    if tasks.iter().all(|t| t.deadline == t.period) {
        return Ok(Proof::Utilisation);
    }
    let bound = demand_bound(tasks, &utilisation);
    let points = bound.and_then(|bound| demand_points(tasks, bound));
    let (Some(bound), Some(points)) = (bound, points) else {
        return Err(fail(Reason::TooManyDeadlines { points, bound }));
    };
    let scanned = first_demand_failure(tasks, bound, DEMAND_POINTS_LIMIT);
    let verdict = match scanned {
        Scan::Failed { at, demand } => Err(Reason::Demand { at, demand }),
        Scan::Passed => Ok(()),
        Scan::Unfinished => match quick_demand_analysis(tasks, bound) {
            Some(verdict) => verdict,
            None => Err(Reason::TooManyDeadlines {
                points: Some(points),
                bound: Some(bound),
            }),
        },
    };
    match verdict {
        Ok(()) => Ok(Proof::Demand { bound, points }),
        Err(reason) => Err(fail(reason)),
    }
}

/// `dbf(t)`: the processor time needed by the jobs both released and due in `[0, t]`.
pub fn demand(tasks: &[Task], t: u128) -> u128 {
    tasks
        .iter()
        .map(|task| jobs_due(task, t) * u128::from(task.wcet))
        .sum()
}

/// The last absolute deadline `k·T_i + D_i` at or before `t`, if any.
fn deadline_at_or_before(tasks: &[Task], t: u128) -> Option<u128> {
    tasks
        .iter()
        .filter_map(|task| {
            let jobs = jobs_due(task, t);
            let last = jobs.checked_sub(1)?;
            Some(last * u128::from(task.period) + u128::from(task.deadline))
        })
        .max()
}

/// QPA (Zhang & Burns 2009) over `(0, bound]`: `Some(Ok)` when schedulable, `Some(Err)` with
/// the failing deadline and its demand, `None` past [`DEMAND_STEPS_LIMIT`] steps.
fn quick_demand_analysis(tasks: &[Task], bound: u128) -> Option<Result<(), Reason>> {
    let earliest = tasks.iter().map(|t| u128::from(t.deadline)).min()?;
    let mut t = deadline_at_or_before(tasks, bound)?;
    for _ in 0..DEMAND_STEPS_LIMIT {
        let h = demand(tasks, t);
        if h > t {
            // dbf only changes at deadlines, so it fails at the last one at or before t too.
            let at = deadline_at_or_before(tasks, t).unwrap_or(t);
            return Some(Err(Reason::Demand { at, demand: h }));
        }
        if h <= earliest {
            return Some(Ok(()));
        }
        t = if h < t {
            h
        } else {
            match deadline_at_or_before(tasks, t - 1) {
                Some(previous) => previous,
                None => return Some(Ok(())),
            }
        };
    }
    None
}

/// How many jobs of `task` are due by `t`: `max(0, floor((t - D)/T) + 1)`.
fn jobs_due(task: &Task, t: u128) -> u128 {
    match t.checked_sub(task.deadline.into()) {
        Some(after) => after / u128::from(task.period) + 1,
        None => 0,
    }
}

/// The last absolute deadline the processor-demand test must check: the smaller of the
/// hyperperiod and, when `U < 1`, the Baruah–Rosier–Howell bound `L*` (rounded up).
pub fn demand_bound(tasks: &[Task], utilisation: &Utilisation) -> Option<u128> {
    let hyperperiod = hyperperiod(tasks);
    let brh = match utilisation.cmp_one() {
        Ordering::Less => brh_bound(tasks, utilisation),
        _ => None,
    };
    match (hyperperiod, brh) {
        (Some(h), Some(l)) => Some(h.min(l)),
        (h, l) => h.or(l),
    }
}

/// `lcm` of the periods, if it fits in 128 bits.
pub fn hyperperiod(tasks: &[Task]) -> Option<u128> {
    tasks.iter().try_fold(1u128, |lcm, task| {
        let period = u128::from(task.period);
        (lcm / gcd(lcm, period)).checked_mul(period)
    })
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `L* = max(D_max, ceil(Σ(T_i - D_i)U_i / (1 - U)))`, for `U < 1`; `None` if beyond 128 bits.
pub fn brh_bound(tasks: &[Task], utilisation: &Utilisation) -> Option<u128> {
    // Over the common denominator P = Π T_j: Σ(T_i - D_i)·C_i/T_i = N/P and 1 - U = S/P,
    // so L* = N / S.
    let n = tasks.iter().enumerate().fold(Big::zero(), |sum, (i, t)| {
        let slack = u128::from(t.period - t.deadline) * u128::from(t.wcet);
        sum.add(&Utilisation::scaled(tasks, i, slack))
    });
    let s = utilisation.den.sub(&utilisation.num);
    let floor = n.div_floor(&s)?;
    let exact = s.mul(&Big::from(floor)) == n;
    let ceil = if exact { floor } else { floor.checked_add(1)? };
    let d_max = tasks
        .iter()
        .map(|t| u128::from(t.deadline))
        .max()
        .unwrap_or(0);
    Some(ceil.max(d_max))
}

/// How many absolute deadlines `k·T_i + D_i <= bound` there are, if that fits a `u128`.
fn demand_points(tasks: &[Task], bound: u128) -> Option<u128> {
    tasks
        .iter()
        .try_fold(0u128, |sum, task| sum.checked_add(jobs_due(task, bound)))
}

/// What checking the deadlines in order found.
enum Scan {
    /// `dbf(at) = demand > at`.
    Failed { at: u128, demand: u128 },
    /// Every deadline up to the bound meets its demand.
    Passed,
    /// The first `limit` deadlines meet their demand; later ones were not checked.
    Unfinished,
}

/// Checks the absolute deadlines `t <= bound` in increasing order, at most `limit` of them,
/// for the first with `dbf(t) > t`.
fn first_demand_failure(tasks: &[Task], bound: u128, limit: u128) -> Scan {
    // Deadlines in increasing order, with the demand accumulated as each job becomes due.
    let mut next: BinaryHeap<std::cmp::Reverse<(u128, usize)>> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| std::cmp::Reverse((u128::from(t.deadline), i)))
        .filter(|std::cmp::Reverse((t, _))| *t <= bound)
        .collect();
    let mut demand = 0u128;
    let mut checked = 0u128;
    while let Some(std::cmp::Reverse((t, i))) = next.pop() {
        demand += u128::from(tasks[i].wcet);
        let following = t + u128::from(tasks[i].period);
        if following <= bound {
            next.push(std::cmp::Reverse((following, i)));
        }
        let more_at_t = next.peek().is_some_and(|std::cmp::Reverse((u, _))| *u == t);
        if !more_at_t {
            if demand > t {
                return Scan::Failed { at: t, demand };
            }
            checked += 1;
            if checked >= limit && !next.is_empty() {
                return Scan::Unfinished;
            }
        }
    }
    Scan::Passed
}

/// Deadline-monotonic priorities (rate-monotonic when deadlines equal periods), 0 = highest:
/// by deadline, then period, then declaration order.
pub fn priorities(tasks: &[Task]) -> Vec<u32> {
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    order.sort_by_key(|&i| (tasks[i].deadline, tasks[i].period, i));
    let mut priorities = vec![0u32; tasks.len()];
    for (rank, i) in order.into_iter().enumerate() {
        priorities[i] = u32::try_from(rank).expect("fewer than 2^32 tasks");
    }
    priorities
}

/// The worst-case response time of every task under fixed `priorities` (0 = highest).
pub fn response_times(tasks: &[Task], priorities: &[u32]) -> Vec<Response> {
    (0..tasks.len())
        .map(|i| {
            let higher: Vec<&Task> = (0..tasks.len())
                .filter(|&j| priorities[j] < priorities[i])
                .map(|j| &tasks[j])
                .collect();
            let interference = |r: u128| -> u128 {
                higher
                    .iter()
                    .map(|t| r.div_ceil(u128::from(t.period)) * u128::from(t.wcet))
                    .sum()
            };
            let wcet = u128::from(tasks[i].wcet);
            let deadline = u128::from(tasks[i].deadline);
            let mut r = wcet + higher.iter().map(|t| u128::from(t.wcet)).sum::<u128>();
            // The iteration never decreases: a value past the deadline is a definite miss
            // even before it settles, and one below it after the limit is undecided.
            for _ in 0..RESPONSE_STEPS_LIMIT {
                let next = wcet + interference(r);
                if next == r {
                    return Response::Exact(r);
                }
                r = next;
            }
            if r > deadline {
                Response::MoreThan(r)
            } else {
                Response::Undecided(r)
            }
        })
        .collect()
}

/// RM (deadline-monotonic for constrained deadlines): exact response-time analysis.
pub fn rm<'a>(tasks: &[Task<'a>]) -> Result<Proof, Unschedulable<'a>> {
    let fail = |reason| Unschedulable {
        policy: Policy::Rm,
        cpu: None,
        tasks: tasks.to_vec(),
        reason,
    };
    // Also keeps every level-i utilisation <= 1, so that each iteration has a fixed point.
    if Utilisation::of(tasks).cmp_one() == Ordering::Greater {
        return Err(fail(Reason::Overloaded));
    }
    let priorities = priorities(tasks);
    let responses = response_times(tasks, &priorities);
    let failing = (0..tasks.len())
        .filter(|&i| !responses[i].meets(tasks[i].deadline))
        .min_by_key(|&i| priorities[i]);
    match failing {
        Some(task) => Err(fail(Reason::ResponseTime {
            task,
            edf_accepts: edf(tasks).is_ok(),
            priorities,
            responses,
        })),
        None => Ok(Proof::ResponseTimes(
            responses
                .into_iter()
                .map(|r| match r {
                    Response::Exact(r) => r,
                    Response::MoreThan(_) | Response::Undecided(_) => {
                        unreachable!("every response meets its deadline")
                    }
                })
                .collect(),
        )),
    }
}

/// The Liu–Layland utilisation bound for `n` tasks under RM, `n(2^{1/n} - 1)`: a set of `n`
/// implicit-deadline tasks with `U` at most this is schedulable (sufficient, not necessary).
pub fn liu_layland(n: usize) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let n = n as f64;
    n * (2f64.powf(1.0 / n) - 1.0)
}

/// `num/den` as a percentage with one decimal ("20.0%"), rounded to nearest; when that
/// would read "100.0%" for a value that is not exactly 100%, more decimals are shown, so
/// that "100.0% > 100%" is never printed.
pub fn percent(num: &Big, den: &Big) -> String {
    for decimals in 1..=9u32 {
        let scale = 100 * 10u128.pow(decimals);
        // round(scale · num / den) = floor((2·scale·num + den) / (2·den))
        let twice = Big::from(2 * scale).mul(num).add(den);
        let Some(value) = twice.div_floor(&den.mul(&Big::from(2))) else {
            return "more than 10^20%".to_owned();
        };
        if value != scale || num == den || decimals == 9 {
            let unit = 10u128.pow(decimals);
            return format!(
                "{}.{:0width$}%",
                value / unit,
                value % unit,
                width = decimals as usize
            );
        }
    }
    unreachable!("the loop returns at 9 decimals")
}

pub fn task_percent(task: &Task) -> String {
    percent(&Big::from(task.wcet.into()), &Big::from(task.period.into()))
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::Edf => "EDF",
            Policy::Rm => "RM",
        }
    }
}

impl fmt::Display for Unschedulable<'_> {
    /// The message of the compile error: a headline, then the numbers, one line each.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tasks = &self.tasks;
        let policy = self.policy.name();
        let set = match self.cpu {
            Some(cpu) => format!("task set of cpu {cpu}"),
            None => "task set".to_owned(),
        };
        let utilisation = Utilisation::of(tasks);
        let share = |t: &Task| {
            format!(
                "{}: {} / {} = {}",
                t.name,
                duration::format(t.wcet),
                duration::format(t.period),
                task_percent(t)
            )
        };
        match &self.reason {
            Reason::Overloaded => {
                write!(
                    f,
                    "{set} is not schedulable under {policy}: total utilisation {} > 100%",
                    utilisation.percent()
                )?;
                for task in tasks {
                    write!(f, "\n  {}", share(task))?;
                }
                Ok(())
            }
            Reason::Demand { at, demand } => {
                write!(
                    f,
                    "{set} is not schedulable under EDF: the jobs due by t = {} need {} of \
                     processor time (processor-demand test)",
                    duration::format(*at),
                    duration::format(*demand)
                )?;
                write!(
                    f,
                    "\n  total utilisation {} <= 100%, but deadlines shorter than periods make jobs due sooner",
                    utilisation.percent()
                )?;
                for task in tasks {
                    let jobs = jobs_due(task, *at);
                    write!(
                        f,
                        "\n  {}, deadline {}: {} job{} due by {}, {}",
                        share(task),
                        duration::format(task.deadline),
                        jobs,
                        if jobs == 1 { "" } else { "s" },
                        duration::format(*at),
                        duration::format(jobs * u128::from(task.wcet)),
                    )?;
                }
                Ok(())
            }
            Reason::ResponseTime {
                task,
                priorities,
                responses,
                edf_accepts,
            } => {
                let failing = &tasks[*task];
                let monotonic = if tasks.iter().all(|t| t.deadline == t.period) {
                    ""
                } else {
                    " (deadline-monotonic priorities, as a deadline is shorter than its period)"
                };
                let deadline = duration::format(failing.deadline);
                match responses[*task] {
                    Response::Exact(r) => write!(
                        f,
                        "{set} is not schedulable under RM{monotonic}: `{}` can take {} to \
                         respond, after its deadline of {deadline}",
                        failing.name,
                        duration::format(r),
                    )?,
                    Response::MoreThan(r) => write!(
                        f,
                        "{set} is not schedulable under RM{monotonic}: `{}` can take at least \
                         {} to respond, after its deadline of {deadline}",
                        failing.name,
                        duration::format(r),
                    )?,
                    Response::Undecided(r) => write!(
                        f,
                        "cannot decide whether the {set} is schedulable under RM{monotonic}: \
                         the response time of `{}` still grows after {RESPONSE_STEPS_LIMIT} steps \
                         of the analysis (at least {} so far, deadline {deadline})",
                        failing.name,
                        duration::format(r),
                    )?,
                }
                let mut order: Vec<usize> = (0..tasks.len()).collect();
                order.sort_by_key(|&i| priorities[i]);
                for i in order {
                    let t = &tasks[i];
                    let (response, relation) = match responses[i] {
                        Response::Exact(r) if r <= u128::from(t.deadline) => {
                            (duration::format(r), "<=")
                        }
                        Response::Exact(r) => (duration::format(r), ">"),
                        Response::MoreThan(r) => (format!("at least {}", duration::format(r)), ">"),
                        Response::Undecided(r) => (
                            format!("at least {} (undecided)", duration::format(r)),
                            "vs",
                        ),
                    };
                    write!(
                        f,
                        "\n  priority {}, {}, response time {response} {relation} deadline {}",
                        priorities[i],
                        share(t),
                        duration::format(t.deadline),
                    )?;
                }
                write!(
                    f,
                    "\n  total utilisation {}; the Liu–Layland bound for {} tasks is {:.1}% \
                     (sufficient only: the exact response-time analysis decides)",
                    utilisation.percent(),
                    tasks.len(),
                    100.0 * liu_layland(tasks.len()),
                )?;
                if *edf_accepts {
                    write!(
                        f,
                        "\n  EDF would schedule this task set: write `sched = edf`"
                    )?;
                }
                Ok(())
            }
            Reason::TooManyDeadlines { points, bound } => {
                write!(
                    f,
                    "cannot decide whether the {set} is schedulable under EDF: the \
                     processor-demand test would check {} up to {}, more than the limit of {}, \
                     and its quick form (QPA) did not settle within {} steps",
                    match points {
                        Some(points) => format!("{points} deadlines"),
                        None => "more deadlines than fit in 128 bits".to_owned(),
                    },
                    match bound {
                        Some(bound) => format!("t = {}", duration::format(*bound)),
                        None => "a hyperperiod beyond 2^128 ns".to_owned(),
                    },
                    DEMAND_POINTS_LIMIT,
                    DEMAND_STEPS_LIMIT,
                )?;
                write!(
                    f,
                    "\n  choose periods with a shorter common multiple (hyperperiod), or deadlines equal to periods"
                )
            }
        }
    }
}

impl Proof {
    /// One line saying why `tasks` are schedulable under `policy`, for the expansion.
    pub fn summary(&self, policy: Policy, tasks: &[Task]) -> String {
        let utilisation = Utilisation::of(tasks).percent();
        let policy = policy.name();
        match self {
            Proof::Utilisation => {
                format!("schedulable under {policy}: total utilisation {utilisation} <= 100%")
            }
            Proof::Demand { bound, points } => format!(
                "schedulable under {policy}: total utilisation {utilisation} <= 100%, and the \
                 processor demand meets all {points} deadlines up to t = {}",
                duration::format(*bound)
            ),
            Proof::ResponseTimes(responses) => {
                let responses: Vec<String> = tasks
                    .iter()
                    .zip(responses)
                    .map(|(task, response)| {
                        format!(
                            "{} {} <= {}",
                            task.name,
                            duration::format(*response),
                            duration::format(task.deadline)
                        )
                    })
                    .collect();
                format!(
                    "schedulable under {policy}: total utilisation {utilisation}; worst-case \
                     response times {}",
                    responses.join(", ")
                )
            }
        }
    }
}

impl Unschedulable<'_> {
    /// Whether the analysis gave up (a limit) rather than found a deadline miss.
    pub fn undecided(&self) -> bool {
        match &self.reason {
            Reason::TooManyDeadlines { .. } => true,
            Reason::ResponseTime {
                task, responses, ..
            } => matches!(responses[*task], Response::Undecided(_)),
            Reason::Overloaded | Reason::Demand { .. } => false,
        }
    }

    /// The task the failure is about, if one is to blame (else the policy is).
    pub fn blame(&self) -> Option<usize> {
        match &self.reason {
            Reason::ResponseTime { task, .. } => Some(*task),
            _ => None,
        }
    }
}
