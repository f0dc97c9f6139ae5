//! `ember er ...`: Embodied-Reasoner benchmark files (check and list a case file; generate
//! cases for the training scenes with the data engine). Results are merged and summarised by
//! `ember eval merge`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use ember_agent::er::Category;
use ember_agent::er::cases::load_cases;
use ember_agent::er::generate::{
    self, Compatibility, EVALUATION_SCENES, GenerateOptions, TaskType,
};
use ember_sim_bridge::thor::ThorLite;
use ember_sim_bridge::{InitSettings, Simulator};
use indicatif::{ProgressBar, ProgressStyle};

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
    /// Generate benchmark cases for training scenes (the data engine): tasks of the ten
    /// sub-types derived from each scene's start metadata in thor-lite, in the benchmark's case
    /// format, for `ember eval` (the oracle policy with `memory.episode_logs=true` writes expert
    /// trajectories). Evaluation scenes are refused. Same arguments: the same file.
    ///
    /// Example: ember er generate --scenes kitchens --per-type 2 --seed 1 --out gen.json
    Generate {
        /// Which scenes: `train` (the 104 scenes that are not evaluation scenes), a room type
        /// (`kitchens`, `living_rooms`, `bedrooms`, `bathrooms`: its training scenes), or a
        /// comma-separated list of floor plans (`FloorPlan5,FloorPlan205`).
        #[arg(long, default_value = "train")]
        scenes: String,
        /// Tasks per sub-type per scene, at most (a scene may have fewer candidates).
        #[arg(long, default_value_t = 3)]
        per_type: usize,
        /// Cases per task, each with a different paraphrase of the task (`taskquery`).
        #[arg(long, default_value_t = 1)]
        queries: usize,
        /// Sub-types to generate, comma-separated (default: all ten), e.g.
        /// `single_pickup,pickup_and_put`.
        #[arg(long)]
        types: Option<String>,
        /// Seed for every random choice (destinations, which candidates, templates).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// At most this many tasks per sub-type in all, drawn with the seed across the scenes
        /// (for a small set that still covers every scene type); default: no cap.
        #[arg(long)]
        max_per_type: Option<usize>,
        /// Identity of the first case; the others follow consecutively.
        #[arg(long, default_value_t = 1)]
        first_identity: i64,
        /// Where to write the case file (a JSON list of cases).
        #[arg(long)]
        out: PathBuf,
        /// Write one case per line (default: indented, as the benchmark's files).
        #[arg(long)]
        compact: bool,
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
        ErCommand::Generate {
            scenes,
            per_type,
            queries,
            types,
            seed,
            max_per_type,
            first_identity,
            out,
            compact,
        } => {
            let scenes = parse_scenes(&scenes)?;
            let types = match types {
                Some(t) => parse_types(&t)?,
                None => TaskType::ALL.to_vec(),
            };
            if queries == 0 {
                bail!("--queries must be at least 1");
            }
            let opts = GenerateOptions {
                per_type,
                types,
                queries,
            };
            let mut cases = generate_cases(&scenes, &opts, seed)?;
            if let Some(max) = max_per_type {
                cases = generate::cap_tasks_per_type(cases, max, seed);
            }
            generate::renumber(&mut cases, first_identity);
            write_cases(&cases, &out, compact)?;
            print_counts(&cases, &opts.types, scenes.len(), &out);
            Ok(())
        }
    }
}

