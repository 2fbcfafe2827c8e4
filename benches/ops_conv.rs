//! Forward and backward time of candle's conv2d and batch norm against
//! `ablate::ops` on ResNet layer shapes, printed as ratio tables.
//!
//! Shapes: every distinct convolution of ResNet-18 at 224 px, batch 8, and
//! of the narrow `resnet10-w16` at 64 px, batch 32, each with the number of
//! times it occurs in the network (the `x` column), so the weighted totals
//! estimate the convolution share of one training step. Batch norm is timed
//! against `candle_nn::BatchNorm` in training mode on the stem's and a
//! stage's activation shapes, alone, followed by ReLU (against the fused
//! op), and ReLU alone. `net` times a whole ResNet body (all convolutions,
//! batch norms, ReLUs and residual adds of ResNet-18 at 224 px, batch 8,
//! and of resnet10-w16 at 64 px, batch 32) built from either kernel set.
//!
//! Each measurement is the best of `--reps` runs after one warm-up run.
//! Backward is `y.backward()` (gradient seed of ones), with the stem's input
//! a constant as in training. Arguments (after `--`): `--reps N` (default 3),
//! `--only conv224|conv64|bn|net` (default all).

use ablate::ops;
use ablate::seed;
use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{BatchNorm, ModuleT, VarBuilder, VarMap};
use rand::Rng;
use std::time::Instant;

/// One convolution shape: `count` occurrences of a `kernel`x`kernel` conv
/// from `c` to `k` channels over `n` images of `hw`x`hw`.
struct ConvShape {
    name: &'static str,
    count: usize,
    n: usize,
    c: usize,
    hw: usize,
    k: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
}

const fn conv(
    name: &'static str,
    count: usize,
    n: usize,
    (c, hw): (usize, usize),
    k: usize,
    (kernel, stride, padding): (usize, usize, usize),
) -> ConvShape {
    ConvShape {
        name,
        count,
        n,
        c,
        hw,
        k,
        kernel,
        stride,
        padding,
    }
}

/// Distinct convolutions of ResNet-18 at 224 px, batch 8.
const RESNET18_224: &[ConvShape] = &[
    conv("stem 7x7/2 3-64 @224", 1, 8, (3, 224), 64, (7, 2, 3)),
    conv("l1 3x3 64-64 @56", 4, 8, (64, 56), 64, (3, 1, 1)),
    conv("l2 3x3/2 64-128 @56", 1, 8, (64, 56), 128, (3, 2, 1)),
    conv("l2 1x1/2 64-128 @56", 1, 8, (64, 56), 128, (1, 2, 0)),
    conv("l2 3x3 128-128 @28", 3, 8, (128, 28), 128, (3, 1, 1)),
    conv("l3 3x3/2 128-256 @28", 1, 8, (128, 28), 256, (3, 2, 1)),
    conv("l3 1x1/2 128-256 @28", 1, 8, (128, 28), 256, (1, 2, 0)),
    conv("l3 3x3 256-256 @14", 3, 8, (256, 14), 256, (3, 1, 1)),
    conv("l4 3x3/2 256-512 @14", 1, 8, (256, 14), 512, (3, 2, 1)),
    conv("l4 1x1/2 256-512 @14", 1, 8, (256, 14), 512, (1, 2, 0)),
    conv("l4 3x3 512-512 @7", 3, 8, (512, 7), 512, (3, 1, 1)),
];

/// Distinct convolutions of resnet10-w16 at 64 px, batch 32.
const RESNET10_W16_64: &[ConvShape] = &[
    conv("stem 7x7/2 3-16 @64", 1, 32, (3, 64), 16, (7, 2, 3)),
    conv("l1 3x3 16-16 @16", 2, 32, (16, 16), 16, (3, 1, 1)),
    conv("l2 3x3/2 16-32 @16", 1, 32, (16, 16), 32, (3, 2, 1)),
    conv("l2 1x1/2 16-32 @16", 1, 32, (16, 16), 32, (1, 2, 0)),
    conv("l2 3x3 32-32 @8", 1, 32, (32, 8), 32, (3, 1, 1)),
    conv("l3 3x3/2 32-64 @8", 1, 32, (32, 8), 64, (3, 2, 1)),
    conv("l3 1x1/2 32-64 @8", 1, 32, (32, 8), 64, (1, 2, 0)),
    conv("l3 3x3 64-64 @4", 1, 32, (64, 4), 64, (3, 1, 1)),
    conv("l4 3x3/2 64-128 @4", 1, 32, (64, 4), 128, (3, 2, 1)),
    conv("l4 1x1/2 64-128 @4", 1, 32, (64, 4), 128, (1, 2, 0)),
    conv("l4 3x3 128-128 @2", 1, 32, (128, 2), 128, (3, 1, 1)),
];

