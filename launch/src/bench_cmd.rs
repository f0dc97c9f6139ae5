//! `ember bench ...`: end-to-end benchmarks that print figures (never pass/fail).
//!
//! - `ember bench recorder`: the Rerun recorder's cost (see [`crate::bench_recorder`]).

use anyhow::Result;
use clap::Subcommand;

use crate::bench_recorder;

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum Bench {
    /// The Rerun recorder: loop-thread cost per step, recorder-thread throughput, bytes per
    /// step in the .rrd, and peak memory over a long run.
    Recorder(bench_recorder::RecorderBenchArgs),
}

/// Runs a benchmark.
pub fn run(bench: Bench) -> Result<()> {
    match bench {
        Bench::Recorder(a) => bench_recorder::run(a),
    }
}
