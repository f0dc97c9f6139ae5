//! `ember`: the embodied agent runtime's command line.
//!
//! Module map (one module per command family):
//! - `main.rs`: the command tree and logging setup.
//! - `launch_file`: TOML launch files with includes, `--set` overrides and origins.
//! - `config`: the launch-file schema and its validation.
//! - `check_cmd`: `ember check`.
//! - `model_cmd`: `ember model info|check|generate` (Qwen2-VL / Qwen2.5-VL checkpoints).
//! - `bench_cmd`: `ember bench ...` (model).

use clap::{Parser, Subcommand};

mod bench_cmd;
mod check_cmd;
mod config;
mod launch_file;
mod model_cmd;

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
    /// Qwen2-VL / Qwen2.5-VL checkpoints: info, parity check against transformers, generate.
    #[command(subcommand)]
    Model(model_cmd::ModelCommand),
    /// End-to-end benchmarks (`ember bench model`: the 2B-shaped model on cpu/wgpu).
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
        Command::Model(c) => model_cmd::run(c),
        Command::Bench(c) => bench_cmd::run(c),
    }
}
