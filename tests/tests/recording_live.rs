//! Live recording (`mode = "connect"`) to a real Rerun gRPC server (`rerun --serve-grpc`, the
//! viewer binary without a window, saving what it receives with `--save`): the recorder
//! connects, streams camera frames and timings, flushes, and never blocks the loop; whatever it
//! could not send in time it counts as dropped. The server's `.rrd` is then read back with the
//! Python `rerun-sdk` and every frame it received must be the one sent for its step, pixel for
//! pixel; when nothing was dropped, every step must have arrived.
//!
//! Needs the Rerun 0.36.3 binary and a Python with `rerun-sdk==0.36.3` (`EMBER_RERUN`,
//! `EMBER_PYTHON`, see `ember_tests::tools`); under `CI=true` a missing tool fails the test,
//! otherwise it is skipped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ember_agent::observation::{CameraFrame, Observation, RgbImage};
use ember_agent::recorder::{RecordEvent, Recorder, StepTimings};
use ember_agent::recording::{RecordingConfig, RecordingMode, RerunRecorder, paths};
use ember_tests::tools;

/// Stops the server we started when the test ends, however it ends. The pip-installed `rerun`
/// is a Python launcher that runs the real binary as its child, so the server runs in its own
/// process group and the whole group is signalled.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on the loopback")
}

const WIDTH: u32 = 160;
const HEIGHT: u32 = 90;

/// The pixels sent at a step: red counts the pixels modulo 251, green is the step, blue the
/// step's square.
fn pixels(step: u64) -> RgbImage {
    let mut rgb = RgbImage::black(WIDTH, HEIGHT);
    for (i, px) in rgb.data.chunks_exact_mut(3).enumerate() {
        px[0] = (i % 251) as u8;
        px[1] = step as u8;
        px[2] = (step * step) as u8;
    }
    rgb
}

/// What the server saved, read back with rerun-sdk: per entity path, its rows, each with its
/// `step` and, for images, the size and the FNV-1a hash of the pixel bytes.
const READ_BACK: &str = r#"
import json, sys
from rerun.experimental import RrdReader

def fnv(chunks):
    h = 0xcbf29ce484222325
    for c in chunks:
        for b in c:
            h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h

out = {}
for chunk in RrdReader(sys.argv[1]).stream().to_chunks():
    batch = chunk.to_record_batch()
    names = batch.schema.names
    cols = {n: batch.column(n).to_pylist() for n in names if n in ("step", "Image:format", "Image:buffer")}
    rows = out.setdefault(chunk.entity_path.lstrip("/"), [])
    for i in range(batch.num_rows):
        row = {"step": cols["step"][i] if "step" in cols else None}
        fmt = cols.get("Image:format", [None] * batch.num_rows)[i]
        buf = cols.get("Image:buffer", [None] * batch.num_rows)[i]
        if fmt and buf is not None:
            f = fmt[0] if isinstance(fmt, list) else fmt
            row["width"], row["height"] = f["width"], f["height"]
            row["bytes"] = sum(len(b) for b in buf)
            row["hash"] = fnv(buf)
        rows.append(row)
print(json.dumps(out))
"#;

