//! The prompt path against transformers: chat template + tokenizer + image preprocessing give
//! the reference's `input_ids` and `pixel_values`, and the whole pipeline (KV-cached greedy
//! decoding with streaming) gives its tokens. Also `smart_resize` against transformers' integers
//! and the bicubic resize against torchvision's.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ember_agent::RgbImage;
use ember_agent::policy::{ContentPart, Message, Role};
use ember_models::generate::{SamplingConfig, StopReason};
use ember_models::image::{ImageProcessor, smart_resize};
use ember_models::reference::Reference;
use ember_models::{BackendKind, Precision, PreprocessorConfig, Vlm, runtime};
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn load_png(path: &Path) -> RgbImage {
    let img = image::open(path).unwrap().to_rgb8();
    RgbImage::new(img.width(), img.height(), img.into_raw()).unwrap()
}

/// The reference's conversation as agent messages (images from the fixture PNGs, in order).
fn messages(r: &Reference) -> Vec<Message> {
    let msgs: Value = serde_json::from_str(&r.metadata["messages"]).unwrap();
    let names: Vec<String> = serde_json::from_str(&r.metadata["images"]).unwrap();
    let mut images = names
        .iter()
        .map(|n| Arc::new(load_png(&fixtures().join("images").join(n))));
    msgs.as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let role = match m["role"].as_str().unwrap() {
                "system" => Role::System,
                "user" => Role::User,
                _ => Role::Assistant,
            };
            let content = m["content"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| match p["type"].as_str().unwrap() {
                    "image" => ContentPart::Image(images.next().unwrap()),
                    _ => ContentPart::Text(p["text"].as_str().unwrap().to_string()),
                })
                .collect();
            Message { role, content }
        })
        .collect()
}

fn prompt_and_generation(name: &str) {
    let dir = fixtures().join(name);
    let r = Reference::read(&dir.join("reference.safetensors")).unwrap();
    let vlm = Vlm::load(&dir, runtime(BackendKind::Cpu, Precision::F32).unwrap()).unwrap();
    let prompt = vlm.prompt(&messages(&r)).unwrap();
    assert_eq!(
        prompt.text, r.metadata["prompt"],
        "{name}: rendered chat text"
    );
    assert_eq!(prompt.input_ids, r.input_ids, "{name}: token ids");
    let grids: Vec<[usize; 3]> = prompt.images.iter().map(|i| i.grid_thw).collect();
    assert_eq!(grids, r.grids, "{name}: grids");
    let pv: Vec<f32> = prompt
        .images
        .iter()
        .flat_map(|i| i.pixel_values.iter().copied())
        .collect();
    assert_eq!(pv.len(), r.pixel_values.len());
    let max = pv
        .iter()
        .zip(&r.pixel_values)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(max <= 1e-5, "{name}: pixel_values differ by {max}");

    let expected = r.generated_tokens().to_vec();
    let sampling = SamplingConfig {
        max_new_tokens: expected.len(),
        ..Default::default()
    };
    let mut streamed = String::new();
    let g = vlm
        .generate(&prompt, &sampling, &mut |t| streamed.push_str(t))
        .unwrap();
    assert_eq!(
        g.tokens, expected,
        "{name}: greedy tokens through the pipeline"
    );
    assert_eq!(g.stop, StopReason::MaxTokens);
    assert_eq!(streamed, g.text, "{name}: the stream adds up to the reply");
    assert_eq!(g.text, vlm.tokenizer.decode(&expected, true).unwrap());
}

#[test]
fn qwen2_vl_prompt_path_matches_transformers() {
    prompt_and_generation("qwen2-vl-tiny");
}

#[test]
fn qwen2_5_vl_prompt_path_matches_transformers() {
    prompt_and_generation("qwen2_5-vl-tiny");
}

#[test]
fn qwen2_5_vl_bf16_prompt_path_matches_transformers() {
    prompt_and_generation("qwen2_5-vl-tiny-bf16");
}

#[test]
fn smart_resize_matches_transformers_integers() {
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("smart_resize.json")).unwrap(),
    )
    .unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() > 3000);
    let mut checked = 0;
    for c in cases {
        let g = |k: &str| c[k].as_u64().unwrap() as usize;
        let ours = smart_resize(
            g("height"),
            g("width"),
            28,
            g("min_pixels"),
            g("max_pixels"),
        );
        match c.get("resized") {
            Some(r) => {
                let want = (
                    r[0].as_u64().unwrap() as usize,
                    r[1].as_u64().unwrap() as usize,
                );
                assert_eq!(ours.unwrap(), want, "{c}");
            }
            None => assert!(ours.is_err(), "{c}: transformers refused ({})", c["error"]),
        }
        checked += 1;
    }
    assert_eq!(checked, cases.len());
}

#[test]
fn bicubic_resize_is_close_to_torchvision() {
    let r = safetensors_reference(&fixtures().join("resize_reference.safetensors"));
    let img = load_png(&fixtures().join("images/needs_resize_100x75.png"));
    let pre = PreprocessorConfig {
        min_pixels: 56 * 56,
        max_pixels: 28 * 28 * 256,
        ..Default::default()
    };
    let p = ImageProcessor::new(pre).process(&img).unwrap();
    assert_eq!(p.grid_thw.to_vec(), r.1);
    let diffs: Vec<f32> = p
        .pixel_values
        .iter()
        .zip(&r.0)
        .map(|(a, b)| (a - b).abs())
        .collect();
    let max = diffs.iter().copied().fold(0f32, f32::max);
    let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
    eprintln!(
        "bicubic vs torchvision: max |d| = {max} ({:.2} grey levels), mean {mean}",
        max * 0.2686 * 255.0
    );
    // One normalised unit is ~68 grey levels; allow two grey levels.
    assert!(max <= 2.0 / (0.2613 * 255.0) + 1e-4, "max |d| = {max}");
}

fn safetensors_reference(path: &Path) -> (Vec<f32>, Vec<usize>) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let pv = st.tensor("pixel_values").unwrap();
    let v = pv
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let g = st.tensor("image_grid_thw").unwrap();
    let grid = g
        .data()
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as usize)
        .collect();
    (v, grid)
}
