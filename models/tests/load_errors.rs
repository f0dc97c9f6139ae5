//! Loading errors name what is wrong: a missing tensor, a wrong shape, an unsupported dtype, an
//! unsupported architecture, a missing config key.

use std::path::Path;

use ember_models::{BackendKind, Precision, QwenVl, runtime};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

fn copy_fixture(to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/qwen2-vl-tiny");
    for e in std::fs::read_dir(&from).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

/// Rewrites `model.safetensors`, letting `edit` drop or replace tensors.
fn rewrite(
    dir: &Path,
    edit: impl Fn(&str, Dtype, Vec<usize>, Vec<u8>) -> Option<(Dtype, Vec<usize>, Vec<u8>)>,
) {
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut kept: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, t) in st.tensors() {
        if let Some((d, s, b)) = edit(&name, t.dtype(), t.shape().to_vec(), t.data().to_vec()) {
            kept.push((name, d, s, b));
        }
    }
    let views: Vec<(String, TensorView<'_>)> = kept
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, None, &path).unwrap();
}

fn load_err(dir: &Path) -> String {
    let rt = runtime(BackendKind::Cpu, Precision::F32).unwrap();
    match QwenVl::load(dir, rt) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn missing_tensor_is_named() {
    let d = tempfile::tempdir().unwrap();
    copy_fixture(d.path());
    rewrite(d.path(), |n, dt, s, b| {
        (n != "model.layers.1.mlp.up_proj.weight").then_some((dt, s, b))
    });
    let e = load_err(d.path());
    assert!(
        e.contains("missing tensor `model.layers.1.mlp.up_proj.weight`"),
        "{e}"
    );
    assert!(e.contains("model.safetensors"), "{e}");
}

#[test]
fn wrong_shape_is_named_with_both_shapes() {
    let d = tempfile::tempdir().unwrap();
    copy_fixture(d.path());
    rewrite(d.path(), |n, dt, s, b| {
        if n == "visual.blocks.1.attn.qkv.weight" {
            // [96, 32] -> [32, 96]: same bytes, wrong layout.
            Some((dt, vec![s[1], s[0]], b))
        } else {
            Some((dt, s, b))
        }
    });
    let e = load_err(d.path());
    assert!(
        e.contains("`visual.blocks.1.attn.qkv.weight`")
            && e.contains("[32, 96]")
            && e.contains("[96, 32]"),
        "{e}"
    );
}

#[test]
fn unsupported_dtype_is_named() {
    let d = tempfile::tempdir().unwrap();
    copy_fixture(d.path());
    rewrite(d.path(), |n, dt, s, b| {
        if n == "model.norm.weight" {
            let v: Vec<u8> = b
                .chunks_exact(4)
                .flat_map(|c| (f32::from_le_bytes(c.try_into().unwrap()) as f64).to_le_bytes())
                .collect();
            Some((Dtype::F64, s, v))
        } else {
            Some((dt, s, b))
        }
    });
    let e = load_err(d.path());
    assert!(
        e.contains("`model.norm.weight`") && e.contains("F64") && e.contains("unsupported dtype"),
        "{e}"
    );
}

#[test]
fn unsupported_architecture_and_missing_keys_are_named() {
    let d = tempfile::tempdir().unwrap();
    copy_fixture(d.path());
    let cfg_path = d.path().join("config.json");
    let original = std::fs::read_to_string(&cfg_path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&original).unwrap();
    v["model_type"] = "llava".into();
    std::fs::write(&cfg_path, v.to_string()).unwrap();
    let e = load_err(d.path());
    assert!(
        e.contains("unsupported architecture `llava`") && e.contains("model_type"),
        "{e}"
    );

    let mut v: serde_json::Value = serde_json::from_str(&original).unwrap();
    v.as_object_mut().unwrap().remove("num_hidden_layers");
    std::fs::write(&cfg_path, v.to_string()).unwrap();
    let e = load_err(d.path());
    assert!(
        e.contains("config.json") && e.contains("num_hidden_layers: missing"),
        "{e}"
    );

    std::fs::write(&cfg_path, "{ not json").unwrap();
    let e = load_err(d.path());
    assert!(
        e.contains("config.json") && e.contains("invalid JSON"),
        "{e}"
    );
}