/// Batch-norm activation shapes `[n, c, hw, hw]` with their count per network.
const BN_SHAPES: &[(&str, usize, [usize; 4])] = &[
    ("r18 stem bn @112", 1, [8, 64, 112, 112]),
    ("r18 l1 bn @56", 4, [8, 64, 56, 56]),
    ("r18 l3 bn @14", 5, [8, 256, 14, 14]),
    ("w16 stem bn @32", 1, [32, 16, 32, 32]),
    ("w16 l2 bn @8", 3, [32, 32, 8, 8]),
];

/// Best forward and backward seconds of one implementation.
#[derive(Clone, Copy)]
struct Timing {
    fwd: f64,
    bwd: f64,
}

impl Timing {
    fn total(&self) -> f64 {
        self.fwd + self.bwd
    }
}

fn seeded(dims: &[usize], purpose: &str) -> Tensor {
    let mut rng = seed::stream(17, purpose, &[]);
    let n: usize = dims.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Tensor::from_vec(values, dims, &Device::Cpu).expect("dims match the value count")
}

/// Best-of-`reps` forward and backward time of `step`, which returns the
/// output to differentiate.
fn time(reps: usize, step: &dyn Fn() -> Result<Tensor>) -> Result<Timing> {
    let mut best = Timing {
        fwd: f64::INFINITY,
        bwd: f64::INFINITY,
    };
    for rep in 0..=reps {
        let start = Instant::now();
        let y = step()?;
        let fwd = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let grads = y.backward()?;
        let bwd = start.elapsed().as_secs_f64();
        drop(grads);
        if rep > 0 {
            best = Timing {
                fwd: best.fwd.min(fwd),
                bwd: best.bwd.min(bwd),
            };
        }
    }
    Ok(best)
}

fn header(title: &str) {
    println!("\n{title}");
    println!(
        "{:<24} {:>2} | {:>9} {:>9} {:>6} | {:>9} {:>9} {:>6} | {:>9} {:>9} {:>6}",
        "shape",
        "x",
        "fwd cndl",
        "fwd ours",
        "ratio",
        "bwd cndl",
        "bwd ours",
        "ratio",
        "tot cndl",
        "tot ours",
        "ratio"
    );
}

fn row(name: &str, count: usize, candle: Timing, ours: Timing) {
    let ms = |s: f64| s * 1e3;
    println!(
        "{:<24} {:>2} | {:>9.2} {:>9.2} {:>6.2} | {:>9.2} {:>9.2} {:>6.2} | {:>9.2} {:>9.2} {:>6.2}",
        name,
        count,
        ms(candle.fwd),
        ms(ours.fwd),
        candle.fwd / ours.fwd,
        ms(candle.bwd),
        ms(ours.bwd),
        candle.bwd / ours.bwd,
        ms(candle.total()),
        ms(ours.total()),
        candle.total() / ours.total()
    );
}

/// Times every shape, prints one row each and the count-weighted total.
fn bench_table(title: &str, rows: Vec<(&str, usize, Timing, Timing)>) {
    header(title);
    let zero = Timing { fwd: 0.0, bwd: 0.0 };
    let (mut candle, mut ours) = (zero, zero);
    for (name, count, c, o) in rows {
        row(name, count, c, o);
        let w = count as f64;
        candle = Timing {
            fwd: candle.fwd + w * c.fwd,
            bwd: candle.bwd + w * c.bwd,
        };
        ours = Timing {
            fwd: ours.fwd + w * o.fwd,
            bwd: ours.bwd + w * o.bwd,
        };
    }
    row("weighted total (ms)", 0, candle, ours);
}

fn bench_convs(title: &str, shapes: &[ConvShape], reps: usize) -> Result<()> {
    let mut rows = Vec::new();
    for s in shapes {
        let x = seeded(&[s.n, s.c, s.hw, s.hw], s.name);
        let w = Var::from_tensor(&(seeded(&[s.k, s.c, s.kernel, s.kernel], "w") * 0.1)?)?;
        // The stem sees the image, which needs no gradient; inner convs do.
        let xv = Var::from_tensor(&x)?;
        let x = if s.c == 3 { &x } else { xv.as_tensor() };
        let candle = time(reps, &|| x.conv2d(w.as_tensor(), s.padding, s.stride, 1, 1))?;
        let ours = time(reps, &|| ops::conv2d(x, w.as_tensor(), s.stride, s.padding))?;
        rows.push((s.name, s.count, candle, ours));
    }
    bench_table(title, rows);
    Ok(())
}

