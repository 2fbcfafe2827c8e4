//! A bounds-checked front end to the `gemm` crate's f32 matrix product.
//!
//! `gemm::gemm` takes raw pointers and element strides; the views here carry
//! the slice they point into so every call checks, before going unsafe, that
//! each matrix lies inside its slice and that the destination is its own
//! `&mut` borrow.

use super::cpu::num_threads;

/// A read-only strided matrix inside a slice.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Mat<'a> {
    /// A dense row-major `rows x cols` matrix at the start of `data`.
    pub(crate) fn dense(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols)
    }

    /// A row-major `rows x cols` matrix whose rows lie `row_stride` apart.
    pub(crate) fn strided(data: &'a [f32], rows: usize, cols: usize, row_stride: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride: 1,
        }
    }

    /// The transpose, as a view of the same data.
    pub(crate) fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    fn in_bounds(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride
                < self.data.len()
    }
}

/// A writable row-major matrix inside a slice (rows `row_stride` apart).
#[derive(Debug)]
pub(crate) struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
}

impl<'a> MatMut<'a> {
    /// A dense row-major `rows x cols` matrix at the start of `data`.
    pub(crate) fn dense(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self::strided(data, rows, cols, cols)
    }

    /// A row-major `rows x cols` matrix whose rows lie `row_stride` apart.
    pub(crate) fn strided(
        data: &'a mut [f32],
        rows: usize,
        cols: usize,
        row_stride: usize,
    ) -> Self {
        Self {
            data,
            rows,
            cols,
            row_stride,
        }
    }

    /// Inside its slice, with rows that do not overlap (so no element is
    /// written twice, possibly by two threads).
    fn in_bounds(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || ((self.rows == 1 || self.row_stride >= self.cols)
                && (self.rows - 1) * self.row_stride + self.cols <= self.data.len())
    }
}

/// `dst = lhs * rhs`, or `dst += lhs * rhs` when `accumulate` is set,
/// split over candle's threads by the GEMM itself.
///
/// # Panics
/// If the shapes do not agree or a view does not fit its slice: both are
/// programming errors of the calling kernel, not user input.
pub(crate) fn matmul(dst: MatMut<'_>, lhs: Mat<'_>, rhs: Mat<'_>, accumulate: bool) {
    let parallelism = match num_threads() {
        t if t > 1 => gemm::Parallelism::Rayon(t),
        _ => gemm::Parallelism::None,
    };
    matmul_with(dst, lhs, rhs, accumulate, parallelism);
}

/// `c = a x b` for dense row-major `n x n` f32 matrices, on the GEMM and
/// the threads the convolutions use: the product the throughput benchmark
/// times as this machine's reference speed.
///
/// # Panics
/// If a slice does not hold `n * n` floats.
pub fn square_matmul(c: &mut [f32], a: &[f32], b: &[f32], n: usize) {
    assert!(
        a.len() == n * n && b.len() == n * n && c.len() == n * n,
        "square_matmul: every matrix must hold {n} x {n} floats"
    );
    matmul(
        MatMut::dense(c, n, n),
        Mat::dense(a, n, n),
        Mat::dense(b, n, n),
        false,
    );
}

/// [`matmul`] on the calling thread only: for kernels that run many small
/// products in parallel tasks of their own.
pub(crate) fn matmul_serial(dst: MatMut<'_>, lhs: Mat<'_>, rhs: Mat<'_>, accumulate: bool) {
    matmul_with(dst, lhs, rhs, accumulate, gemm::Parallelism::None);
}

fn matmul_with(
    dst: MatMut<'_>,
    lhs: Mat<'_>,
    rhs: Mat<'_>,
    accumulate: bool,
    parallelism: gemm::Parallelism,
) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert!(
        rhs.rows == k && dst.rows == m && dst.cols == n,
        "matmul: shapes do not agree"
    );
    assert!(
        lhs.in_bounds() && rhs.in_bounds() && dst.in_bounds(),
        "matmul: view out of bounds"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for row in dst.data.chunks_mut(dst.row_stride).take(m) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    // SAFETY: the asserts above keep every addressed element of lhs, rhs and
    // dst inside their slices; dst is an exclusive borrow, so it aliases
    // neither operand. Strides fit in isize because they index a slice.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            1,
            dst.row_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_with_transposes_and_strides() {
        // lhs = [[1, 2, 3], [4, 5, 6]] stored with row stride 4 (a padding column).
        let lhs = [1.0, 2.0, 3.0, -9.0, 4.0, 5.0, 6.0];
        // rhs^T stored dense: rhs = [[1, 0], [0, 1], [1, 1]].
        let rhs_t = [1.0, 0.0, 1.0, 0.0, 1.0, 1.0];
        let mut dst = [10.0f32; 4];
        let l = Mat::strided(&lhs, 2, 3, 4);
        let r = Mat::dense(&rhs_t, 2, 3).t();
        matmul(MatMut::dense(&mut dst, 2, 2), l, r, false);
        assert_eq!(dst, [4.0, 5.0, 10.0, 11.0]);
        matmul(MatMut::dense(&mut dst, 2, 2), l, r, true);
        assert_eq!(dst, [8.0, 10.0, 20.0, 22.0]);
    }

    #[test]
    fn square_products_overwrite_the_destination() {
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [0.0, 1.0, 1.0, 0.0];
        let mut c = [7.0f32; 4];
        square_matmul(&mut c, &a, &b, 2);
        assert_eq!(c, [2.0, 1.0, 4.0, 3.0]);
    }

    #[test]
    #[should_panic(expected = "2 x 2 floats")]
    fn square_products_reject_short_slices() {
        square_matmul(&mut [0.0; 4], &[1.0; 3], &[1.0; 4], 2);
    }

    #[test]
    fn strided_destination_keeps_the_gap() {
        // dst rows 3 apart: the third float of each row stays untouched.
        let lhs = [1.0, 2.0, 3.0, 4.0];
        let rhs = [1.0, 0.0, 0.0, 1.0];
        let mut dst = [-1.0f32; 6];
        matmul_serial(
            MatMut::strided(&mut dst, 2, 2, 3),
            Mat::dense(&lhs, 2, 2),
            Mat::dense(&rhs, 2, 2),
            false,
        );
        assert_eq!(dst, [1.0, 2.0, -1.0, 3.0, 4.0, -1.0]);
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn rejects_overlapping_destination_rows() {
        let a = [1.0f32; 4];
        let mut d = [0.0f32; 4];
        matmul(
            MatMut::strided(&mut d, 2, 2, 1),
            Mat::dense(&a, 2, 2),
            Mat::dense(&a, 2, 2),
            false,
        );
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn rejects_views_past_the_slice() {
        let a = [1.0f32; 5];
        let mut d = [0.0f32; 4];
        matmul(
            MatMut::dense(&mut d, 2, 2),
            Mat::dense(&a, 2, 3),
            Mat::dense(&a, 3, 2),
            false,
        );
    }
}
