//! A global allocator that asks Linux for transparent huge pages on large
//! blocks.
//!
//! A training step allocates and frees activation and gradient tensors of
//! tens to hundreds of megabytes. The system allocator serves each from
//! fresh pages of the OS, and every 4 KiB page costs a page fault on first
//! touch. Advised with `MADV_HUGEPAGE`, the kernel backs such blocks with
//! 2 MiB pages: 512 times fewer faults and TLB misses. Measured on two
//! cores: ResNet-18 at 224 px trains about a fifth faster
//! (`benches/train_throughput.sh`). Small blocks, and every other platform,
//! go to the system allocator untouched.

use std::alloc::{GlobalAlloc, Layout, System};

/// The system allocator, plus `madvise(MADV_HUGEPAGE)` on blocks of at least
/// [`HUGE_PAGE_THRESHOLD`] bytes on Linux. Install it with
/// `#[global_allocator] static A: HugePageAllocator = HugePageAllocator;`.
pub struct HugePageAllocator;

/// Blocks at least this large are advised: several huge pages, so the
/// unaligned ends matter little.
pub const HUGE_PAGE_THRESHOLD: usize = 8 << 20;

/// Huge page size on x86-64 and aarch64 with 4 KiB base pages.
const HUGE_PAGE: usize = 2 << 20;

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; `advise` only gives the kernel a hint about pages
// inside the block just returned and never touches its contents.
unsafe impl GlobalAlloc for HugePageAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let block = unsafe { System.alloc(layout) };
        advise(block, layout.size());
        block
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let block = unsafe { System.alloc_zeroed(layout) };
        advise(block, layout.size());
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        unsafe { System.dealloc(block, layout) }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let block = unsafe { System.realloc(block, layout, new_size) };
        advise(block, new_size);
        block
    }
}

/// Advises the whole huge pages inside `[block, block + size)`.
#[cfg(target_os = "linux")]
fn advise(block: *mut u8, size: usize) {
    if block.is_null() || size < HUGE_PAGE_THRESHOLD {
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

    #[test]
    fn blocks_of_every_size_round_trip() {
        for size in [
            1,
            4096,
            HUGE_PAGE_THRESHOLD - 1,
            HUGE_PAGE_THRESHOLD,
            3 * HUGE_PAGE_THRESHOLD + 5,
        ] {
            let layout = Layout::from_size_align(size, 64).unwrap();
            // SAFETY: non-zero size; the block is written within bounds and
            // freed with its own layout.
            unsafe {
                let block = HugePageAllocator.alloc_zeroed(layout);
                assert!(!block.is_null());
                assert_eq!(*block.add(size - 1), 0);
                *block.add(size - 1) = 7;
                let grown = HugePageAllocator.realloc(block, layout, size * 2);
                assert_eq!(*grown.add(size - 1), 7);
                HugePageAllocator.dealloc(grown, Layout::from_size_align(size * 2, 64).unwrap());
            }
        }
    }
}
