//! Helpers shared by the integration tests, and the check that decides whether the wgpu tests
//! can run ([`wgpu_runtime`]).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use ember_agent::RgbImage;
use ember_models::chat::ChatTemplate;
use ember_models::config::{GenerationDefaults, PreprocessorConfig};
use ember_models::tokenizer::QwenTokenizer;
use ember_models::{BackendKind, Precision, QwenVl, Vlm, runtime};

/// `models/fixtures`.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A PNG as an agent image.
pub fn load_png(path: &Path) -> RgbImage {
    let img = image::open(path).unwrap().to_rgb8();
    RgbImage::new(img.width(), img.height(), img.into_raw()).unwrap()
}

/// The byte-level tokenizer with the Qwen special tokens at the ids the tiny checkpoints'
/// config.json name (400-406), built here rather than read from the checkpoint.
pub fn byte_tokenizer() -> QwenTokenizer {
    ember_models::tokenizer::byte_level(&ember_models::tokenizer::qwen_specials(400)).unwrap()
}

/// A tiny fixture checkpoint on the CPU, with the byte tokenizer built above.
pub fn tiny_vlm(name: &str) -> Vlm {
    let dir = fixtures().join(name);
    let model = QwenVl::load(&dir, runtime(BackendKind::Cpu, Precision::F32).unwrap()).unwrap();
    Vlm::assemble(
        model,
        byte_tokenizer(),
        ChatTemplate::from_dir(&dir).unwrap(),
        PreprocessorConfig::from_dir(&dir).unwrap(),
        GenerationDefaults::default(),
        &dir,
    )
    .unwrap()
}

/// Whether we run under CI (`CI=true`), where a missing component fails the test instead of
/// skipping it (as `ember_tests::tools` decides for the Python tests).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Reports a missing component: panics under CI, prints `SKIPPED: <test>: <what>` and returns
/// `None` otherwise. The line goes straight to stderr, past the test harness's output capture
/// (which hides `eprintln!` from passing tests), so a plain `cargo test` shows it.
pub fn missing<T>(what: &str) -> Option<T> {
    if in_ci() {
        panic!("CI=true and {what}");
    }
    use std::io::Write;
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED: {test}: {what}");
    None
}

/// A wgpu runtime in `precision` for the wgpu tests, or `None` (after printing why, outside CI)
/// when this machine cannot give one. The tests need a Vulkan, Metal or DX12 adapter (Mesa's
/// llvmpipe Vulkan driver does: `apt-get install mesa-vulkan-drivers libvulkan1`); wgpu's
/// fallback to OpenGL counts as missing, as does an adapter without `precision` (f16 needs
/// `SHADER_F16`, which GL adapters lack). Under `CI=true` any of these fails the test.
#[cfg(feature = "wgpu")]
pub fn wgpu_runtime(precision: Precision) -> Option<ember_models::Runtime> {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::OnceLock;

    // Asked once per process, before any test opens a device: the Vulkan loader dislikes
    // instances created on several threads at once.
    static ADAPTER: OnceLock<Result<String, String>> = OnceLock::new();
    let fix = "install a Vulkan driver (Debian: apt-get install mesa-vulkan-drivers libvulkan1)";
    if let Err(why) = ADAPTER.get_or_init(wgpu_adapter) {
        return missing(&format!("{why}; {fix}"));
    }
    // Opening the device panics inside burn when the adapter cannot be acquired.
    match catch_unwind(AssertUnwindSafe(|| runtime(BackendKind::Wgpu, precision))) {
        Ok(Ok(rt)) => Some(rt),
        Ok(Err(e)) => missing(&e.to_string()),
        Err(p) => missing(&format!(
            "wgpu cannot open a device: {}; {fix}",
            panic_text(p.as_ref())
        )),
    }
}

/// The adapter wgpu's default device comes up on (on the first of Vulkan, DX12 and GL that has
/// one; Metal on macOS), described, or why the wgpu tests cannot use it.
#[cfg(feature = "wgpu")]
fn wgpu_adapter() -> Result<String, String> {
    use burn::backend::wgpu::graphics::{AutoGraphicsApi, GraphicsApi};
    use burn::backend::wgpu::wgpu;

    let api = std::panic::catch_unwind(AutoGraphicsApi::backend)
        .map_err(|p| format!("wgpu cannot list its adapters: {}", panic_text(p.as_ref())))?;
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: api.into(),
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let adapters: Vec<String> = block_on(instance.enumerate_adapters(api.into()))
        .iter()
        .map(|a| {
            let info = a.get_info();
            format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type)
        })
        .collect();
    if adapters.is_empty() {
        return Err("wgpu finds no adapter: no Vulkan, Metal or DX12 driver, nor OpenGL".into());
    }
    match api {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => {
            Ok(adapters.join(", "))
        }
        _ => Err(format!(
            "wgpu has no Vulkan, Metal or DX12 adapter, only {} (the wgpu tests do not run on \
             wgpu's {api:?} fallback)",
            adapters.join(", ")
        )),
    }
}

/// Runs a future to completion on this thread (wgpu's adapter listing is ready at once on
/// native platforms).
#[cfg(feature = "wgpu")]
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic".into())
}
