//! The bounded pool that runs password hashing off the async workers.
//!
//! A slow scheme (SHA512-CRYPT, bcrypt, Argon2) costs milliseconds of CPU per login. Run on
//! the async workers, a flood of logins would stall every other connection; run on an
//! unbounded blocking pool, it would start hundreds of threads. So at most `workers` hashes
//! run at once (one per core by default, on tokio's blocking threads), at most `queue` more
//! wait, and a login that cannot get a turn before its deadline fails as a temporary error
//! instead of hanging.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Why a job did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Busy {
    #[error("hashing queue full")]
    QueueFull,
    #[error("no hashing worker free before the reply deadline")]
    Deadline,
}

pub struct Hasher {
    workers: Arc<Semaphore>,
    queue: Arc<Semaphore>,
}

impl Hasher {
    /// `workers` 0 means one per available core.
    pub fn new(workers: usize, queue: usize) -> Hasher {
        let workers = if workers == 0 { std::thread::available_parallelism().map_or(2, usize::from) } else { workers };
        Hasher { workers: Arc::new(Semaphore::new(workers)), queue: Arc::new(Semaphore::new(workers + queue)) }
    }

    /// Runs `job` on a blocking thread when a worker is free.
    ///
    /// # Errors
    /// The queue is full, or no worker frees up before `deadline`.
    pub async fn run<T: Send + 'static>(
        &self,
        deadline: Instant,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let _place = self.queue.clone().try_acquire_owned().map_err(|_| Busy::QueueFull)?;
        let permit = match tokio::time::timeout_at(deadline, self.workers.clone().acquire_owned()).await {
            Ok(Ok(p)) => p,
            _ => return Err(Busy::Deadline),
        };
        let handle = tokio::task::spawn_blocking(move || {
            let out = job();
            drop(permit);
            out
        });
        // The job itself cannot be cancelled; a panic in it (a bug) is a temporary failure.
        handle.await.map_err(|_| Busy::Deadline)
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
}
