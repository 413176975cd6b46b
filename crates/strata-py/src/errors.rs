//! strata's errors as Python exceptions, with the CLI's one-line message.

use pyo3::PyErr;
use pyo3::exceptions::{PyFileNotFoundError, PyKeyboardInterrupt, PyValueError};
use strata_train::engine::interrupt::Interrupted;

pyo3::create_exception!(_native, StrataError, PyValueError, "An error strata reports: bad configuration, data or input (a ValueError).");

/// Stopped by Ctrl-C -> `KeyboardInterrupt`; a file that does not exist -> `FileNotFoundError`;
/// everything else -> `StrataError` (a `ValueError`). The message is the CLI's `error: ...` line.
pub fn to_py(e: anyhow::Error) -> PyErr {
    let message = format!("{e:#}");
    if e.chain().any(|c| c.downcast_ref::<Interrupted>().is_some()) {
        return PyKeyboardInterrupt::new_err(message);
    }
    let missing = e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound));
    if missing {
        return PyFileNotFoundError::new_err(message);
    }
    StrataError::new_err(message)
}
