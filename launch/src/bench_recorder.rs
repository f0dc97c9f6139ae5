//! `ember bench recorder`: what recording every step to Rerun costs.
//!
//! Realistic observations: thor-lite renders a short walk through a training kitchen
//! (FloorPlan5 by default) at 800x450 with depth, instance segmentation and full AI2-THOR
//! metadata; the bench then cycles through those frames, sending per step the events the loop
//! sends (prompt, decision, action, observation, feedback, timings, memory, metrics).
//!
//! Three phases, each reported as figures:
//! 1. loop thread: the steps are paced at the measured thor-lite step time (a zero-cost policy,
//!    the most demanding realistic case) and the time spent inside `Recorder::record` is
//!    measured, per step and as a share of the step; the file's bytes per step too;
//! 2. recorder thread: the same steps unpaced, to a file; end-to-end throughput (steps per
//!    second until everything is flushed) and the recorder thread's busy time per step;
//! 3. memory: a long unpaced run (10,000 steps by default, to `/dev/null` unless `--keep`),
//!    sampling the resident set; reports the peak (VmHWM) and the resident set along the run,
//!    which stays flat when memory is bounded.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use ember_agent::observation::Observation;
use ember_agent::policy::{Decision, DecisionTimings, EpisodeInfo, Feedback, FeedbackKind};
use ember_agent::recorder::{RecordEvent, Recorder, StepTimings};
use ember_agent::recording::{RecordingConfig, RerunRecorder};
use ember_agent::world::WorldInfo;
use ember_agent::{Action, DiscreteAction, Verb};
use ember_sim_bridge::thor::ThorLite;
use ember_sim_bridge::world::observation_from_event;
use ember_sim_bridge::{InitSettings, SimEvent, Simulator};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};

/// `ember bench recorder`.
#[derive(Debug, Args)]
pub struct RecorderBenchArgs {
    /// Steps of the long (memory) run.
    #[arg(long, default_value_t = 10_000)]
    pub steps: u64,
    /// Steps of the paced (loop-thread) and throughput runs.
    #[arg(long, default_value_t = 200)]
    pub short_steps: u64,
    /// Image width.
    #[arg(long, default_value_t = 800)]
    pub width: u32,
    /// Image height.
    #[arg(long, default_value_t = 450)]
    pub height: u32,
    /// The thor-lite scene to render (a training scene).
    #[arg(long, default_value = "FloorPlan5")]
    pub scene: String,
    /// Distinct frames to render and cycle through.
    #[arg(long, default_value_t = 16)]
    pub frames: usize,
    /// Record colour as JPEG with this quality instead of lossless.
    #[arg(long)]
    pub jpeg_quality: Option<u8>,
    /// Write the .rrd footer (the chunk index Rerun keeps in memory until the file closes).
    #[arg(long)]
    pub footer: bool,
    /// Keep the recordings in this folder (default: a temporary folder; the long run goes to
    /// /dev/null unless this is given).
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
    /// Write the figures as JSON to this file too.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// The resident set now and its peak, bytes (Linux `/proc/self/status`).
fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Renders the frames; returns them and the mean thor-lite step time.
fn render(a: &RecorderBenchArgs) -> Result<(Vec<Arc<Observation>>, f64)> {
    let settings = InitSettings {
        width: a.width,
        height: a.height,
        field_of_view: 90.0,
        render_depth_image: true,
        render_instance_segmentation: true,
        ..InitSettings::default()
    };
    let mut sim = ThorLite::new();
    let ev = sim
        .reset(&a.scene, &settings)
        .with_context(|| format!("loading {}", a.scene))?;
    let observe = |ev: SimEvent, step: u64| -> Result<Arc<Observation>> {
        observation_from_event(ev, &settings, step)
            .map(Arc::new)
            .map_err(|e| anyhow::anyhow!("thor-lite frame {step}: {e}"))
    };
    let mut frames = vec![observe(ev, 0)?];
    let walk = [
        "MoveAhead",
        "RotateRight",
        "MoveAhead",
        "LookDown",
        "RotateLeft",
        "MoveAhead",
        "LookUp",
        "RotateLeft",
    ];
    let mut sim_time = 0.0;
    let mut sim_steps = 0u32;
    while frames.len() < a.frames.max(1) {
        let mut act = Map::new();
        act.insert(
            "action".into(),
            Value::String(walk[sim_steps as usize % walk.len()].into()),
        );
        let t0 = Instant::now();
        let ev = sim
            .step(&act)
            .with_context(|| format!("thor-lite step {act:?}"))?;
        sim_time += t0.elapsed().as_secs_f64();
        sim_steps += 1;
        frames.push(observe(ev, frames.len() as u64)?);
    }
    let step_time = if sim_steps > 0 {
        sim_time / sim_steps as f64
    } else {
        0.05
    };
    Ok((frames, step_time))
}

/// Sends one step's events; returns the seconds spent inside `record`.
fn send_step(rec: &dyn Recorder, frames: &[Arc<Observation>], step: u64) -> f64 {
    let obs = frames[step as usize % frames.len()].clone();
    let thought = format!("Step {step}: the mug should be on the counter; I will look there next.");
    let raw = format!(
        "<Thinking>{thought}</Thinking><DecisionMaking>navigate to CounterTop</DecisionMaking>"
    );
    let events = [
        RecordEvent::Prompt {
            step,
            text: format!(
                "<image> Step {step}. What do you do next? Choose one of: navigate to X, pickup X, put X, observe, end."
            ),
        },
        RecordEvent::Decision {
            step,
            decision: Decision {
                raw,
                thought,
                action: None,
                timings: DecisionTimings {
                    total: 1.0,
                    vision: 0.2,
                    prefill: 0.3,
                    decode: 0.5,
                    prompt_tokens: 1200,
                    generated_tokens: 80,
                },
            },
        },
        RecordEvent::Action {
            step,
            action: Some(Action::Discrete(DiscreteAction::on(
                Verb::NavigateTo,
                "CounterTop",
            ))),
            text: "navigate to CounterTop".into(),
        },
        RecordEvent::Observation {
            step: step + 1,
            label: "navigate to CounterTop".into(),
            observation: obs,
        },
        RecordEvent::Feedback {
            step,
            feedback: Feedback {
                success: step % 7 != 3,
                kind: if step % 7 != 3 {
                    FeedbackKind::Executed
                } else {
                    FeedbackKind::Failed
                },
                message: "navigated".into(),
            },
        },
        RecordEvent::Timings {
            step,
            timings: StepTimings {
                step: 1.1,
                policy: 1.0,
                world: 0.05,
                executor: 0.001,
                memory: 0.001,
                recorder: 0.0001,
            },
        },
        RecordEvent::Memory {
            step,
            images: (step as usize % 8) + 1,
            tokens: 1200,
        },
        RecordEvent::Metrics {
            step,
            values: vec![
                ("success".into(), 0.0),
                ("efficiency".into(), 0.5),
                ("completeness".into(), 0.25),
            ],
        },
    ];
    let mut spent = 0.0;
    for ev in events {
        let t0 = Instant::now();
        rec.record(ev);
        spent += t0.elapsed().as_secs_f64();
    }
    spent
}

fn start_episode(rec: &dyn Recorder, scene: &str) {
    rec.record(RecordEvent::EpisodeStart {
        episode: EpisodeInfo {
            index: 0,
            id: "bench".into(),
            scene: Some(scene.to_string()),
            instruction: "Put the mug in the sink.".into(),
            task_type: None,
            seed: 0,
        },
        world: WorldInfo {
            kind: "thor-lite".into(),
            endpoint: "inproc".into(),
            cameras: vec!["front".into()],
        },
        policy: ember_agent::PolicyInfo {
            name: "bench".into(),
            privileged: false,
        },
    });
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:40}] {pos}/{len} steps ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