/// Which batch-norm variant a table times.
#[derive(Clone, Copy, PartialEq)]
enum BnVariant {
    /// Batch norm alone.
    Plain,
    /// Batch norm followed by ReLU (fused on our side).
    Relu,
    /// ReLU alone.
    ReluOnly,
}

fn bench_batch_norm(reps: usize, variant: BnVariant) -> Result<()> {
    let mut rows = Vec::new();
    for &(name, count, dims) in BN_SHAPES {
        let c = dims[1];
        let x = Var::from_tensor(&seeded(&dims, name))?;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let bn: BatchNorm = candle_nn::batch_norm(c, 1e-5, vb)?;
        let candle = time(reps, &|| match variant {
            BnVariant::Plain => bn.forward_t(x.as_tensor(), true),
            BnVariant::Relu => bn.forward_t(x.as_tensor(), true)?.relu(),
            BnVariant::ReluOnly => x.relu(),
        })?;
        let gamma = Var::from_tensor(&Tensor::ones(c, DType::F32, &Device::Cpu)?)?;
        let beta = Var::from_tensor(&Tensor::zeros(c, DType::F32, &Device::Cpu)?)?;
        let (rm, rv) = (
            Var::zeros(c, DType::F32, &Device::Cpu)?,
            Var::ones(c, DType::F32, &Device::Cpu)?,
        );
        let count_per_channel = x.elem_count() / c;
        let ours = time(reps, &|| {
            let (g, b) = (gamma.as_tensor(), beta.as_tensor());
            let (y, mean, var) = match variant {
                BnVariant::Plain => ops::batch_norm_train(x.as_tensor(), g, b, 1e-5)?,
                BnVariant::Relu => ops::batch_norm_relu_train(x.as_tensor(), g, b, 1e-5)?,
                BnVariant::ReluOnly => return ops::relu(x.as_tensor()),
            };
            let (m, v) = ops::running_stats_update(&rm, &rv, &mean, &var, count_per_channel, 0.1)?;
            rm.set(&m)?;
            rv.set(&v)?;
            Ok(y)
        })?;
        rows.push((name, count, candle, ours));
    }
    let title = match variant {
        BnVariant::Plain => {
            "batch norm, training mode (candle_nn::BatchNorm vs ops::batch_norm_train)"
        }
        BnVariant::Relu => {
            "batch norm + ReLU (candle_nn::BatchNorm, relu vs ops::batch_norm_relu_train)"
        }
        BnVariant::ReluOnly => "ReLU alone (Tensor::relu vs ops::relu)",
    };
    bench_table(title, rows);
    Ok(())
}

/// Which kernels a whole-network pass uses.
#[derive(Clone, Copy, PartialEq)]
enum Kernels {
    /// candle's conv2d, `candle_nn::BatchNorm` and `Tensor::relu`.
    Candle,
    /// `ablate::ops` (batch norm fused with the ReLU after it).
    Ops,
}

/// One conv + batch-norm pair of a ResNet body, with its parameters.
struct ConvBn {
    weight: Var,
    stride: usize,
    padding: usize,
    gamma: Var,
    beta: Var,
    bn: BatchNorm,
}

impl ConvBn {
    fn new(c: usize, k: usize, kernel: usize, stride: usize, id: &str) -> Result<Self> {
        let bound = 1.0 / ((c * kernel * kernel) as f64).sqrt();
        let weight = Var::from_tensor(&(seeded(&[k, c, kernel, kernel], id) * bound)?)?;
        let vb = VarBuilder::from_varmap(&VarMap::new(), DType::F32, &Device::Cpu);
        Ok(Self {
            weight,
            stride,
            padding: kernel / 2,
            gamma: Var::ones(k, DType::F32, &Device::Cpu)?,
            beta: Var::zeros(k, DType::F32, &Device::Cpu)?,
            bn: candle_nn::batch_norm(k, 1e-5, vb)?,
        })
    }

    /// conv, batch norm, and ReLU when `relu`.
    fn forward(&self, x: &Tensor, relu: bool, kernels: Kernels) -> Result<Tensor> {
        let w = self.weight.as_tensor();
        match kernels {
            Kernels::Candle => {
                let y = x.conv2d(w, self.padding, self.stride, 1, 1)?;
                let y = self.bn.forward_t(&y, true)?;
                if relu {
                    y.relu()
                } else {
                    Ok(y)
                }
            }
            Kernels::Ops => {
                let y = ops::conv2d(x, w, self.stride, self.padding)?;
                let (g, b) = (self.gamma.as_tensor(), self.beta.as_tensor());
                let bn = if relu {
                    ops::batch_norm_relu_train
                } else {
                    ops::batch_norm_train
                };
                Ok(bn(&y, g, b, 1e-5)?.0)
            }
        }
    }
}

