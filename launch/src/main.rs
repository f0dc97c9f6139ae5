//! `ember`: the embodied agent runtime's command line.
//!
//! Module map (one module per command family):
//! - `main.rs`: the command tree and logging setup.
//! - `launch_file`: TOML launch files with includes, `--set` overrides and origins.
//! - `config`: the launch-file schema and its validation.
//! - `check_cmd`: `ember check`.
//! - `sim_cmd`: `ember sim ...`, the embedded simulator (scenes, shot, serve).
//! - `bench_cmd`: `ember bench ...`, end-to-end benchmarks (sim, loop, recorder, model);
//!   `bench_loop`: `ember bench loop`; `bench_recorder`: `ember bench recorder`.
//! - `view_cmd`: `ember view RUN.rrd`, opening recordings in the Rerun viewer.
//! - `bench_model`: `ember bench model`, the Qwen2-VL port with the real 2B shape.
//! - `model_cmd`: `ember model info|check|generate` (Qwen2-VL / Qwen2.5-VL checkpoints).
//! - `er_cmd`: `ember er cases`, checks and lists an Embodied-Reasoner case file.
//! - `run_cmd`: `ember run`, episodes as a launch file says.
//! - `eval_cmd`: `ember eval`, the Embodied-Reasoner evaluation (shards, resume, merge).
//! - `runner`: runs cases over parallel jobs for `run` and `eval`.
//! - `wiring`: the one place that picks implementations (world, policy, harness).
//! - `malloc_tuning`: keeps freed multi-megabyte frame buffers in the heap (glibc).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::{Parser, Subcommand};
use ember_agent::event_loop::StopSignal;

mod bench_cmd;
mod bench_loop;
mod bench_model;
mod bench_recorder;
mod check_cmd;
mod config;
mod er_cmd;
mod eval_cmd;
mod launch_file;
mod malloc_tuning;
mod model_cmd;
mod run_cmd;
mod runner;
mod sim_cmd;
mod view_cmd;
mod wiring;

/// ember: run embodied reasoning agents in simulators and on robots.
#[derive(Debug, Parser)]
#[command(name = "ember", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Log filter (tracing env-filter syntax), e.g. `info`, `ember=debug`; also `RUST_LOG`.
    #[arg(long, global = true, default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run episodes as a launch file says (world, policy, task, recording).
    Run(run_cmd::RunArgs),
    /// Run and score Embodied-Reasoner benchmark cases (`ember eval merge` combines shards).
    Eval(eval_cmd::EvalArgs),
    /// Validate a launch file without running it.
    Check(check_cmd::CheckArgs),
    /// The embedded AI2-THOR-compatible simulator (thor-lite): list scenes, render views.
    #[command(subcommand)]
    Sim(sim_cmd::SimCommand),
    /// Open recordings (.rrd) in the Rerun viewer.
    View(view_cmd::ViewArgs),
    /// End-to-end benchmarks (`ember bench sim`: steps per second over the simulator bridge;
    /// `ember bench recorder`: what recording every step to Rerun costs).
    #[command(subcommand)]
    Bench(bench_cmd::Bench),
    /// Embodied-Reasoner benchmark files: check and list a case file.
    #[command(subcommand)]
    Er(er_cmd::ErCommand),
    /// Qwen2-VL / Qwen2.5-VL checkpoints: info, parity check against transformers, generate.
    #[command(subcommand)]
    Model(model_cmd::ModelCommand),
}

/// Log lines go to stderr, coloured only when stderr is a terminal and `NO_COLOR` is unset
/// or empty (<https://no-color.org>), so that redirected logs carry no escape codes.
fn init_logging(filter: &str) {
    use std::io::IsTerminal;
    let env = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    tracing_subscriber::fmt()
        .with_env_filter(env)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .with_target(false)
        .init();
}

/// Installs the Ctrl-C handler: the first press asks running loops to stop cleanly (the
/// current step finishes or is abandoned, logs are flushed); the second runs the running
/// worlds' safe stops (at most 2 s) and exits.
fn install_stop() -> anyhow::Result<StopSignal> {
    let stop = StopSignal::new();
    let signal = stop.clone();
    let presses = Arc::new(AtomicUsize::new(0));
    ctrlc::set_handler(move || {
        if presses.fetch_add(1, Ordering::SeqCst) == 0 {
            eprintln!(
                "\nstopping: finishing the current step and flushing logs (Ctrl-C again to exit now)"
            );
            signal.request();
        } else {
            // Exit at once, but stop the robot first: every running world's safe stop
            // (bounded, so a hung driver cannot hold the exit).
            eprintln!("\nexiting now (safe stop first)");
            signal.emergency_stop(std::time::Duration::from_secs(2));
            std::process::exit(130);
        }
    })?;
    Ok(stop)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn dispatch(command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Run(args) => runtime()?.block_on(run_cmd::run(args, install_stop()?)),
        Command::Eval(args) => runtime()?.block_on(eval_cmd::run(args, install_stop()?)),
        Command::Check(args) => check_cmd::run(&args).map(|_| 0),
        Command::Sim(c) => sim_cmd::run(c).map(|_| 0),
        Command::View(a) => view_cmd::run(a).map(|_| 0),
        Command::Bench(c) => bench_cmd::run(c).map(|_| 0),
        Command::Er(c) => er_cmd::run(c).map(|_| 0),
        Command::Model(c) => model_cmd::run(c).map(|_| 0),
    }
}

fn main() {
    malloc_tuning::keep_frame_buffers();
    let cli = Cli::parse();
    init_logging(&cli.log);
    let code = match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
