//! `ember sim serve` as a real process: a client survives the server being KILLED (SIGKILL)
//! and restarted on the same endpoint, and Ctrl-C (SIGINT) stops the server cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use ember_sim_bridge::protocol::ErrorCode;
use ember_sim_bridge::{BridgeError, Client, ClientOptions, InitSettings};
use serde_json::{Map, Value, json};

/// The server process; killed when the test ends, however it ends.
struct Served {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(endpoint: &str) -> (Served, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(["--log", "warn", "sim", "serve", "--endpoint", endpoint])
        .args(["--width", "64", "--height", "48"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start ember sim serve");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let served = Served { child, lines: rx };
    let first = served
        .lines
        .recv_timeout(Duration::from_secs(60))
        .expect("ember sim serve announces its endpoint");
    let bound = first
        .split(" on ")
        .nth(1)
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_string();
    assert!(first.contains("ember-sim/1"), "{first}");
    (served, bound)
}

/// A loopback port that is free now (the OS picks it; we release it for the server).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn action(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

#[test]
fn the_client_reconnects_after_the_server_is_killed_and_restarted() {
    let endpoint = format!("tcp://127.0.0.1:{}", free_port());
    let (server, bound) = start(&endpoint);
    assert_eq!(bound, endpoint);
    let options = ClientOptions {
        timeout: Duration::from_secs(60),
        ..ClientOptions::default()
    };
    let mut client = Client::connect(&endpoint, options).expect("connect");
    // The server's defaults (64x48 from the command line) fill what the reset leaves out.
    let ev = client.reset_with("FloorPlan5", Map::new()).expect("reset");
    let rgb = ev.frames.rgb.expect("rgb");
    assert_eq!((rgb.width, rgb.height), (64, 48));
    client
        .step(&action(json!({"action": "MoveAhead"})))
        .expect("step");

    // SIGKILL: no goodbye, no cleanup.
    drop(server);

    client.set_timeout(Duration::from_millis(500));
    let err = client.ping().unwrap_err();
    assert!(matches!(err, BridgeError::Timeout { .. }), "{err:?}");
    assert!(err.to_string().contains(&endpoint), "{err}");

    let (_server, bound) = start(&endpoint);
    assert_eq!(bound, endpoint);
    client.set_timeout(Duration::from_secs(60));
    client
        .ping()
        .expect("the same client reaches the restarted server");
    let err = client
        .step(&action(json!({"action": "MoveAhead"})))
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(ErrorCode::NoScene),
        "a fresh server: {err}"
    );
    let settings = InitSettings {
        width: 32,
        height: 24,
        ..InitSettings::default()
    };
    client
        .reset("FloorPlan5", &settings)
        .expect("reset after restart");
    let ev = client
        .step(&action(json!({"action": "RotateRight"})))
        .expect("step after restart");
    assert!(ev.metadata.last_action_success);
}

#[test]
fn ctrl_c_stops_the_server_cleanly() {
    let (mut server, bound) = start("tcp://127.0.0.1:*");
    assert!(bound.starts_with("tcp://127.0.0.1:"), "{bound}");
    let mut client = Client::connect(&bound, ClientOptions::default()).expect("connect");
    client.ping().unwrap();
    let status = Command::new("kill")
        .args(["-INT", &server.child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let mut exited = None;
    for _ in 0..200 {
        if let Ok(Some(s)) = server.child.try_wait() {
            exited = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = exited.expect("the server exits after Ctrl-C");
    assert!(status.success(), "clean exit: {status:?}");
    let last = server
        .lines
        .recv_timeout(Duration::from_secs(5))
        .expect("a closing line");
    assert!(last.contains("stopped after"), "{last}");
}

#[test]
fn log_lines_on_a_piped_stderr_carry_no_colour_codes() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ember"))
        .args([
            "--log",
            "info",
            "sim",
            "serve",
            "--endpoint",
            "tcp://127.0.0.1:*",
        ])
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ember sim serve");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("the endpoint line");
    let bound = first
        .trim()
        .split(" on ")
        .nth(1)
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_string();
    let mut client = Client::connect(&bound, ClientOptions::default()).expect("connect");
    client.close_server().expect("close");
    let out = child.wait_with_output().expect("ember sim serve exits");
    assert!(out.status.success(), "{:?}", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sim bridge server listening"), "{stderr}");
    assert!(
        !out.stderr.contains(&0x1b),
        "a piped stderr gets no ANSI escape codes: {stderr:?}"
    );
}
