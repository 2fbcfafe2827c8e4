//! Seeded, torchvision-style parameter initialisation.
//!
//! candle's initialisers draw from an unseedable generator, so a model built
//! from a fresh `VarMap` differs on every run. [`build_seeded`] builds the
//! model and then overwrites every variable with values drawn from
//! `seed::stream(seed, "init", [name_index(name)])`: one stream per parameter
//! name, so a parameter's values depend only on the seed, its name and its
//! shape — not on creation order, the set of other parameters, or threads.
//!
//! The distributions are torchvision's ResNet init:
//! - conv weights: `kaiming_normal_(mode="fan_out", nonlinearity="relu")`,
//!   i.e. `N(0, 2 / (out_channels * kh * kw))`;
//! - BatchNorm: weight 1, bias 0, running mean 0, running variance 1;
//! - the linear head: PyTorch's `nn.Linear` default, weight and bias
//!   `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`.
//!
//! Normal draws use `rand_distr::Normal` in `f64`, rounded to `f32`.

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};

use super::resnet::{ResNet, ResNetConfig};
use crate::seed;

/// Stream purpose for initial weights.
pub const INIT_PURPOSE: &str = "init";

/// How one parameter is initialised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ParamInit {
    /// `N(0, std^2)`.
    Normal {
        /// Standard deviation.
        std: f64,
    },
    /// `U(-bound, bound)`.
    Uniform {
        /// Half-width of the interval.
        bound: f64,
    },
    /// Every element equal to this value.
    Const(f64),
}

/// Builds a [`ResNet`] in `f32` on `device` whose parameters are a pure
/// function of `(config, seed)`, and returns it with its `VarMap` (for the
/// optimizer and for checkpoints).
pub fn build_seeded(config: &ResNetConfig, seed: u64, device: &Device) -> Result<(ResNet, VarMap)> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let model = ResNet::new(config, vb)?;
    reinitialize(&varmap, seed)?;
    Ok((model, varmap))
}

/// Overwrites every variable of a ResNet `VarMap` in place with its seeded
/// initial value (see the module docs). Errors on a variable name that has no
/// initialisation rule.
pub fn reinitialize(varmap: &VarMap, seed: u64) -> Result<()> {
    let data = varmap
        .data()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let head_fan_in = data
        .get("fc.weight")
        .map(|w| w.dims().get(1).copied().unwrap_or(1));
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let var = &data[name];
        let rule = param_init(name, var.dims(), head_fan_in)?;
        let values = sample(rule, seed, name, var.elem_count());
        let tensor = Tensor::from_vec(values, var.shape(), &Device::Cpu)?
            .to_dtype(var.dtype())?
            .to_device(var.device())?;
        var.set(&tensor)?;
    }
    Ok(())
}

/// The initialisation rule for a ResNet parameter, from its torchvision name
/// and shape. `head_fan_in` is the input width of `fc.weight` (the fan-in
/// PyTorch uses for `fc.bias` too).
pub fn param_init(name: &str, dims: &[usize], head_fan_in: Option<usize>) -> Result<ParamInit> {
    let rule = if name.ends_with(".running_mean") {
        ParamInit::Const(0.0)
    } else if name.ends_with(".running_var") {
        ParamInit::Const(1.0)
    } else if name == "fc.weight" || name == "fc.bias" {
        let fan_in = match (name, dims) {
            ("fc.weight", [_, fan_in]) => *fan_in,
            _ => head_fan_in.ok_or_else(|| {
                candle_core::Error::Msg("fc.bias found without fc.weight".to_string())
            })?,
        };
        ParamInit::Uniform {
            bound: 1.0 / (fan_in.max(1) as f64).sqrt(),
        }
    } else if let (true, [out_ch, _, kh, kw]) = (name.ends_with(".weight"), dims) {
        let fan_out = (out_ch * kh * kw).max(1) as f64;
        ParamInit::Normal {
            std: (2.0 / fan_out).sqrt(),
        }
    } else if let (true, [_]) = (name.ends_with(".weight"), dims) {
        ParamInit::Const(1.0)
    } else if let (true, [_]) = (name.ends_with(".bias"), dims) {
        ParamInit::Const(0.0)
    } else {
        candle_core::bail!(
            "no initialisation rule for parameter {name} with shape {dims:?}; expected \
             torchvision ResNet names (conv/bn/fc)"
        )
    };
    Ok(rule)
}

/// `count` values of `rule` from the parameter's own stream.
fn sample(rule: ParamInit, seed: u64, name: &str, count: usize) -> Vec<f32> {
    match rule {
        ParamInit::Const(value) => vec![value as f32; count],
        ParamInit::Normal { std } => {
            let mut rng = param_stream(seed, name);
            match Normal::new(0.0, std) {
                Ok(normal) => (0..count).map(|_| normal.sample(&mut rng) as f32).collect(),
                // Unreachable for finite std >= 0; zero is the limit value.
                Err(_) => vec![0.0; count],
            }
        }
        ParamInit::Uniform { bound } => {
            let mut rng = param_stream(seed, name);
            match Uniform::new(-bound, bound) {
                Ok(uniform) => (0..count)
                    .map(|_| uniform.sample(&mut rng) as f32)
                    .collect(),
                Err(_) => vec![0.0; count],
            }
        }
    }
}