/// A ResNet body: stem, max pool, BasicBlocks; the loss is the sum of the
/// globally pooled features. The pool is 2x2/2 (candle has no backward for
/// the 3x3/2 one), the same for both kernel sets.
struct Body {
    stem: ConvBn,
    blocks: Vec<(ConvBn, ConvBn, Option<ConvBn>)>,
}

impl Body {
    fn new(width: usize, blocks_per_stage: usize) -> Result<Self> {
        let stem = ConvBn::new(3, width, 7, 2, "stem")?;
        let mut blocks = Vec::new();
        let mut c = width;
        for stage in 0..4 {
            let k = width << stage;
            for i in 0..blocks_per_stage {
                let stride = if stage > 0 && i == 0 { 2 } else { 1 };
                let id = format!("{stage}.{i}");
                let a = ConvBn::new(c, k, 3, stride, &format!("{id}.a"))?;
                let b = ConvBn::new(k, k, 3, 1, &format!("{id}.b"))?;
                let down = if stride != 1 || c != k {
                    Some(ConvBn::new(c, k, 1, stride, &format!("{id}.d"))?)
                } else {
                    None
                };
                blocks.push((a, b, down));
                c = k;
            }
        }
        Ok(Self { stem, blocks })
    }

    fn loss(&self, x: &Tensor, kernels: Kernels) -> Result<Tensor> {
        let mut h = self.stem.forward(x, true, kernels)?.max_pool2d(2)?;
        for (a, b, down) in &self.blocks {
            let y = b.forward(&a.forward(&h, true, kernels)?, false, kernels)?;
            let shortcut = match down {
                Some(d) => d.forward(&h, false, kernels)?,
                None => h.clone(),
            };
            let sum = (y + shortcut)?;
            h = match kernels {
                Kernels::Candle => sum.relu()?,
                Kernels::Ops => ops::relu(&sum)?,
            };
        }
        h.mean((2, 3))?.sum_all()
    }
}

/// Times a whole forward (to the loss) and backward of a ResNet body.
fn bench_network(
    name: &str,
    width: usize,
    blocks: usize,
    dims: [usize; 4],
    reps: usize,
) -> Result<()> {
    let body = Body::new(width, blocks)?;
    let x = seeded(&dims, "net input");
    let candle = time(reps, &|| body.loss(&x, Kernels::Candle))?;
    let ours = time(reps, &|| body.loss(&x, Kernels::Ops))?;
    bench_table(
        "whole ResNet body, conv + BN + ReLU (candle vs ablate::ops), forward to loss and backward",
        vec![(name, 1, candle, ours)],
    );
    Ok(())
}

/// The allocator the `ablate` binary uses (large tensors on huge pages).
#[global_allocator]
static ALLOCATOR: ablate::alloc::HugePageAllocator = ablate::alloc::HugePageAllocator;

fn main() -> Result<()> {
    // Measure as the CLI runs: same thread setup, work on a pool worker.
    ablate::threads::configure(ablate::threads::all_cores()).expect("thread pool starts");
    ablate::threads::on_pool_thread(run)
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let reps = value("--reps").map_or(3, |v| v.parse().expect("--reps takes a number"));
    let only = value("--only");
    let wants = |what: &str| only.as_deref().is_none_or(|o| o == what);
    println!(
        "threads: {}, best of {reps} after one warm-up; times in ms",
        candle_core::utils::get_num_threads()
    );
    if wants("conv224") {
        bench_convs(
            "ResNet-18 convolutions, 224 px, batch 8 (candle conv2d vs ops::conv2d)",
            RESNET18_224,
            reps,
        )?;
    }
    if wants("conv64") {
        bench_convs(
            "resnet10-w16 convolutions, 64 px, batch 32",
            RESNET10_W16_64,
            reps,
        )?;
    }
    if wants("net") {
        bench_network("resnet18 @224 b8", 64, 2, [8, 3, 224, 224], reps)?;
        bench_network("resnet10-w16 @64 b32", 16, 1, [32, 3, 64, 64], reps)?;
    }
    if wants("bn") {
        bench_batch_norm(reps, BnVariant::Plain)?;
        bench_batch_norm(reps, BnVariant::Relu)?;
        bench_batch_norm(reps, BnVariant::ReluOnly)?;
    }
    Ok(())
}
