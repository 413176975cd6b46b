//! strata's command line as a library: the `strata` binary and the Python package
//! (`python -m strata`) run the same commands.

pub mod cli;
pub mod commands;
mod plot;
mod print;

use std::ffi::OsString;

use clap::Parser;

/// Run the command line `args` (the program name first) and return the process's exit status:
/// 0, 1 after an error (printed as `error: ...`), or clap's status for bad flags and `--help`.
pub fn main_with_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    // Under mpirun/srun (with the `mpi` feature): join the ranks; finalised when `_mpi` drops.
    let _mpi = strata_train::engine::parallel::init();
    let world = strata_train::engine::parallel::world();
    if !world.is_root() {
        quiet_stdout();
    }
    match commands::run(cli) {
        Ok(()) => 0,
        Err(e) => {
            if world.size() > 1 {
                // The other ranks may wait in a collective for this one: end them all.
                // One write, so that the ranks' lines do not interleave.
                use std::io::Write;
                let _ = std::io::stderr().write_all(format!("error (rank {} of {}): {e:#}\n", world.rank(), world.size()).as_bytes());
                world.abort(1);
            }
            eprintln!("error: {e:#}");
            1
        }
    }
}

/// Run the command line `args` (the program name first) in this process and return its error
/// instead of printing it (the Python package raises it). `--help` and `--version` print and
/// succeed; a bad flag is an error with clap's first line.
pub fn try_run<I, T>(args: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match cli::Cli::try_parse_from(args) {
        Ok(cli) => commands::run(cli),
        Err(e) if e.exit_code() == 0 => {
            let _ = e.print();
            Ok(())
        }
        Err(e) => {
            let text = e.to_string();
            let line = text.lines().next().unwrap_or_default().trim_start_matches("error: ");
            Err(anyhow::anyhow!("{line} (see strata --help)"))
        }
    }
}

unsafe extern "C" {
    fn dup2(old: std::ffi::c_int, new: std::ffi::c_int) -> std::ffi::c_int;
}

/// Ranks other than 0 of a data-parallel run print nothing on stdout (rank 0 prints the
/// results); their errors still reach stderr.
fn quiet_stdout() {
    use std::os::fd::AsRawFd;
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        // SAFETY: replaces file descriptor 1 before anything is written to it.
        unsafe { dup2(null.as_raw_fd(), 1) };
    }
}
