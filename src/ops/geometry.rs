//! The shape arithmetic of a 2-D convolution (NCHW input, OIHW weight,
//! square stride and padding, dilation 1, one group).

use super::OpsError;

/// All sizes of one convolution, derived once from the operand shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub k: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride along both spatial axes.
    pub stride: usize,
    /// Zero padding on every side.
    pub padding: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl ConvGeometry {
    /// Derives the geometry from input dims `[n, c, h, w]` and weight dims
    /// `[k, c, kh, kw]`, checking that they form a valid convolution.
    pub fn new(
        input: &[usize],
        weight: &[usize],
        stride: usize,
        padding: usize,
    ) -> Result<Self, OpsError> {
        let fail = |reason| OpsError::ConvShape {
            input: input.to_vec(),
            weight: weight.to_vec(),
            stride,
            padding,
            reason,
        };
        let (&[n, c, h, w], &[k, wc, kh, kw]) = (input, weight) else {
            return Err(fail("input and weight must both have rank 4"));
        };
        if wc != c {
            return Err(fail("weight's second dim differs from the input channels"));
        }
        if stride == 0 {
            return Err(fail("stride must be at least 1"));
        }
        if kh == 0 || kw == 0 || h + 2 * padding < kh || w + 2 * padding < kw {
            return Err(fail("kernel is empty or larger than the padded input"));
        }
        let oh = (h + 2 * padding - kh) / stride + 1;
        let ow = (w + 2 * padding - kw) / stride + 1;
        Ok(Self {
            n,
            c,
            h,
            w,
            k,
            kh,
            kw,
            stride,
            padding,
            oh,
            ow,
        })
    }

    /// Output pixels per image and channel (`oh * ow`).
    pub fn out_pixels(&self) -> usize {
        self.oh * self.ow
    }

    /// Input pixels per image and channel (`h * w`).
    pub fn in_pixels(&self) -> usize {
        self.h * self.w
    }

    /// Rows of the im2col matrix: one per (input channel, kernel tap).
    pub fn patch_len(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Output dims `[n, k, oh, ow]`.
    pub fn out_dims(&self) -> [usize; 4] {
        [self.n, self.k, self.oh, self.ow]
    }

    /// True for 1x1, stride-1, unpadded convolutions, whose im2col matrix is
    /// the input image itself.
    pub fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.padding == 0
    }

    /// How many images to lower together so that one GEMM sees at least
    /// `target_cols` output pixels.
    ///
    /// Deep layers have few pixels per image; a GEMM per image would then
    /// re-read the whole weight matrix for a thin slab of work, so several
    /// images share one im2col buffer instead.
    pub fn images_per_chunk(&self, target_cols: usize) -> usize {
        target_cols
            .div_ceil(self.out_pixels().max(1))
            .clamp(1, self.n.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_size_matches_torch_formula() {
        // ResNet stem: 224 -> 112 with a 7x7 kernel, stride 2, padding 3.
        let g = ConvGeometry::new(&[2, 3, 224, 224], &[64, 3, 7, 7], 2, 3).unwrap();
        assert_eq!(g.out_dims(), [2, 64, 112, 112]);
        assert_eq!(g.patch_len(), 147);
        // Odd size, stride 2, padding 1: floor((9 + 2 - 3) / 2) + 1 = 5.
        let g = ConvGeometry::new(&[1, 5, 9, 12], &[7, 5, 3, 3], 2, 1).unwrap();
        assert_eq!((g.oh, g.ow), (5, 6));
        assert!(!g.is_pointwise());
        assert!(ConvGeometry::new(&[1, 5, 9, 12], &[7, 5, 1, 1], 1, 0)
            .unwrap()
            .is_pointwise());
    }

    #[test]
    fn rejects_mismatched_shapes() {
        assert!(ConvGeometry::new(&[1, 4, 8, 8], &[2, 3, 3, 3], 1, 1).is_err());
        assert!(ConvGeometry::new(&[1, 3, 2, 2], &[2, 3, 5, 5], 1, 1).is_err());
        assert!(ConvGeometry::new(&[1, 3, 8, 8], &[2, 3, 3, 3], 0, 1).is_err());
        assert!(ConvGeometry::new(&[3, 8, 8], &[2, 3, 3, 3], 1, 1).is_err());
    }

    #[test]
    fn chunks_grow_as_images_shrink() {
        let g = ConvGeometry::new(&[8, 4, 56, 56], &[4, 4, 3, 3], 1, 1).unwrap();
        assert_eq!(g.images_per_chunk(2048), 1);
        let g = ConvGeometry::new(&[8, 4, 7, 7], &[4, 4, 3, 3], 1, 1).unwrap();
        assert_eq!(g.images_per_chunk(2048), 8);
        let g = ConvGeometry::new(&[8, 4, 28, 28], &[4, 4, 3, 3], 1, 1).unwrap();
        assert_eq!(g.images_per_chunk(2048), 3);
    }
}
