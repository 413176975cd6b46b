//! `strata._native`: the Rust side of the Python package (`python/strata`). It takes and returns
//! NumPy arrays, JSON strings and folder paths; DataFrames are converted in Python. Every long
//! call releases the GIL (`py.detach`) and installs the engine's stop check, so that Ctrl-C ends
//! training at the next step with the last checkpoint intact.

mod errors;
mod runs;

use pyo3::prelude::*;

pub use errors::StrataError;

/// Run `f` without the GIL, stopping training when Python has a signal to handle (Ctrl-C).
pub(crate) fn long_call<T: Send>(py: Python<'_>, f: impl FnOnce() -> anyhow::Result<T> + Send) -> PyResult<T> {
    let stop = || Python::attach(|py| py.check_signals().is_err());
    py.detach(|| strata_train::engine::interrupt::with_check(stop, f)).map_err(errors::to_py)
}

/// `python -m strata ...`: the command line, as the `strata` binary runs it; returns the exit
/// status (errors are printed as the CLI prints them).
#[pyfunction]
fn main(py: Python<'_>, argv: Vec<String>) -> PyResult<i32> {
    long_call(py, || Ok(strata_cli::main_with_args(std::iter::once("strata".to_string()).chain(argv))))
}

/// Run one CLI command in this process; strata's errors arrive as exceptions.
#[pyfunction]
fn command(py: Python<'_>, argv: Vec<String>) -> PyResult<()> {
    long_call(py, || strata_cli::try_run(std::iter::once("strata".to_string()).chain(argv)))
}

/// `strata inspect`: what strata would read from `path` with the `[data]` settings `sets`
/// (`key=toml value`), as text.
#[pyfunction]
fn inspect(py: Python<'_>, path: std::path::PathBuf, sets: Vec<String>) -> PyResult<String> {
    long_call(py, || strata_cli::commands::inspect(&path, None, &sets))
}

/// The version of the Rust core.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("StrataError", m.py().get_type::<StrataError>())?;
    m.add_function(wrap_pyfunction!(main, m)?)?;
    m.add_function(wrap_pyfunction!(command, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(inspect, m)?)?;
    runs::register(m)
}
