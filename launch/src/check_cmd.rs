//! `ember check LAUNCH.toml`: validates a launch file without running it.

use std::path::PathBuf;

use clap::Args;

use crate::config::Launch;

/// Arguments of `ember check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The launch file.
    pub launch: PathBuf,
    /// Override a launch-file value, e.g. `--set policy.kind=random` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Print the merged configuration as TOML.
    #[arg(long)]
    pub print: bool,
}

/// Runs `ember check`.
pub fn run(args: &CheckArgs) -> anyhow::Result<()> {
    let launch = Launch::load(&args.launch, &args.overrides)?;
    let c = &launch.config;
    if args.print {
        println!("{}", toml::to_string_pretty(c)?);
    }
    let files: Vec<String> = launch
        .layers
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    println!("ok: {}", files.join(" + "));
    println!(
        "  world:  {:?} {}x{} fov {} deg{}",
        c.world.kind,
        c.world.width,
        c.world.height,
        c.world.fov,
        c.world
            .endpoint
            .as_deref()
            .map(|e| format!(" at {e}"))
            .unwrap_or_default()
    );
    println!("  policy: {:?}", c.policy.kind);
    println!(
        "  task:   {:?} ({:?}){}",
        c.task.kind,
        c.task.mode,
        c.task
            .cases
            .as_deref()
            .map(|p| format!(", cases {}", p.display()))
            .unwrap_or_default()
    );
    println!("  out:    {}", c.run.out_dir.display());
    Ok(())
}
