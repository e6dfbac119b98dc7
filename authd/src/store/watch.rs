//! Files re-read when one of them changes: polled once a second (as Dovecot's passwd-file),
//! parsed together, swapped in whole, and kept as they were when the new version does not
//! parse. (The shadow store reads /etc/shadow, /etc/passwd and /etc/group as one.)

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime};

use super::StoreError;

/// How often the file's metadata is checked.
const POLL: Duration = Duration::from_secs(1);

/// What identifies a version of the file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp { modified: meta.modified().ok(), len: meta.len(), inode: meta.ino() })
}

fn stamps(paths: &[PathBuf]) -> Vec<Option<Stamp>> {
    paths.iter().map(|p| stamp(p)).collect()
}

/// Parses the files' texts, in the order of their paths.
type Loader<T> = dyn Fn(&[String]) -> Result<T, StoreError> + Send + Sync;

struct Inner<T> {
    paths: Vec<PathBuf>,
    current: RwLock<Arc<T>>,
    generation: AtomicU64,
    load: Box<Loader<T>>,
}

/// A parsed file kept current.
pub struct Watched<T> {
    inner: Arc<Inner<T>>,
    task: tokio::task::AbortHandle,
}

impl<T: Send + Sync + 'static> Watched<T> {
    /// Reads and parses `paths` now, then watches them. Must run inside the runtime.
    ///
    /// # Errors
    /// A file cannot be read or they do not parse: a start or reload with a broken file fails.
    pub fn open(
        paths: Vec<PathBuf>,
        load: impl Fn(&[String]) -> Result<T, StoreError> + Send + Sync + 'static,
    ) -> Result<Watched<T>, StoreError> {
        let before = stamps(&paths);
        let first = load(&read_all(&paths)?)?;
        let inner = Arc::new(Inner {
            paths,
            current: RwLock::new(Arc::new(first)),
            generation: AtomicU64::new(1),
            load: Box::new(load),
        });
        let task = tokio::spawn(poll(Arc::downgrade(&inner), before)).abort_handle();
        Ok(Watched { inner, task })
    }

    pub fn current(&self) -> Arc<T> {
        match self.inner.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Relaxed)
    }

    /// The first (main) file.
    pub fn path(&self) -> &Path {
        self.inner.paths.first().map_or(Path::new(""), PathBuf::as_path)
    }
}

impl<T> Drop for Watched<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn read_all(paths: &[PathBuf]) -> Result<Vec<String>, StoreError> {
    paths
        .iter()
        .map(|p| {
            std::fs::read_to_string(p).map_err(|source| StoreError::Read { path: p.display().to_string(), source })
        })
        .collect()
}

async fn poll<T: Send + Sync + 'static>(inner: Weak<Inner<T>>, mut seen: Vec<Option<Stamp>>) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let paths = inner.paths.clone();
        let Ok(now) = tokio::task::spawn_blocking(move || stamps(&paths)).await else { continue };
        if now == seen {
            continue;
        }
        seen = now;
        let reader = inner.clone();
        let loaded = tokio::task::spawn_blocking(move || read_all(&reader.paths).and_then(|t| (reader.load)(&t))).await;
        match loaded {
            Ok(Ok(table)) => {
                if let Ok(mut current) = inner.current.write() {
                    *current = Arc::new(table);
                }
                let generation = inner.generation.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::info!("{}: re-read after a change (generation {generation})", list(&inner.paths));
            }
            Ok(Err(e)) => tracing::error!("{e}; keeping the previous version"),
            Err(e) => tracing::error!("{}: reload task failed: {e}", list(&inner.paths)),
        }
    }
}

fn list(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}
