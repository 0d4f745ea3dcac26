//! A team of threads for the parallel sections of one model call (a decoding step, an encoder
//! pass), and [`for_each`] / [`map`], which every parallel kernel goes through.
//!
//! Why not a rayon pool: a model call is dozens of small parallel sections (one per matrix
//! product, each ~20–300 µs) with short serial work between them (norms, attention of one
//! sequence). A rayon worker that finds no work yields, then sleeps after a few dozen rounds,
//! and waking it costs a futex call and tens of microseconds on a VM: one decoding step of a
//! t5-small-sized model measured ~12 sleeps and wake-ups, and a memory-bound matrix product
//! split in 1 MB sections streamed at ~12 GB/s with threads sleeping between sections against
//! ~25 GB/s with threads spinning. Here the calling thread runs the call itself and the team's
//! helpers spin (a `pause` loop) for the length of it, taking the tasks of each section as it is
//! published; between calls they yield for a short grace time, then park, so an idle server
//! costs nothing. Tasks are claimed one by one from a shared counter, so a helper that is
//! slow to arrive (descheduled, still waking) never holds a section up: the caller takes its
//! tasks.
//!
//! Outside a team's call (tests, a model without a team) the same functions run on rayon's
//! global pool, as before; inside a task they run serially (no nested sections).

use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rayon::prelude::*;

/// How long helpers keep looking for work (yielding) after a call before they park: enough to
/// bridge the gap between two decoding steps. Longer costs the threads that run between calls
/// (HTTP, JSON): MiniLM behind `serve`, interleaved, measured 3 ms of grace ~20% slower on
/// single sentences than 0.3 ms, and 30 µs ~4% faster for 4 clients (single sentences the same).
const GRACE: Duration = Duration::from_micros(30);

/// The process's thread settings (`HF_NUM_THREADS` and the CPUs it may use), set once at start.
static SETTINGS: OnceLock<ThreadSettings> = OnceLock::new();

/// How many threads a team (and rayon's global pool) has, and whether its helpers may spin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThreadSettings {
    /// Threads per team, the caller included (at least 1).
    pub threads: usize,
    /// The CPUs the process may use: the cgroup's quota (`cpu.max`), which may be fractional,
    /// or the cores it may run on. Helpers beyond it would spin on time the quota takes back
    /// from the caller, so a team with more threads than this yields instead of spinning.
    pub cpus: f64,
}

impl ThreadSettings {
    /// Whether every thread of a team can run at once, so that spinning costs nobody.
    fn may_spin(&self) -> bool {
        self.threads as f64 <= self.cpus
    }
}

/// Sets the process's thread settings, and sizes rayon's global pool to match; call once at
/// start-up, before a model loads. Returns `false` (and changes nothing) when they were
/// already set or a team already exists.
pub fn configure(settings: ThreadSettings) -> bool {
    let settings = ThreadSettings {
        threads: settings.threads.max(1),
        ..settings
    };
    if SETTINGS.set(settings).is_err() {
        return false;
    }
    // fails only when the global pool was already built (a test): it then keeps its size
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(settings.threads)
        .build_global();
    true
}

/// The thread settings in force: those [`configure`]d, else one thread per CPU the process may
/// use (std's `available_parallelism`, which reads the cgroup quota, rounded down, and the
/// affinity mask).
pub fn settings() -> ThreadSettings {
    *SETTINGS.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(1, usize::from);
        ThreadSettings {
            threads: n,
            cpus: n as f64,
        }
    })
}

/// Waits a moment for other threads: a `pause` when every thread has a CPU of its own, a yield
/// of the CPU otherwise (a fractional or shared quota), so a waiting thread never takes the time
/// of the one it waits for.
fn relax(spin: bool) {
    if spin {
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// One published parallel section: `n` tasks of `task`, claimed through `next`.
struct Section<'a> {
    task: &'a (dyn Fn(usize) + Sync),
    n: usize,
    next: AtomicUsize,
    done: AtomicUsize,
    /// The first panic of a task, re-raised by the caller once every task has ended.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

impl Section<'_> {
    /// Claims and runs tasks until none are left. A task's panic is kept for the caller (and
    /// the task still counts as done, so the caller never waits for it forever).
    fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.n {
                return;
            }
            let was = IN_TASK.with(|t| t.replace(true));
            let r = catch_unwind(AssertUnwindSafe(|| (self.task)(i)));
            IN_TASK.with(|t| t.set(was));
            if let Err(p) = r {
                if let Ok(mut slot) = self.panic.lock() {
                    slot.get_or_insert(p);
                }
            }
            self.done.fetch_add(1, Ordering::Release);
        }
    }
}

