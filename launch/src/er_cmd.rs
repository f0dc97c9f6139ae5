//! `ember er ...`: Embodied-Reasoner benchmark files: check a case file, summarise results.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use ember_agent::er::cases::load_cases;
use ember_agent::er::metrics::{merge_shards, read_results};
use ember_agent::er::{Category, Summary};

/// Embodied-Reasoner benchmark files.
#[derive(Debug, Subcommand)]
pub enum ErCommand {
    /// Check a benchmark case file (a JSON list of cases) and list its cases: identity, scene,
    /// task type, category, step limit and key actions.
    Cases {
        /// The case file, e.g. `test_809.json`.
        file: PathBuf,
        /// Print only the per-category counts.
        #[arg(long)]
        counts: bool,
    },
    /// Summarise `cases.jsonl` result files (shards of one run are merged; a case identity in
    /// two shards is an error) and print the table: success rate, search efficiency, task
    /// completeness, order-aware completeness and repeat rate, overall and per category.
    Summarize {
        /// One or more `cases.jsonl` files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also write the summary as JSON (fractions in [0, 1]) to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Also write the merged results as one `cases.jsonl` to this file.
        #[arg(long)]
        merged: Option<PathBuf>,
    },
}

/// Runs an `ember er` command.
pub fn run(cmd: ErCommand) -> anyhow::Result<()> {
    match cmd {
        ErCommand::Cases { file, counts } => {
            let cases = load_cases(&file)?;
            if !counts {
                for c in &cases {
                    println!(
                        "{:>5}  {:<12} {:<48} {:<10} {:>2}  {}",
                        c.identity.to_string(),
                        c.scene,
                        c.tasktype,
                        c.category().as_str(),
                        c.step_limit(),
                        c.key_actions().join(" | ")
                    );
                }
            }
            println!("{} cases in {}", cases.len(), file.display());
            for cat in Category::ALL {
                let n = cases.iter().filter(|c| c.category() == cat).count();
                if n > 0 {
                    println!("  {:<10} {n}", cat.as_str());
                }
            }
            Ok(())
        }
        ErCommand::Summarize {
            files,
            json,
            merged,
        } => {
            let mut shards = Vec::with_capacity(files.len());
            for f in &files {
                shards.push((f.display().to_string(), read_results(f)?));
            }
            let results = merge_shards(&shards)?;
            let summary = Summary::from_results(&results)?;
            print!("{}", summary.table());
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&summary)?;
                std::fs::write(&path, text + "\n")
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if let Some(path) = merged {
                let mut text = String::new();
                for r in &results {
                    text.push_str(&serde_json::to_string(r)?);
                    text.push('\n');
                }
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        }
    }
}
