//! Loading pretrained weights with torchvision names from safetensors or
//! PyTorch `.pth` files.
//!
//! A torchvision state dict (e.g. ImageNet ResNet-18), either exported with
//! `safetensors.torch.save_file(model.state_dict(), path)` or saved by
//! `torch.save(model.state_dict(), path)` (the zip format of PyTorch 1.6 and
//! later, torchvision's published `.pth` files; read with candle's pickle
//! reader, no Python needed), loads into a
//! [`crate::model::resnet::ResNet`]'s `VarMap` name by name. The format is
//! recognised from the file's first bytes, not its name. `VarMap::load`
//! is all-or-nothing and fails on the first unknown tensor, so this loader
//! instead checks every name first and reports *all* problems at once:
//!
//! - `num_batches_tracked` buffers are ignored (candle's BatchNorm uses a fixed
//!   momentum and has no use for them);
//! - the classification head (`fc.weight`, `fc.bias`) may differ in shape (a
//!   1000-class ImageNet head for a 2-class task) or be absent; with
//!   `skip_mismatched_head` it is then left at its current (seeded) value and
//!   reported;
//! - any other missing, shape-mismatched or unexpected name is an error that
//!   lists every such name with its expected and found shapes.
//!
//! Nothing is written unless the whole file fits, so a failed load leaves the
//! model untouched. Tensors are converted to each variable's dtype and device.

use std::collections::HashMap;
use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor, Var};
use candle_nn::VarMap;

/// Names of the classification head, which may be skipped on mismatch.
pub const HEAD_NAMES: [&str; 2] = ["fc.weight", "fc.bias"];

/// What a successful load did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Variables overwritten from the file, sorted.
    pub loaded: Vec<String>,
    /// Head variables left unchanged because the file's shape differs or the
    /// file lacks them (`found: None`).
    pub skipped_head: Vec<Mismatch>,
    /// Tensors in the file that were deliberately not used
    /// (`num_batches_tracked`), sorted.
    pub ignored: Vec<String>,
}

/// One variable whose file entry does not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Torchvision parameter name.
    pub name: String,
    /// Shape of the model's variable, or `None` when the model has no such
    /// variable (an unexpected entry in the file).
    pub expected: Option<Vec<usize>>,
    /// Shape in the file, or `None` when the file lacks the name.
    pub found: Option<Vec<usize>>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.expected, &self.found) {
            (Some(e), Some(x)) => write!(f, "{}: model expects {e:?}, file has {x:?}", self.name),
            (Some(e), None) => write!(f, "{}: model expects {e:?}, missing in file", self.name),
            (None, Some(x)) => write!(
                f,
                "{}: file has {x:?}, model has no such parameter",
                self.name
            ),
            (None, None) => write!(f, "{}", self.name),
        }
    }
}

/// Why pretrained weights could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PretrainedError {
    /// The file could not be read or parsed.
    #[error(
        "cannot read pretrained weights {path}: {source}; expected a safetensors file or a \
         PyTorch state dict saved by torch.save"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// candle's error.
        source: Box<candle_core::Error>,
    },
    /// A PyTorch file in the format used before PyTorch 1.6, which cannot be read without Python.
    #[error(
        "pretrained weights {path} are in PyTorch's legacy format (before 1.6); re-save them \
         with torch.save(torch.load(path), path) or convert them to safetensors"
    )]
    LegacyPytorch {
        /// The file.
        path: PathBuf,
    },
    /// Names or shapes in the file do not fit the model.
    #[error(
        "pretrained weights {path} do not fit the model ({} problem(s)); check that the model \
         config (layers, base_width) matches the file{}:\n  {}",
        problems.len(),
        if *head_skippable { "" } else { ", or allow skipping a mismatched fc head" },
        problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  ")
    )]
    DoesNotFit {
        /// The file.
        path: PathBuf,
        /// Every missing, mismatched or unexpected name, sorted by name.
        problems: Vec<Mismatch>,
        /// Whether head mismatches were allowed (for the hint).
        head_skippable: bool,
    },
    /// Converting or writing one tensor failed.
    #[error("cannot copy {name} from pretrained weights {path}: {source}")]
    Copy {
        /// The file.
        path: PathBuf,
        /// Parameter name.
        name: String,
        /// candle's error.
        source: Box<candle_core::Error>,
    },
}

