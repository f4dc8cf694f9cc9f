// The expansion of:
//
// #[unikernel(console, heap = "16 MiB", net(ipv4 = "10.0.2.15/24", gateway = "10.0.2.2"))]
// fn main(net: Net) -> ExitCode {
//     let listener = TcpListener::bind(&net, 80).unwrap();
//     ExitCode::SUCCESS
// }

#[doc(hidden)]
#[macro_export]
macro_rules! __unikernel_entry_point_is_defined_more_than_once {
    () => {};
}
const _: () = {
    #[allow(dead_code)]
    fn __unikernel_user_main(net: Net) -> ExitCode {
        let listener = TcpListener::bind(&net, 80).unwrap();
        ExitCode::SUCCESS
    }
    #[cfg_attr(target_os = "none", global_allocator)]
    static __UNIKERNEL_HEAP: ::unikernel::__private::Heap = ::unikernel::__private::Heap::new();
    #[cfg_attr(target_os = "none", unsafe(link_section = ".note.unikernel"))]
    #[used]
    static __UNIKERNEL_MANIFEST: ::unikernel::__private::Manifest<28usize> = ::unikernel::__private::Manifest::new(
        *b"console heap irq timer net\0\0",
    );
    #[cfg_attr(target_os = "none", unsafe(no_mangle))]
    fn __unikernel_boot() -> ! {
        let __unikernel_console = ::unikernel::__private::init_console(
            ::unikernel::__private::LevelFilter::Info,
        );
        ::unikernel::__private::mark("console");
        ::unikernel::__private::init_heap(&__UNIKERNEL_HEAP, 16777216usize);
        ::unikernel::__private::mark("heap");
        let __unikernel_irq = ::unikernel::__private::init_irq();
        ::unikernel::__private::mark("irq");
        let __unikernel_timer = ::unikernel::__private::init_timer();
        ::unikernel::__private::mark("timer");
        let __unikernel_net = ::unikernel::__private::init_net(
            ::core::option::Option::Some(([10u8, 0u8, 2u8, 15u8], 24u8)),
            ::core::option::Option::Some([10u8, 0u8, 2u8, 2u8]),
            false,
        );
        ::unikernel::__private::mark("net");
        ::unikernel::__private::mark("main");
        ::unikernel::__private::exit(
            ::unikernel::__private::Termination::report(
                __unikernel_user_main(__unikernel_net),
            ),
        )
    }
};
#[cfg(not(target_os = "none"))]
fn main() {
    ::unikernel::__private::host_main()
}