/// What the caller and the helpers share.
struct Shared {
    /// Bumped each time a section is published.
    published: AtomicUsize,
    /// The section being run (it lives on the caller's stack), or null.
    section: AtomicPtr<Section<'static>>,
    /// Helpers currently holding a pointer read from `section`.
    inside: AtomicUsize,
    /// A call is running: helpers spin.
    busy: AtomicBool,
    /// The team is dropped: helpers end.
    stop: AtomicBool,
    /// Threads in the team, the caller included.
    threads: usize,
    /// Whether waiting threads spin or yield (see [`relax`]).
    spin: bool,
}

impl Shared {
    /// Runs `task(0..n)` on this thread and the helpers; returns when every task has ended.
    fn run_section(&self, n: usize, task: &(dyn Fn(usize) + Sync)) {
        let section = Section {
            task,
            n,
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            panic: Mutex::new(None),
        };
        let ptr: *const Section<'_> = &section;
        // the lifetime is erased for the helpers, who only touch the section between reading
        // `section` and leaving `inside`, which this function waits for before returning
        self.section.store(ptr.cast_mut().cast(), Ordering::SeqCst);
        self.published.fetch_add(1, Ordering::SeqCst);
        section.work();
        while section.done.load(Ordering::Acquire) < n {
            relax(self.spin);
        }
        // no helper may still hold the pointer when `section` goes out of scope: a helper
        // announces itself in `inside` before it reads `section`, so once `section` is null
        // and `inside` is zero, none does
        self.section.store(std::ptr::null_mut(), Ordering::SeqCst);
        while self.inside.load(Ordering::SeqCst) != 0 {
            relax(self.spin);
        }
        let panic = section.panic.lock().ok().and_then(|mut p| p.take());
        if let Some(p) = panic {
            resume_unwind(p);
        }
    }
}

fn helper(shared: &Shared) {
    let mut seen = shared.published.load(Ordering::Acquire);
    let mut idle_since = Instant::now();
    let mut spins = 0u32;
    loop {
        let now_published = shared.published.load(Ordering::Acquire);
        if now_published != seen {
            seen = now_published;
            shared.inside.fetch_add(1, Ordering::SeqCst);
            let p = shared.section.load(Ordering::SeqCst);
            if !p.is_null() {
                #[allow(unsafe_code)]
                // SAFETY: the section is alive: the caller keeps it until `inside` is back to
                // zero after clearing `section`, and this thread counts in `inside` from before
                // it read the pointer until after its last use (see `run_section`).
                unsafe { &*p }.work();
            }
            shared.inside.fetch_sub(1, Ordering::SeqCst);
            spins = 0;
            continue;
        }
        if shared.busy.load(Ordering::Relaxed) {
            // inside a call: the next section is microseconds away
            relax(shared.spin);
            spins = 0;
            continue;
        }
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        // between calls: give the core to whoever wants it, and park after the grace time
        spins += 1;
        if spins == 1 {
            idle_since = Instant::now();
        }
        if idle_since.elapsed() < GRACE {
            std::thread::yield_now();
            continue;
        }
        // `busy` is set before a call unparks the helpers, so a call that starts after the check
        // below leaves a wake-up token and `park` returns at once
        if !shared.busy.load(Ordering::SeqCst) && !shared.stop.load(Ordering::SeqCst) {
            std::thread::park();
        }
        spins = 0;
    }
}

thread_local! {
    /// The team whose call this thread is running, if any.
    static CURRENT: Cell<*const Shared> = const { Cell::new(std::ptr::null()) };
    /// Whether this thread is running a task of a section (sections do not nest).
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
}

/// A team: the calling thread plus `threads - 1` helper threads.
pub struct Team {
    shared: Arc<Shared>,
    helpers: Vec<JoinHandle<()>>,
    /// One call at a time; a second concurrent caller runs without the team.
    calls: Mutex<()>,
}

impl std::fmt::Debug for Team {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Team")
            .field("threads", &self.shared.threads)
            .finish_non_exhaustive()
    }
}

