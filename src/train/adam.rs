//! Adam with decoupled weight decay, updating CPU parameters in one fused
//! pass per tensor.
//!
//! candle-nn's `AdamW` runs about twelve element-wise tensor ops per
//! parameter tensor and step, each allocating its result; for a small
//! network that is a sizeable part of a training step. [`Adam`] performs the
//! same arithmetic, operation by operation in the same f32 rounding, in one
//! in-place loop over each parameter, with the moments kept as plain
//! vectors, so its parameters are bit-identical to `AdamW`'s. Parameters
//! that are not CPU f32 tensors are left to candle-nn's `AdamW`.

use candle_core::backprop::GradStore;
use candle_core::{CpuStorage, DType, InplaceOp2, Layout, Result, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rayon::prelude::*;
use std::sync::Mutex;

/// Elements per parallel task of the update: cheap arithmetic, so tasks
/// must be long to pay for themselves.
const ELEMENTS_PER_TASK: usize = 1 << 16;

/// Adam / AdamW over a set of variables; see the module docs.
pub struct Adam {
    params: ParamsAdamW,
    step: u64,
    fused: Vec<FusedVar>,
    fallback: Option<AdamW>,
}

/// One CPU f32 variable and its first and second moments.
struct FusedVar {
    var: Var,
    first: Vec<f32>,
    second: Vec<f32>,
}

impl Optimizer for Adam {
    type Config = ParamsAdamW;

    fn new(vars: Vec<Var>, params: ParamsAdamW) -> Result<Self> {
        let (cpu, other): (Vec<Var>, Vec<Var>) = vars
            .into_iter()
            .filter(|var| var.dtype().is_float())
            .partition(|var| var.device().is_cpu() && var.dtype() == DType::F32);
        let fused = cpu
            .into_iter()
            .map(|var| {
                let n = var.elem_count();
                FusedVar {
                    var,
                    first: vec![0.0; n],
                    second: vec![0.0; n],
                }
            })
            .collect();
        let fallback = if other.is_empty() {
            None
        } else {
            Some(AdamW::new(other, params.clone())?)
        };
        Ok(Self {
            params,
            step: 0,
            fused,
            fallback,
        })
    }

    fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let constants = Constants::new(&self.params, self.step);
        for fused in &mut self.fused {
            let Some(grad) = grads.get(fused.var.as_tensor()) else {
                continue;
            };
            let update = Update {
                constants,
                moments: Mutex::new((&mut fused.first, &mut fused.second)),
            };
            fused
                .var
                .as_tensor()
                .inplace_op2(&grad.contiguous()?, &update)?;
        }
        if let Some(fallback) = &mut self.fallback {
            fallback.step(grads)?;
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.params.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.params.lr = lr;
        if let Some(fallback) = &mut self.fallback {
            fallback.set_learning_rate(lr);
        }
    }
}

/// The scalars of one step, cast to f32 exactly where candle-nn casts them
/// (each `tensor * f64` is an affine map with f32 coefficients).
#[derive(Debug, Clone, Copy)]
struct Constants {
    beta1: f32,
    one_minus_beta1: f32,
    beta2: f32,
    one_minus_beta2: f32,
    scale_first: f32,
    scale_second: f32,
    decay: f32,
    eps: f32,
    lr: f32,
}

impl Constants {
    fn new(p: &ParamsAdamW, step: u64) -> Self {
        let step = step.min(i32::MAX as u64) as i32;
        Self {
            beta1: p.beta1 as f32,
            one_minus_beta1: (1.0 - p.beta1) as f32,
            beta2: p.beta2 as f32,
            one_minus_beta2: (1.0 - p.beta2) as f32,
            scale_first: (1.0 / (1.0 - p.beta1.powi(step))) as f32,
            scale_second: (1.0 / (1.0 - p.beta2.powi(step))) as f32,
            decay: (1.0 - p.lr * p.weight_decay) as f32,
            eps: p.eps as f32,
            lr: p.lr as f32,
        }
    }

    /// One element: returns the new parameter and updates the moments. Each
    /// line is one of candle-nn's tensor ops, `+ 0.0` included where it is
    /// an affine map, so the result is bit-identical.
    #[inline]
    fn apply(&self, theta: f32, grad: f32, first: &mut f32, second: &mut f32) -> f32 {
        let m = (*first * self.beta1 + 0.0) + (grad * self.one_minus_beta1 + 0.0);
        let v = (*second * self.beta2 + 0.0) + ((grad * grad) * self.one_minus_beta2 + 0.0);
        let m_hat = m * self.scale_first + 0.0;
        let v_hat = v * self.scale_second + 0.0;
        let decayed = theta * self.decay + 0.0;
        let adjusted = m_hat / (v_hat.sqrt() * 1.0 + self.eps);
        *first = m;
        *second = v;
        decayed - (adjusted * self.lr + 0.0)
    }
}

/// The in-place update of one parameter from its gradient.
struct Update<'a> {
    constants: Constants,
    moments: Mutex<(&'a mut Vec<f32>, &'a mut Vec<f32>)>,
}

