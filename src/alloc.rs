//! A global allocator for training: large blocks on transparent huge pages,
//! and kept for reuse instead of going back to the OS, but never more than
//! the working set needs.
//!
//! A training step allocates and frees activation and gradient tensors of
//! tens to hundreds of megabytes, the same sizes every step. The system
//! allocator serves each from fresh pages of the OS: a page fault per page on
//! first touch, and the kernel zeroing every page. Here, blocks of at least
//! [`LARGE_BLOCK`] bytes are rounded up to whole 2 MiB huge pages, advised
//! with `MADV_HUGEPAGE` (512 times fewer faults and TLB misses), and on free
//! parked in a small cache keyed by size, so the next step's tensor of the
//! same size gets the same memory back without faults or zeroing. Measured on
//! two cores with `benches/train_throughput.sh`: ResNet-18 at 224 px trains
//! about a third faster with huge pages, and faster again with the cache.
//!
//! The cache holds the working set, not a share of the machine: a parked
//! block stays only while blocks of its size keep being used. Every
//! [`WINDOW_ALLOCATIONS`] large allocations, blocks parked before the
//! previous window began (idle for at least a whole window) go back to the
//! system. In a steady training loop every block is lent and parked again
//! each step, so the cache keeps exactly the blocks the step cycles through
//! (its working set: more than the peak of live blocks when sizes differ,
//! and no page faults); blocks of sizes no longer asked for (another model,
//! batch size or stage) leave within two windows. [`release_parked`]
//! returns every parked block at once (inference passes call it when they
//! end), [`release`] also the system allocator's free heap memory (the
//! training and embedding stages call it when they end).
//!
//! Smaller blocks go to the system allocator, tuned once on the first
//! allocation (glibc only, see [`tune_system_allocator`]) to serve them from
//! its heap and keep freed heap memory instead of mapping and unmapping
//! pages for every megabyte-sized tensor. Other platforms' allocators are
//! left untouched.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;

/// The global allocator of the `ablate` binary and benchmarks; see the
/// module docs. Install it with
/// `#[global_allocator] static A: HugePageAllocator = HugePageAllocator;`.
pub struct HugePageAllocator;

/// Blocks at least this large are rounded to huge pages and cached.
///
/// One huge page: blocks of 2-8 MiB (ResNet-18's deeper activations at
/// batch 32) served by glibc came from the rayon threads' own heaps, which
/// give freed memory back to the OS, so every inference step faulted about
/// 4,900 fresh pages back in (`perf stat -e page-faults` over 3 and 9 steps
/// of `ablate speed --model resnet18 --mode inference --threads 1`); cached
/// here, about 220.
pub const LARGE_BLOCK: usize = 2 << 20;

/// Most blocks the cache keeps.
pub const CACHE_SLOTS: usize = 96;

/// Large allocations per working-set window: a few training steps of
/// ResNet-18 at 224 px (about 200 large tensors a step), an epoch or two of
/// ResNet-18 at 64 px on the synthetic dataset (about 1,000), longer for
/// the narrow models, whose activations are mostly below [`LARGE_BLOCK`].
pub const WINDOW_ALLOCATIONS: u32 = 2048;

/// Freed memory the system allocator keeps at the top of its heaps instead
/// of returning it to the OS.
pub const HEAP_KEEP_BYTES: usize = 256 << 20;

/// Sets glibc's malloc, once per process, to serve every block below
/// [`LARGE_BLOCK`] from its heaps (its default maps blocks above an
/// adaptive threshold of 128 KiB to 32 MiB directly from the OS and unmaps
/// them on free, so each such tensor faults in and zeroes fresh pages) and
/// to keep up to [`HEAP_KEEP_BYTES`] of freed memory per heap. Measured on
/// two cores with `ablate speed --model resnet10-w16 --image-size 64`:
/// training about 30% faster, since the small model's activations (0.5-2 MB)
/// were all in that adaptive band.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_system_allocator() {
    static TUNED: std::sync::Once = std::sync::Once::new();
    TUNED.call_once(|| {
        // SAFETY: mallopt only changes the allocator's thresholds; it is
        // thread-safe and valid at any time. A rejected value (returns 0)
        // leaves glibc's defaults.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, LARGE_BLOCK as libc::c_int);
            libc::mallopt(libc::M_TRIM_THRESHOLD, HEAP_KEEP_BYTES as libc::c_int);
        }
    });
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_system_allocator() {}

