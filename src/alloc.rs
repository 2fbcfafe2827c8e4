//! A global allocator for training: large blocks on transparent huge pages,
//! and kept for reuse instead of going back to the OS.
//!
//! A training step allocates and frees activation and gradient tensors of
//! tens to hundreds of megabytes, the same sizes every step. The system
//! allocator serves each from fresh pages of the OS: a page fault per page on
//! first touch, and the kernel zeroing every page. Here, blocks of at least
//! [`LARGE_BLOCK`] bytes are rounded up to whole 2 MiB huge pages, advised
//! with `MADV_HUGEPAGE` (512 times fewer faults and TLB misses), and on free
//! parked in a small cache keyed by size, so the next step's tensor of the
//! same size gets the same memory back without faults or zeroing. The cache
//! holds at most [`CACHE_SLOTS`] blocks and [`CACHE_BYTES`] bytes (and no
//! more than a quarter of physical memory); a block that does not fit evicts
//! the longest-parked ones, so sizes no longer used (another model, another
//! batch size) leave the cache to the current ones. Measured on two cores with
//! `benches/train_throughput.sh`: ResNet-18 at 224 px trains about a third
//! faster with huge pages, and faster again with the cache.
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

/// Most bytes the cache keeps (parked blocks are resident memory), unless a
/// quarter of physical memory is less.
pub const CACHE_BYTES: usize = 6 << 30;

/// The cache's byte limit on this machine.
fn cache_limit() -> usize {
    static LIMIT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let known = LIMIT.load(std::sync::atomic::Ordering::Relaxed);
    if known != 0 {
        return known;
    }
    let limit = physical_memory().map_or(CACHE_BYTES, |bytes| CACHE_BYTES.min(bytes / 4));
    LIMIT.store(limit.max(1), std::sync::atomic::Ordering::Relaxed);
    limit.max(1)
}

/// Physical memory in bytes, where the platform says.
#[cfg(target_os = "linux")]
fn physical_memory() -> Option<usize> {
    // SAFETY: sysconf only reads system configuration; it does not allocate.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages > 0 && page > 0).then(|| (pages as usize).saturating_mul(page as usize))
}

#[cfg(not(target_os = "linux"))]
fn physical_memory() -> Option<usize> {
    None
}

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

/// Huge page size on x86-64 and aarch64 with 4 KiB base pages.
const HUGE_PAGE: usize = 2 << 20;

/// Parked blocks: `(address, rounded size, alignment, parked at)`; address
/// 0 is an empty slot.
struct Cache {
    slots: [(usize, usize, usize, u64); CACHE_SLOTS],
    bytes: usize,
    /// Counts parkings, to find the longest-parked block.
    clock: u64,
}

static CACHE: Mutex<Cache> = Mutex::new(Cache {
    slots: [(0, 0, 0, 0); CACHE_SLOTS],
    bytes: 0,
    clock: 0,
});

impl Cache {
    /// Takes a parked block of exactly this size and alignment.
    fn take(&mut self, size: usize, align: usize) -> Option<*mut u8> {
        let slot = self
            .slots
            .iter_mut()
            .find(|&&mut (address, s, a, _)| address != 0 && s == size && a == align)?;
        let address = std::mem::replace(&mut slot.0, 0);
        self.bytes -= size;
        Some(address as *mut u8)
    }

    /// Parks a block, first returning the longest-parked blocks to the
    /// system while it would not fit; false (nothing parked) when the block
    /// alone exceeds the limit.
    fn put(&mut self, block: *mut u8, size: usize, align: usize) -> bool {
        let limit = cache_limit();
        if size > limit {
            return false;
        }
        loop {
            let full = self.slots.iter().all(|slot| slot.0 != 0);
            if !full && self.bytes + size <= limit {
                break;
            }
            let Some(oldest) = self
                .slots
                .iter_mut()
                .filter(|slot| slot.0 != 0)
                .min_by_key(|slot| slot.3)
            else {
                return false;
            };
            let (address, s, a, _) = std::mem::take(oldest);
            self.bytes -= s;
            // SAFETY: parked blocks came from `System.alloc` with exactly this
            // rounded layout and belong to no caller.
            unsafe { System.dealloc(address as *mut u8, Layout::from_size_align_unchecked(s, a)) };
        }
        self.clock += 1;
        let slot = self
            .slots
            .iter_mut()
            .find(|slot| slot.0 == 0)
            .expect("a slot was freed above");
        *slot = (block as usize, size, align, self.clock);
        self.bytes += size;
        true
    }
}

