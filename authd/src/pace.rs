//! Failure answers whose timing does not depend on the account.
//!
//! An unknown user, a wrong password and a disabled account must take the same time to
//! fail, whatever scheme the real accounts are stored in. Two things make that so:
//!
//! - **The decoy** an unknown user is verified against is the costliest credential the store
//!   is known to hold (a copy of a real entry: no password that reaches it is accepted,
//!   since the account does not exist), so the work done is the same.
//! - **The pad**: a failure is answered no earlier than [`Pace::pad`] after the request
//!   started, then the failure delay. The pad is above the slowest verification measured,
//!   so the answer time is the pad's, not the verification's.
//!
//! Both start from a calibration (each cost class of the store's entries timed once, on a
//! blocking thread, at start and at every reload) and rise when a verification is seen to
//! take longer (an SQL store's entries are only met at run time). They never fall while the
//! process runs, and a reload keeps what was seen. The slowest time seen is also kept in a
//! file of the state directory (`pace`, next to the server secret), so a restart starts
//! from it instead of from nothing: a store whose costly entries are met only at run time
//! has a short-padded window only on its very first start (`auth.failure_floor` closes it).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::scheme::Stored;

/// A verification this much costlier than the decoy replaces it (a new cost class, not noise).
const REPLACE_FACTOR: u64 = 2;
/// Added to twice the slowest cost: what lookups and scheduling may add on a busy host.
const PAD_SLACK: Duration = Duration::from_millis(10);

/// The decoy and the pad (see the module documentation).
pub struct Pace {
    decoy: RwLock<Arc<Stored>>,
    /// The decoy's measured cost, µs.
    decoy_us: AtomicU64,
    /// The pad's base, µs: the largest of `classes`, `pam_us` and what a previous run kept.
    slowest_us: AtomicU64,
    /// Per cost class, the fastest verification seen, µs: a class's true cost. The fastest,
    /// not the slowest, so one verification that a busy host stretched does not raise every
    /// failure's pad for good; the pad's factor of two covers such stretching.
    classes: Mutex<HashMap<String, u64>>,
    /// The slowest PAM transaction seen, µs (PAM has no cost classes to tell apart).
    pam_us: AtomicU64,
    /// What the state file held at start, µs.
    kept_us: AtomicU64,
    /// `auth.failure_floor`: the pad is never below it.
    floor: Duration,
    /// The pad is never above it, so a failure still leaves inside the reply budget.
    ceiling: Duration,
    /// Where the slowest time is kept across restarts, if anywhere.
    memory: Option<PathBuf>,
}

impl Pace {
    /// Times one credential of each cost class in `candidates` and `fallback` and takes the
    /// costliest as the decoy. Blocking: run it off the async workers.
    pub fn calibrate(candidates: Vec<Stored>, fallback: Stored, floor: Duration, ceiling: Duration) -> Pace {
        let mut classes: HashMap<String, Stored> = HashMap::new();
        for stored in candidates.into_iter().chain(std::iter::once(fallback)) {
            classes.entry(stored.cost_class()).or_insert(stored);
        }
        let (mut decoy, mut cost) = (None, Duration::ZERO);
        let mut costs = HashMap::new();
        for (class, stored) in classes {
            let took = time_verify(&stored);
            costs.insert(class, micros(took));
            if decoy.is_none() || took > cost {
                (decoy, cost) = (Some(stored), took);
            }
        }
        let decoy = decoy.unwrap_or_else(|| crate::scheme::decoy(crate::scheme::Scheme::Sha512Crypt));
        let us = micros(cost);
        Pace {
            decoy: RwLock::new(Arc::new(decoy)),
            decoy_us: AtomicU64::new(us),
            slowest_us: AtomicU64::new(us),
            classes: Mutex::new(costs),
            pam_us: AtomicU64::new(0),
            kept_us: AtomicU64::new(0),
            floor,
            ceiling,
            memory: None,
        }
    }

    /// Keeps the slowest time in `path` from now on, starting from what it holds.
    #[must_use]
    pub fn remembered_in(mut self, path: PathBuf) -> Pace {
        if let Some(us) = std::fs::read_to_string(&path).ok().and_then(|t| t.trim().parse::<u64>().ok()) {
            // A hand-edited or corrupt file cannot push the pad past the ceiling anyway.
            self.kept_us.store(us, Ordering::Relaxed);
            self.slowest_us.fetch_max(us, Ordering::Relaxed);
        }
        self.memory = Some(path);
        self.remember();
        self
    }

