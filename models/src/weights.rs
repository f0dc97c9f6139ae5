//! Reading Hub checkpoints' weights: one `model.safetensors` or shards listed in
//! `model.safetensors.index.json`, memory-mapped, in F32, BF16 or F16.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use burn::tensor::{DType, Device, Tensor, TensorData};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};

use crate::config::read_json;
use crate::error::{ModelError, Result};

/// The element types a checkpoint may store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoredDtype {
    /// 32-bit float.
    F32,
    /// bfloat16.
    BF16,
    /// IEEE half.
    F16,
}

impl StoredDtype {
    /// Bytes per element.
    pub fn size(&self) -> usize {
        match self {
            StoredDtype::F32 => 4,
            StoredDtype::BF16 | StoredDtype::F16 => 2,
        }
    }
}

struct Shard {
    path: PathBuf,
    mmap: Mmap,
    data_start: usize,
}

struct Entry {
    shard: usize,
    dtype: Dtype,
    shape: Vec<usize>,
    start: usize,
    end: usize,
}

/// A checkpoint's tensors, memory-mapped.
pub struct WeightStore {
    dir: PathBuf,
    shards: Vec<Shard>,
    entries: HashMap<String, Entry>,
}

/// One tensor's bytes as stored.
pub struct RawTensor<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its element type.
    pub dtype: StoredDtype,
    /// Its shape.
    pub shape: &'a [usize],
    /// Its bytes (little-endian).
    pub bytes: &'a [u8],
    /// The file it lives in.
    pub file: &'a Path,
}

impl RawTensor<'_> {
    /// Converts the values to f32.
    pub fn to_f32(&self) -> Vec<f32> {
        match self.dtype {
            StoredDtype::F32 => self
                .bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            StoredDtype::BF16 => self
                .bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
                .collect(),
            StoredDtype::F16 => self
                .bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
                .collect(),
        }
    }
}

fn dtype_name(d: Dtype) -> String {
    format!("{d:?}")
}

