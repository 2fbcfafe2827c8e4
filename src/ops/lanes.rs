//! Sixteen f32 lanes with one arithmetic and two implementations: an
//! AVX-512 register and a portable array.
//!
//! The direct convolution kernels (`super::direct_conv`) are written once,
//! generic over [`Lanes`]; the AVX-512 instantiation runs where the CPU has
//! it, and the portable one runs on any CPU (the tests use it everywhere to
//! check the kernels' arithmetic). Every operation is
//! lane-wise and exactly rounded (fused multiply-add rounds once in both),
//! so the two give bit-identical results for the same sequence of calls.

/// Number of f32 lanes in one [`Lanes`] value.
pub(crate) const LANES: usize = 16;

/// A vector of [`LANES`] f32 values.
///
/// # Safety
/// Implementations of the pointer methods read or write exactly the lanes
/// their documentation names; callers guarantee those are in bounds.
pub(crate) unsafe trait Lanes: Copy {
    /// All lanes zero.
    fn zero() -> Self;
    /// All lanes `value`.
    fn splat(value: f32) -> Self;
    /// Loads `LANES` consecutive floats from `ptr` (no alignment needed).
    ///
    /// # Safety
    /// `ptr..ptr + LANES` must be readable.
    unsafe fn load(ptr: *const f32) -> Self;
    /// Stores the first `n` lanes (`n <= LANES`) to `ptr..ptr + n`.
    ///
    /// # Safety
    /// `ptr..ptr + n` must be writable.
    unsafe fn store_first(self, ptr: *mut f32, n: usize);
    /// `self * a + acc` per lane, rounded once.
    fn mul_add(self, a: Self, acc: Self) -> Self;
    /// `self + other` per lane.
    fn add(self, other: Self) -> Self;
    /// The lanes as an array.
    fn to_array(self) -> [f32; LANES];

    /// Sum of the lanes in a fixed order (pairwise halving: lane `i` with
    /// lane `i + 8`, then `i + 4`, `i + 2`, `i + 1`), the same for every
    /// implementation.
    fn sum(self) -> f32 {
        let mut v = self.to_array();
        let mut width = LANES / 2;
        while width > 0 {
            for i in 0..width {
                v[i] += v[i + width];
            }
            width /= 2;
        }
        v[0]
    }
}

/// Portable lanes: a plain array, one `f32::mul_add` per lane.
#[derive(Clone, Copy)]
pub(crate) struct Portable([f32; LANES]);

impl From<[f32; LANES]> for Portable {
    fn from(lanes: [f32; LANES]) -> Self {
        Self(lanes)
    }
}

// SAFETY: `load` reads and `store_first` writes exactly the documented lanes.
unsafe impl Lanes for Portable {
    #[inline(always)]
    fn zero() -> Self {
        Self([0.0; LANES])
    }

    #[inline(always)]
    fn splat(value: f32) -> Self {
        Self([value; LANES])
    }

    #[inline(always)]
    unsafe fn load(ptr: *const f32) -> Self {
        // SAFETY: the caller guarantees LANES readable floats.
        Self(unsafe { ptr.cast::<[f32; LANES]>().read_unaligned() })
    }

    #[inline(always)]
    unsafe fn store_first(self, ptr: *mut f32, n: usize) {
        // SAFETY: the caller guarantees `n` writable floats.
        unsafe { std::ptr::copy_nonoverlapping(self.0.as_ptr(), ptr, n.min(LANES)) };
    }

    #[inline(always)]
    fn mul_add(self, a: Self, acc: Self) -> Self {
        Self(std::array::from_fn(|i| self.0[i].mul_add(a.0[i], acc.0[i])))
    }

    #[inline(always)]
    fn add(self, other: Self) -> Self {
        Self(std::array::from_fn(|i| self.0[i] + other.0[i]))
    }