impl Team {
    /// A team of the configured size ([`settings`]: `HF_NUM_THREADS`, else one thread per CPU
    /// the process may use), `name-0`, `name-1`, … for the helpers.
    pub fn new(name: &str) -> std::io::Result<Self> {
        Self::with_threads(name, settings().threads)
    }

    /// A team of `threads` threads, the caller included; its helpers spin only while every
    /// thread can have a CPU of its own ([`ThreadSettings::cpus`]).
    pub fn with_threads(name: &str, threads: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let spin = ThreadSettings {
            threads,
            ..settings()
        }
        .may_spin();
        let shared = Arc::new(Shared {
            published: AtomicUsize::new(0),
            section: AtomicPtr::new(std::ptr::null_mut()),
            inside: AtomicUsize::new(0),
            busy: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            threads,
            spin,
        });
        let mut team = Self {
            shared: Arc::clone(&shared),
            helpers: Vec::with_capacity(threads - 1),
            calls: Mutex::new(()),
        };
        for i in 0..threads - 1 {
            let s = Arc::clone(&shared);
            // on failure `team` is dropped, which stops the helpers already started
            team.helpers.push(
                std::thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn(move || helper(&s))?,
            );
        }
        Ok(team)
    }

    /// Threads in the team, the caller included.
    pub fn threads(&self) -> usize {
        self.shared.threads
    }

    /// Runs `f` on this thread with the team: the parallel sections inside it ([`for_each`],
    /// [`map`]) split between this thread and the helpers. When the team is already running a
    /// call (of another thread), `f` runs without it.
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        if !CURRENT.with(Cell::get).is_null() {
            return f();
        }
        let Ok(_call) = self.calls.try_lock() else {
            return f();
        };
        /// Ends the call, also when `f` panics.
        struct Call<'a>(&'a Shared);
        impl Drop for Call<'_> {
            fn drop(&mut self) {
                CURRENT.with(|c| c.set(std::ptr::null()));
                self.0.busy.store(false, Ordering::SeqCst);
            }
        }
        self.shared.busy.store(true, Ordering::SeqCst);
        for h in &self.helpers {
            h.thread().unpark();
        }
        CURRENT.with(|c| c.set(Arc::as_ptr(&self.shared)));
        let _call = Call(&self.shared);
        f()
    }
}

impl Drop for Team {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for h in self.helpers.drain(..) {
            h.thread().unpark();
            // a helper only ends by returning (its tasks' panics are caught)
            let _ = h.join();
        }
    }
}

/// Runs `f` with the team this thread is running a call of (`None` outside a call).
fn with_current<R>(f: impl FnOnce(Option<&Shared>) -> R) -> R {
    let p = CURRENT.with(Cell::get);
    #[allow(unsafe_code)]
    // SAFETY: `CURRENT` is set only for the length of `Team::run` on this thread, during which
    // the team (and its `Arc<Shared>`) is borrowed, hence alive; the borrow given to `f` ends
    // before this function returns, within that call.
    let shared = unsafe { p.as_ref() };
    f(shared)
}

/// Threads a parallel section started here would use: the team's inside a call, one inside a
/// task, rayon's otherwise.
pub fn threads() -> usize {
    if IN_TASK.with(Cell::get) {
        return 1;
    }
    with_current(|s| s.map_or_else(rayon::current_num_threads, |s| s.threads))
}

/// `f(i)` for each `i` in `0..n`, in parallel (see the module's documentation for where).
/// A panic in a task is re-raised here once every task has ended.
pub fn for_each<F: Fn(usize) + Sync + Send>(n: usize, f: F) {
    match n {
        0 => {}
        1 => f(0),
        _ if IN_TASK.with(Cell::get) => (0..n).for_each(f),
        _ => with_current(|shared| match shared {
            Some(shared) if shared.threads > 1 => shared.run_section(n, &f),
            Some(_) => (0..n).for_each(&f),
            None => (0..n).into_par_iter().for_each(&f),
        }),
    }
}

