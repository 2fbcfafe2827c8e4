//! Sixteen f32 lanes with one arithmetic and two implementations: an
//! AVX-512 register and a portable array.
//!
//! The direct convolution kernels (`super::direct_conv`) are written once,
//! generic over [`Simd`]; the AVX-512 instantiation runs where the CPU has
//! it, and the portable one runs on any CPU (the tests use it everywhere to
//! check the kernels' arithmetic). Every operation is
//! lane-wise and exactly rounded (fused multiply-add rounds once in both),
//! so the two give bit-identical results for the same sequence of calls.
//!
//! Running AVX-512 instructions on a CPU without them is undefined
//! behaviour, so the AVX-512 lanes cannot be made without proof: lanes come
//! only from a [`Simd`] value, and an [`Avx512`] value only from
//! [`Avx512::detect`], a runtime check. No safe function here can run an
//! instruction the CPU lacks.

/// Number of f32 lanes in one [`Lanes`] value.
pub(crate) const LANES: usize = 16;

/// An instruction set that computes [`Lanes`]. A value of it is the proof
/// that this CPU executes those instructions: lanes are made only through
/// one (`zero`, `splat`, `load`), so every lane value carries that proof and
/// the lane arithmetic is safe to call from any code.
///
/// # Safety
/// A value of an implementing type may exist only on a CPU that executes
/// the instructions of `Self::Lanes`; a type for an optional extension is
/// constructed only after a runtime check (see [`Avx512::detect`]).
pub(crate) unsafe trait Simd: Copy {
    /// The lane vector this instruction set computes.
    type Lanes: Lanes;
    /// All lanes zero.
    fn zero(self) -> Self::Lanes;
    /// All lanes `value`.
    fn splat(self, value: f32) -> Self::Lanes;
    /// Loads `LANES` consecutive floats from `ptr` (no alignment needed).
    ///
    /// # Safety
    /// `ptr..ptr + LANES` must be readable.
    unsafe fn load(self, ptr: *const f32) -> Self::Lanes;
}

/// A vector of [`LANES`] f32 values, made by its [`Simd`].
///
/// # Safety
/// `store_first` writes exactly the lanes its documentation names, and the
/// safe methods run only instructions that the [`Simd`] value that made the
/// vector proves available.
pub(crate) unsafe trait Lanes: Copy {
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

/// The portable instruction set: plain arrays, one `f32::mul_add` per
/// lane. It runs on every CPU, so anyone may make one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Portable;

/// Portable lanes: a plain array.
#[derive(Clone, Copy)]
pub(crate) struct PortableLanes([f32; LANES]);

impl From<[f32; LANES]> for PortableLanes {
    fn from(lanes: [f32; LANES]) -> Self {
        Self(lanes)
    }
}

// SAFETY: portable lanes use no optional instructions, so they run on every CPU.
unsafe impl Simd for Portable {
    type Lanes = PortableLanes;

    #[inline(always)]
    fn zero(self) -> PortableLanes {
        PortableLanes([0.0; LANES])
    }

    #[inline(always)]
    fn splat(self, value: f32) -> PortableLanes {
        PortableLanes([value; LANES])
    }

    #[inline(always)]
    unsafe fn load(self, ptr: *const f32) -> PortableLanes {
        // SAFETY: the caller guarantees LANES readable floats.
        PortableLanes(unsafe { ptr.cast::<[f32; LANES]>().read_unaligned() })
    }
}

// SAFETY: `store_first` copies exactly `n.min(LANES)` floats; the other
// methods are plain Rust.
unsafe impl Lanes for PortableLanes {
    #[inline(always)]
    unsafe fn store_first(self, ptr: *mut f32, n: usize) {
        // SAFETY: the caller guarantees `n` writable floats, and at most
        // `n` are written.
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
pub(crate) use avx512::Avx512;

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Lanes, Simd, LANES};
    use std::arch::x86_64::*;

    /// The AVX-512F instruction set, as a proof that this CPU has it: the
    /// only way to get one is [`Avx512::detect`].
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) struct Avx512 {
        _checked: (),
    }

    impl Avx512 {
        /// The instruction set if this CPU runs AVX-512F code, else `None`
        /// (std caches the CPU's answer, so this is cheap to call often).
        pub(crate) fn detect() -> Option<Self> {
            std::arch::is_x86_feature_detected!("avx512f").then_some(Self { _checked: () })
        }
    }

    /// One AVX-512 register. Only an [`Avx512`] value makes one, so its
    /// existence proves the instructions its methods run are available.
    ///
    /// The methods are `#[inline(always)]`: inside a function compiled with
    /// `#[target_feature(enable = "avx512f")]` (the kernels' entry points)
    /// they become single instructions; elsewhere they still compute the
    /// same values, through calls.
    #[derive(Clone, Copy)]
    pub(crate) struct Avx512Lanes(__m512);

