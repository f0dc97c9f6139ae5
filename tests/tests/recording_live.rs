//! Live recording (`mode = "connect"`) to a real Rerun gRPC server (`rerun --serve-grpc`, the
//! viewer binary without a window): the recorder connects, streams camera frames and text,
//! flushes, and never blocks the loop; whatever it could not send in time it counts as dropped.
//!
//! Needs the Rerun 0.36.3 binary (`EMBER_RERUN`, see `ember_tests::tools`); under `CI=true` a
//! missing binary fails the test, otherwise it is skipped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ember_agent::observation::{CameraFrame, Observation, RgbImage};
use ember_agent::recorder::{RecordEvent, Recorder, StepTimings};
use ember_agent::recording::{RecordingConfig, RecordingMode, RerunRecorder};
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

fn frame(step: u64) -> RecordEvent {
    let mut rgb = RgbImage::black(160, 90);
    for (i, px) in rgb.data.chunks_exact_mut(3).enumerate() {
        px[0] = (i % 251) as u8;
        px[1] = step as u8;
    }
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
    let python = tools::python();
    let Some(rerun) = tools::rerun(python.as_deref()) else {
        return;
    };
    let port = free_port();
    let child = Command::new(&rerun)
        .args([
            "--serve-grpc",
            "--port",
            &port.to_string(),
            "--memory-limit",
            "200MB",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start rerun --serve-grpc");
    let _server = Server(child);
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
    let sent = 40u64;
    for step in 0..sent / 2 {
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
    assert_eq!(stats.recorded + stats.dropped, sent, "{stats:?}");
    assert!(stats.recorded > 0, "{stats:?}");
    assert_eq!(rec.thread_stats().errors, 0);
    rec.close().expect("close");
}
