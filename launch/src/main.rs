//! `ember`: the embodied agent runtime's command line.
//!
//! Module map (one module per command family):
//! - `main.rs`: the command tree and logging setup.
//! - `launch_file`: TOML launch files with includes, `--set` overrides and origins.
//! - `config`: the launch-file schema and its validation.
//! - `check_cmd`: `ember check`.
//! - `sim_cmd`: `ember sim ...`, the embedded simulator (scenes, shot, serve).
//! - `bench_cmd`: `ember bench ...`, end-to-end benchmarks (sim).
//! - `er_cmd`: `ember er ...`, Embodied-Reasoner benchmark files (cases, summaries).

use clap::{Parser, Subcommand};

mod bench_cmd;
mod check_cmd;
mod config;
mod er_cmd;
mod launch_file;
mod sim_cmd;

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
    /// End-to-end benchmarks (`ember bench sim`: steps per second over the simulator bridge).
    #[command(subcommand)]
    Bench(bench_cmd::Bench),
    /// Embodied-Reasoner benchmark files: check a case file, summarise and merge results.
    #[command(subcommand)]
    Er(er_cmd::ErCommand),
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
        Command::Bench(c) => bench_cmd::run(c),
        Command::Er(c) => er_cmd::run(c),
    }
}