    fn remember(&self) {
        let Some(path) = &self.memory else { return };
        let text = format!("{}\n", self.slowest_us.load(Ordering::Relaxed));
        // A few bytes, written only when the slowest time rises: rare, and cheap enough inline.
        let tmp = path.with_extension("tmp");
        if let Err(e) = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path)) {
            tracing::debug!("cannot keep the failure pad in {}: {e}", path.display());
        }
    }

    /// What unknown users are verified against.
    pub fn decoy(&self) -> Arc<Stored> {
        match self.decoy.read() {
            Ok(d) => d.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Notes that verifying `stored` took `took` (measured on the hashing thread, without
    /// the queue). A clearly costlier class than the decoy's becomes the decoy.
    pub fn observe(&self, stored: &Stored, took: Duration) {
        let us = micros(took);
        let class = stored.cost_class();
        let cost = {
            let Ok(mut classes) = self.classes.lock() else { return };
            let cost = classes.entry(class).and_modify(|c| *c = (*c).min(us)).or_insert(us);
            *cost
        };
        self.update();
        let decoy_us = self.decoy_us.load(Ordering::Relaxed);
        if cost > decoy_us.saturating_mul(REPLACE_FACTOR)
            && let Ok(mut decoy) = self.decoy.write()
        {
            tracing::info!(
                "a {} verification took {} ms: unknown users are now checked against that cost class",
                stored.cost_class(),
                took.as_millis()
            );
            *decoy = Arc::new(stored.clone());
            self.decoy_us.store(cost, Ordering::Relaxed);
        }
    }

    /// Notes a verification done elsewhere (a PAM transaction): it raises the pad only.
    pub fn observe_time(&self, took: Duration) {
        self.pam_us.fetch_max(micros(took), Ordering::Relaxed);
        self.update();
    }

    /// Recomputes the pad's base; a rise of more than a tenth is kept in the state file.
    fn update(&self) {
        let classes = self.classes.lock().map(|c| c.values().copied().max().unwrap_or(0)).unwrap_or(0);
        let base = classes.max(self.pam_us.load(Ordering::Relaxed)).max(self.kept_us.load(Ordering::Relaxed));
        let before = self.slowest_us.swap(base, Ordering::Relaxed);
        if base > before.saturating_add(before / 10) {
            self.remember();
        }
    }

    /// How long after the request's start a failure may leave at the earliest.
    pub fn pad(&self) -> Duration {
        let slowest = Duration::from_micros(self.slowest_us.load(Ordering::Relaxed));
        (slowest * 2 + PAD_SLACK).max(self.floor).min(self.ceiling)
    }

    /// Keeps what `previous` measured, when it measured the same store.
    pub fn inherit(&self, previous: &Pace) {
        if let (Ok(theirs), Ok(mut mine)) = (previous.classes.lock(), self.classes.lock()) {
            for (class, &us) in theirs.iter() {
                mine.entry(class.clone()).and_modify(|c| *c = (*c).min(us)).or_insert(us);
            }
        }
        self.pam_us.fetch_max(previous.pam_us.load(Ordering::Relaxed), Ordering::Relaxed);
        self.kept_us.fetch_max(previous.kept_us.load(Ordering::Relaxed), Ordering::Relaxed);
        self.update();
        let theirs = previous.decoy_us.load(Ordering::Relaxed);
        if theirs > self.decoy_us.load(Ordering::Relaxed).saturating_mul(REPLACE_FACTOR)
            && let Ok(mut decoy) = self.decoy.write()
        {
            *decoy = previous.decoy();
            self.decoy_us.store(theirs, Ordering::Relaxed);
        }
    }
}

/// The best of two timed verifications of a password nobody has.
fn time_verify(stored: &Stored) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..2 {
        let started = Instant::now();
        std::hint::black_box(stored.verify(b"postward calibration, matches nothing"));
        best = best.min(started.elapsed());
    }
    best
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::scheme::{Scheme, hash};

    fn stored(scheme: Scheme, rounds: Option<u32>) -> Stored {
        Stored::parse(&hash(scheme, b"pw", rounds).unwrap(), Scheme::Plain).unwrap()
    }

    #[test]
    fn the_costliest_class_is_the_decoy_and_the_pad_covers_it() {
        let cheap = stored(Scheme::Sha512Crypt, Some(1000));
        let dear = stored(Scheme::Sha512Crypt, Some(200_000));
        let pace = Pace::calibrate(
            vec![cheap.clone(), dear.clone(), cheap.clone()],
            stored(Scheme::Ssha256, None),
            Duration::ZERO,
            Duration::from_secs(5),
        );
        assert_eq!(pace.decoy().cost_class(), dear.cost_class());
        let dear_cost = time_verify(&dear);
        assert!(pace.pad() >= dear_cost, "pad {:?} below a verification of {dear_cost:?}", pace.pad());
        // A class first met at run time raises the pad and, being costlier, becomes the decoy.
        let late = stored(Scheme::Sha512Crypt, Some(300_000));
        pace.observe(&late, Duration::from_secs(2));
        assert_eq!(pace.pad(), Duration::from_secs(4) + PAD_SLACK);
        assert_eq!(pace.decoy().cost_class(), late.cost_class());
        // One stretched verification of a known class moves nothing: a class costs its fastest.
        pace.observe(&cheap, Duration::from_secs(60));
        pace.observe(&late, Duration::from_secs(60));
        assert_eq!(pace.pad(), Duration::from_secs(4) + PAD_SLACK);
        // Never past the ceiling, never under the floor.
        pace.observe(&stored(Scheme::Sha256Crypt, Some(400_000)), Duration::from_secs(60));
        assert_eq!(pace.pad(), Duration::from_secs(5));
        // What the state file keeps is where the next start begins.
        let dir = tempfile::tempdir().unwrap();
        let kept = Pace::calibrate(vec![], stored(Scheme::Plain, None), Duration::ZERO, Duration::from_secs(5))
            .remembered_in(dir.path().join("pace"));
        kept.observe_time(Duration::from_millis(700));
        let next = Pace::calibrate(vec![], stored(Scheme::Plain, None), Duration::ZERO, Duration::from_secs(5))
            .remembered_in(dir.path().join("pace"));
        assert_eq!(next.pad(), Duration::from_millis(1400) + PAD_SLACK);
        let floor = Pace::calibrate(vec![], stored(Scheme::Plain, None), Duration::from_secs(1), Duration::MAX);
        assert_eq!(floor.pad(), Duration::from_secs(1));
    }
}