/// Returns the system allocator's free heap memory to the OS (glibc only).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_system_allocator() {
    // SAFETY: malloc_trim only releases free memory of glibc's heaps; it is
    // thread-safe and leaves every allocated block in place.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_system_allocator() {}

/// Huge page size on x86-64 and aarch64 with 4 KiB base pages.
const HUGE_PAGE: usize = 2 << 20;

/// Returns every parked block to the system; returns the bytes released.
/// Call it after a pass whose blocks the next work will not ask for (an
/// inference pass between training epochs, see `crate::train::evaluate`).
pub fn release_parked() -> usize {
    lock(&CACHE).release()
}

/// Returns every parked block to the system and asks the system allocator
/// to return its free heap memory: between stages whose tensors differ
/// (after a training, after embedding the pool), so that the next stage
/// builds its own working set instead of keeping the last one's. Returns
/// the bytes of parked blocks released.
pub fn release() -> usize {
    let released = release_parked();
    trim_system_allocator();
    released
}

/// Parked blocks and the window bookkeeping.
struct Cache {
    /// Parked blocks: `(address, rounded size, alignment, parked at)`;
    /// address 0 is an empty slot.
    slots: [(usize, usize, usize, u64); CACHE_SLOTS],
    /// Bytes of parked blocks.
    parked: usize,
    /// Counts parkings: the "parked at" of the next block.
    clock: u64,
    /// `clock` when the previous window began.
    previous_window: u64,
    /// `clock` when the current window began.
    current_window: u64,
    /// Large allocations in the current window.
    window_allocations: u32,
}

static CACHE: Mutex<Cache> = Mutex::new(Cache::new());

impl Cache {
    const fn new() -> Self {
        Self {
            slots: [(0, 0, 0, 0); CACHE_SLOTS],
            parked: 0,
            clock: 0,
            previous_window: 0,
            current_window: 0,
            window_allocations: 0,
        }
    }

    /// Counts a large allocation. Every [`WINDOW_ALLOCATIONS`] calls a new
    /// window begins, and blocks parked before the previous one began go
    /// back to the system.
    fn count_allocation(&mut self) {
        self.window_allocations += 1;
        if self.window_allocations >= WINDOW_ALLOCATIONS {
            self.window_allocations = 0;
            self.previous_window = self.current_window;
            self.current_window = self.clock;
            let idle_since = self.previous_window;
            self.evict_where(|parked_at| parked_at < idle_since);
        }
    }

    /// Takes a parked block of exactly this size and alignment.
    fn take(&mut self, size: usize, align: usize) -> Option<*mut u8> {
        let slot = self
            .slots
            .iter_mut()
            .find(|&&mut (address, s, a, _)| address != 0 && s == size && a == align)?;
        let address = std::mem::replace(&mut slot.0, 0);
        self.parked -= size;
        Some(address as *mut u8)
    }

    /// Returns the parked blocks whose "parked at" satisfies `evict` to the system.
    fn evict_where(&mut self, evict: impl Fn(u64) -> bool) {
        for slot in &mut self.slots {
            if slot.0 != 0 && evict(slot.3) {
                let (address, size, align, _) = std::mem::take(slot);
                self.parked -= size;
                // SAFETY: parked blocks came from `System.alloc` (or
                // `System.alloc_zeroed`) with exactly this rounded layout,
                // which was valid then, and belong to no caller.
                unsafe {
                    System.dealloc(
                        address as *mut u8,
                        Layout::from_size_align_unchecked(size, align),
                    )
                };
            }
        }
    }

