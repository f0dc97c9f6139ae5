//! `python/thor_bridge.py` (the server in front of real AI2-THOR) speaks the protocol.
//!
//! Uses the Python in `$EMBER_PYTHON` (a virtual environment with
//! `sim_bridge/python/requirements.txt` installed), else `python3` on the PATH. Without one
//! that imports zmq, numpy and ai2thor the test prints `SKIPPED: <test>: <reason>` and passes,
//! except under CI (`CI=true`), where a missing or unusable Python fails it.
//! The Unity player cannot run here, so `reset` must come back as an error reply that names
//! the missing player, and the server must keep serving.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{assert_serving, expect_error, header, malformed_suite};
use ember_sim_bridge::protocol::ErrorCode;
use ember_sim_bridge::{BridgeError, Client, ClientOptions, InitSettings, PROTOCOL_VERSION};
use serde_json::json;

fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python")
}

/// The Python to use, or `None` (after printing why) when the test should be skipped.
fn python() -> Option<String> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let (py, name) = match std::env::var("EMBER_PYTHON") {
        Ok(py) => (py.clone(), format!("EMBER_PYTHON={py}")),
        Err(_) => (
            "python3".to_string(),
            "python3 (EMBER_PYTHON is not set)".to_string(),
        ),
    };
    let probe = Command::new(&py)
        .args(["-c", "import zmq, numpy, ai2thor; print(ai2thor.__file__)"])
        .output();
    let problem = match probe {
        Ok(out) if out.status.success() => return Some(py),
        Ok(out) => format!(
            "{name} cannot import zmq, numpy and ai2thor: {}",
            // The traceback's last line names the module.
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .lines()
                .next_back()
                .unwrap_or("")
        ),
        Err(e) => format!("{name} does not run: {e}"),
    };
    let fix = "create it with: python3 -m venv VENV && VENV/bin/pip install -r \
               sim_bridge/python/requirements.txt, then set EMBER_PYTHON=VENV/bin/python";
    if ci {
        panic!("CI=true but the Python bridge cannot be tested: {problem}; {fix}");
    }
    // Straight to stderr, past the test harness's capture, so a plain `cargo test` shows it.
    use std::io::Write;
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED: {test}: {problem}; {fix}"
    );
    None
}

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(py: &str) -> (Server, String) {
    let mut child = Command::new(py)
        .arg(python_dir().join("thor_bridge.py"))
        .args(["--endpoint", "tcp://127.0.0.1:*", "--log-level", "WARNING"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start thor_bridge.py");
    let stdout = child.stdout.take().expect("stdout");
    let server = Server(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(ep) =
                line.strip_prefix(&format!("thor_bridge: serving {PROTOCOL_VERSION} on "))
            {
                let _ = tx.send(ep.to_string());
            }
        }
    });
    let endpoint = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("thor_bridge.py prints the endpoint it serves on");
    (server, endpoint)
}

#[test]
fn python_bridge_speaks_the_protocol_and_survives_a_missing_player() {
    let Some(py) = python() else { return };

    // Its own unit tests (codec, frame conversion through ai2thor's Event).
    let unit = Command::new(&py)
        .args(["-m", "unittest", "discover", "-s"])
        .arg(python_dir())
        .args(["-p", "test_*.py"])
        .output()
        .expect("run the Python unit tests");
    assert!(
        unit.status.success(),
        "thor_bridge.py unit tests failed:\n{}",
        String::from_utf8_lossy(&unit.stderr)
    );

    // --help works and says what it is.
    let help = Command::new(&py)
        .arg(python_dir().join("thor_bridge.py"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--endpoint") && help.contains("--local-executable-path"),
        "{help}"
    );

    let (_server, endpoint) = start_server(&py);
    let options = ClientOptions {
        timeout: Duration::from_secs(120),
        ..ClientOptions::default()
    };
    let mut client = Client::connect(&endpoint, options).expect("connect and check the version");
    let info = client.server_info().unwrap().clone();
    assert_eq!(info.protocol, PROTOCOL_VERSION);
    assert_eq!(info.server, "thor_bridge.py");
    assert_eq!(info.simulator.name, "ai2thor");
    assert_eq!(info.simulator.version, "5.0.0");
    assert_eq!(info.defaults["width"], 300);
    client.ping().unwrap();

    malformed_suite(&endpoint);

    // Before a reset, steps are refused (an unknown action cannot be told apart without the
    // player, whose action list is not in the Python package).
    let e = client
        .step(&json!({"action": "MoveAhead"}).as_object().unwrap().clone())
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NoScene), "{e}");
    expect_error(
        &endpoint,
        "an unknown action before any scene",
        &[header(json!({"kind": "step", "action": {"action": "Fly"}}))],
        "no_scene",
        None,
    );

    // The player cannot be downloaded here: the reset is an error reply that names it.
    let settings = InitSettings {
        width: 64,
        height: 48,
        ..InitSettings::default()
    };
    let e = client.reset("FloorPlan5", &settings).unwrap_err();
    let BridgeError::Refused { error, .. } = &e else {
        panic!("expected an error reply, got {e:?}");
    };
    assert_eq!(error.code, ErrorCode::SimFailure, "{e}");
    assert!(
        error.message.contains("AI2-THOR player") && error.message.contains("no build exists"),
        "names the missing player: {}",
        error.message
    );
    assert!(e.to_string().contains(&endpoint));
    // ... and it keeps serving.
    assert_serving(&endpoint, "a failed player start");
    client.ping().unwrap();
    let info = client.info().unwrap();
    assert_eq!(info.protocol, PROTOCOL_VERSION);

    // A close request stops it.
    client.close_server().unwrap();
    let mut child = _server;
    let status = wait_for_exit(&mut child.0, Duration::from_secs(20));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "thor_bridge.py exits 0 after close"
    );
}

fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}
