// The expansion of:
//
// #[unikernel(console, heap = "1 MiB")]
// fn main() -> ExitCode {
//     println!("hello from a unikernel");
//     ExitCode::SUCCESS
// }

#[doc(hidden)]
#[macro_export]
macro_rules! __unikernel_entry_point_is_defined_more_than_once {
    () => {};
}
const _: () = {
    #[allow(dead_code)]
    fn __unikernel_user_main() -> ExitCode {
        println!("hello from a unikernel");
        ExitCode::SUCCESS
    }
    #[cfg_attr(target_os = "none", global_allocator)]
    static __UNIKERNEL_HEAP: ::unikernel::__private::Heap = ::unikernel::__private::Heap::new();
    #[cfg_attr(target_os = "none", unsafe(link_section = ".note.unikernel"))]
    #[used]
    static __UNIKERNEL_MANIFEST: ::unikernel::__private::Manifest<12usize> = ::unikernel::__private::Manifest::new(
        *b"console heap",
    );
    #[cfg_attr(target_os = "none", unsafe(no_mangle))]
    fn __unikernel_boot() -> ! {
        let __unikernel_console = ::unikernel::__private::init_console(
            ::unikernel::__private::LevelFilter::Info,
        );
        ::unikernel::__private::mark("console");
        ::unikernel::__private::init_heap(&__UNIKERNEL_HEAP, 1048576usize);
        ::unikernel::__private::mark("heap");
        ::unikernel::__private::mark("main");
        ::unikernel::__private::exit(
            ::unikernel::__private::Termination::report(__unikernel_user_main()),
        )
    }
};
#[cfg(not(target_os = "none"))]
fn main() {
    ::unikernel::__private::host_main()
}