/// FNV-1a over bytes, as `READ_BACK` computes it.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Reads the server's `.rrd` back: entity path -> rows, or the reader's error (the server may be
/// writing the file's last message).
fn read_back(
    python: &Path,
    rrd: &Path,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let out = Command::new(python)
        .args(["-c", READ_BACK])
        .arg(rrd)
        .output()
        .expect("run the Python reader");
    if !out.status.success() {
        return Err(format!(
            "reading {} back failed:\n{}",
            rrd.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("the reader printed no JSON: {e}"))
}

/// The steps of the RGB frames received, each checked against what was sent for its step.
fn frames_received(entities: &serde_json::Map<String, serde_json::Value>) -> Vec<u64> {
    let path = paths::camera_layer("front", "rgb");
    let mut steps = Vec::new();
    for row in entities
        .get(&path)
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let Some(hash) = row["hash"].as_u64() else {
            continue;
        };
        let step = row["step"].as_u64().expect("a frame on the step timeline");
        assert_eq!(row["width"], WIDTH, "{row}");
        assert_eq!(row["height"], HEIGHT, "{row}");
        assert_eq!(row["bytes"], u64::from(WIDTH * HEIGHT * 3), "{row}");
        assert_eq!(
            hash,
            fnv(&pixels(step).data),
            "step {step}: other pixels than were sent"
        );
        steps.push(step);
    }
    steps.sort_unstable();
    steps
}

fn frame(step: u64) -> RecordEvent {
    let rgb = pixels(step);
    RecordEvent::Observation {
        step,
        label: "live".into(),
        observation: Arc::new(Observation {
            step,
            sim_time: None,
            cameras: vec![CameraFrame {
                name: "front".into(),
                rgb: Arc::new(rgb),
                depth: None,
                instances: None,
                intrinsics: None,
                world_from_camera: None,
            }],
            proprio: Default::default(),
            sim: None,
        }),
    }
}

#[test]
fn streams_to_a_running_grpc_server() {
    let Some(python) = tools::python() else {
        return;
    };
    let Some(rerun) = tools::rerun(Some(&python)) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let rrd = dir.path().join("received.rrd");
    let port = free_port();
    let child = Command::new(&rerun)
        .args([
            "--serve-grpc",
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--memory-limit",
            "200MB",
            "--save",
        ])
        .arg(&rrd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start rerun --serve-grpc --save");
    let server = Server(child);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the gRPC server did not listen on {addr}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let config = RecordingConfig {
        mode: RecordingMode::Connect,
        url: Some(format!("rerun+http://127.0.0.1:{port}/proxy")),
        flush_timeout: 30.0,
        ..RecordingConfig::default()
    };
    let rec = RerunRecorder::open(&config, "live-test").expect("connect");
    let frames = 20u64;
    for step in 0..frames {
        rec.record(frame(step));
        rec.record(RecordEvent::Timings {
            step,
            timings: StepTimings::default(),
        });
        std::thread::sleep(Duration::from_millis(20));
    }
    rec.flush()
        .expect("a running server acknowledges the flush");
    let stats = rec.stats();
    assert_eq!(stats.queued, 0, "{stats:?}");
    assert_eq!(stats.recorded + stats.dropped, 2 * frames, "{stats:?}");
    assert!(stats.recorded > 0, "{stats:?}");
    assert_eq!(rec.thread_stats().errors, 0);
    rec.close().expect("close");

    // Read back what the server saved; it writes as it receives, so wait for the frames.
    let wanted = if stats.dropped == 0 {
        frames as usize
    } else {
        1
    };
    let start = Instant::now();
    let (entities, received) = loop {
        let late = start.elapsed() > Duration::from_secs(30);
        match read_back(&python, &rrd) {
            Ok(entities) => {
                let received = frames_received(&entities);
                if received.len() >= wanted || late {
                    break (entities, received);
                }
            }
            Err(e) if late => panic!("{e}"),
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    drop(server);
    println!(
        "sent {frames} frames ({} events recorded, {} dropped); the server saved {} frames and \
         these entities: {:?}",
        stats.recorded,
        stats.dropped,
        received.len(),
        entities.keys().collect::<Vec<_>>()
    );
    let mut unique = received.clone();
    unique.dedup();
    assert_eq!(unique, received, "a frame arrived twice");
    assert!(received.iter().all(|s| *s < frames), "{received:?}");
    if stats.dropped == 0 {
        assert_eq!(received, (0..frames).collect::<Vec<_>>(), "frames lost");
    } else {
        assert!(!received.is_empty(), "no frame arrived");
    }
    // The timings went through too: some entity under `timings` has rows on the step timeline.
    let timing_steps: std::collections::BTreeSet<u64> = entities
        .iter()
        .filter(|(path, _)| path.starts_with(paths::TIMINGS))
        .flat_map(|(_, rows)| rows.as_array().unwrap().iter())
        .filter_map(|r| r["step"].as_u64())
        .collect();
    if stats.dropped == 0 {
        assert_eq!(
            timing_steps,
            (0..frames).collect(),
            "timings lost: {:?}",
            entities.keys().collect::<Vec<_>>()
        );
    } else {
        assert!(!timing_steps.is_empty());
    }
}
