//! The analysis on textbook task sets whose answers are known. Every expected number is
//! worked out by hand in the comment above it. Times are in milliseconds (`ms(..)`) unless
//! said otherwise; the analysis itself is unit-free integer nanoseconds.

use super::*;

const MS: u64 = 1_000_000;

/// `(C, T)` in ms, implicit deadline.
fn task(name: &'static str, wcet: u64, period: u64) -> Task<'static> {
    Task::new(name, wcet * MS, period * MS)
}

/// `(C, D, T)` in ms.
fn constrained(name: &'static str, wcet: u64, deadline: u64, period: u64) -> Task<'static> {
    Task::constrained(name, wcet * MS, deadline * MS, period * MS)
}

fn ms_list(values: &[u128]) -> Vec<u128> {
    values.iter().map(|v| v * u128::from(MS)).collect()
}

/// Liu & Layland, "Scheduling Algorithms for Multiprogramming in a Hard-Real-Time
/// Environment", JACM 20(1), 1973, Theorem 5: the least upper bound of the RM utilisation
/// is n(2^{1/n} - 1): 1 for one task, 2(√2 - 1) = 0.828427 for two, 3(2^{1/3} - 1) =
/// 3 × 0.259921 = 0.779763 for three, tending to ln 2 = 0.693147.
#[test]
fn liu_layland_bound_values() {
    let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
    assert!(close(liu_layland(1), 1.0));
    assert!(close(liu_layland(2), 0.828_427));
    assert!(close(liu_layland(3), 0.779_763));
    assert!((liu_layland(100_000) - std::f64::consts::LN_2).abs() < 1e-5);
}

/// Buttazzo, "Hard Real-Time Computing Systems" (3rd ed., Springer 2011), ch. 4, the
/// response-time analysis example: τ1 = (C 1, T 4), τ2 = (2, 6), τ3 = (3, 10), D = T.
/// U = 1/4 + 2/6 + 3/10 = 0.883 > 0.780 (Liu–Layland, n = 3), so the bound says nothing;
/// RTA: R1 = 1. R2 = 2 + 1 = 3; 2 + ⌈3/4⌉·1 = 3: fixed point 3.
/// R3 = 3 + 1 + 2 = 6; 3 + ⌈6/4⌉·1 + ⌈6/6⌉·2 = 7; 3 + 2 + ⌈7/6⌉·2 = 9; 3 + ⌈9/4⌉ + ⌈9/6⌉·2
/// = 10; 3 + ⌈10/4⌉ + ⌈10/6⌉·2 = 3 + 3 + 4 = 10: fixed point 10 <= D3 = 10. Schedulable.
#[test]
fn rm_accepts_above_the_liu_layland_bound_by_response_times() {
    let tasks = [task("tau1", 1, 4), task("tau2", 2, 6), task("tau3", 3, 10)];
    assert_eq!(rm(&tasks), Ok(Proof::ResponseTimes(ms_list(&[1, 3, 10]))));
    assert_eq!(edf(&tasks), Ok(Proof::Utilisation));
}

/// The same set with C3 = 4: U = 1/4 + 1/3 + 2/5 = 0.983 <= 1 (EDF schedules it), but
/// R3 = 4 + 1 + 2 = 7; 4 + ⌈7/4⌉ + ⌈7/6⌉·2 = 4 + 2 + 4 = 10; 4 + ⌈10/4⌉ + ⌈10/6⌉·2 =
/// 4 + 3 + 4 = 11; 4 + ⌈11/4⌉ + ⌈11/6⌉·2 = 11: fixed point 11 > D3 = 10. RM fails at τ3.
#[test]
fn rm_rejects_by_response_time_below_full_utilisation() {
    let tasks = [task("tau1", 1, 4), task("tau2", 2, 6), task("tau3", 4, 10)];
    let error = rm(&tasks).unwrap_err();
    assert_eq!(error.blame(), Some(2));
    let Reason::ResponseTime {
        responses,
        edf_accepts,
        ..
    } = &error.reason
    else {
        panic!("{error:?}")
    };
    let ms = |r| Response::Exact(r * u128::from(MS));
    assert_eq!(responses, &[ms(1), ms(3), ms(11)]);
    assert!(edf_accepts);
}

/// Buttazzo, "Rate Monotonic vs. EDF: Judgment Day", Real-Time Systems 29(1), 2005, Fig. 1:
/// τ1 = (2, 5), τ2 = (4, 7), U = 2/5 + 4/7 = 0.971. Under RM τ2 misses its deadline at 7:
/// R2 = 4 + 2 = 6; 4 + ⌈6/5⌉·2 = 8; 4 + ⌈8/5⌉·2 = 8 > 7. EDF schedules it (U <= 1).
#[test]
fn rm_vs_edf_judgment_day() {
    let tasks = [task("tau1", 2, 5), task("tau2", 4, 7)];
    assert_eq!(edf(&tasks), Ok(Proof::Utilisation));
    let error = rm(&tasks).unwrap_err();
    assert_eq!(
        error.to_string(),
        "task set is not schedulable under RM: `tau2` can take 8 ms to respond, after its deadline of 7 ms\n  \
         priority 0, tau1: 2 ms / 5 ms = 40.0%, response time 2 ms <= deadline 5 ms\n  \
         priority 1, tau2: 4 ms / 7 ms = 57.1%, response time 8 ms > deadline 7 ms\n  \
         total utilisation 97.1%; the Liu–Layland bound for 2 tasks is 82.8% (sufficient only: the exact response-time analysis decides)\n  \
         EDF would schedule this task set: write `sched = edf`"
    );
}

/// Burns & Wellings, "Real-Time Systems and Programming Languages" (4th ed., 2009), the
/// response-time analysis example: a = (C 3, T 7), b = (3, 12), c = (5, 20), D = T.
/// Ra = 3. Rb = 3 + 3 = 6; 3 + ⌈6/7⌉·3 = 6. Rc = 5 + 3 + 3 = 11; 5 + ⌈11/7⌉·3 + ⌈11/12⌉·3 =
/// 14; 5 + 2·3 + 2·3 = 17; 5 + 3·3 + 2·3 = 20; 5 + ⌈20/7⌉·3 + ⌈20/12⌉·3 = 20 <= 20.
#[test]
fn response_times_burns_wellings() {
    let tasks = [task("a", 3, 7), task("b", 3, 12), task("c", 5, 20)];
    assert_eq!(rm(&tasks), Ok(Proof::ResponseTimes(ms_list(&[3, 6, 20]))));
    assert_eq!(
        rm(&tasks).unwrap().summary(Policy::Rm, &tasks),
        "schedulable under RM: total utilisation 92.9%; worst-case response times a 3 ms <= 7 ms, \
         b 6 ms <= 12 ms, c 20 ms <= 20 ms"
    );
}

/// Harmonic periods are RM-schedulable up to U = 1 (Kuo & Mok 1991; Buttazzo, 3rd ed.,
/// ch. 4): (1, 2), (1, 4), (2, 8): U = 1/2 + 1/4 + 2/8 = 1. R1 = 1; R2 = 1 + 1 = 2;
/// 1 + ⌈2/2⌉ = 2. R3 = 2 + 1 + 1 = 4; 2 + ⌈4/2⌉ + ⌈4/4⌉ = 5; 2 + 3 + 2 = 7; 2 + 4 + 2 = 8;
/// 2 + ⌈8/2⌉ + ⌈8/4⌉ = 8 <= 8.
#[test]
fn harmonic_periods_fill_the_processor_under_rm() {
    let tasks = [task("a", 1, 2), task("b", 1, 4), task("c", 2, 8)];
    assert_eq!(Utilisation::of(&tasks).cmp_one(), Ordering::Equal);
    assert_eq!(rm(&tasks), Ok(Proof::ResponseTimes(ms_list(&[1, 2, 8]))));
}

/// Liu & Layland 1973, Theorem 7: with D = T, EDF schedules a set iff U <= 1.
/// (2, 4), (3, 5): U = 0.5 + 0.6 = 1.1 > 1: rejected by both policies, with the numbers.
#[test]
fn edf_rejects_an_overloaded_set() {
    let tasks = [task("a", 2, 4), task("b", 3, 5)];
    let error = edf(&tasks).unwrap_err();
    assert_eq!(error.reason, Reason::Overloaded);
    assert_eq!(error.blame(), None);
    assert_eq!(
        error.to_string(),
        "task set is not schedulable under EDF: total utilisation 110.0% > 100%\n  \
         a: 2 ms / 4 ms = 50.0%\n  \
         b: 3 ms / 5 ms = 60.0%"
    );
    assert_eq!(rm(&tasks).unwrap_err().reason, Reason::Overloaded);
}

/// Exactness at U = 1: 1/2 + 1/3 + 1/7 + 1/42 = (21 + 14 + 6 + 1)/42 = 1 exactly (accepted);
/// one more nanosecond of C4 makes U = 1 + 1/42,000,000, i.e. 100.0000024%: rejected, and the
/// message shows enough decimals not to read "100.0% > 100%". And 1/2 + 1/3 + 1/7 + 1/43 =
/// 1805/1806 < 1, 1/2 + 1/3 + 1/7 + 1/41 = 1723/1722 > 1.
#[test]
fn utilisation_is_exact() {
    let egyptian = |last: u64, extra_ns: u64| {
        let mut tasks = [
            task("a", 1, 2),
            task("b", 1, 3),
            task("c", 1, 7),
            task("d", 1, last),
        ];
        tasks[3].wcet += extra_ns;
        tasks
    };
    assert_eq!(edf(&egyptian(42, 0)), Ok(Proof::Utilisation));
    let error = edf(&egyptian(42, 1)).unwrap_err();
    assert!(
        error.to_string().starts_with(
            "task set is not schedulable under EDF: total utilisation 100.000002% > 100%"
        ),
        "{error}"
    );
    assert_eq!(edf(&egyptian(43, 0)), Ok(Proof::Utilisation));
    assert_eq!(
        edf(&egyptian(41, 0)).unwrap_err().reason,
        Reason::Overloaded
    );

    // Five pairwise coprime periods near 1 s (in ns): their product, the common denominator,
    // is about 2^150, beyond u128. C = T/10 each, U ≈ 0.5.
    let periods = [
        999_999_937u64,
        999_999_929,
        999_999_893,
        999_999_883,
        999_999_797,
    ];
    let tasks: Vec<Task> = periods.iter().map(|&t| Task::new("p", t / 10, t)).collect();
    assert_eq!(edf(&tasks), Ok(Proof::Utilisation));
    assert!(rm(&tasks).is_ok());
}

/// The processor-demand criterion (Baruah, Rosier & Howell, "Algorithms and complexity
/// concerning the preemptive scheduling of periodic, real-time tasks on one processor",
/// Real-Time Systems 2(4), 1990) on a set built for this test: a = (C 2, D 2, T 4),
/// b = (2, 3, 6). U = 1/2 + 1/3 = 83.3% < 1, yet dbf(2) = 2 <= 2 and dbf(3) = 2 + 2 = 4 > 3:
/// both first jobs need 4 ms by t = 3 ms. Rejected at t = 3 ms.
#[test]
fn processor_demand_rejects_below_full_utilisation() {
    let tasks = [constrained("a", 2, 2, 4), constrained("b", 2, 3, 6)];
    assert_eq!(demand(&tasks, 2 * u128::from(MS)), 2 * u128::from(MS));
    let error = edf(&tasks).unwrap_err();
    assert_eq!(
        error.reason,
        Reason::Demand {
            at: 3 * u128::from(MS),
            demand: 4 * u128::from(MS)
        }
    );
    assert_eq!(
        error.to_string(),
        "task set is not schedulable under EDF: the jobs due by t = 3 ms need 4 ms of processor time (processor-demand test)\n  \
         total utilisation 83.3% <= 100%, but deadlines shorter than periods make jobs due sooner\n  \
         a: 2 ms / 4 ms = 50.0%, deadline 2 ms: 1 job due by 3 ms, 2 ms\n  \
         b: 2 ms / 6 ms = 33.3%, deadline 3 ms: 1 job due by 3 ms, 2 ms"
    );
}

/// The processor-demand test is exact where the density test (Σ C/D <= 1) is only
/// sufficient: a = (C 1, D 1, T 4), b = (1, 2, 4), c = (1, 3, 12) has density
/// 1 + 1/2 + 1/3 = 1.83 > 1 but U = 1/4 + 1/4 + 1/12 = 7/12. Bound (BRH 1990):
/// L* = Σ(T - D)U / (1 - U) = (3/4 + 2/4 + 9/12) / (5/12) = 2 · 12/5 = 4.8 ms < H = 12 ms.
/// Deadlines up to 4.8 ms: 1, 2, 3 ms with dbf = 1, 2, 3 ms: schedulable, 3 points.
#[test]
fn processor_demand_accepts_with_density_above_one() {
    let tasks = [
        constrained("a", 1, 1, 4),
        constrained("b", 1, 2, 4),
        constrained("c", 1, 3, 12),
    ];
    let utilisation = Utilisation::of(&tasks);
    assert_eq!(hyperperiod(&tasks), Some(12 * u128::from(MS)));
    assert_eq!(brh_bound(&tasks, &utilisation), Some(4_800_000));
    assert_eq!(
        edf(&tasks),
        Ok(Proof::Demand {
            bound: 4_800_000,
            points: 3
        })
    );
    assert_eq!(
        edf(&tasks).unwrap().summary(Policy::Edf, &tasks),
        "schedulable under EDF: total utilisation 58.3% <= 100%, and the processor demand \
         meets all 3 deadlines up to t = 4800 us"
    );
}

/// A demand failure after several deadlines pass, at U = 1 exactly (so L* does not exist and
/// the hyperperiod bounds the test): a = (C 3, D 5, T 6), b = (2, 3, 4); U = 1/2 + 1/2 = 1,
/// H = 12. Deadlines: b at 3, 7, 11; a at 5, 11. dbf(3) = 2, dbf(5) = 5, dbf(7) = 7
/// (b: ⌊4/4⌋ + 1 = 2 jobs, a: 1), dbf(11) = 3·2 + 2·3 = 12 > 11. Rejected at 11 ms.
#[test]
fn processor_demand_fails_at_a_later_deadline() {
    let tasks = [constrained("a", 3, 5, 6), constrained("b", 2, 3, 4)];
    let utilisation = Utilisation::of(&tasks);
    assert_eq!(utilisation.cmp_one(), Ordering::Equal);
    assert_eq!(
        demand_bound(&tasks, &utilisation),
        Some(12 * u128::from(MS))
    );
    assert_eq!(
        edf(&tasks).unwrap_err().reason,
        Reason::Demand {
            at: 11 * u128::from(MS),
            demand: 12 * u128::from(MS)
        }
    );
}

/// Deadline-monotonic priorities are optimal among fixed priorities for D <= T (Leung &
/// Whitehead 1982): a = (C 1, D 2, T 10), b = (C 2, D 5, T 5). DM gives a the higher
/// priority: Ra = 1 <= 2, Rb = 2 + 1 = 3; 2 + ⌈3/10⌉·1 = 3 <= 5. Rate-monotonic order (b
/// first, by period) would fail a: Ra = 1 + 2 = 3; 1 + ⌈3/5⌉·2 = 3 > 2.
#[test]
fn deadline_monotonic_beats_rate_monotonic() {
    let tasks = [constrained("a", 1, 2, 10), constrained("b", 2, 5, 5)];
    assert_eq!(priorities(&tasks), [0, 1]);
    assert_eq!(rm(&tasks), Ok(Proof::ResponseTimes(ms_list(&[1, 3]))));
    let by_period = response_times(&tasks, &[1, 0]);
    assert_eq!(by_period[0], Response::Exact(3 * u128::from(MS)));
}

/// Priorities: by deadline, then period, then declaration order; 0 is the highest.
#[test]
fn priorities_are_deadline_monotonic_with_stable_ties() {
    let tasks = [
        task("slow", 1, 100),
        task("fast", 1, 10),
        constrained("urgent", 1, 10, 50),
        task("fast_too", 1, 10),
    ];
    // Deadlines 100, 10, 10, 10: the three 10s by period (10, 50, 10), then order.
    assert_eq!(priorities(&tasks), [3, 0, 2, 1]);
}

/// Edge cases: no tasks; one task using the whole processor (C = D = T) is schedulable by
/// both; one more nanosecond is not (and is reported as an overload under both policies).
#[test]
fn edge_cases() {
    assert_eq!(edf(&[]), Ok(Proof::Utilisation));
    assert_eq!(rm(&[]), Ok(Proof::ResponseTimes(Vec::new())));
    let full = [task("all", 10, 10)];
    assert_eq!(edf(&full), Ok(Proof::Utilisation));
    assert_eq!(rm(&full), Ok(Proof::ResponseTimes(ms_list(&[10]))));
    let mut over = full;
    over[0].wcet += 1;
    assert_eq!(edf(&over).unwrap_err().reason, Reason::Overloaded);
    assert_eq!(rm(&over).unwrap_err().reason, Reason::Overloaded);
}

/// Where neither the in-order scan nor QPA can finish at compile time the set is rejected as
/// undecided, not accepted unchecked: a = (C 9,999,999, T 10 ms), U = 1 - 10^-7, beside
/// b = (C 1 ms, D 15,000 s, T 20,000 s): 1.5 million deadlines up to D_b, and QPA moves down
/// one job of a per step. (The set is schedulable: dbf(D_b) = 1.5·10^6 · 9,999,999 + 10^6 =
/// D_b - 5·10^5.)
#[test]
fn processor_demand_has_a_work_limit() {
    let tasks = [
        Task::new("a", 9_999_999, 10_000_000),
        Task::constrained("b", 1_000_000, 15_000_000_000_000, 20_000_000_000_000),
    ];
    let error = edf(&tasks).unwrap_err();
    match error.reason {
        Reason::TooManyDeadlines {
            points: Some(points),
            bound: Some(_),
        } => assert!(points > DEMAND_POINTS_LIMIT, "{points}"),
        other => panic!("{other:?}"),
    }
    assert!(
        error
            .to_string()
            .starts_with("cannot decide whether the task set is schedulable under EDF")
    );
}

/// A set over its demand at an early deadline gets the definite verdict however many
/// deadlines lie beyond (the limit once rejected this one as too costly): a = (C 499,999,968,
/// D 499,999,969, T 999,999,937) and b = (499,999,964, 499,999,965, 999,999,929) both fall
/// due by t = 499,999,969 ns and need 999,999,932 ns.
#[test]
fn an_early_demand_failure_is_definite() {
    let (ta, tb) = (999_999_937u64, 999_999_929u64);
    let tasks = [
        Task::constrained("a", (ta - 1) / 2, ta.div_ceil(2), ta),
        Task::constrained("b", (tb - 1) / 2, tb.div_ceil(2), tb),
    ];
    assert_eq!(
        edf(&tasks).unwrap_err().reason,
        Reason::Demand {
            at: 499_999_969,
            demand: 999_999_932
        }
    );
}

#[test]
fn percentages() {
    let p = |a: u128, b: u128| percent(&Big::from(a), &Big::from(b));
    assert_eq!(p(1, 3), "33.3%");
    assert_eq!(p(2, 3), "66.7%");
    assert_eq!(p(4, 7), "57.1%");
    assert_eq!(p(1, 1), "100.0%");
    assert_eq!(p(9, 8), "112.5%");
    assert_eq!(p(0, 8), "0.0%");
    // 99.99%: more decimals rather than a misleading "100.0%".
    assert_eq!(p(9_999, 10_000), "99.99%");
}

/// A schedulable set whose low-priority response time takes 150,000 steps to settle (the
/// high-priority task leaves it 1 ns in every 100 us): accepted with its exact response
/// time, where a fixed iteration count once rejected it with a time below its deadline.
#[test]
fn response_times_iterate_until_they_settle_or_pass_the_deadline() {
    let tasks = [
        Task::new("hp", 99_999, 100_000),
        Task::new("lo", 150_000, 20_000_000_000),
    ];
    let Ok(Proof::ResponseTimes(responses)) = rm(&tasks) else {
        panic!("{}", rm(&tasks).unwrap_err());
    };
    // R = 150,000 + ceil(R / 100,000) · 99,999 = 150,000 + 99,999·k with k = ceil(R/10^5)
    // holds for 150,000 <= k < 250,000: the least fixed point is k = 150,000, R = 15 s.
    let r = responses[1];
    assert_eq!(r, 150_000 + r.div_ceil(100_000) * 99_999);
    assert_eq!(r, 15_000_000_000);
    // One nanosecond more per job and it never settles: rejected once past the deadline.
    let tasks = [
        Task::new("hp", 100_000, 100_000),
        Task::constrained("lo", 1, 20_000_000_000, 20_000_000_000),
    ];
    assert_eq!(rm(&tasks).unwrap_err().reason, Reason::Overloaded);
    // With a 10 s deadline the same response time is a miss, reported exactly.
    let tasks = [
        Task::new("hp", 99_999, 100_000),
        Task::constrained("lo", 150_000, 10_000_000_000, 20_000_000_000),
    ];
    let error = rm(&tasks).unwrap_err();
    assert!(
        matches!(&error.reason, Reason::ResponseTime { responses, .. }
            if responses[1] == Response::Exact(15_000_000_000)),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains("`lo` can take 15 s to respond, after its deadline of 10 s"),
        "{error}"
    );
}

/// Where settling would take more steps than a compile may spend, the set is rejected with a
/// message that says the analysis could not decide, never a contradictory "miss".
#[test]
fn an_unsettled_response_time_is_undecided() {
    let tasks = [
        Task::new("hp", 999_999, 1_000_000),
        Task::new("lo", 2_000_000, 3_000_000_000_000),
    ];
    let error = rm(&tasks).unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("cannot decide whether the task set is schedulable under RM"),
        "{message}"
    );
    assert!(
        message.contains("(undecided) vs deadline 3000 s"),
        "{message}"
    );
    // The same unsettled iteration past a shorter deadline is a definite miss.
    let tasks = [
        Task::new("hp", 999_999, 1_000_000),
        Task::constrained("lo", 2_000_000, 500_000_000_000, 3_000_000_000_000),
    ];
    let error = rm(&tasks).unwrap_err();
    assert!(
        matches!(&error.reason, Reason::ResponseTime { responses, .. }
            if matches!(responses[1], Response::MoreThan(r) if r > 500_000_000_000)),
        "{error}"
    );
    assert!(
        error.to_string().contains("`lo` can take at least"),
        "{error}"
    );
}

/// Beyond the deadline-by-deadline limit, QPA decides: a = (C 395 ns, D = T = 500 ns),
/// b = (C 200 ms, D 960 ms, T 1 s): U = 99%, L = 960 ms, about 1.9 million deadlines, and
/// dbf(960 ms) = 758.4 + 200 ms <= 960 ms. QPA settles in a few dozen steps.
#[test]
fn quick_processor_demand_decides_past_the_point_limit() {
    let tasks = [
        Task::new("a", 395, 500),
        Task::constrained("b", 200 * MS, 960 * MS, 1_000 * MS),
    ];
    match edf(&tasks) {
        Ok(Proof::Demand { points, .. }) => assert!(points > DEMAND_POINTS_LIMIT, "{points}"),
        other => panic!("{other:?}"),
    }
    // 11 ms less of deadline and it fails at the end of the window, which QPA finds at once.
    let tasks = [
        Task::new("a", 395, 500),
        Task::constrained("b", 200 * MS, 949 * MS, 1_000 * MS),
    ];
    let Reason::Demand { at, demand: needed } = edf(&tasks).unwrap_err().reason else {
        panic!("{:?}", edf(&tasks));
    };
    assert!(needed > at);
    assert_eq!(demand(&tasks, at), needed);
    // A failure at an early deadline is found by the in-order scan however far the bound
    // is (here 10 s, with 10 million deadlines of c before it): c's load makes a's first
    // deadline fail, dbf(2 ms) = 2 ms + 2,000 · 1 ns.
    let tasks = [
        constrained("a", 2, 2, 4),
        constrained("b", 2, 3, 6),
        Task::new("c", 1, 1_000),
        task("d", 1, 10_000),
    ];
    let at = 2 * u128::from(MS);
    assert_eq!(
        edf(&tasks).unwrap_err().reason,
        Reason::Demand {
            at,
            demand: demand(&tasks, at)
        }
    );
}

/// QPA agrees with checking every deadline, on random small task sets.
#[test]
fn quick_processor_demand_agrees_with_the_full_scan() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    let mut decided = [0u32; 2];
    for _ in 0..3_000 {
        let count = 1 + next(4) as usize;
        let tasks: Vec<Task> = (0..count)
            .map(|_| {
                let period = 2 + next(40);
                let deadline = 1 + next(period);
                let wcet = 1 + next(deadline);
                Task::constrained("t", wcet, deadline, period)
            })
            .collect();
        let utilisation = Utilisation::of(&tasks);
        if utilisation.cmp_one() == Ordering::Greater {
            continue;
        }
        let Some(bound) = demand_bound(&tasks, &utilisation) else {
            continue;
        };
        let full = match first_demand_failure(&tasks, bound, u128::MAX) {
            Scan::Failed { .. } => false,
            Scan::Passed => true,
            Scan::Unfinished => unreachable!("no limit"),
        };
        let quick = quick_demand_analysis(&tasks, bound).expect("small sets settle");
        assert_eq!(quick.is_ok(), full, "{tasks:?}");
        decided[usize::from(full)] += 1;
    }
    // Both verdicts were exercised.
    assert!(decided[0] > 100 && decided[1] > 100, "{decided:?}");
}