/// The layout a large request is served with: whole huge pages.
fn rounded(layout: Layout) -> Option<Layout> {
    if layout.size() < LARGE_BLOCK {
        return None;
    }
    Layout::from_size_align(layout.size().next_multiple_of(HUGE_PAGE), layout.align()).ok()
}

fn cache() -> std::sync::MutexGuard<'static, Cache> {
    // A panic while holding the lock cannot leave the slots inconsistent
    // (each update is a single assignment), so a poisoned lock is usable.
    CACHE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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
            // SAFETY: the caller's layout, forwarded unchanged (it has a
            // non-zero size, as `GlobalAlloc::alloc` requires).
            return unsafe { System.alloc(layout) };
        };
        if let Some(block) = cache().take(large.size(), large.align()) {
            return block;
        }
        // SAFETY: `large` is at least as big as the caller's non-zero layout.
        let block = unsafe { System.alloc(large) };
        advise(block, large.size());
        block
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        tune_system_allocator();
        let Some(large) = rounded(layout) else {
            // SAFETY: as in `alloc`.
            return unsafe { System.alloc_zeroed(layout) };
        };
        if let Some(block) = cache().take(large.size(), large.align()) {
            // SAFETY: a parked block has `large.size() >= layout.size()`
            // bytes and belongs to no one else now.
            unsafe { block.write_bytes(0, layout.size()) };
            return block;
        }
        // SAFETY: as in `alloc`.
        let block = unsafe { System.alloc_zeroed(large) };
        advise(block, large.size());
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match rounded(layout) {
            // SAFETY: a small block came from `System` with this layout.
            None => unsafe { System.dealloc(block, layout) },
            Some(large) => {
                if !cache().put(block, large.size(), large.align()) {
                    // SAFETY: a large block came from `System` (directly or
                    // through the cache) with the rounded layout `large`.
                    unsafe { System.dealloc(block, large) }
                }
            }
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees that `new_size` with the old
        // alignment forms a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if rounded(layout).is_none() && rounded(new_layout).is_none() {
            // SAFETY: both sizes are small, so `block` came from `System`
            // with `layout`, and `System` serves the new size as it is.
            return unsafe { System.realloc(block, layout, new_size) };
        }
        // SAFETY: `new_layout` is valid and non-zero (the caller's contract).
        let moved = unsafe { self.alloc(new_layout) };
        if !moved.is_null() {
            // SAFETY: both blocks hold at least the smaller of the two sizes
            // and do not overlap (`moved` is a fresh allocation); `block`
            // was allocated by this allocator with `layout`.
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

    #[test]
    fn a_full_cache_evicts_the_longest_parked_block() {
        let mut cache = Cache {
            slots: [(0, 0, 0, 0); CACHE_SLOTS],
            bytes: 0,
            clock: 0,
        };
        let layout = Layout::from_size_align(HUGE_PAGE, 64).unwrap();
        // SAFETY: blocks from `System` with `layout`; the cache frees the
        // evicted ones, the test frees the rest with the same layout.
        unsafe {
            let blocks: Vec<*mut u8> = (0..=CACHE_SLOTS).map(|_| System.alloc(layout)).collect();
            for &block in &blocks {
                assert!(cache.put(block, HUGE_PAGE, 64));
            }
            // The first block was evicted to make room for the last one.
            assert_eq!(cache.bytes, CACHE_SLOTS * HUGE_PAGE);
            assert!(cache.slots.iter().all(|slot| slot.0 != blocks[0] as usize));
            while let Some(block) = cache.take(HUGE_PAGE, 64) {
                assert_ne!(block, blocks[0]);
                System.dealloc(block, layout);
            }
            assert_eq!(cache.bytes, 0);
        }
    }

    #[test]
    fn a_freed_large_block_is_reused_for_the_same_size() {
        // Sizes no other test uses, so parallel tests do not take the block.
        let layout = Layout::from_size_align(LARGE_BLOCK + 12345, 32).unwrap();
        // SAFETY: allocated and freed with the same layout.
        unsafe {
            let first = HugePageAllocator.alloc(layout);
            HugePageAllocator.dealloc(first, layout);
            let second = HugePageAllocator.alloc(layout);
            assert_eq!(first, second);
            HugePageAllocator.dealloc(second, layout);
        }
    }
}
