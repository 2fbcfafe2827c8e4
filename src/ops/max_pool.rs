//! Max pooling with padding (NCHW, f32, square window) as a CPU custom op:
//! the forward pass finds each window's maximum and remembers where it was,
//! the backward pass adds each output gradient to that one input element.
//!
//! One pass over the input and one over the output, against the pad /
//! stack / argmax / gather / scatter chain that candle's generic ops need
//! (see `crate::model::pool`), which the ResNet stem otherwise runs on every
//! step.

use super::cpu::{dense_f32, output_buffer};
use super::im2col::StrideTap;
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

/// Max pooling of an `[n, c, h, w]` CPU f32 tensor with PyTorch's
/// `nn.MaxPool2d(kernel, stride, padding)` semantics: padded positions never
/// win, ties go to the first maximal element of the window in raster order,
/// a NaN in a window is its maximum. The caller checks the arguments (see
/// `crate::model::pool::max_pool2d`).
pub(crate) fn max_pool2d_cpu(
    x: &Tensor,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let window = Window {
        kernel,
        stride,
        padding,
        h,
        w,
        oh: (h + 2 * padding - kernel) / stride + 1,
        ow: (w + 2 * padding - kernel) / stride + 1,
    };
    x.contiguous()?.apply_op1(MaxPool {
        window,
        argmax: Mutex::new(None),
    })
}

/// Sizes of one pooling.
#[derive(Debug, Clone, Copy)]
struct Window {
    kernel: usize,
    stride: usize,
    padding: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
}

impl Window {
    /// The input rows (or columns) of output `o`'s window along an axis of
    /// length `len`, padding excluded.
    fn span(&self, o: usize, len: usize) -> std::ops::Range<usize> {
        let start = (o * self.stride) as isize - self.padding as isize;
        let end = (start + self.kernel as isize).min(len as isize);
        start.max(0) as usize..end.max(0) as usize
    }
}

/// Maxima of every input row over each output column's window: the first
/// of the two passes of a separable max pooling. Taking each row's first
/// maximum, then the first row whose maximum is the window's, finds the
/// window's first maximum in raster order, as one pass over the 2-D window
/// would.
///
/// The row pass goes kernel column by kernel column: for stride `s` a row
/// is first split into its `s` stride phases, so that kernel column `d`
/// reads one phase with unit stride for all output columns at once. Both
/// passes are runs of branch-free selects over contiguous slices, which the
/// compiler vectorizes.
struct RowMaxima {
    /// `h x ow`: the maximum of row `y` over column window `x`.
    values: Vec<f32>,
    /// Its column in the input plane.
    columns: Vec<u32>,
    /// One row split into stride phases (unused for stride 1).
    phases: Vec<f32>,
}

impl Window {
    /// Pixels per row phase (the longest phase's length).
    fn phase_len(&self) -> usize {
        self.w.div_ceil(self.stride)
    }

    /// The kernel columns in raster order: kernel column `d` of output
    /// column `x`'s window is pixel `x + shift` of row phase `phase`, for
    /// `x` in `outputs`; other output columns see padding there.
    fn column_taps(&self) -> Vec<StrideTap> {
        (0..self.kernel)
            .map(|d| StrideTap::new(self.ow, self.w, self.stride, self.padding, d))
            .collect()
    }
}

/// Whether `v` replaces `best` as a window's maximum: greater, or the first
/// NaN (a NaN is the maximum of any window holding one).
#[inline(always)]
fn beats(v: f32, best: f32) -> bool {
    (v > best) | (v.is_nan() & !best.is_nan())
}

impl RowMaxima {
    fn new(wd: &Window) -> Self {
        RowMaxima {
            values: vec![0.0; wd.h * wd.ow],
            columns: vec![0; wd.h * wd.ow],
            phases: vec![0.0; wd.stride * wd.phase_len()],
        }
    }

    /// Row maxima of one input `plane`. `taps` are the window's kernel
    /// columns, `first_columns` each output column's first input column
    /// inside the image: the index a window reports while no element has
    /// beaten its starting value, minus infinity, which padding never
    /// enters and only a NaN or a larger value replaces.
    fn fill(&mut self, plane: &[f32], wd: &Window, taps: &[StrideTap], first_columns: &[u32]) {
        let (s, pl) = (wd.stride, wd.phase_len());
        let rows = self.values.chunks_exact_mut(wd.ow);
        let row_columns = self.columns.chunks_exact_mut(wd.ow);
        for ((line, values), columns) in plane.chunks_exact(wd.w).zip(rows).zip(row_columns) {
            let phased: &[f32] = if s == 1 {
                line
            } else {
                for (b, phase) in self.phases.chunks_exact_mut(pl).enumerate() {
                    for (p, &v) in phase.iter_mut().zip(line.iter().skip(b).step_by(s)) {
                        *p = v;
                    }
                }
                &self.phases
            };
            values.fill(f32::NEG_INFINITY);
            columns.copy_from_slice(first_columns);
            for tap in taps {
                let (lo, hi) = tap.outputs;
                let first = (lo as isize + tap.shift) as usize;
                let source = &phased[tap.phase * pl + first..][..hi - lo];
                let first_column = (s * first + tap.phase) as u32;
                let targets = values[lo..hi].iter_mut().zip(&mut columns[lo..hi]);
                for (i, ((best, at), &v)) in targets.zip(source).enumerate() {
                    let better = beats(v, *best);
                    *best = if better { v } else { *best };
                    *at = if better {
                        first_column + (s * i) as u32
                    } else {
                        *at
                    };
                }
            }
        }
    }