    // SAFETY: `Avx512` has a private field and is built only by `detect`,
    // after the CPU reported AVX-512F.
    unsafe impl Simd for Avx512 {
        type Lanes = Avx512Lanes;

        #[inline(always)]
        fn zero(self) -> Avx512Lanes {
            // SAFETY: `self` proves the CPU has AVX-512F.
            Avx512Lanes(unsafe { _mm512_setzero_ps() })
        }

        #[inline(always)]
        fn splat(self, value: f32) -> Avx512Lanes {
            // SAFETY: `self` proves the CPU has AVX-512F.
            Avx512Lanes(unsafe { _mm512_set1_ps(value) })
        }

        #[inline(always)]
        unsafe fn load(self, ptr: *const f32) -> Avx512Lanes {
            // SAFETY: `self` proves the CPU has AVX-512F, and the caller
            // guarantees LANES readable floats (an unaligned load).
            Avx512Lanes(unsafe { _mm512_loadu_ps(ptr) })
        }
    }

    // SAFETY: an `Avx512Lanes` exists only where an `Avx512` made it, so
    // the CPU has AVX-512F; `store_first` writes LANES floats when
    // `n >= LANES` and otherwise masks the store to the first `n`.
    unsafe impl Lanes for Avx512Lanes {
        #[inline(always)]
        unsafe fn store_first(self, ptr: *mut f32, n: usize) {
            if n >= LANES {
                // SAFETY: AVX-512F is available (see the impl); the caller
                // guarantees `n >= LANES` writable floats.
                unsafe { _mm512_storeu_ps(ptr, self.0) };
            } else {
                let mask = ((1u32 << n) - 1) as __mmask16;
                // SAFETY: AVX-512F is available (see the impl); the mask
                // keeps the store to the first `n` floats, which the caller
                // guarantees writable (masked lanes are not accessed).
                unsafe { _mm512_mask_storeu_ps(ptr, mask, self.0) };
            }
        }

        #[inline(always)]
        fn mul_add(self, a: Self, acc: Self) -> Self {
            // SAFETY: AVX-512F is available (see the impl).
            Self(unsafe { _mm512_fmadd_ps(self.0, a.0, acc.0) })
        }

        #[inline(always)]
        fn add(self, other: Self) -> Self {
            // SAFETY: AVX-512F is available (see the impl).
            Self(unsafe { _mm512_add_ps(self.0, other.0) })
        }

        #[inline(always)]
        fn to_array(self) -> [f32; LANES] {
            let mut out = [0.0; LANES];
            // SAFETY: AVX-512F is available (see the impl), and `out`
            // holds LANES floats.
            unsafe { _mm512_storeu_ps(out.as_mut_ptr(), self.0) };
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs every operation of `simd`'s lanes over fixed inputs and returns
    /// all results.
    fn exercise<S: Simd>(simd: S) -> Vec<f32> {
        let a: Vec<f32> = (0..LANES).map(|i| 0.1 + i as f32 / 3.0).collect();
        let b: Vec<f32> = (0..LANES).map(|i| 1.0 / (1.0 + i as f32)).collect();
        let mut out = vec![f32::NAN; 2 * LANES];
        // SAFETY: both vectors hold LANES floats, `out` 2 * LANES.
        unsafe {
            let (x, y) = (simd.load(a.as_ptr()), simd.load(b.as_ptr()));
            let fused = x.mul_add(y, simd.splat(-0.3)).add(simd.zero());
            fused.store_first(out.as_mut_ptr(), LANES);
            fused.store_first(out.as_mut_ptr().add(LANES), 5);
            out.push(fused.sum());
        }
        out
    }

    #[test]
    fn portable_lanes_compute_fused_products_and_partial_stores() {
        let out = exercise(Portable);
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
        let Some(avx512) = Avx512::detect() else {
            assert!(!std::arch::is_x86_feature_detected!("avx512f"));
            eprintln!("no AVX-512 on this CPU: nothing to compare");
            return;
        };
        #[target_feature(enable = "avx512f")]
        fn inlined(avx512: Avx512) -> Vec<f32> {
            exercise(avx512)
        }
        // SAFETY: `avx512` proves the CPU has AVX-512F.
        let fast = unsafe { inlined(avx512) };
        // The safe lane methods called from code compiled without the
        // feature: sound, since the value proves the CPU has it, and equal.
        let called = exercise(avx512);
        let portable = exercise(Portable);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&fast), bits(&portable));
        assert_eq!(bits(&called), bits(&portable));
    }
}
