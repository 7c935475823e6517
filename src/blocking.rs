//! Work that blocks a thread (reading a password file, running a password
//! command, fsyncing a token or a quarantined message) runs on tokio's
//! blocking pool, so a slow disk or command never stalls other polls.

/// Runs `work` off the reactor. A panic in it continues in the caller, as
/// if the work had run there.
pub async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}
