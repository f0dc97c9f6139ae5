//! `ember bench ...`: end-to-end figures, each reproducible from its command line.
//!
//! - `ember bench sim`: simulator steps per second over the bridge (tcp) and in process
//!   (inproc), thor-lite's own time per frame, and the bridge's overhead.
//! - `ember bench loop` (in `bench_loop.rs`): the event loop's own cost per step and
//!   evaluation throughput in cases per minute.
//! - `ember bench recorder` (in `bench_recorder.rs`): the Rerun recorder's cost.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use ember_sim_bridge::protocol::PROTOCOL_VERSION;
use ember_sim_bridge::thor::ThorLite;
use ember_sim_bridge::{Client, ClientOptions, InitSettings, Server, ServerConfig, SimEvent};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{Map, Value, json};

/// The `bench` command family.
#[derive(Debug, Subcommand)]
pub enum Bench {
    /// Simulator steps per second over the bridge (tcp) and in process (inproc), thor-lite's
    /// time per frame, and the bridge overhead (1 - inproc time / tcp time per step).
    ///
    /// thor-lite serves on a thread of this process over loopback tcp; the client steps it
    /// with a seeded mix of moves, turns, looks up and down, pickups, puts, opens and closes,
    /// the same mix on both transports. For the one-core figure, pin the process:
    /// `taskset -c 0 ember bench sim`.
    Sim(BenchSimArgs),
    /// The event loop's own cost per step (outside policy and world) with the oracle on
    /// in-process thor-lite, and a whole evaluation's throughput in cases per minute.
    Loop(crate::bench_loop::BenchLoopArgs),
    /// The Rerun recorder: loop-thread cost per step, recorder-thread throughput, bytes per
    /// step in the .rrd, and peak memory over a long run (see `bench_recorder.rs`).
    Recorder(crate::bench_recorder::RecorderBenchArgs),
    /// The Qwen2-VL port with the real 2B shape and random weights (no download): vision,
    /// prefill and decode times, peak memory, and the fraction of the memory-bandwidth bound
    /// that decoding reaches. Compare with models/scripts/bench_torch.py (same weights).
    Model(crate::bench_model::BenchModelArgs),
}