    /// Pools the row maxima over the row windows `rows` into `out` and the
    /// winners' plane indices (`row * w + column`) into `argmax`.
    fn pool_columns(
        &self,
        rows: &[std::ops::Range<usize>],
        w: usize,
        out: &mut [f32],
        argmax: &mut [u32],
    ) {
        let ow = out.len() / rows.len();
        let line = |r: usize| (&self.values[r * ow..][..ow], &self.columns[r * ow..][..ow]);
        let outputs = out.chunks_exact_mut(ow).zip(argmax.chunks_exact_mut(ow));
        for ((out_row, argmax_row), window) in outputs.zip(rows) {
            let (values, columns) = line(window.start);
            let first = (window.start * w) as u32;
            for ((o, a), (&v, &c)) in out_row
                .iter_mut()
                .zip(argmax_row.iter_mut())
                .zip(values.iter().zip(columns))
            {
                *o = v;
                *a = first + c;
            }
            for r in window.start + 1..window.end {
                let (values, columns) = line(r);
                let offset = (r * w) as u32;
                let candidates = values.iter().zip(columns);
                for ((o, a), (&v, &c)) in out_row
                    .iter_mut()
                    .zip(argmax_row.iter_mut())
                    .zip(candidates)
                {
                    let better = beats(v, *o);
                    *o = if better { v } else { *o };
                    *a = if better { offset + c } else { *a };
                }
            }
        }
    }
}

/// The forward op; it keeps each output's winning input index (within its
/// plane) for the backward pass.
struct MaxPool {
    window: Window,
    argmax: Mutex<Option<Arc<Vec<u32>>>>,
}

impl CustomOp1 for MaxPool {
    fn name(&self) -> &'static str {
        "ablate-max-pool2d"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = dense_f32(storage, layout, self.name(), "input")?;
        let (n, c, _, _) = layout.shape().dims4()?;
        let wd = self.window;
        let (in_plane, out_plane) = (wd.h * wd.w, wd.oh * wd.ow);
        // SAFETY: `x` holds `n * c` input planes, so the zip below pairs
        // every output plane with one, and `pool_columns` writes every
        // value and index of its output plane (the first row of each
        // window sets them; later rows only compare) before either
        // buffer is read.
        let (mut out, mut argmax) = unsafe {
            (
                output_buffer(n * c * out_plane),
                output_buffer(n * c * out_plane),
            )
        };
        let rows: Vec<_> = (0..wd.oh).map(|i| wd.span(i, wd.h)).collect();
        let first_columns: Vec<u32> = (0..wd.ow).map(|j| wd.span(j, wd.w).start as u32).collect();
        let taps = wd.column_taps();
        out.par_chunks_mut(out_plane)
            .zip(argmax.par_chunks_mut(out_plane))
            .zip(x.par_chunks(in_plane))
            .for_each_init(
                || RowMaxima::new(&wd),
                |row_maxima, ((out, argmax), plane)| {
                    row_maxima.fill(plane, &wd, &taps, &first_columns);
                    row_maxima.pool_columns(&rows, wd.w, out, argmax);
                },
            );
        *self.argmax.lock().expect("argmax lock") = Some(Arc::new(argmax));
        Ok((CpuStorage::F32(out), Shape::from((n, c, wd.oh, wd.ow))))
    }

    fn bwd(&self, input: &Tensor, _out: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let argmax = self
            .argmax
            .lock()
            .expect("argmax lock")
            .clone()
            .ok_or_else(|| candle_core::Error::Msg("max_pool2d: backward before forward".into()))?;
        let op = MaxPoolBackward {
            window: self.window,
            argmax,
            input: input.dims().to_vec(),
        };
        Ok(Some(grad.contiguous()?.apply_op1_no_bwd(&op)?))
    }
}

/// The backward op: output gradient -> input gradient.
struct MaxPoolBackward {
    window: Window,
    argmax: Arc<Vec<u32>>,
    input: Vec<usize>,
}

impl CustomOp1 for MaxPoolBackward {
    fn name(&self) -> &'static str {
        "ablate-max-pool2d-grad"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let dy = dense_f32(storage, layout, self.name(), "grad")?;
        let wd = self.window;
        let (in_plane, out_plane) = (wd.h * wd.w, wd.oh * wd.ow);
        let mut dx = vec![0.0f32; self.input.iter().product()];
        dx.par_chunks_mut(in_plane)
            .zip(dy.par_chunks(out_plane))
            .zip(self.argmax.par_chunks(out_plane))
            .for_each(|((dx, dy), argmax)| {
                for (&g, &at) in dy.iter().zip(argmax) {
                    dx[at as usize] += g;
                }
            });
        Ok((CpuStorage::F32(dx), Shape::from(self.input.clone())))
    }
}
