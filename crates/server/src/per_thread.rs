//! State that every request reads, kept so that reading it writes no memory another core uses.
//!
//! On two cores, a lock or a reference count that both take for every request moves its cache
//! line from one core to the other each time: some 60 ns a touch on the machine of issue 18,
//! where a JWT introspection took about a dozen (the key set's lock and count, the
//! verified-token table's lock, the claims' count). Two shapes remove them:
//!
//! - [`Published`]: one value, replaced seldom (the signing keys). Each thread keeps its own
//!   `Arc` to the version it last saw and only reads a shared version number, a cache line
//!   that stays in every core's cache until the value changes.
//! - [`PerThread`]: a table each thread fills for itself (the verified tokens). A token is
//!   then verified once per thread rather than once per node: a few more signature checks,
//!   no shared lock.
//! - [`Versioned`]: a [`PerThread`] table of copies of shared state (verified API keys, the
//!   deny-list's "not denied" answers), emptied on every thread when that state changes.
//!
//! All are held by thread-locals keyed by the instance, so separate servers in one process
//! (the tests) never see each other's values. A thread keeps at most [`INSTANCES`] of each
//! kind; past that it forgets the oldest, and only pays a shared read to get it back.

use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

/// Instances a thread keeps values of (a server has a handful; tests start many).
const INSTANCES: usize = 16;

fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Keeps at most [`INSTANCES`] entries, dropping the oldest.
fn bound<E>(entries: &mut Vec<E>) {
    if entries.len() >= INSTANCES {
        entries.remove(0);
    }
}

type Seen = (u64, u64, Arc<dyn Any + Send + Sync>);

thread_local! {
    /// (instance, version, value) of each [`Published`] this thread has read.
    static PUBLISHED: RefCell<Vec<Seen>> = const { RefCell::new(Vec::new()) };
    /// (instance, table) of each [`PerThread`] this thread has used.
    static TABLES: RefCell<Vec<(u64, Box<dyn Any>)>> = const { RefCell::new(Vec::new()) };
}

/// A value read by every request and replaced seldom.
#[derive(Debug)]
pub struct Published<T> {
    id: u64,
    version: AtomicU64,
    current: RwLock<Arc<T>>,
}

impl<T: Send + Sync + 'static> Published<T> {
    pub fn new(value: Arc<T>) -> Self {
        Self { id: next_id(), version: AtomicU64::new(0), current: RwLock::new(value) }
    }

    /// The current value, to keep (one shared reference count).
    pub fn get(&self) -> Arc<T> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Replaces the value; every thread sees the new one from its next read.
    pub fn set(&self, value: Arc<T>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = value;
        self.version.fetch_add(1, Ordering::Release);
    }

    /// Calls `f` with the current value, from this thread's own reference when it has the
    /// current version.
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let version = self.version.load(Ordering::Acquire);
        let seen = PUBLISHED.with_borrow(|seen| {
            let entry = seen.iter().find(|(id, v, _)| *id == self.id && *v == version);
            match entry.and_then(|(_, _, value)| value.downcast_ref::<T>()) {
                Some(value) => Ok(f(value)),
                None => Err(f),
            }
        });
        let f = match seen {
            Ok(answer) => return answer,
            Err(f) => f,
        };
        // Read after the version: if the value changed in between, it is newer than the
        // version it is kept under, and the next read fetches it again.
        let current = self.get();
        PUBLISHED.with(|seen| {
            // Taken already only if `f` of an outer `with` reads another value: then this
            // read is not kept.
            if let Ok(mut seen) = seen.try_borrow_mut() {
                seen.retain(|(id, _, _)| *id != self.id);
                bound(&mut seen);
                seen.push((self.id, version, current.clone()));
            }
        });
        f(&current)
    }
}

/// A table each thread keeps for itself.
#[derive(Debug)]
pub struct PerThread<T> {
    id: u64,
    _table: std::marker::PhantomData<fn() -> T>,
}

impl<T> Default for PerThread<T> {
    fn default() -> Self {
        Self { id: next_id(), _table: std::marker::PhantomData }
    }
}

