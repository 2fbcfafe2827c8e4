//! Threads: how many, and where the tensor work runs (on a worker thread of
//! the rayon pool).
//!
//! The CPU kernels (`crate::ops`, candle's GEMM) split their loops with
//! rayon. Called from a thread outside the pool, every such loop is handed
//! to the pool's workers while the caller sleeps until they finish: a
//! cross-thread wake-up per op, hundreds per training step. Called from a
//! worker, the loop starts in place and the other workers steal from it. A
//! training step of the default model runs about a third faster this way on
//! two cores (`ablate speed --model resnet10-w16 --image-size 64`).

/// Sizes the global rayon pool (which the CPU kernels and candle's GEMM
/// use) to `threads`, before anything else starts a thread.
///
/// candle also keeps a pool of its own for element-wise ops whose idle
/// workers spin for a while after every op; on few cores that spinning takes
/// the cores from the rayon workers that run the next convolution. Those
/// element-wise ops (residual adds, the optimizer update) are memory-bound
/// and cheap next to the convolutions, so candle's pool gets no extra
/// workers unless `CANDLE_NUM_THREADS` says otherwise: measured on two
/// cores, +10% training and +15% inference images/s for the default model,
/// no change for ResNet-18 at 224 px.
pub fn configure(threads: usize) -> Result<(), rayon::ThreadPoolBuildError> {
    // Set before any thread exists: nothing reads the environment concurrently.
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .stack_size(WORKER_STACK_BYTES)
        .build_global()
}

/// All cores of this machine.
pub fn all_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Stack of each worker thread: commands run on a worker (see
/// [`on_pool_thread`]), so it gets the main thread's usual 8 MiB.
const WORKER_STACK_BYTES: usize = 8 << 20;

/// Runs `work` on a worker of the current rayon pool (the global pool when
/// called from outside any pool) and returns its result; runs it in place
/// when already on a worker.
pub fn on_pool_thread<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        work()
    } else {
        rayon::scope(|_| work())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_runs_on_a_pool_worker() {
        assert_eq!(rayon::current_thread_index(), None);
        let index = on_pool_thread(rayon::current_thread_index);
        assert!(index.is_some());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let nested = pool.install(|| on_pool_thread(rayon::current_thread_index));
        assert!(nested.is_some());
    }
}
