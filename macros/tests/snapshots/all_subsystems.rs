// The expansion of:
//
// #[unikernel(args, console(log = "debug"), heap = "4MiB")]
// /// The app.
// #[inline(never)]
// fn main(console: Console, args: unikernel::Args) -> Result<(), Error> {
//     for arg in args.iter() {
//         println!("{arg}");
//     }
//     Ok(())
// }

#[doc(hidden)]
#[macro_export]
macro_rules! __unikernel_entry_point_is_defined_more_than_once {
    () => {};
}
const _: () = {
    #[allow(dead_code)]
    /// The app.
    #[inline(never)]
    fn __unikernel_user_main(
        console: Console,
        args: unikernel::Args,
    ) -> Result<(), Error> {
        for arg in args.iter() {
            println!("{arg}");
        }
        Ok(())
    }
    #[cfg_attr(target_os = "none", global_allocator)]
    static __UNIKERNEL_HEAP: ::unikernel::__private::Heap = ::unikernel::__private::Heap::new();
    #[cfg_attr(target_os = "none", unsafe(link_section = ".note.unikernel"))]
    #[used]
    static __UNIKERNEL_MANIFEST: ::unikernel::__private::Manifest<20usize> = ::unikernel::__private::Manifest::new(
        *b"console heap args\0\0\0",
    );
    #[cfg_attr(target_os = "none", unsafe(no_mangle))]
    fn __unikernel_boot() -> ! {
        let __unikernel_console = ::unikernel::__private::init_console(
            ::unikernel::__private::LevelFilter::Debug,
        );
        ::unikernel::__private::mark("console");
        ::unikernel::__private::init_heap(&__UNIKERNEL_HEAP, 4194304usize);
        ::unikernel::__private::mark("heap");
        let __unikernel_args = ::unikernel::__private::init_args();
        ::unikernel::__private::mark("args");
        ::unikernel::__private::mark("main");
        ::unikernel::__private::exit(
            ::unikernel::__private::Termination::report(
                __unikernel_user_main(__unikernel_console, __unikernel_args),
            ),
        )
    }
};
#[cfg(not(target_os = "none"))]
fn main() {
    ::unikernel::__private::host_main()
}