/// Loads the tensors of the weights file `path` (safetensors or `.pth`)
/// into the variables of `varmap` with the same names (see the module docs
/// for the rules).
pub fn load_pretrained(
    varmap: &VarMap,
    path: &Path,
    skip_mismatched_head: bool,
) -> Result<LoadReport, PretrainedError> {
    let tensors = read_weights(path)?;
    let data = varmap
        .data()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let plan = plan(&data, &tensors, skip_mismatched_head);
    if !plan.problems.is_empty() {
        return Err(PretrainedError::DoesNotFit {
            path: path.to_path_buf(),
            problems: plan.problems,
            head_skippable: skip_mismatched_head,
        });
    }
    for name in &plan.report.loaded {
        copy_into(&data[name], &tensors[name]).map_err(|source| PretrainedError::Copy {
            path: path.to_path_buf(),
            name: name.clone(),
            source: Box::new(source),
        })?;
    }
    Ok(plan.report)
}

/// How a weights file is stored, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Safetensors,
    /// `torch.save` since PyTorch 1.6: a zip archive around a pickle.
    PytorchZip,
    /// `torch.save` before PyTorch 1.6: a bare pickle stream or a tar archive.
    PytorchLegacy,
}

fn detect_format(head: &[u8]) -> Format {
    if head.starts_with(b"PK\x03\x04") {
        Format::PytorchZip
    } else if head.len() >= 2 && head[0] == 0x80 && (2..=5).contains(&head[1]) {
        // A pickle's PROTO opcode: the legacy format begins with a pickled magic number.
        Format::PytorchLegacy
    } else if head.get(257..262) == Some(b"ustar".as_slice()) {
        Format::PytorchLegacy
    } else {
        Format::Safetensors
    }
}

/// Every tensor of the weights file `path`, by name, on the CPU.
pub fn read_weights(path: &Path) -> Result<HashMap<String, Tensor>, PretrainedError> {
    let read = |source: candle_core::Error| PretrainedError::Read {
        path: path.to_path_buf(),
        source: Box::new(source),
    };
    let mut head = Vec::with_capacity(512);
    std::fs::File::open(path)
        .and_then(|f| f.take(512).read_to_end(&mut head))
        .map_err(|e| read(e.into()))?;
    match detect_format(&head) {
        Format::Safetensors => candle_core::safetensors::load(path, &Device::Cpu).map_err(read),
        Format::PytorchLegacy => Err(PretrainedError::LegacyPytorch {
            path: path.to_path_buf(),
        }),
        Format::PytorchZip => {
            let tensors = candle_core::pickle::read_all(path).map_err(read)?;
            if !tensors.is_empty() {
                return Ok(tensors.into_iter().collect());
            }
            // A checkpoint holding the state dict under a usual key.
            for key in ["state_dict", "model"] {
                match candle_core::pickle::read_all_with_key(path, Some(key)) {
                    Ok(tensors) if !tensors.is_empty() => return Ok(tensors.into_iter().collect()),
                    _ => {}
                }
            }
            Ok(HashMap::new())
        }
    }
}

struct Plan {
    report: LoadReport,
    problems: Vec<Mismatch>,
}

/// Decides, without writing anything, what to load, skip, ignore or reject.
fn plan(vars: &HashMap<String, Var>, tensors: &HashMap<String, Tensor>, skip_head: bool) -> Plan {
    let mut report = LoadReport::default();
    let mut problems = Vec::new();
    for (name, var) in vars {
        let expected = var.dims().to_vec();
        let found = tensors.get(name).map(|t| t.dims().to_vec());
        if found.as_ref() == Some(&expected) {
            report.loaded.push(name.clone());
            continue;
        }
        let mismatch = Mismatch {
            name: name.clone(),
            expected: Some(expected),
            found,
        };
        if skip_head && HEAD_NAMES.contains(&name.as_str()) {
            report.skipped_head.push(mismatch);
        } else {
            problems.push(mismatch);
        }
    }
    for (name, tensor) in tensors {
        if vars.contains_key(name) {
            continue;
        }
        if name.ends_with("num_batches_tracked") {
            report.ignored.push(name.clone());
        } else {
            problems.push(Mismatch {
                name: name.clone(),
                expected: None,
                found: Some(tensor.dims().to_vec()),
            });
        }
    }
    report.loaded.sort();
    report.skipped_head.sort_by(|a, b| a.name.cmp(&b.name));
    report.ignored.sort();
    problems.sort_by(|a, b| a.name.cmp(&b.name));
    Plan { report, problems }
}