    #[inline(always)]
    fn to_array(self) -> [f32; LANES] {
        self.0
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) use avx512::{avx512_available, Avx512};

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Lanes, LANES};
    use std::arch::x86_64::*;
    use std::sync::OnceLock;

    /// Whether this CPU runs AVX-512F code (checked once).
    pub(crate) fn avx512_available() -> bool {
        static AVAILABLE: OnceLock<bool> = OnceLock::new();
        *AVAILABLE.get_or_init(|| std::arch::is_x86_feature_detected!("avx512f"))
    }

    /// One AVX-512 register.
    ///
    /// Its methods may only run inside a function compiled with
    /// `#[target_feature(enable = "avx512f")]` on a CPU that has it (checked
    /// with [`avx512_available`]); the kernels inline them into such entry
    /// points.
    #[derive(Clone, Copy)]
    pub(crate) struct Avx512(__m512);

    // SAFETY: `load` reads and `store_first` writes exactly the documented
    // lanes (the store is masked to the first `n`).
    unsafe impl Lanes for Avx512 {
        #[inline(always)]
        fn zero() -> Self {
            // SAFETY: only reached from avx512f entry points (see the type).
            Self(unsafe { _mm512_setzero_ps() })
        }

        #[inline(always)]
        fn splat(value: f32) -> Self {
            // SAFETY: as for `zero`.
            Self(unsafe { _mm512_set1_ps(value) })
        }

        #[inline(always)]
        unsafe fn load(ptr: *const f32) -> Self {
            // SAFETY: the caller guarantees LANES readable floats.
            Self(unsafe { _mm512_loadu_ps(ptr) })
        }

        #[inline(always)]
        unsafe fn store_first(self, ptr: *mut f32, n: usize) {
            if n >= LANES {
                // SAFETY: the caller guarantees LANES writable floats.
                unsafe { _mm512_storeu_ps(ptr, self.0) };
            } else {
                let mask = ((1u32 << n) - 1) as __mmask16;
                // SAFETY: masked lanes are neither read nor written.
                unsafe { _mm512_mask_storeu_ps(ptr, mask, self.0) };
            }
        }

        #[inline(always)]
        fn mul_add(self, a: Self, acc: Self) -> Self {
            // SAFETY: as for `zero`.
            Self(unsafe { _mm512_fmadd_ps(self.0, a.0, acc.0) })
        }

        #[inline(always)]
        fn add(self, other: Self) -> Self {
            // SAFETY: as for `zero`.
            Self(unsafe { _mm512_add_ps(self.0, other.0) })
        }

        #[inline(always)]
        fn to_array(self) -> [f32; LANES] {
            let mut out = [0.0; LANES];
            // SAFETY: `out` holds LANES floats.
            unsafe { _mm512_storeu_ps(out.as_mut_ptr(), self.0) };
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs every operation on `L` over fixed inputs and returns all results.
    fn exercise<L: Lanes>() -> Vec<f32> {
        let a: Vec<f32> = (0..LANES).map(|i| 0.1 + i as f32 / 3.0).collect();
        let b: Vec<f32> = (0..LANES).map(|i| 1.0 / (1.0 + i as f32)).collect();
        // SAFETY: both vectors hold LANES floats, `out` 2 * LANES.
        unsafe {
            let (x, y) = (L::load(a.as_ptr()), L::load(b.as_ptr()));
            let fused = x.mul_add(y, L::splat(-0.3)).add(L::zero());
            let mut out = vec![f32::NAN; 2 * LANES];
            fused.store_first(out.as_mut_ptr(), LANES);
            fused.store_first(out.as_mut_ptr().add(LANES), 5);
            out.push(fused.sum());
            out
        }
    }

    #[test]
    fn portable_lanes_compute_fused_products_and_partial_stores() {
        let out = exercise::<Portable>();
        for (i, &value) in out[..LANES].iter().enumerate() {
            let expected = (0.1 + i as f32 / 3.0).mul_add(1.0 / (1.0 + i as f32), -0.3);
            assert_eq!(value, expected);
        }
        assert_eq!(out[LANES..LANES + 5], out[..5]);
        assert!(out[LANES + 5..2 * LANES].iter().all(|v| v.is_nan()));
        let total: f64 = out[..LANES].iter().map(|&v| v as f64).sum();
        assert!((out[2 * LANES] as f64 - total).abs() < 1e-5);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_lanes_are_bit_identical_to_portable_ones() {
        if !avx512_available() {
            eprintln!("no AVX-512 on this CPU: nothing to compare");
            return;
        }
        #[target_feature(enable = "avx512f")]
        fn run() -> Vec<f32> {
            exercise::<Avx512>()
        }
        // SAFETY: the CPU has AVX-512F (checked above).
        let fast = unsafe { run() };
        let portable = exercise::<Portable>();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&fast), bits(&portable));
    }
}
