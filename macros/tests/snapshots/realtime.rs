// The expansion of:
//
// #[unikernel(console, sched = edf(on_miss = panic), task(control, period = "1 ms", wcet = "200 us"), task(report, period = "100 ms", wcet = "5 ms", deadline = "50 ms"), task(log_stats, period = "20 ms", wcet = "1500 us"))]
// fn main(clock: Clock, sched: Sched) -> ExitCode {
//     sched.run_for(Duration::from_secs(2));
//     println!("{:?}", sched.stats());
//     ExitCode::SUCCESS
// }

#[doc(hidden)]
#[macro_export]
macro_rules! __unikernel_entry_point_is_defined_more_than_once {
    () => {};
}
const _: () = {
    #[allow(dead_code)]
    fn __unikernel_user_main(clock: Clock, sched: Sched) -> ExitCode {
        sched.run_for(Duration::from_secs(2));
        println!("{:?}", sched.stats());
        ExitCode::SUCCESS
    }
    #[cfg_attr(target_os = "none", global_allocator)]
    static __UNIKERNEL_HEAP: ::unikernel::__private::NoHeap = ::unikernel::__private::NoHeap;
    /// Schedulable under EDF: total utilisation 32.5% <= 100%, and the processor demand meets all 53 deadlines up to t = 50 ms.
    #[allow(dead_code)]
    static __UNIKERNEL_TASKS: [::unikernel::__private::TaskSpec; 3] = [
        ::unikernel::__private::TaskSpec {
            name: "control",
            job: control,
            period_ns: 1_000_000,
            deadline_ns: 1_000_000,
            wcet_ns: 200_000,
            priority: 0,
        },
        ::unikernel::__private::TaskSpec {
            name: "report",
            job: report,
            period_ns: 100_000_000,
            deadline_ns: 50_000_000,
            wcet_ns: 5_000_000,
            priority: 2,
        },
        ::unikernel::__private::TaskSpec {
            name: "log_stats",
            job: log_stats,
            period_ns: 20_000_000,
            deadline_ns: 20_000_000,
            wcet_ns: 1_500_000,
            priority: 1,
        },
    ];
    #[cfg_attr(target_os = "none", unsafe(link_section = ".note.unikernel"))]
    #[used]
    static __UNIKERNEL_MANIFEST: ::unikernel::__private::Manifest<24usize> = ::unikernel::__private::Manifest::new(
        *b"console irq timer sched\0",
    );
    #[cfg_attr(target_os = "none", unsafe(no_mangle))]
    fn __unikernel_boot() -> ! {
        let __unikernel_console = ::unikernel::__private::init_console(
            ::unikernel::__private::LevelFilter::Info,
        );
        ::unikernel::__private::mark("console");
        let __unikernel_irq = ::unikernel::__private::init_irq();
        ::unikernel::__private::mark("irq");
        let __unikernel_timer = ::unikernel::__private::init_timer();
        ::unikernel::__private::mark("timer");
        let __unikernel_sched = ::unikernel::__private::init_sched(::unikernel::__private::SchedConfig {
            policy: ::unikernel::__private::Policy::Edf,
            tasks: &__UNIKERNEL_TASKS,
            on_miss: ::unikernel::__private::OnMiss::Panic,
        });
        ::unikernel::__private::mark("sched");
        ::unikernel::__private::mark("main");
        ::unikernel::__private::exit(
            ::unikernel::__private::Termination::report(
                __unikernel_user_main(__unikernel_timer, __unikernel_sched),
            ),
        )
    }
};
#[cfg(not(target_os = "none"))]
fn main() {
    ::unikernel::__private::host_main()
}