    /// Returns every parked block to the system; returns the bytes released.
    fn release(&mut self) -> usize {
        let released = self.parked;
        self.evict_where(|_| true);
        released
    }

    /// Parks a block given back by a caller, first returning the
    /// longest-parked block to the system when every slot is taken.
    fn put(&mut self, block: *mut u8, size: usize, align: usize) {
        if self.slots.iter().all(|slot| slot.0 != 0) {
            let oldest = self.slots.iter().map(|slot| slot.3).min();
            self.evict_where(|parked_at| Some(parked_at) == oldest);
        }
        let slot = self
            .slots
            .iter_mut()
            .find(|slot| slot.0 == 0)
            .expect("a slot is free: one was emptied above if none was");
        *slot = (block as usize, size, align, self.clock);
        self.clock += 1;
        self.parked += size;
    }
}

/// The layout a large request is served with: whole huge pages.
fn rounded(layout: Layout) -> Option<Layout> {
    if layout.size() < LARGE_BLOCK {
        return None;
    }
    Layout::from_size_align(layout.size().next_multiple_of(HUGE_PAGE), layout.align()).ok()
}

fn lock(cache: &Mutex<Cache>) -> std::sync::MutexGuard<'_, Cache> {
    // A panic while holding the lock cannot leave the slots inconsistent
    // (each update is a single assignment), so a poisoned lock is usable.
    cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Serves a large request (`large`, already rounded): a parked block of
/// its layout, else a fresh one from `fresh`. The second value says whether
/// the block is fresh (zeroed when `fresh` zeroes).
fn lend_large(
    cache: &Mutex<Cache>,
    large: Layout,
    fresh: impl FnOnce(Layout) -> *mut u8,
) -> (*mut u8, bool) {
    let parked = {
        let mut cache = lock(cache);
        cache.count_allocation();
        cache.take(large.size(), large.align())
    };
    if let Some(block) = parked {
        return (block, false);
    }
    let block = fresh(large);
    advise(block, large.size());
    (block, true)
}

/// Parks a large block given back by its caller (`large`: its rounded layout).
fn park_large(cache: &Mutex<Cache>, block: *mut u8, large: Layout) {
    lock(cache).put(block, large.size(), large.align());
}