impl WeightStore {
    /// Opens the safetensors files of a checkpoint directory: `model.safetensors.index.json`
    /// (sharded) if present, else `model.safetensors`, else every `*.safetensors` file.
    pub fn open(dir: &Path) -> Result<Self> {
        let index = dir.join("model.safetensors.index.json");
        let files: Vec<PathBuf> = if index.is_file() {
            let v = read_json(&index)?;
            let map = v
                .get("weight_map")
                .and_then(|m| m.as_object())
                .ok_or_else(|| {
                    ModelError::config(&index, "weight_map", "missing or not an object")
                })?;
            let mut names: Vec<String> = Vec::new();
            for (tensor, file) in map {
                let f = file.as_str().ok_or_else(|| {
                    ModelError::config(
                        &index,
                        format!("weight_map.{tensor}"),
                        "expected a file name",
                    )
                })?;
                if !names.iter().any(|n| n == f) {
                    names.push(f.to_string());
                }
            }
            names.sort();
            names.into_iter().map(|n| dir.join(n)).collect()
        } else if dir.join("model.safetensors").is_file() {
            vec![dir.join("model.safetensors")]
        } else {
            let rd = std::fs::read_dir(dir).map_err(|e| ModelError::io(dir, e))?;
            let mut v: Vec<PathBuf> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension().is_some_and(|x| x == "safetensors")
                        && !p.ends_with("reference.safetensors")
                })
                .collect();
            v.sort();
            if v.is_empty() {
                return Err(ModelError::io(
                    dir.join("model.safetensors"),
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no safetensors weights in the checkpoint directory",
                    ),
                ));
            }
            v
        };
        let mut shards = Vec::with_capacity(files.len());
        let mut entries = HashMap::new();
        for (i, path) in files.into_iter().enumerate() {
            let file = File::open(&path).map_err(|e| ModelError::io(&path, e))?;
            // SAFETY: the mapping is read-only; a checkpoint modified while we run is the user's
            // responsibility, as with every memory-mapped weight loader.
            let mmap = unsafe { Mmap::map(&file) }.map_err(|e| ModelError::io(&path, e))?;
            let (header, meta) =
                SafeTensors::read_metadata(&mmap).map_err(|e| ModelError::Safetensors {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            let data_start = 8 + header;
            for (name, info) in meta.tensors() {
                entries.insert(
                    name,
                    Entry {
                        shard: i,
                        dtype: info.dtype,
                        shape: info.shape.clone(),
                        start: info.data_offsets.0,
                        end: info.data_offsets.1,
                    },
                );
            }
            shards.push(Shard {
                path,
                mmap,
                data_start,
            });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            shards,
            entries,
        })
    }

    /// The checkpoint directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether a tensor exists.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// All tensor names (sorted).
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.entries.keys().map(String::as_str).collect();
        v.sort();
        v
    }

    /// Total bytes of the stored tensors.
    pub fn total_bytes(&self) -> usize {
        self.entries.values().map(|e| e.end - e.start).sum()
    }

    /// The stored dtypes, with their tensor counts.
    pub fn dtype_counts(&self) -> Vec<(String, usize)> {
        let mut m: HashMap<String, usize> = HashMap::new();
        for e in self.entries.values() {
            *m.entry(dtype_name(e.dtype)).or_default() += 1;
        }
        let mut v: Vec<_> = m.into_iter().collect();
        v.sort();
        v
    }

    fn files_list(&self) -> String {
        self.shards
            .iter()
            .map(|s| {
                s.path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The first of `names` that exists (checkpoints written by different versions name some
    /// tensors differently), with its bytes; checks the shape.
    pub fn raw(&self, names: &[&str], expected: &[usize]) -> Result<RawTensor<'_>> {
        let (name, e) = names
            .iter()
            .find_map(|n| self.entries.get_key_value(*n))
            .ok_or_else(|| ModelError::MissingTensor {
                dir: self.dir.clone(),
                name: names.first().copied().unwrap_or_default().to_string(),
                files: self.files_list(),
            })?;
        let shard = &self.shards[e.shard];
        if e.shape != expected {
            return Err(ModelError::WrongShape {
                file: shard.path.clone(),
                name: name.clone(),
                found: e.shape.clone(),
                expected: expected.to_vec(),
            });
        }
        let dtype = match e.dtype {
            Dtype::F32 => StoredDtype::F32,
            Dtype::BF16 => StoredDtype::BF16,
            Dtype::F16 => StoredDtype::F16,
            other => {
                return Err(ModelError::UnsupportedDtype {
                    file: shard.path.clone(),
                    name: name.clone(),
                    dtype: dtype_name(other),
                });
            }
        };
        let bytes = shard
            .mmap
            .get(shard.data_start + e.start..shard.data_start + e.end)
            .ok_or_else(|| ModelError::Safetensors {
                path: shard.path.clone(),
                message: format!("tensor `{name}` lies outside the file"),
            })?;
        Ok(RawTensor {
            name,
            dtype,
            shape: &e.shape,
            bytes,
            file: &shard.path,
        })
    }

    /// Loads a tensor onto `device` as f32 (then cast to the device's float dtype by burn).
    pub fn tensor<const D: usize>(
        &self,
        names: &[&str],
        expected: [usize; D],
        device: &Device,
        dtype: DType,
    ) -> Result<Tensor<D>> {
        let raw = self.raw(names, &expected)?;
        Ok(host_tensor(raw.to_f32(), expected, device, dtype))
    }
}

/// Uploads host f32 values to a tensor of the given dtype.
pub fn host_tensor<const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &Device,
    dtype: DType,
) -> Tensor<D> {
    let data = TensorData::new(values, shape);
    let data = if dtype == DType::F32 {
        data
    } else {
        data.convert_dtype(dtype)
    };
    Tensor::from_data(data, (device, dtype))
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    fn write(dir: &Path, name: &str, tensors: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)>) {
        let views: Vec<(String, TensorView<'_>)> = tensors
            .iter()
            .map(|(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap()))
            .collect();
        safetensors::serialize_to_file(views, None, &dir.join(name)).unwrap();
    }

    #[test]
    fn reads_f32_bf16_f16_and_reports_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f32b: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let bf: Vec<u8> = [half::bf16::from_f32(0.5), half::bf16::from_f32(-3.0)]
            .iter()
            .flat_map(|x| x.to_bits().to_le_bytes())
            .collect();
        let hf: Vec<u8> = [half::f16::from_f32(0.25), half::f16::from_f32(8.0)]
            .iter()
            .flat_map(|x| x.to_bits().to_le_bytes())
            .collect();
        let i64b: Vec<u8> = [1i64, 2].iter().flat_map(|x| x.to_le_bytes()).collect();
        write(
            dir.path(),
            "model.safetensors",
            vec![
                ("a", Dtype::F32, vec![2], f32b),
                ("b", Dtype::BF16, vec![1, 2], bf),
                ("c", Dtype::F16, vec![2], hf),
                ("d", Dtype::I64, vec![2], i64b),
            ],
        );
        let s = WeightStore::open(dir.path()).unwrap();
        assert_eq!(s.raw(&["a"], &[2]).unwrap().to_f32(), vec![1.5, -2.0]);
        assert_eq!(
            s.raw(&["x", "b"], &[1, 2]).unwrap().to_f32(),
            vec![0.5, -3.0]
        );
        assert_eq!(s.raw(&["c"], &[2]).unwrap().to_f32(), vec![0.25, 8.0]);
        let e = s.raw(&["zz"], &[2]).err().unwrap().to_string();
        assert!(
            e.contains("missing tensor `zz`") && e.contains("model.safetensors"),
            "{e}"
        );
        let e = s.raw(&["a"], &[3]).err().unwrap().to_string();
        assert!(
            e.contains("`a`") && e.contains("[2]") && e.contains("[3]"),
            "{e}"
        );
        let e = s.raw(&["d"], &[2]).err().unwrap().to_string();
        assert!(e.contains("`d`") && e.contains("I64"), "{e}");
    }

    #[test]
    fn reads_sharded_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let one: Vec<u8> = 1.0f32.to_le_bytes().to_vec();
        let two: Vec<u8> = 2.0f32.to_le_bytes().to_vec();
        write(
            dir.path(),
            "model-00001-of-00002.safetensors",
            vec![("x", Dtype::F32, vec![1], one)],
        );
        write(
            dir.path(),
            "model-00002-of-00002.safetensors",
            vec![("y", Dtype::F32, vec![1], two)],
        );
        std::fs::write(
            dir.path().join("model.safetensors.index.json"),
            r#"{"metadata": {}, "weight_map": {"x": "model-00001-of-00002.safetensors", "y": "model-00002-of-00002.safetensors"}}"#,
        )
        .unwrap();
        let s = WeightStore::open(dir.path()).unwrap();
        assert_eq!(s.raw(&["y"], &[1]).unwrap().to_f32(), vec![2.0]);
        assert_eq!(s.names(), vec!["x", "y"]);
    }
}
