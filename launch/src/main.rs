//! `ember`: the embodied agent runtime's command line.
//!
//! Module map (one module per command family):
//! - `main.rs`: the command tree and logging setup.
//! - `sim_cmd.rs`: `ember sim ...`, the embedded simulator (scenes, shot).

mod sim_cmd;

use clap::{Parser, Subcommand};

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
    /// The embedded AI2-THOR-compatible simulator (thor-lite): list scenes, render views.
    #[command(subcommand)]
    Sim(sim_cmd::SimCommand),
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
        Command::Sim(c) => sim_cmd::run(c),
    }
}