fn config(path: PathBuf, jpeg: Option<u8>, footer: bool) -> RecordingConfig {
    RecordingConfig {
        jpeg_quality: jpeg,
        footer,
        ..RecordingConfig::file(path)
    }
}

/// Runs the benchmark.
pub fn run(a: RecorderBenchArgs) -> Result<()> {
    if a.short_steps == 0 || a.steps == 0 || a.frames == 0 {
        bail!("--steps, --short-steps and --frames must be at least 1");
    }
    let tmp = tempfile::tempdir().context("creating a temporary folder")?;
    let dir = match &a.keep {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.clone()
        }
        None => tmp.path().to_path_buf(),
    };
    eprintln!(
        "rendering {} frames of {} at {}x{} (RGB, depth, segmentation, metadata)...",
        a.frames, a.scene, a.width, a.height
    );
    let (frames, step_time) = render(&a)?;
    let objects = frames[0].sim.as_ref().map(|m| m.objects.len()).unwrap_or(0);

    // 1. Loop thread, paced at the thor-lite step time.
    let paced_path = dir.join("paced.rrd");
    let rec = RerunRecorder::open(
        &config(paced_path.clone(), a.jpeg_quality, a.footer),
        "bench-paced",
    )?;
    start_episode(&rec, &a.scene);
    let pb = bar(a.short_steps, "loop thread");
    let mut loop_costs = Vec::with_capacity(a.short_steps as usize);
    let pace = Duration::from_secs_f64(step_time);
    for step in 0..a.short_steps {
        let t0 = Instant::now();
        loop_costs.push(send_step(&rec, &frames, step));
        if let Some(rest) = pace.checked_sub(t0.elapsed()) {
            std::thread::sleep(rest);
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    rec.flush()?;
    let paced_stats = rec.stats();
    rec.close()?;
    drop(rec);
    let bytes = std::fs::metadata(&paced_path).map(|m| m.len()).unwrap_or(0);
    loop_costs.sort_by(f64::total_cmp);
    let mean_loop = loop_costs.iter().sum::<f64>() / loop_costs.len() as f64;
    let p50_loop = loop_costs[loop_costs.len() / 2];
    let p99_loop =
        loop_costs[((loop_costs.len() as f64 * 0.99) as usize).min(loop_costs.len() - 1)];

    // 2. Recorder thread, unpaced.
    let rec = RerunRecorder::open(
        &config(dir.join("throughput.rrd"), a.jpeg_quality, a.footer),
        "bench-throughput",
    )?;
    start_episode(&rec, &a.scene);
    let pb = bar(a.short_steps, "throughput");
    let t0 = Instant::now();
    for step in 0..a.short_steps {
        send_step(&rec, &frames, step);
        pb.inc(1);
    }
    rec.flush()?;
    let wall = t0.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let thread = rec.thread_stats();
    rec.close()?;
    drop(rec);

    // 3. Long run, memory.
    let long_path = match &a.keep {
        Some(d) => d.join("long.rrd"),
        None => PathBuf::from("/dev/null"),
    };
    let (rss_before, _) = rss();
    let rec = RerunRecorder::open(
        &config(long_path.clone(), a.jpeg_quality, a.footer),
        "bench-long",
    )?;
    start_episode(&rec, &a.scene);
    let pb = bar(a.steps, "memory");
    let mut samples = Vec::new();
    let every = (a.steps / 20).max(1);
    let t0 = Instant::now();
    for step in 0..a.steps {
        send_step(&rec, &frames, step);
        if (step + 1) % every == 0 {
            samples.push((step + 1, rss().0));
        }
        pb.inc(1);
    }
    rec.flush()?;
    let long_wall = t0.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let long_stats = rec.stats();
    rec.close()?;
    drop(rec);
    let (_, peak) = rss();

    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let first = samples.first().map(|s| s.1).unwrap_or(0);
    let last = samples.last().map(|s| s.1).unwrap_or(0);
    let max_sample = samples.iter().map(|s| s.1).max().unwrap_or(0);
    println!(
        "ember bench recorder: {} at {}x{}, {} objects, {} distinct frames, {}",
        a.scene,
        a.width,
        a.height,
        objects,
        frames.len(),
        match a.jpeg_quality {
            Some(q) => format!("JPEG q{q} colour"),
            None => "lossless colour".into(),
        }
    );
    println!(
        "  thor-lite step (render RGB+depth+segmentation): {:.2} ms",
        step_time * 1e3
    );
    println!(
        "  loop thread:   {:.1} us/step mean, {:.1} us median, {:.1} us p99; mean = {:.2}% of the thor-lite step ({} steps, {} dropped)",
        mean_loop * 1e6,
        p50_loop * 1e6,
        p99_loop * 1e6,
        100.0 * mean_loop / step_time,
        a.short_steps,
        paced_stats.dropped
    );
    println!(
        "  recording:     {:.1} kB/step ({:.1} MB for {} steps)",
        bytes as f64 / a.short_steps as f64 / 1e3,
        bytes as f64 / 1e6,
        a.short_steps
    );
    println!(
        "  recorder:      {:.1} steps/s end to end ({:.2} ms/step); recorder thread busy {:.2} ms/step",
        a.short_steps as f64 / wall,
        1e3 * wall / a.short_steps as f64,
        1e3 * thread.busy_seconds / a.short_steps as f64
    );
    println!(
        "  long run:      {} steps in {:.1} s to {} ({} dropped)",
        a.steps,
        long_wall,
        long_path.display(),
        long_stats.dropped
    );
    println!(
        "  memory:        peak RSS (VmHWM) {:.0} MiB; RSS before {:.0} MiB, after {} steps {:.0} MiB, max {:.0} MiB, at the end {:.0} MiB",
        mib(peak),
        mib(rss_before),
        samples.first().map(|s| s.0).unwrap_or(0),
        mib(first),
        mib(max_sample),
        mib(last)
    );
    if let Some(path) = &a.json {
        let v = json!({
            "scene": a.scene, "width": a.width, "height": a.height, "objects": objects,
            "jpeg_quality": a.jpeg_quality,
            "thor_lite_step_s": step_time,
            "loop_thread_s_per_step_mean": mean_loop,
            "loop_thread_s_per_step_median": p50_loop,
            "loop_thread_s_per_step_p99": p99_loop,
            "loop_thread_share_of_step": mean_loop / step_time,
            "bytes_per_step": bytes as f64 / a.short_steps as f64,
            "throughput_steps_per_s": a.short_steps as f64 / wall,
            "recorder_thread_busy_s_per_step": thread.busy_seconds / a.short_steps as f64,
            "long_steps": a.steps, "long_wall_s": long_wall, "long_dropped": long_stats.dropped,
            "peak_rss_bytes": peak, "rss_samples": samples,
        });
        std::fs::write(path, serde_json::to_string_pretty(&v)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
