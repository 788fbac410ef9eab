//! Crash points, for the tests of what a `kill -9` of the daemon leaves at each step of a
//! multi-step operation. Compiled in only with the `crash-points` feature (which the
//! test command turns on); otherwise [`point`] is nothing.
//!
//! With the feature, `UCR_CRASH_AT=<name>` makes the daemon kill itself with SIGKILL at
//! the point of that name: nothing runs after it, no destructor, no flush, as with a
//! real `kill -9`.

/// Dies here if `UCR_CRASH_AT` names this point.
#[cfg(feature = "crash-points")]
pub fn point(name: &str) {
    if std::env::var("UCR_CRASH_AT").as_deref() == Ok(name) {
        tracing::warn!(point = name, "crash point reached: killing the daemon");
        crate::sys::kill::signal(std::process::id() as i32, libc::SIGKILL);
        // SIGKILL to ourselves is delivered before the call returns to user space.
        std::process::abort();
    }
}

/// Without the `crash-points` feature: nothing.
#[cfg(not(feature = "crash-points"))]
#[inline(always)]
pub fn point(_name: &str) {}
