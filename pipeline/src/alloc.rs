//! A global allocator that wipes every heap block before handing it back to the system.
//!
//! Why: the pipeline promises that every buffer that held image data is wiped when the request
//! ends, on every path (success, provider error, timeout, client disconnect). Image bytes pass
//! through buffers we do not own: hyper's read buffers, multipart parsing, reqwest's request
//! body, rustls's plaintext and record buffers. Dropping a buffer only returns it to the
//! allocator's free lists, where its contents stay readable until reused. Wiping at the single
//! point every buffer goes through, `dealloc` (and the old block of a `realloc`), covers all of
//! them without each library's cooperation. The writes are followed by a compiler fence so the
//! optimiser cannot treat them as dead stores to memory about to be freed.
//!
//! `realloc` never delegates to the system's `realloc`, which may extend in place and leave a
//! shrunk tail unwiped, or move the block and free the old one unwiped: it allocates, copies,
//! wipes the old block and frees it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{Ordering, compiler_fence};

/// The zeroing allocator. Install it in a binary with
/// `#[global_allocator] static ALLOC: ZeroingAllocator = ZeroingAllocator;`.
#[derive(Debug, Default, Clone, Copy)]
pub struct ZeroingAllocator;

/// Overwrites `len` bytes at `ptr` with zeros in a way the optimiser must keep.
///
/// # Safety
/// `ptr` must be valid for writes of `len` bytes.
unsafe fn wipe(ptr: *mut u8, len: usize) {
    // SAFETY: the caller guarantees `ptr..ptr+len` is a live, writable block.
    unsafe { std::ptr::write_bytes(ptr, 0, len) };
    compiler_fence(Ordering::SeqCst);
    // A volatile read of the block makes the preceding stores observable.
    if len > 0 {
        // SAFETY: as above; one byte inside the block.
        unsafe { std::ptr::read_volatile(ptr) };
    }
}

// SAFETY: every method forwards to `System` with the same layouts; the wiping only writes inside
// blocks that are still owned by the caller at that point.
unsafe impl GlobalAlloc for ZeroingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated with `layout` and is still ours until `System.dealloc`.
        unsafe {
            wipe(ptr, layout.size());
            System.dealloc(ptr, layout);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` with `layout.align()` forms a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: non-zero size by the realloc contract.
        let new_ptr = unsafe { System.alloc(new_layout) };
        if !new_ptr.is_null() {
            // SAFETY: both blocks are live and distinct; the old one is wiped before it is freed.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
                wipe(ptr, layout.size());
                System.dealloc(ptr, layout);
            }
        }
        new_ptr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dealloc_wipes_the_block_before_freeing() {
        let alloc = ZeroingAllocator;
        let layout = Layout::from_size_align(4096, 8).unwrap();
        unsafe {
            let ptr = alloc.alloc(layout);
            assert!(!ptr.is_null());
            std::ptr::write_bytes(ptr, 0xAB, 4096);
            // Wipe as dealloc does, then inspect before the block is released.
            wipe(ptr, 4096);
            let block = std::slice::from_raw_parts(ptr, 4096);
            assert!(block.iter().all(|&b| b == 0));
            alloc.dealloc(ptr, layout);
        }
    }

    #[test]
    fn realloc_keeps_contents_in_both_directions() {
        let alloc = ZeroingAllocator;
        let layout = Layout::from_size_align(100, 4).unwrap();
        unsafe {
            let ptr = alloc.alloc(layout);
            for i in 0..100 {
                *ptr.add(i) = i as u8;
            }
            let grown = alloc.realloc(ptr, layout, 1000);
            assert_eq!(
                std::slice::from_raw_parts(grown, 100),
                &(0..100).collect::<Vec<u8>>()[..]
            );
            let grown_layout = Layout::from_size_align(1000, 4).unwrap();
            let shrunk = alloc.realloc(grown, grown_layout, 10);
            assert_eq!(
                std::slice::from_raw_parts(shrunk, 10),
                &(0..10).collect::<Vec<u8>>()[..]
            );
            alloc.dealloc(shrunk, Layout::from_size_align(10, 4).unwrap());
        }
    }
}