fn param_stream(seed: u64, name: &str) -> impl Rng {
    seed::stream(seed, INIT_PURPOSE, &[seed::name_index(name)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(varmap: &VarMap) -> Vec<(String, Vec<f32>)> {
        let data = varmap.data().lock().expect("lock");
        let mut out: Vec<(String, Vec<f32>)> = data
            .iter()
            .map(|(name, var)| {
                let v = var
                    .flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .expect("values");
                (name.clone(), v)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn small() -> ResNetConfig {
        ResNetConfig {
            layers: vec![1, 2, 1, 1],
            base_width: 8,
            num_classes: 2,
        }
    }

    #[test]
    fn same_seed_same_parameters_different_seed_differs() -> Result<()> {
        let (_, a) = build_seeded(&small(), 11, &Device::Cpu)?;
        let (_, b) = build_seeded(&small(), 11, &Device::Cpu)?;
        let (_, c) = build_seeded(&small(), 12, &Device::Cpu)?;
        let (va, vb, vc) = (values(&a), values(&b), values(&c));
        assert_eq!(va, vb);
        for ((name, x), (_, z)) in va.iter().zip(&vc) {
            let random = name.ends_with("conv1.weight")
                || name.ends_with("conv2.weight")
                || name.contains("downsample.0")
                || name.starts_with("fc.");
            assert_eq!(x != z, random, "{name}");
        }
        Ok(())
    }

    #[test]
    fn values_depend_on_name_not_on_architecture() -> Result<()> {
        // layer1.0.conv1.weight has the same name and shape in both models,
        // which differ elsewhere: its values must agree.
        let (_, a) = build_seeded(&small(), 3, &Device::Cpu)?;
        let other = ResNetConfig {
            layers: vec![1, 1, 1, 1],
            base_width: 8,
            num_classes: 5,
        };
        let (_, b) = build_seeded(&other, 3, &Device::Cpu)?;
        let get = |m: &VarMap| -> Result<Vec<f32>> {
            let data = m.data().lock().expect("lock");
            data["layer1.0.conv1.weight"]
                .flatten_all()?
                .to_vec1::<f32>()
        };
        assert_eq!(get(&a)?, get(&b)?);
        Ok(())
    }

    #[test]
    fn constants_and_distributions_follow_torchvision() -> Result<()> {
        let config = ResNetConfig::from_name("resnet18-w32", 2).expect("name");
        let (_, varmap) = build_seeded(&config, 7, &Device::Cpu)?;
        let all = values(&varmap);
        let get = |name: &str| &all.iter().find(|(n, _)| n == name).expect(name).1;

        // 256 x 256 x 3 x 3 = 589,824 draws: the std estimate is good to ~0.1%.
        let w = get("layer4.1.conv2.weight");
        let n = w.len() as f64;
        let mean = w.iter().map(|&v| v as f64).sum::<f64>() / n;
        let std = (w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n).sqrt();
        let expected = (2.0f64 / (256.0 * 9.0)).sqrt();
        assert!(
            (std / expected - 1.0).abs() < 0.01,
            "std {std} vs {expected}"
        );
        assert!(mean.abs() < 0.01 * expected, "mean {mean}");

        // Downsample 1x1: fan_out = out_channels.
        let ds = get("layer2.0.downsample.0.weight");
        let ds_std = (ds.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / ds.len() as f64).sqrt();
        let ds_expected = (2.0f64 / 64.0).sqrt();
        assert!(
            (ds_std / ds_expected - 1.0).abs() < 0.1,
            "{ds_std} vs {ds_expected}"
        );

        for name in [
            "bn1.weight",
            "layer3.1.bn2.weight",
            "layer2.0.downsample.1.running_var",
        ] {
            assert!(get(name).iter().all(|&v| v == 1.0), "{name}");
        }
        for name in [
            "bn1.bias",
            "layer3.1.bn2.bias",
            "layer2.0.downsample.1.running_mean",
        ] {
            assert!(get(name).iter().all(|&v| v == 0.0), "{name}");
        }

        let bound = 1.0 / (256f32).sqrt();
        for name in ["fc.weight", "fc.bias"] {
            let v = get(name);
            assert!(v.iter().all(|x| x.abs() <= bound), "{name}");
        }
        let fc = get("fc.weight");
        let max = fc.iter().fold(0f32, |m, x| m.max(x.abs()));
        assert!(max > 0.95 * bound, "max |w| {max} vs bound {bound}");
        Ok(())
    }

    #[test]
    fn unknown_parameter_names_are_rejected() {
        assert!(param_init("head.weight", &[2, 8, 3], None).is_err());
        assert!(param_init("fc.bias", &[2], None).is_err());
        assert_eq!(
            param_init("fc.bias", &[2], Some(16)).expect("rule"),
            ParamInit::Uniform { bound: 0.25 }
        );
        assert_eq!(
            param_init("layer1.0.conv1.weight", &[8, 8, 3, 3], None).expect("rule"),
            ParamInit::Normal {
                std: (2.0f64 / 72.0).sqrt()
            }
        );
    }
}