impl InplaceOp2 for Update<'_> {
    fn name(&self) -> &'static str {
        "ablate-adam"
    }

    fn cpu_fwd(
        &self,
        theta: &mut CpuStorage,
        theta_layout: &Layout,
        grad: &CpuStorage,
        grad_layout: &Layout,
    ) -> Result<()> {
        let layout_error = |operand| {
            candle_core::Error::wrap(crate::ops::OpsError::Layout {
                op: "ablate-adam",
                operand,
            })
        };
        let (CpuStorage::F32(theta), CpuStorage::F32(grad)) = (theta, grad) else {
            return Err(layout_error("parameter"));
        };
        let (t0, t1) = theta_layout
            .contiguous_offsets()
            .ok_or_else(|| layout_error("parameter"))?;
        let (g0, g1) = grad_layout
            .contiguous_offsets()
            .ok_or_else(|| layout_error("gradient"))?;
        let (theta, grad) = (&mut theta[t0..t1], &grad[g0..g1]);
        let mut moments = self.moments.lock().expect("moments lock");
        let (first, second) = &mut *moments;
        if grad.len() != theta.len() || first.len() != theta.len() {
            return Err(layout_error("gradient"));
        }
        let c = self.constants;
        theta
            .par_chunks_mut(ELEMENTS_PER_TASK)
            .zip(grad.par_chunks(ELEMENTS_PER_TASK))
            .zip(first.par_chunks_mut(ELEMENTS_PER_TASK))
            .zip(second.par_chunks_mut(ELEMENTS_PER_TASK))
            .for_each(|(((theta, grad), first), second)| {
                for (((t, &g), m), v) in theta.iter_mut().zip(grad).zip(first).zip(second) {
                    *t = c.apply(*t, g, m, v);
                }
            });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::seeded;
    use candle_core::{Device, Tensor};

    fn vars(seed: u64) -> Vec<Var> {
        [vec![3, 4], vec![70_001], vec![5]]
            .iter()
            .enumerate()
            .map(|(i, dims)| Var::from_tensor(&seeded(dims, seed + i as u64)).unwrap())
            .collect()
    }

    /// A loss whose gradients differ per element and per step.
    fn loss(vars: &[Var], step: u64) -> Tensor {
        let mut total = Tensor::new(0f32, &Device::Cpu).unwrap();
        for (i, var) in vars.iter().enumerate() {
            let target = seeded(var.dims(), 100 + 10 * step + i as u64);
            let term = (var.as_tensor() - &target)
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap();
            total = (total + term).unwrap();
        }
        total
    }

    #[test]
    fn parameters_are_bit_identical_to_candle_nn_adamw() {
        for weight_decay in [0.0, 0.01] {
            let params = ParamsAdamW {
                lr: 3e-3,
                weight_decay,
                ..ParamsAdamW::default()
            };
            let (ours, theirs) = (vars(1), vars(1));
            let mut fused = Adam::new(ours.clone(), params.clone()).unwrap();
            let mut reference = AdamW::new(theirs.clone(), params.clone()).unwrap();
            for step in 0..4 {
                let lr = 3e-3 / (1.0 + step as f64);
                fused.set_learning_rate(lr);
                reference.set_learning_rate(lr);
                fused.backward_step(&loss(&ours, step)).unwrap();
                reference.backward_step(&loss(&theirs, step)).unwrap();
            }
            for ((a, b), initial) in ours.iter().zip(&theirs).zip(vars(1)) {
                let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
                let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
                let initial: Vec<f32> = initial.flatten_all().unwrap().to_vec1().unwrap();
                assert!(a != initial, "the parameters moved");
                let same = a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "weight decay {weight_decay}: parameters differ");
            }
        }
    }

    #[test]
    fn variables_without_a_gradient_are_left_alone() {
        let vs = vars(7);
        let before: Vec<f32> = vs[2].flatten_all().unwrap().to_vec1().unwrap();
        let mut adam = Adam::new(vs.clone(), ParamsAdamW::default()).unwrap();
        let only_first = vs[0].as_tensor().sqr().unwrap().sum_all().unwrap();
        adam.backward_step(&only_first).unwrap();
        let after: Vec<f32> = vs[2].flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(before, after);
    }
}
