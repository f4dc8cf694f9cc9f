// The expansion of:
//
// #[unikernel(console, sched)]
// fn main(sched: Sched) {
//     sched.spawn(|| println!("hello from a thread"));
// }

#[doc(hidden)]
#[macro_export]
macro_rules! __unikernel_entry_point_is_defined_more_than_once {
    () => {};
}
const _: () = {
    #[allow(dead_code)]
    fn __unikernel_user_main(sched: Sched) {
        sched.spawn(|| println!("hello from a thread"));
    }
    #[cfg_attr(target_os = "none", global_allocator)]
    static __UNIKERNEL_HEAP: ::unikernel::__private::NoHeap = ::unikernel::__private::NoHeap;
    #[allow(dead_code)]
    static __UNIKERNEL_TASKS: [::unikernel::__private::TaskSpec; 0] = [];
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
            policy: ::unikernel::__private::Policy::Coop,
            tasks: &__UNIKERNEL_TASKS,
            on_miss: ::unikernel::__private::OnMiss::Log,
        });
        ::unikernel::__private::mark("sched");
        ::unikernel::__private::mark("main");
        ::unikernel::__private::exit(
            ::unikernel::__private::Termination::report(
                __unikernel_user_main(__unikernel_sched),
            ),
        )
    }
};
#[cfg(not(target_os = "none"))]
fn main() {
    ::unikernel::__private::host_main()
}