/// Options of `ember bench sim`.
#[derive(Debug, Args)]
pub struct BenchSimArgs {
    /// Frame width in pixels.
    #[arg(long, default_value_t = 800)]
    pub width: u32,
    /// Frame height in pixels.
    #[arg(long, default_value_t = 450)]
    pub height: u32,
    /// Leave depth out (RGB and metadata only).
    #[arg(long)]
    pub no_depth: bool,
    /// The scene (any of `ember sim scenes`; the default is not an evaluation scene).
    #[arg(long, default_value = "FloorPlan5")]
    pub scene: String,
    /// Timed steps per run.
    #[arg(long, default_value_t = 300)]
    pub steps: usize,
    /// Runs per transport; the figures are medians over runs.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Untimed steps after each reset.
    #[arg(long, default_value_t = 20)]
    pub warmup: usize,
    /// Seed of the action mix (run r uses seed + r, the same on every transport).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Runs a `bench` subcommand.
pub fn run(cmd: Bench) -> Result<()> {
    match cmd {
        Bench::Sim(a) => bench_sim(a),
        Bench::Loop(a) => crate::bench_loop::run(a),
        Bench::Recorder(a) => crate::bench_recorder::run(a),
        Bench::Model(a) => crate::bench_model::run(&a),
    }
}

/// Figures of one transport.
#[derive(Debug, Serialize)]
struct TransportFigures {
    /// Median steps per second over runs.
    steps_per_s_median: f64,
    /// Median milliseconds per step over runs.
    ms_per_step_median: f64,
    /// Steps per second of each run.
    steps_per_s_runs: Vec<f64>,
}

impl TransportFigures {
    fn from_runs(seconds_per_run: &[f64], steps: usize) -> Self {
        let rates: Vec<f64> = seconds_per_run.iter().map(|s| steps as f64 / s).collect();
        let ms: Vec<f64> = seconds_per_run
            .iter()
            .map(|s| s * 1000.0 / steps as f64)
            .collect();
        Self {
            steps_per_s_median: median(&rates),
            ms_per_step_median: median(&ms),
            steps_per_s_runs: rates,
        }
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// The action mix: moves, rotations, looking up and down, and now and then a pickup, a put,
/// an open or a close of an object in view. Chosen from the last metadata, so a seed gives the
/// same sequence on every transport.
fn next_action(rng: &mut ChaCha8Rng, last: &SimEvent) -> Map<String, Value> {
    let meta = &last.metadata;
    let roll = rng.random_range(0..100u32);
    let pick = rng.random::<u64>();
    let visible = |pred: &dyn Fn(&ember_agent::thor::ObjectMeta) -> bool| -> Option<String> {
        let ids: Vec<&str> = meta
            .objects
            .iter()
            .filter(|o| o.visible && pred(o))
            .map(|o| o.object_id.as_str())
            .collect();
        if ids.is_empty() {
            None
        } else {
            Some(ids[(pick % ids.len() as u64) as usize].to_string())
        }
    };
    let a = match roll {
        0..30 => json!({"action": "MoveAhead"}),
        30..40 => json!({"action": "RotateLeft"}),
        40..50 => json!({"action": "RotateRight"}),
        50..57 => json!({"action": "LookUp"}),
        57..64 => json!({"action": "LookDown"}),
        64..69 => json!({"action": "MoveBack"}),
        69..74 => json!({"action": "MoveLeft"}),
        74..79 => json!({"action": "MoveRight"}),
        79..87 => match visible(&|o| o.pickupable) {
            Some(id) => json!({"action": "PickupObject", "objectId": id}),
            None => json!({"action": "MoveAhead"}),
        },
        87..90 => match visible(&|o| o.receptacle) {
            Some(id) if !meta.inventory_objects.is_empty() => {
                json!({"action": "PutObject", "objectId": id})
            }
            _ => json!({"action": "RotateRight"}),
        },
        90..95 => match visible(&|o| o.openable && !o.is_open) {
            Some(id) => json!({"action": "OpenObject", "objectId": id}),
            None => json!({"action": "RotateLeft"}),
        },
        _ => match visible(&|o| o.openable && o.is_open) {
            Some(id) => json!({"action": "CloseObject", "objectId": id}),
            None => json!({"action": "MoveAhead"}),
        },
    };
    match a {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// One run: reset, warm up, then time `steps` steps. Returns the timed seconds and the
/// number of actions that succeeded.
fn timed_run(
    client: &mut Client,
    a: &BenchSimArgs,
    settings: &InitSettings,
    seed: u64,
    bar: &ProgressBar,
) -> Result<(f64, usize)> {
    let endpoint = client.endpoint().to_string();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut last = client
        .reset(&a.scene, settings)
        .with_context(|| format!("{endpoint}: reset {}", a.scene))?;
    for _ in 0..a.warmup {
        let act = next_action(&mut rng, &last);
        last = client.step(&act)?;
        bar.inc(1);
    }
    let mut ok = 0;
    let started = Instant::now();
    for _ in 0..a.steps {
        let act = next_action(&mut rng, &last);
        last = client.step(&act)?;
        if last.metadata.last_action_success {
            ok += 1;
        }
        bar.inc(1);
    }
    Ok((started.elapsed().as_secs_f64(), ok))
}

fn bench_sim(a: BenchSimArgs) -> Result<()> {
    if a.steps == 0 || a.runs == 0 {
        bail!("--steps and --runs must be at least 1");
    }
    let settings = InitSettings {
        width: a.width,
        height: a.height,
        render_depth_image: !a.no_depth,
        render_instance_segmentation: false,
        ..InitSettings::default()
    };
    // The server: thor-lite on a thread of its own in this process, over loopback tcp.
    let server = Server::bind(
        "tcp://127.0.0.1:*",
        Box::new(ThorLite::new()),
        ServerConfig {
            defaults: settings.clone(),
            ..ServerConfig::default()
        },
    )?
    .spawn()?;
    let options = ClientOptions {
        timeout: Duration::from_secs(120),
        ..ClientOptions::default()
    };
    let mut tcp = Client::connect(server.endpoint(), options)?;
    let mut inproc = Client::connect("inproc://thor-lite", options)?;

    let per_run = (a.warmup + a.steps) as u64;
    let frame_samples = a.steps.min(100);
    let bar = ProgressBar::new(per_run * a.runs as u64 * 2 + frame_samples as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>8} [{bar:40}] {pos}/{len} steps ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let mut secs = [Vec::new(), Vec::new()];
    let mut successes = [0usize, 0usize];
    for r in 0..a.runs {
        // Alternate which transport goes first, so drift does not favour one.
        let order: [usize; 2] = if r % 2 == 0 { [0, 1] } else { [1, 0] };
        for t in order {
            let client = if t == 0 { &mut inproc } else { &mut tcp };
            bar.set_prefix(if t == 0 { "inproc" } else { "tcp" });
            let (s, ok) = timed_run(client, &a, &settings, a.seed + r as u64, &bar)?;
            secs[t].push(s);
            successes[t] += ok;
        }
    }
    if successes[0] != successes[1] {
        bail!(
            "the transports disagree: {} vs {} successful actions for the same seeds",
            successes[0],
            successes[1]
        );
    }

    // thor-lite's own time per frame: Pass (re-render and metadata, no state change), in
    // process.
    bar.set_prefix("frame");
    let mut sim = ThorLite::new();
    use ember_sim_bridge::Simulator;
    let ev = sim
        .reset(&a.scene, &settings)
        .with_context(|| format!("reset {}", a.scene))?;
    let pass = match json!({"action": "Pass"}) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let mut frame_ms = Vec::with_capacity(frame_samples);
    for _ in 0..frame_samples {
        let t0 = Instant::now();
        let e = sim.step(&pass)?;
        frame_ms.push(t0.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(e);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let metadata_bytes = serde_json::to_vec(&ev.metadata)?.len();
    let frame_bytes = ev.frames.rgb.as_ref().map_or(0, |f| f.data.len())
        + ev.frames.depth.as_ref().map_or(0, |f| f.data.len() * 4);
    drop(tcp);
    server.stop()?;

    let inproc_f = TransportFigures::from_runs(&secs[0], a.steps);
    let tcp_f = TransportFigures::from_runs(&secs[1], a.steps);
    let frame_ms_median = median(&frame_ms);
    let overhead = 1.0 - inproc_f.ms_per_step_median / tcp_f.ms_per_step_median;
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let frames = if a.no_depth { "RGB" } else { "RGB + depth" };

    println!(
        "ember bench sim: {} at {}x{}, {frames} + metadata, {} runs x {} steps ({} build)",
        a.scene, a.width, a.height, a.runs, a.steps, build
    );
    println!(
        "server: thor-lite on its own thread in this process, {PROTOCOL_VERSION} over loopback tcp"
    );
    println!(
        "reply size: {:.2} MB of frames + {:.0} kB of metadata JSON per step\n",
        frame_bytes as f64 / 1e6,
        metadata_bytes as f64 / 1e3
    );
    println!(
        "{:<34} {:>12} {:>12} {:>22}",
        "", "steps/s", "ms/step", "runs (steps/s)"
    );
    for (name, f) in [
        ("inproc (direct call)", &inproc_f),
        ("tcp (ZeroMQ bridge)", &tcp_f),
    ] {
        let runs: Vec<String> = f
            .steps_per_s_runs
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect();
        println!(
            "{:<34} {:>12.1} {:>12.3} {:>22}",
            name,
            f.steps_per_s_median,
            f.ms_per_step_median,
            runs.join(" ")
        );
    }
    println!(
        "{:<34} {:>12.1} {:>12.3}",
        "thor-lite frame (Pass, in process)",
        1000.0 / frame_ms_median,
        frame_ms_median
    );
    println!(
        "\nbridge overhead (1 - inproc/tcp time per step): {:.1}%",
        overhead * 100.0
    );
    println!(
        "successful actions: {} of {} per transport",
        successes[0],
        a.steps * a.runs
    );

    if let Some(path) = &a.json {
        let out = json!({
            "benchmark": "sim",
            "build": build,
            "protocol": PROTOCOL_VERSION,
            "scene": a.scene,
            "width": a.width,
            "height": a.height,
            "depth": !a.no_depth,
            "metadata": true,
            "steps": a.steps,
            "runs": a.runs,
            "warmup": a.warmup,
            "seed": a.seed,
            "server": "thor-lite on its own thread in the benchmark process, loopback tcp",
            "reply_frame_bytes": frame_bytes,
            "reply_metadata_bytes": metadata_bytes,
            "inproc": inproc_f,
            "tcp": tcp_f,
            "thor_lite_frame_ms_median": frame_ms_median,
            "bridge_overhead": overhead,
            "successful_actions_per_transport": successes[0],
        });
        std::fs::write(path, serde_json::to_vec_pretty(&out)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        let f = TransportFigures::from_runs(&[1.0, 2.0, 0.5], 100);
        assert_eq!(f.steps_per_s_median, 100.0);
        assert_eq!(f.ms_per_step_median, 10.0);
    }

    #[test]
    fn the_action_mix_is_seeded_and_varied() {
        let ev = SimEvent::default();
        let names = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..200)
                .map(|_| {
                    next_action(&mut rng, &ev)["action"]
                        .as_str()
                        .unwrap_or("")
                        .to_string()
                })
                .collect::<Vec<_>>()
        };
        let a = names(1);
        assert_eq!(a, names(1));
        for kind in [
            "MoveAhead",
            "RotateLeft",
            "RotateRight",
            "LookUp",
            "LookDown",
            "MoveBack",
        ] {
            assert!(a.iter().any(|n| n == kind), "{kind} in the mix");
        }
    }
}