impl<T: Default + 'static> PerThread<T> {
    /// Calls `f` with this thread's table, made empty on first use. `None` if `f` of an outer
    /// call on this thread holds the tables.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        TABLES.with(|tables| {
            let mut tables = tables.try_borrow_mut().ok()?;
            let at = match tables.iter().position(|(id, table)| *id == self.id && table.is::<T>()) {
                Some(at) => at,
                None => {
                    bound(&mut tables);
                    tables.push((self.id, Box::new(T::default())));
                    tables.len() - 1
                }
            };
            let table = tables.get_mut(at)?.1.downcast_mut::<T>()?;
            Some(f(table))
        })
    }
}

/// A [`PerThread`] table of copies of shared state, emptied on every thread once that state
/// changes: a copy is kept under the version read before the shared state it came from, so a
/// change made after that read (and [`Versioned::moved`] after it) leaves no thread using it.
#[derive(Debug, Default)]
pub struct Versioned<T> {
    version: AtomicU64,
    tables: PerThread<Tagged<T>>,
}

#[derive(Debug, Default)]
struct Tagged<T> {
    version: u64,
    table: T,
}

impl<T: Default + 'static> Versioned<T> {
    /// The version to read before the shared state, and to pass to [`Versioned::with`].
    pub fn current(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Calls `f` with this thread's table, emptied first if it was filled at another version.
    /// `None` as for [`PerThread::with`].
    pub fn with<R>(&self, version: u64, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        self.tables.with(|tagged| {
            if tagged.version != version {
                tagged.table = T::default();
                tagged.version = version;
            }
            f(&mut tagged.table)
        })
    }

    /// After the shared state changed: no thread uses a copy taken before.
    pub fn moved(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::{INSTANCES, PerThread, Published, Versioned};
    use std::sync::Arc;

    #[test]
    fn a_published_value_is_read_anew_once_replaced_on_any_thread() {
        let keys = Arc::new(Published::new(Arc::new(1)));
        assert_eq!(keys.with(|v| *v), 1);
        assert_eq!(keys.with(|v| *v), 1, "read again from this thread's copy");
        let elsewhere = keys.clone();
        std::thread::spawn(move || elsewhere.set(Arc::new(2))).join().ok();
        assert_eq!(keys.with(|v| *v), 2);
        // Another instance on the same thread keeps its own value, even inside a read.
        let other = Published::new(Arc::new(10));
        assert_eq!(keys.with(|a| other.with(|b| a + b)), 12);
        assert_eq!(other.with(|b| *b), 10);
    }

    #[test]
    fn a_thread_forgets_the_oldest_instances_and_reads_them_again() {
        let all: Vec<Published<usize>> = (0..INSTANCES + 4).map(|i| Published::new(Arc::new(i))).collect();
        for _ in 0..2 {
            for (i, p) in all.iter().enumerate() {
                assert_eq!(p.with(|v| *v), i);
            }
        }
    }

    #[test]
    fn each_thread_has_its_own_table_per_instance() {
        let table: Arc<PerThread<Vec<u32>>> = Arc::new(PerThread::default());
        table.with(|t| t.push(1));
        table.with(|t| t.push(2));
        assert_eq!(table.with(|t| t.clone()), Some(vec![1, 2]));
        let elsewhere = table.clone();
        let there = std::thread::spawn(move || elsewhere.with(|t| t.len())).join().ok().flatten();
        assert_eq!(there, Some(0), "another thread starts empty");
        let other: PerThread<Vec<u32>> = PerThread::default();
        assert_eq!(other.with(|t| t.len()), Some(0));
        // Nested on one thread: the inner call has no table rather than a second borrow.
        assert_eq!(table.with(|_| other.with(|t| t.len())), Some(None));
    }

    #[test]
    fn versioned_copies_are_dropped_on_every_thread_once_moved() {
        let copies: Arc<Versioned<Vec<u32>>> = Arc::new(Versioned::default());
        let before = copies.current();
        copies.with(before, |t| t.push(1));
        assert_eq!(copies.with(copies.current(), |t| t.clone()), Some(vec![1]));
        let elsewhere = copies.clone();
        std::thread::spawn(move || elsewhere.moved()).join().ok();
        assert_eq!(copies.with(copies.current(), |t| t.clone()), Some(vec![]), "moved on another thread");
        // A copy taken under the version read before a change is not kept past it.
        let stale = copies.current();
        copies.moved();
        copies.with(stale, |t| t.push(2));
        assert_eq!(copies.with(copies.current(), |t| t.len()), Some(0));
    }
}
