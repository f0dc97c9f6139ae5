//! `ember`: the embodied agent runtime's command line.
//!
//! Module map (one module per command family):
//! - `main.rs`: the command tree and logging setup.
//! - `launch_file`: TOML launch files with includes, `--set` overrides and origins.
//! - `config`: the launch-file schema and its validation.
//! - `check_cmd`: `ember check`.
//! - `sim_cmd.rs`: `ember sim ...`, the embedded simulator (scenes, shot).
//! - `view_cmd.rs`: `ember view RUN.rrd`, opening recordings in the Rerun viewer.
//! - `bench_cmd.rs`: `ember bench ...`; `bench_recorder.rs`: `ember bench recorder`.

use clap::{Parser, Subcommand};

mod bench_cmd;
mod bench_recorder;
mod check_cmd;
mod config;
mod launch_file;
mod sim_cmd;
mod view_cmd;

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
    /// Validate a launch file without running it.
    Check(check_cmd::CheckArgs),
    /// The embedded AI2-THOR-compatible simulator (thor-lite): list scenes, render views.
    #[command(subcommand)]
    Sim(sim_cmd::SimCommand),
    /// Open recordings (.rrd) in the Rerun viewer.
    View(view_cmd::ViewArgs),
    /// Benchmarks that print figures (recorder...).
    #[command(subcommand)]
    Bench(bench_cmd::Bench),
}

fn init_logging(filter: &str) {
    let env = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    tracing_subscriber::fmt()
        .with_env_filter(env)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(&cli.log);
    match cli.command {
        Command::Check(args) => check_cmd::run(&args),
        Command::Sim(c) => sim_cmd::run(c),
        Command::View(a) => view_cmd::run(a),
        Command::Bench(b) => bench_cmd::run(b),
    }
}
