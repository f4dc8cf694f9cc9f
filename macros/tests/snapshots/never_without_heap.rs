// The expansion of:
//
// #[unikernel(console)]
// fn main() -> ! {
//     loop {}
// }

#[doc(hidden)]
#[macro_export]
macro_rules! __unikernel_entry_point_is_defined_more_than_once {
    () => {};
}
const _: () = {
    #[allow(dead_code)]
    fn __unikernel_user_main() -> ! {
        loop {}
    }
    #[cfg_attr(target_os = "none", global_allocator)]
    static __UNIKERNEL_HEAP: ::unikernel::__private::NoHeap = ::unikernel::__private::NoHeap;
    #[cfg_attr(target_os = "none", unsafe(link_section = ".note.unikernel"))]
    #[used]
    static __UNIKERNEL_MANIFEST: ::unikernel::__private::Manifest<8usize> = ::unikernel::__private::Manifest::new(
        *b"console\0",
    );
    #[cfg_attr(target_os = "none", unsafe(no_mangle))]
    fn __unikernel_boot() -> ! {
        let __unikernel_console = ::unikernel::__private::init_console(
            ::unikernel::__private::LevelFilter::Info,
        );
        ::unikernel::__private::mark("console");
        ::unikernel::__private::mark("main");
        __unikernel_user_main()
    }
};
#[cfg(not(target_os = "none"))]
fn main() {
    ::unikernel::__private::host_main()
}