/// Resolves `--scenes`.
fn parse_scenes(spec: &str) -> anyhow::Result<Vec<String>> {
    let spec = spec.trim();
    if spec == "train" {
        return Ok(generate::training_scenes());
    }
    if let Some(all) = generate::scenes_of_room_type(spec) {
        return Ok(all
            .into_iter()
            .filter(|s| !generate::is_evaluation_scene(s))
            .collect());
    }
    let known = ThorLite::scene_names();
    let mut out: Vec<String> = Vec::new();
    for name in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if generate::is_evaluation_scene(name) {
            bail!(
                "--scenes: {name} is an evaluation scene of the Embodied-Reasoner benchmark; the \
                 data engine makes training data and refuses it (evaluation scenes: {})",
                EVALUATION_SCENES.join(", ")
            );
        }
        if !known.iter().any(|k| k == name) {
            bail!(
                "--scenes: unknown scene '{name}' (expected `train`, a room type `kitchens`, \
                 `living_rooms`, `bedrooms`, `bathrooms`, or floor plans such as FloorPlan5; see \
                 `ember sim scenes`)"
            );
        }
        if !out.iter().any(|s| s == name) {
            out.push(name.to_string());
        }
    }
    if out.is_empty() {
        bail!("--scenes: no scene given");
    }
    Ok(out)
}

/// Resolves `--types`.
fn parse_types(spec: &str) -> anyhow::Result<Vec<TaskType>> {
    let mut out = Vec::new();
    for t in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let ty: TaskType = t.parse().with_context(|| "--types".to_string())?;
        if !out.contains(&ty) {
            out.push(ty);
        }
    }
    if out.is_empty() {
        bail!("--types: no task type given");
    }
    Ok(out)
}

/// Loads each scene's start metadata from thor-lite and runs the data engine on it.
fn generate_cases(
    scenes: &[String],
    opts: &GenerateOptions,
    seed: u64,
) -> anyhow::Result<Vec<ember_agent::er::Case>> {
    let compat = Compatibility::embedded()?;
    // The metadata does not depend on the frame size; render as little as possible.
    let settings = InitSettings {
        width: 32,
        height: 32,
        ..InitSettings::default()
    };
    let mut sim = ThorLite::new();
    let bar = ProgressBar::new(scenes.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>8} [{bar:40}] {pos}/{len} scenes {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix("generate");
    let mut cases = Vec::new();
    for scene in scenes {
        bar.set_message(scene.clone());
        let ev = sim
            .reset(scene, &settings)
            .with_context(|| format!("loading {scene} in thor-lite"))?;
        let got = generate::generate_scene(scene, &ev.metadata, &compat, opts, seed)
            .with_context(|| format!("generating cases for {scene}"))?;
        cases.extend(got);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(cases)
}

fn write_cases(
    cases: &[ember_agent::er::Case],
    out: &PathBuf,
    compact: bool,
) -> anyhow::Result<()> {
    let text = if compact {
        // One case per line: small, and still diffs well.
        let lines = cases
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()?;
        format!("[\n{}\n]", lines.join(",\n"))
    } else {
        // One-space indentation, as the benchmark's files.
        let mut buf = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
        serde::Serialize::serialize(cases, &mut ser)?;
        String::from_utf8(buf)?
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(out, text + "\n").with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

fn print_counts(
    cases: &[ember_agent::er::Case],
    types: &[TaskType],
    n_scenes: usize,
    out: &std::path::Path,
) {
    let mut per: BTreeMap<&str, (usize, std::collections::BTreeSet<&str>)> = BTreeMap::new();
    for c in cases {
        let e = per.entry(c.tasktype.as_str()).or_default();
        e.0 += 1;
        e.1.insert(c.scene.as_str());
    }
    use std::io::Write;
    // A closed pipe (`| head`) is not an error worth a panic.
    let mut w = std::io::stdout().lock();
    let covered: std::collections::BTreeSet<&str> =
        cases.iter().map(|c| c.scene.as_str()).collect();
    let _ = writeln!(
        w,
        "{} cases ({} of the {n_scenes} scenes asked for) written to {}",
        cases.len(),
        covered.len(),
        out.display()
    );
    let _ = writeln!(w, "  {:<42} {:>6} {:>7}", "task type", "cases", "scenes");
    for t in types {
        let (n, sc) = per
            .get(t.as_str())
            .map(|(n, s)| (*n, s.len()))
            .unwrap_or((0, 0));
        let _ = writeln!(w, "  {:<42} {n:>6} {sc:>7}", t.as_str());
    }
}
