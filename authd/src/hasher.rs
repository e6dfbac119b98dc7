//! The bounded pool that runs password hashing off the async workers.
//!
//! A slow scheme (SHA512-CRYPT, bcrypt, Argon2) costs milliseconds of CPU per login. Run on
//! the async workers, a flood of logins would stall every other connection; run on an
//! unbounded blocking pool, it would start hundreds of threads. So `workers` dedicated
//! threads (one per core by default) take jobs from one queue, at most `queue` jobs wait,
//! and a login that cannot get a turn before its deadline fails as a temporary error
//! instead of hanging.
//!
//! Dedicated threads rather than tokio's blocking pool: a worker that finishes a hash takes
//! the next queued one at once. Handing each job from an async task to a blocking thread
//! costs two cross-thread wake-ups per hash, which left a fifth of both cores idle under
//! load on a 2-vCPU machine.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use tokio::time::Instant;

/// Why a job did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Busy {
    #[error("hashing queue full")]
    QueueFull,
    #[error("no hashing worker free before the reply deadline")]
    Deadline,
}

type Job = Box<dyn FnOnce() + Send>;

pub struct Hasher {
    jobs: SyncSender<Job>,
}

impl Hasher {
    /// `workers` 0 means one per available core. The threads end when the pool is dropped
    /// (after a configuration reload, once the jobs already queued are done).
    pub fn new(workers: usize, queue: usize) -> Hasher {
        let workers = if workers == 0 { std::thread::available_parallelism().map_or(2, usize::from) } else { workers };
        let (jobs, rx) = std::sync::mpsc::sync_channel::<Job>(queue.max(1));
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..workers {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new().name(format!("authd-hash-{n}")).spawn(move || work(&rx));
            if let Err(e) = spawned {
                tracing::error!("cannot start hashing thread {n}: {e}");
            }
        }
        Hasher { jobs }
    }

    /// Runs `job` on a pool thread.
    ///
    /// # Errors
    /// The queue is full, or the job has not finished by `deadline` (a job still queued
    /// then is skipped when its turn comes).
    pub async fn run<T: Send + 'static>(
        &self,
        deadline: Instant,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let (tx, rx) = oneshot::channel();
        let wrapped: Job = Box::new(move || {
            if tx.is_closed() || Instant::now() >= deadline {
                return;
            }
            // A panic (a bug) in the job is a temporary failure, not a dead worker.
            if let Ok(out) = std::panic::catch_unwind(AssertUnwindSafe(job)) {
                let _ = tx.send(out);
            }
        });
        match self.jobs.try_send(wrapped) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(Busy::QueueFull),
            Err(TrySendError::Disconnected(_)) => return Err(Busy::Deadline),
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(out)) => Ok(out),
            _ => Err(Busy::Deadline),
        }
    }
}

/// One pool thread: jobs until the pool is gone.
fn work(rx: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only while taking a job; the others wait on it, not on a wake-up.
        let job = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn bounded() {
        let hasher = Arc::new(Hasher::new(1, 1));
        let far = Instant::now() + Duration::from_secs(5);
        assert_eq!(hasher.run(far, || 2 + 2).await, Ok(4));
        // One running, one queued, the third is refused at once.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let h = hasher.clone();
        let first = tokio::spawn(async move { h.run(far, move || rx.recv().is_ok()).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let h = hasher.clone();
        let soon = Instant::now() + Duration::from_millis(100);
        let second = tokio::spawn(async move { h.run(soon, || 1).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(hasher.run(far, || 1).await, Err(Busy::QueueFull));
        assert_eq!(second.await.unwrap(), Err(Busy::Deadline));
        tx.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(true));
    }

    #[tokio::test]
    async fn a_panicking_job_fails_and_the_worker_lives_on() {
        let hasher = Hasher::new(1, 4);
        let far = Instant::now() + Duration::from_secs(5);
        let r: Result<u32, Busy> = hasher.run(far, || panic!("bug in a scheme")).await;
        assert_eq!(r, Err(Busy::Deadline));
        assert_eq!(hasher.run(far, || 7).await, Ok(7));
    }
}