/// `[f(0), …, f(n - 1)]`, computed as [`for_each`] does.
pub fn map<T: Send + Sync, F: Fn(usize) -> T + Sync + Send>(n: usize, f: F) -> Vec<T> {
    let slots: Vec<OnceLock<T>> = (0..n).map(|_| OnceLock::new()).collect();
    for_each(n, |i| {
        let _ = slots[i].set(f(i));
    });
    // every task ran once (a panic would have been re-raised above)
    slots.into_iter().filter_map(OnceLock::into_inner).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn a_team_with_more_threads_than_cpus_yields_and_still_runs_every_task() {
        let cpus = settings().cpus;
        let crowded = Team::with_threads("test-crowded", cpus.ceil() as usize + 1).unwrap();
        assert!(
            !crowded.shared.spin,
            "{} threads on {cpus} CPUs",
            crowded.threads()
        );
        assert!(Team::with_threads("test-alone", 1).unwrap().shared.spin);
        let hits: Vec<AtomicU64> = (0..64).map(|_| AtomicU64::new(0)).collect();
        crowded.run(|| {
            for _ in 0..20 {
                for_each(64, |i| {
                    hits[i].fetch_add(1, Ordering::Relaxed);
                });
            }
        });
        assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 20));
    }

    #[test]
    fn every_task_runs_once_inside_and_outside_a_call() {
        let team = Team::with_threads("test-team", 3).unwrap();
        for n in [0usize, 1, 2, 3, 7, 100] {
            let hits: Vec<AtomicU64> = (0..n).map(|_| AtomicU64::new(0)).collect();
            team.run(|| {
                for _ in 0..50 {
                    for_each(n, |i| {
                        hits[i].fetch_add(1, Ordering::Relaxed);
                    });
                }
            });
            for_each(n, |i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(
                hits.iter().all(|h| h.load(Ordering::Relaxed) == 51),
                "n = {n}"
            );
            let squares = team.run(|| map(n, |i| i * i));
            assert_eq!(squares, (0..n).map(|i| i * i).collect::<Vec<_>>());
        }
    }

    #[test]
    fn helpers_take_tasks_inside_a_call() {
        let team = Team::with_threads("test-team", 2).unwrap();
        let caller = std::thread::current().id();
        // tasks long enough that a spinning helper claims some of them
        let helped = team.run(|| {
            (0..200).any(|_| {
                map(2, |_| {
                    std::thread::sleep(Duration::from_millis(1));
                    std::thread::current().id() != caller
                })
                .into_iter()
                .any(|h| h)
            })
        });
        assert!(helped, "no task ever ran on the helper");
        assert_eq!(team.run(threads), 2);
    }

    #[test]
    fn sections_do_not_nest_and_calls_do_not_nest() {
        let team = Team::with_threads("test-team", 2).unwrap();
        let total = AtomicU64::new(0);
        team.run(|| {
            team.run(|| {
                for_each(4, |_| {
                    assert_eq!(threads(), 1);
                    for_each(5, |_| {
                        total.fetch_add(1, Ordering::Relaxed);
                    });
                });
            });
        });
        assert_eq!(total.load(Ordering::Relaxed), 20);
    }

    #[test]
    fn a_panicking_task_panics_the_caller_after_the_others_end_and_the_team_goes_on() {
        let team = Team::with_threads("test-team", 2).unwrap();
        let ran = AtomicU64::new(0);
        let r = catch_unwind(AssertUnwindSafe(|| {
            team.run(|| {
                for_each(8, |i| {
                    ran.fetch_add(1, Ordering::Relaxed);
                    assert!(i != 3, "task 3 fails");
                });
            })
        }));
        let msg = r.err().and_then(|p| p.downcast::<&str>().ok().map(|m| *m));
        assert_eq!(msg, Some("task 3 fails"));
        assert_eq!(ran.load(Ordering::Relaxed), 8);
        // the team is usable afterwards
        assert_eq!(team.run(|| map(3, |i| i + 1)), vec![1, 2, 3]);
    }

    #[test]
    fn a_second_caller_runs_without_the_team_while_it_is_busy() {
        let team = Team::with_threads("test-team", 2).unwrap();
        let (inside_tx, inside_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|s| {
            let t = &team;
            s.spawn(move || {
                t.run(|| {
                    let _ = inside_tx.send(threads());
                    // hold the team until the other caller is done
                    let _ = done_rx.recv();
                })
            });
            assert_eq!(
                inside_rx.recv().unwrap(),
                2,
                "the first caller runs with the team"
            );
            let v = team.run(|| {
                assert!(CURRENT.with(Cell::get).is_null(), "the team is busy");
                map(5, |i| i)
            });
            assert_eq!(v, vec![0, 1, 2, 3, 4]);
            let _ = done_tx.send(());
        });
    }
}
