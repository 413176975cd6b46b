//! `strata`: train, evaluate and inspect forecasting models from the command line.

/// mimalloc keeps freed tensor buffers for reuse; glibc's malloc returned large ones to the OS
/// and every op paid page faults to get them back (~30% of a PatchTST inference batch).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe extern "C" {
    /// mimalloc's option setter (linked with the allocator).
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// Never give freed memory back to the OS: by default mimalloc purges it after 10 ms and the
/// next tensor of that size pays for zeroed pages again (up to half a PatchTST step).
pub fn keep_freed_memory() {
    const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15; // same index in mimalloc v2 and v3
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

fn main() {
    keep_freed_memory();
    std::process::exit(strata_cli::main_with_args(std::env::args_os()));
}
