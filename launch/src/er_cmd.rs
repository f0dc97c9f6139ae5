//! `ember er ...`: Embodied-Reasoner benchmark files (check and list a case file).
//! Results are merged and summarised by `ember eval merge`.

use std::path::PathBuf;

use clap::Subcommand;
use ember_agent::er::Category;
use ember_agent::er::cases::load_cases;

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
    }
}
