//! Stopping a run cleanly from outside: a caller (the Python package, on Ctrl-C) installs a
//! check on its thread; the engine asks it before every step and ends the run with
//! [`Interrupted`] when it says so. Checkpoints are written only at the end of an epoch, so the
//! last one is intact and the run resumes from it.

use std::cell::RefCell;

/// The error a run stopped by its caller's check ends with.
#[derive(Debug, Clone, PartialEq)]
pub struct Interrupted {
    /// The epoch (or round) that was stopped, 1-based.
    pub round: usize,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted during epoch {}: the run folder keeps the checkpoint of the last finished epoch; run it again to resume", self.round)
    }
}

impl std::error::Error for Interrupted {}

type Check = Box<dyn Fn() -> bool>;

thread_local! {
    static CHECK: RefCell<Option<Check>> = const { RefCell::new(None) };
}

/// Run `f` with `check` installed on this thread: training inside `f` stops before the next
/// step once `check()` returns true. The previous check (if any) comes back afterwards.
pub fn with_check<R>(check: impl Fn() -> bool + 'static, f: impl FnOnce() -> R) -> R {
    let previous = CHECK.with(|c| c.borrow_mut().replace(Box::new(check)));
    struct Restore(Option<Check>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CHECK.with(|c| *c.borrow_mut() = previous);
        }
    }
    let _restore = Restore(previous);
    f()
}

/// Whether this thread's caller asked the run to stop.
pub fn requested() -> bool {
    CHECK.with(|c| c.borrow().as_ref().is_some_and(|check| check()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_applies_inside_only_and_nests() {
        assert!(!requested());
        with_check(|| true, || {
            assert!(requested());
            with_check(|| false, || assert!(!requested()));
            assert!(requested(), "the outer check is back");
        });
        assert!(!requested());
    }
}