// SAFETY: small requests are forwarded unchanged to `System`. A large
// request is served with a larger layout (`rounded`) from `System` or from
// a parked block that `System` returned for that same layout; `dealloc` and
// `realloc` recompute the same rounded layout from the caller's layout, so
// every block reaches `System.dealloc` with the layout it was allocated
// with. Parked blocks belong to no caller. `advise` only gives the kernel a
// paging hint for memory inside a block.
unsafe impl GlobalAlloc for HugePageAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        tune_system_allocator();
        let Some(large) = rounded(layout) else {
            // SAFETY: the caller's layout has a non-zero size, as `System` requires.
            return unsafe { System.alloc(layout) };
        };
        // SAFETY: `large` is a valid layout of non-zero size (at least `layout`'s).
        lend_large(&CACHE, large, |large| unsafe { System.alloc(large) }).0
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        tune_system_allocator();
        let Some(large) = rounded(layout) else {
            // SAFETY: the caller's layout has a non-zero size, as `System` requires.
            return unsafe { System.alloc_zeroed(layout) };
        };
        // SAFETY: `large` is a valid layout of non-zero size (at least `layout`'s).
        let (block, fresh) =
            lend_large(&CACHE, large, |large| unsafe { System.alloc_zeroed(large) });
        if !fresh {
            // SAFETY: a parked block of `large.size() >= layout.size()`
            // bytes, now owned by this caller.
            unsafe { block.write_bytes(0, layout.size()) };
        }
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match rounded(layout) {
            // SAFETY: a small block came from `System` with this very layout.
            None => unsafe { System.dealloc(block, layout) },
            Some(large) => park_large(&CACHE, block, large),
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` with the old alignment
        // forms a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if rounded(layout).is_none() && rounded(new_layout).is_none() {
            // SAFETY: a small block from `System` with `layout`, resized to
            // a small valid layout; the caller's contract carries over.
            return unsafe { System.realloc(block, layout, new_size) };
        }
        // SAFETY: `new_layout` is valid and of non-zero size (the caller's contract).
        let moved = unsafe { self.alloc(new_layout) };
        if !moved.is_null() {
            // SAFETY: both blocks are valid for the copied length (the
            // smaller of the two sizes) and distinct; the old block was
            // allocated here with `layout` and the caller gives it up.
            unsafe {
                std::ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                self.dealloc(block, layout);
            }
        }
        moved
    }
}

/// Advises the whole huge pages inside `[block, block + size)`.
#[cfg(target_os = "linux")]
fn advise(block: *mut u8, size: usize) {
    if block.is_null() {
        return;
    }
    let start = (block as usize).next_multiple_of(HUGE_PAGE);
    let end = (block as usize + size) / HUGE_PAGE * HUGE_PAGE;
    if end > start {
        // SAFETY: the range lies inside a block this process owns; the call
        // changes only the kernel's paging policy for it. A failure (e.g. a
        // kernel without transparent huge pages) leaves ordinary pages.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise(_block: *mut u8, _size: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Allocates, checks zeroing, writes the last byte, grows, frees.
    fn round_trip(size: usize) -> *mut u8 {
        let layout = Layout::from_size_align(size, 64).unwrap();
        // SAFETY: non-zero sizes; every access is within the block, and each
        // block is freed with the layout it was allocated or grown to.
        unsafe {
            let block = HugePageAllocator.alloc_zeroed(layout);
            assert!(!block.is_null());
            assert_eq!(*block, 0);
            assert_eq!(*block.add(size - 1), 0);
            *block.add(size - 1) = 7;
            let grown = HugePageAllocator.realloc(block, layout, size * 2);
            assert_eq!(*grown.add(size - 1), 7);
            *grown.add(2 * size - 1) = 9;
            HugePageAllocator.dealloc(grown, Layout::from_size_align(size * 2, 64).unwrap());
            grown
        }
    }

    #[test]
    fn blocks_of_every_size_round_trip_and_come_back_zeroed() {
        for size in [1, 4096, LARGE_BLOCK - 1, LARGE_BLOCK, 3 * LARGE_BLOCK + 5] {
            round_trip(size);
            // The same size again reuses a parked (dirty) block for large
            // sizes: it must still come back zeroed.
            round_trip(size);
        }
    }

    /// A block of `pages` huge pages from `System`, counted by `cache` (as
    /// after a miss).
    fn lend(cache: &mut Cache, pages: usize) -> (*mut u8, usize) {
        let size = pages * HUGE_PAGE;
        cache.count_allocation();
        // SAFETY: a valid non-zero layout; the tests park every block, and
        // the cache frees it.
        let block = unsafe { System.alloc(Layout::from_size_align(size, 64).unwrap()) };
        assert!(!block.is_null());
        (block, size)
    }

    /// Gives a lent block back to `cache`, which parks it.
    fn give_back(cache: &mut Cache, (block, size): (*mut u8, usize)) {
        cache.put(block, size, 64);
    }

    /// Takes a parked block of `pages` and lends it again.
    fn reuse(cache: &mut Cache, pages: usize) -> Option<(*mut u8, usize)> {
        let size = pages * HUGE_PAGE;
        cache.count_allocation();
        cache.take(size, 64).map(|block| (block, size))
    }

    /// Frees every block still parked in a test's cache.
    fn empty(mut cache: Cache) {
        cache.release();
        assert_eq!(cache.parked, 0);
    }

    #[test]
    fn a_full_cache_evicts_the_longest_parked_block() {
        let mut cache = Cache::new();
        let blocks: Vec<_> = (0..=CACHE_SLOTS).map(|_| lend(&mut cache, 1)).collect();
        for &block in &blocks {
            give_back(&mut cache, block);
        }
        // The first block was evicted to make room for the last one.
        assert_eq!(cache.parked, CACHE_SLOTS * HUGE_PAGE);
        assert!(cache
            .slots
            .iter()
            .all(|slot| slot.0 != blocks[0].0 as usize));
        let mut taken = Vec::new();
        while let Some(block) = cache.take(HUGE_PAGE, 64) {
            assert_ne!(block, blocks[0].0);
            taken.push(block);
        }
        assert_eq!((taken.len(), cache.parked), (CACHE_SLOTS, 0));
        let layout = Layout::from_size_align(HUGE_PAGE, 64).unwrap();
        for block in taken {
            // SAFETY: allocated by `lend` with this layout, now owned by the test.
            unsafe { System.dealloc(block, layout) };
        }
    }

    #[test]
    fn a_steady_loop_reuses_every_block_it_cycles_through() {
        let mut cache = Cache::new();
        // One step: a 4-page tensor, freed, then a 2-page one: peak live is
        // 4 pages, but reusing both needs 6.
        let a = lend(&mut cache, 4);
        give_back(&mut cache, a);
        let b = lend(&mut cache, 2);
        give_back(&mut cache, b);
        // Many more steps than a window: every request is met by the same
        // parked blocks; nothing is evicted.
        for _ in 0..3 * WINDOW_ALLOCATIONS {
            let again = reuse(&mut cache, 4).expect("4 pages parked");
            assert_eq!(again.0, a.0);
            give_back(&mut cache, again);
            let again = reuse(&mut cache, 2).expect("2 pages parked");
            assert_eq!(again.0, b.0);
            give_back(&mut cache, again);
        }
        assert_eq!(cache.parked, 6 * HUGE_PAGE);
        empty(cache);
    }

    #[test]
    fn blocks_idle_for_a_whole_window_go_back_to_the_system() {
        let mut cache = Cache::new();
        let big = lend(&mut cache, 8);
        give_back(&mut cache, big);
        // A loop of 1-page steps: the 8-page block stays for the rest of
        // this window and the whole next one, then leaves.
        let small = lend(&mut cache, 1);
        give_back(&mut cache, small);
        let mut steps = 2;
        while cache.parked > HUGE_PAGE {
            let block = reuse(&mut cache, 1).expect("1 page parked");
            give_back(&mut cache, block);
            steps += 1;
        }
        assert!(steps > WINDOW_ALLOCATIONS as usize, "{steps}");
        assert!(steps <= 2 * WINDOW_ALLOCATIONS as usize, "{steps}");
        assert_eq!(cache.parked, HUGE_PAGE);
        empty(cache);
    }

    #[test]
    fn release_returns_every_parked_block() {
        let mut cache = Cache::new();
        let a = lend(&mut cache, 3);
        let b = lend(&mut cache, 1);
        give_back(&mut cache, a);
        assert_eq!(cache.release(), 3 * HUGE_PAGE);
        assert_eq!(cache.parked, 0);
        give_back(&mut cache, b);
        assert_eq!(cache.parked, HUGE_PAGE);
        empty(cache);
    }

    #[test]
    fn a_freed_large_block_is_reused_for_the_same_size() {
        let cache = Mutex::new(Cache::new());
        let large = rounded(Layout::from_size_align(LARGE_BLOCK + 12345, 32).unwrap()).unwrap();
        // SAFETY: a valid non-zero layout; the block is parked below and
        // freed by `release`.
        let (first, fresh) = lend_large(&cache, large, |large| unsafe { System.alloc(large) });
        assert!(fresh && !first.is_null());
        park_large(&cache, first, large);
        let (second, fresh) = lend_large(&cache, large, |_| panic!("not from the cache"));
        assert_eq!((second, fresh), (first, false));
        park_large(&cache, second, large);
        assert_eq!(lock(&cache).release(), large.size());
    }
}