fn copy_into(var: &Var, tensor: &Tensor) -> candle_core::Result<()> {
    var.set(&tensor.to_dtype(var.dtype())?.to_device(var.device())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::init::build_seeded;
    use crate::model::resnet::ResNetConfig;
    use candle_core::DType;

    fn config(num_classes: usize) -> ResNetConfig {
        ResNetConfig {
            layers: vec![1, 1, 1, 1],
            base_width: 4,
            num_classes,
        }
    }

    /// Every variable of `varmap` as a tensor with a recognisable value
    /// (`index + 0.5`), plus torchvision's `num_batches_tracked` buffers.
    fn state_dict(varmap: &VarMap) -> HashMap<String, Tensor> {
        let data = varmap.data().lock().expect("lock");
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        let mut out = HashMap::new();
        for (i, name) in names.into_iter().enumerate() {
            let t = (data[name].ones_like().expect("ones") * (i as f64 + 0.5)).expect("mul");
            out.insert(name.clone(), t);
            if let Some(prefix) = name.strip_suffix(".running_var") {
                let count = Tensor::new(7i64, &Device::Cpu).expect("scalar");
                out.insert(format!("{prefix}.num_batches_tracked"), count);
            }
        }
        out
    }

    fn write(tensors: &HashMap<String, Tensor>, dir: &tempfile::TempDir) -> PathBuf {
        let path = dir.path().join("weights.safetensors");
        candle_core::safetensors::save(tensors, &path).expect("save");
        path
    }

    fn value(varmap: &VarMap, name: &str) -> Vec<f32> {
        let data = varmap.data().lock().expect("lock");
        data[name]
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .expect("values")
    }

    #[test]
    fn loads_every_name_and_ignores_batch_counters() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, source) = build_seeded(&config(2), 1, &Device::Cpu).expect("build");
        let mut file = state_dict(&source);
        // A half-precision entry is converted to the variable's f32.
        let half = file["layer1.0.bn1.weight"]
            .to_dtype(DType::F16)
            .expect("f16");
        file.insert("layer1.0.bn1.weight".into(), half);
        let path = write(&file, &dir);

        let (_, target) = build_seeded(&config(2), 2, &Device::Cpu).expect("build");
        let report = load_pretrained(&target, &path, false).expect("load");
        assert_eq!(report.loaded.len(), target.all_vars().len());
        assert!(report.skipped_head.is_empty());
        assert!(report
            .ignored
            .contains(&"bn1.num_batches_tracked".to_string()));
        assert_eq!(report.ignored.len(), 1 + 4 * 2 + 3);
        for name in [
            "conv1.weight",
            "layer1.0.bn1.weight",
            "layer4.0.downsample.1.running_var",
            "fc.bias",
        ] {
            let expected = file[name]
                .to_dtype(DType::F32)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f32>())
                .expect("values");
            assert_eq!(value(&target, name), expected, "{name}");
        }
    }

    #[test]
    fn mismatched_head_is_skipped_when_allowed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, imagenet) = build_seeded(&config(1000), 1, &Device::Cpu).expect("build");
        let path = write(&state_dict(&imagenet), &dir);

        let (_, target) = build_seeded(&config(2), 2, &Device::Cpu).expect("build");
        let head_before = value(&target, "fc.weight");
        let err = load_pretrained(&target, &path, false).expect_err("head differs");
        let msg = err.to_string();
        assert!(
            msg.contains("fc.weight: model expects [2, 32], file has [1000, 32]"),
            "{msg}"
        );
        assert!(
            msg.contains("fc.bias: model expects [2], file has [1000]"),
            "{msg}"
        );
        // Nothing was written by the failed load.
        assert_ne!(
            value(&target, "conv1.weight"),
            value(&imagenet, "conv1.weight")
        );

        let report = load_pretrained(&target, &path, true).expect("skip head");
        assert_eq!(report.skipped_head.len(), 2);
        assert_eq!(report.skipped_head[0].found, Some(vec![1000]));
        assert_eq!(report.skipped_head[1].found, Some(vec![1000, 32]));
        assert_eq!(value(&target, "fc.weight"), head_before);
        assert_eq!(report.loaded.len(), target.all_vars().len() - 2);
        assert_ne!(
            value(&target, "conv1.weight"),
            value(&imagenet, "conv1.weight")
        );
        let file = state_dict(&imagenet);
        let expected: Vec<f32> = file["conv1.weight"]
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .expect("values");
        assert_eq!(value(&target, "conv1.weight"), expected);
    }

    #[test]
    fn backbone_problems_are_all_listed_with_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, source) = build_seeded(&config(2), 1, &Device::Cpu).expect("build");
        let mut file = state_dict(&source);
        file.remove("layer2.0.conv1.weight");
        file.remove("fc.bias");
        file.insert(
            "layer3.0.bn2.weight".into(),
            Tensor::zeros(5, DType::F32, &Device::Cpu).expect("zeros"),
        );
        file.insert(
            "layer1.1.conv1.weight".into(),
            Tensor::zeros((4, 4, 3, 3), DType::F32, &Device::Cpu).expect("zeros"),
        );
        let path = write(&file, &dir);

        let (_, target) = build_seeded(&config(2), 2, &Device::Cpu).expect("build");
        let err = load_pretrained(&target, &path, true).expect_err("backbone mismatch");
        let PretrainedError::DoesNotFit { problems, .. } = &err else {
            panic!("unexpected error {err}");
        };
        let names: Vec<&str> = problems.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "layer1.1.conv1.weight",
                "layer2.0.conv1.weight",
                "layer3.0.bn2.weight"
            ]
        );
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(
            msg.contains("layer2.0.conv1.weight: model expects [8, 4, 3, 3], missing in file"),
            "{msg}"
        );
        assert!(
            msg.contains("layer3.0.bn2.weight: model expects [16], file has [5]"),
            "{msg}"
        );
        assert!(
            msg.contains(
                "layer1.1.conv1.weight: file has [4, 4, 3, 3], model has no such parameter"
            ),
            "{msg}"
        );
    }

    #[test]
    fn unreadable_file_names_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("not-weights.safetensors");
        std::fs::write(&path, b"not a safetensors file").expect("write");
        let (_, target) = build_seeded(&config(2), 2, &Device::Cpu).expect("build");
        let msg = load_pretrained(&target, &path, true)
            .expect_err("garbage")
            .to_string();
        assert!(msg.contains("not-weights.safetensors"), "{msg}");
    }

    fn pth_fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/pth")
            .join(name)
    }

    fn pth_config() -> ResNetConfig {
        let text = std::fs::read_to_string(pth_fixture("tiny_config.json")).expect("config");
        serde_json::from_str(&text).expect("config json")
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.dims(), b.dims());
        (a - b)
            .and_then(|d| d.abs())
            .and_then(|d| d.flatten_all())
            .and_then(|d| d.max(0))
            .and_then(|d| d.to_scalar::<f32>())
            .expect("difference")
    }

    /// Made by `scripts/make_pth_fixture.py`: one state dict saved by
    /// `torch.save` and by safetensors.
    #[test]
    fn pth_and_its_safetensors_twin_give_the_same_model() {
        let pth = read_weights(&pth_fixture("tiny.pth")).expect("read .pth");
        let twin = read_weights(&pth_fixture("tiny.safetensors")).expect("read twin");
        let mut names: Vec<&String> = pth.keys().collect();
        names.sort();
        let mut twin_names: Vec<&String> = twin.keys().collect();
        twin_names.sort();
        assert_eq!(names, twin_names);
        assert_eq!(names.len(), 74);
        assert_eq!(pth["bn1.num_batches_tracked"].dtype(), DType::I64);
        assert_eq!(
            pth["bn1.num_batches_tracked"]
                .to_scalar::<i64>()
                .expect("i64"),
            11
        );

        let config = pth_config();
        let input = Tensor::randn(0f32, 1.0, (2, 3, 40, 40), &Device::Cpu).expect("input");
        let mut outputs = Vec::new();
        for (seed, file) in [(1, "tiny.pth"), (2, "tiny.safetensors")] {
            let (model, varmap) = build_seeded(&config, seed, &Device::Cpu).expect("build");
            let seeded = model.forward_t(&input, false).expect("forward");
            let report = load_pretrained(&varmap, &pth_fixture(file), false).expect("load");
            assert_eq!(report.loaded.len(), varmap.all_vars().len(), "{file}");
            assert!(report.skipped_head.is_empty());
            assert_eq!(report.ignored.len(), 74 - varmap.all_vars().len());
            let eval = model.forward_t(&input, false).expect("eval forward");
            // Loading changed the network.
            assert!(max_abs_diff(&eval, &seeded) > 1e-3, "{file}");
            let train = model.forward_t(&input, true).expect("train forward");
            outputs.push((eval, train));
        }
        let eval_diff = max_abs_diff(&outputs[0].0, &outputs[1].0);
        let train_diff = max_abs_diff(&outputs[0].1, &outputs[1].1);
        assert!(eval_diff <= 1e-6, "eval outputs differ by {eval_diff}");
        assert!(train_diff <= 1e-6, "train outputs differ by {train_diff}");
    }

    #[test]
    fn pth_head_of_another_size_is_skipped_for_a_two_class_model() {
        let config = ResNetConfig {
            num_classes: 2,
            ..pth_config()
        };
        let (_, target) = build_seeded(&config, 3, &Device::Cpu).expect("build");
        let head_before = value(&target, "fc.weight");
        let report = load_pretrained(&target, &pth_fixture("tiny.pth"), true).expect("load");
        let skipped: Vec<&str> = report
            .skipped_head
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        assert_eq!(skipped, ["fc.bias", "fc.weight"]);
        assert_eq!(report.skipped_head[1].found, Some(vec![10, 32]));
        assert_eq!(value(&target, "fc.weight"), head_before);
        let file = read_weights(&pth_fixture("tiny.pth")).expect("read");
        let expected: Vec<f32> = file["layer4.0.conv2.weight"]
            .flatten_all()
            .and_then(|t| t.to_vec1())
            .expect("values");
        assert_eq!(value(&target, "layer4.0.conv2.weight"), expected);
    }

    #[test]
    fn pth_problems_are_all_listed_with_the_file() {
        // Twice as wide and one block deeper in the last stage.
        let config = ResNetConfig {
            layers: vec![1, 1, 1, 2],
            base_width: 8,
            num_classes: 10,
        };
        let (_, target) = build_seeded(&config, 3, &Device::Cpu).expect("build");
        let err = load_pretrained(&target, &pth_fixture("tiny.pth"), true).expect_err("misfit");
        let PretrainedError::DoesNotFit { problems, .. } = &err else {
            panic!("unexpected error {err}");
        };
        // Every variable but the skipped head: 20 of the network's shapes
        // differ and layer4.1 is missing in the file.
        assert!(problems.len() > 30, "{} problems", problems.len());
        let msg = err.to_string();
        assert!(msg.contains("tiny.pth"), "{msg}");
        assert!(
            msg.contains("conv1.weight: model expects [8, 3, 7, 7], file has [4, 3, 7, 7]"),
            "{msg}"
        );
        assert!(
            msg.contains("layer4.1.conv1.weight: model expects [64, 64, 3, 3], missing in file"),
            "{msg}"
        );
    }

    #[test]
    fn legacy_pytorch_files_say_how_to_convert_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("old.pth");
        // Pickle protocol 2 opcode and the legacy format's magic number.
        std::fs::write(&path, b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.").expect("write");
        let (_, target) = build_seeded(&config(2), 2, &Device::Cpu).expect("build");
        let msg = load_pretrained(&target, &path, true)
            .expect_err("legacy")
            .to_string();
        assert!(
            msg.contains("old.pth are in PyTorch's legacy format") && msg.contains("torch.save"),
            "{msg}"
        );
        // A zip that is not a PyTorch file is a read error naming the file.
        let zip = dir.path().join("not-torch.pth");
        std::fs::write(&zip, b"PK\x03\x04garbage").expect("write");
        let msg = load_pretrained(&target, &zip, true)
            .expect_err("garbage")
            .to_string();
        assert!(msg.starts_with("cannot read pretrained weights"), "{msg}");
        assert!(msg.contains("not-torch.pth"), "{msg}");
    }

    #[test]
    fn formats_from_first_bytes() {
        assert_eq!(detect_format(b"PK\x03\x04rest"), Format::PytorchZip);
        assert_eq!(detect_format(b"\x80\x02\x8a"), Format::PytorchLegacy);
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(detect_format(&tar), Format::PytorchLegacy);
        assert_eq!(
            detect_format(b"\x10\x00\x00\x00\x00\x00\x00\x00{"),
            Format::Safetensors
        );
    }
}
