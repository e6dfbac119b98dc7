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
        // A queue of 0 is a rendezvous: a job is taken only when a worker is waiting for one.
        let (jobs, rx) = std::sync::mpsc::sync_channel::<Job>(queue);
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
    /// The queue is full, or no worker took the job by `deadline` (it is then skipped when
    /// its turn comes).
    pub async fn run<T: Send + 'static>(
        &self,
        deadline: Instant,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let (tx, mut rx) = oneshot::channel();
        let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = started.clone();
        let wrapped: Job = Box::new(move || {
            if tx.is_closed() || Instant::now() >= deadline {
                return;
            }
            flag.store(true, std::sync::atomic::Ordering::Release);
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
        // The deadline is for getting a worker. A job that has started runs to its end and
        // its result is used: throwing finished work away under overload would drive the
        // useful throughput towards zero.
        match tokio::time::timeout_at(deadline, &mut rx).await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(_)) => Err(Busy::Deadline),
            Err(_) if started.load(std::sync::atomic::Ordering::Acquire) => rx.await.map_err(|_| Busy::Deadline),
            Err(_) => Err(Busy::Deadline),
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

    #[tokio::test]
    async fn a_started_job_finishes_past_its_deadline() {
        let hasher = Hasher::new(1, 1);
        let soon = Instant::now() + Duration::from_millis(50);
        let slow = move || {
            // Blocks ~150 ms, well past the deadline, like a slow hash.
            let (_keep, rx) = std::sync::mpsc::channel::<()>();
            let _ = rx.recv_timeout(Duration::from_millis(150));
            5
        };
        assert_eq!(hasher.run(soon, slow).await, Ok(5));
    }
}
