//! Reusable per-thread scratch memory for the lowering buffers.
//!
//! Every convolution call needs im2col and gradient buffers of several
//! megabytes. Freshly allocated, such buffers come from the OS as untouched
//! pages and cost a page fault per 4 KiB on first write, on every call; a
//! buffer kept per calling thread is faulted in once. It grows to the
//! largest request (tens of MB for ResNet-18 at 224 px) and lives as long as
//! the thread. Kernels fully overwrite what they use, so the contents are
//! never cleared.

use std::cell::RefCell;

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with two disjoint scratch slices of `len_a` and `len_b` floats
/// whose contents are unspecified (stale data from earlier calls).
///
/// If the thread's buffer is already in use (a nested call, e.g. a rayon
/// worker running another op while it waits), a fresh buffer is used instead.
pub(crate) fn with_scratch<R>(
    len_a: usize,
    len_b: usize,
    f: impl FnOnce(&mut [f32], &mut [f32]) -> R,
) -> R {
    let run = |buf: &mut Vec<f32>| {
        let len = len_a + len_b;
        if buf.len() < len {
            buf.resize(len, 0.0);
        }
        let (a, rest) = buf.split_at_mut(len_a);
        f(a, &mut rest[..len_b])
    };
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => run(&mut buf),
        Err(_) => run(&mut Vec::new()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_have_the_asked_lengths_and_nest() {
        let lens = with_scratch(3, 5, |a, b| {
            a.fill(1.0);
            b.fill(2.0);
            // A nested call gets its own memory and leaves the outer intact.
            with_scratch(4, 0, |c, d| {
                c.fill(9.0);
                assert!(d.is_empty());
            });
            assert!(a.iter().all(|&v| v == 1.0) && b.iter().all(|&v| v == 2.0));
            (a.len(), b.len())
        });
        assert_eq!(lens, (3, 5));
    }
}
