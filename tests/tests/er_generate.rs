//! The data engine (`er::generate`) on thor-lite's scene data: every committed case generated for
//! the training scenes is played by its key actions (the oracle) through the harness and the
//! cases it fails are compared with a committed list (the held-out figure of thor-lite's
//! fidelity), generation covers every sub-type, the committed training set still matches the
//! scenes, and the placement table is thor-lite's.

use std::sync::Arc;

use ember_agent::er::cases::{Case, load_cases};
use ember_agent::er::executor::ReachableCache;
use ember_agent::er::generate::{
    self, Compatibility, GenerateOptions, TaskType, check_case_resolves,
};
use ember_agent::er::{ErHarness, Mode, PromptVariant};
use ember_agent::harness::Harness;
use ember_agent::policy::Decision;
use ember_agent::thor::Metadata;
use ember_sim_bridge::thor::ThorLite;
use ember_sim_bridge::world::SimWorld;
use ember_sim_bridge::{InitSettings, Simulator};

use ember_tests::er_world::world;

/// A scene's start metadata, as `ember er generate` reads it.
fn start_metadata(sim: &mut ThorLite, scene: &str) -> Metadata {
    let small = InitSettings {
        width: 32,
        height: 32,
        ..InitSettings::default()
    };
    sim.reset(scene, &small).unwrap().metadata
}

fn reply(text: &str) -> Decision {
    Decision {
        raw: format!("I should act now.\n<DecisionMaking>{text}</DecisionMaking>"),
        ..Default::default()
    }
}

/// Plays a case's key actions as replies; returns the failures (action and feedback) and the
/// case's success.
fn play(case: &Case, w: &mut SimWorld, cache: &Arc<ReachableCache>) -> (Vec<String>, u8) {
    let mut h = ErHarness::new(case.clone(), Mode::ErCompat, PromptVariant::Put, 0)
        .with_policy_name("oracle")
        .with_reachable_cache(cache.clone());
    h.start(w).unwrap();
    let mut failures = Vec::new();
    for k in case.key_actions() {
        if h.is_done() {
            failures.push(format!("ended before '{k}'"));
            break;
        }
        let step = h.act(&reply(&k), w).unwrap();
        if k != "end" && !step.feedback.success {
            failures.push(format!("'{k}': {}", step.feedback.message));
        }
    }
    (failures, h.result().success)
}

/// The committed training-scene cases (`ember er generate`, see
/// [`the_committed_training_set_matches_the_scenes`]).
const TRAIN_CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/er-cases-train.json");

/// The cases of [`TRAIN_CASES`] that the oracle does not solve on thor-lite today, one a line:
/// `identity<TAB>label<TAB>first failing action`. Lines starting with `#` are comments.
/// Rewritten by `EMBER_BLESS=1 cargo test --workspace --test er_generate --
/// the_oracle_solves_the_cases_generated_for_training_scenes`.
const EXPECTED_FAILURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/er-cases-train.expected-failures.txt"
);

/// Plays every case on `threads` threads, each with its own thor-lite; returns, per case in
/// file order, `None` when the oracle solves it (success 1), else its first failed key action.
fn play_all(cases: &[Case], threads: usize) -> Vec<Option<String>> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let cache = Arc::new(ReachableCache::new());
    let next = AtomicUsize::new(0);
    let out = Mutex::new(vec![None; cases.len()]);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut w = world();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(c) = cases.get(i) else { break };
                    let (failures, success) = play(c, &mut w, &cache);
                    // Solved is the benchmark's verdict; a key action that failed without
                    // costing the case (a put that works from where the agent stands after a
                    // failed navigation) does not count.
                    let first = (success != 1).then(|| {
                        failures
                            .into_iter()
                            .next()
                            .unwrap_or_else(|| "every key action succeeded; success 0".into())
                    });
                    out.lock().unwrap()[i] = first;
                }
            });
        }
    });
    out.into_inner().unwrap()
}

/// One line of the expected-failures file: the identity, the label and a short note of the
/// first failure (the action, whether the harness found it illegal or the simulator failed it,
/// and the simulator's message).
fn failure_line(c: &Case, first: &str) -> String {
    let note = match first.split_once("': ") {
        Some((action, message)) => {
            let action = action.trim_start_matches('\'');
            match message.split_once("[simulator: ") {
                Some((_, sim)) => {
                    format!("{action}: simulator: {}", sim.trim().trim_end_matches(']'))
                }
                None => format!("{action}: refused by the harness (not in the legal set)"),
            }
        }
        None => first.to_string(),
    };
    format!(
        "{}\t{}\t{}",
        c.identity,
        c.label(),
        note.replace(['\t', '\n'], " ")
    )
}

/// The oracle (the case's key actions, through the harness) on every committed training-scene
/// case; the cases it fails must be exactly those of [`EXPECTED_FAILURES`]. A case that starts
/// failing or starts passing fails the test and is printed; after a deliberate change, rewrite
/// the list with `EMBER_BLESS=1` (see [`EXPECTED_FAILURES`]) and commit it. The success rate over
/// all cases is thor-lite's held-out figure (training scenes only, never evaluation scenes).
#[test]
fn the_oracle_solves_the_cases_generated_for_training_scenes() {
    let cases = load_cases(TRAIN_CASES).unwrap();
    assert!(cases.len() >= 250, "{} cases", cases.len());
    for c in &cases {
        assert!(!generate::is_evaluation_scene(&c.scene), "{}", c.label());
    }
    let types: std::collections::BTreeSet<&str> =
        cases.iter().map(|c| c.tasktype.as_str()).collect();
    assert_eq!(types.len(), TaskType::ALL.len(), "{types:?}");

    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
    let t = std::time::Instant::now();
    let results = play_all(&cases, threads);
    let failed: std::collections::BTreeMap<String, String> = cases
        .iter()
        .zip(&results)
        .filter_map(|(c, r)| {
            r.as_ref()
                .map(|f| (c.identity.to_string(), failure_line(c, f)))
        })
        .collect();
    let solved = cases.len() - failed.len();
    println!(
        "held-out (training scenes): the oracle solves {solved} of {} generated cases ({:.1}%) \
         in {:.0} s",
        cases.len(),
        100.0 * solved as f64 / cases.len() as f64,
        t.elapsed().as_secs_f64()
    );
    let mut per_type: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for (c, r) in cases.iter().zip(&results) {
        let e = per_type.entry(c.tasktype.as_str()).or_default();
        e.0 += usize::from(r.is_none());
        e.1 += 1;
    }
    for (t, (s, n)) in &per_type {
        println!(
            "  {t:<42} {s:>3} / {n:<3} {:.1}%",
            100.0 * *s as f64 / *n as f64
        );
    }

    if std::env::var_os("EMBER_BLESS").is_some() {
        let mut text = format!(
            "# Training-scene cases (tests/data/er-cases-train.json) the oracle does not solve on\n\
             # thor-lite: identity, case label, first failing action. {} of {} cases.\n\
             # Rewritten by: EMBER_BLESS=1 cargo test --workspace --test er_generate -- \
             the_oracle_solves_the_cases_generated_for_training_scenes\n",
            failed.len(),
            cases.len()
        );
        for c in &cases {
            if let Some(line) = failed.get(&c.identity.to_string()) {
                text.push_str(line);
                text.push('\n');
            }
        }
        std::fs::write(EXPECTED_FAILURES, text).unwrap();
        println!("wrote {EXPECTED_FAILURES}");
        return;
    }

    let expected: std::collections::BTreeMap<String, String> =
        std::fs::read_to_string(EXPECTED_FAILURES)
            .unwrap_or_else(|e| panic!("{EXPECTED_FAILURES}: {e} (EMBER_BLESS=1 writes it)"))
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| {
                (
                    l.split('\t').next().unwrap().trim().to_string(),
                    l.to_string(),
                )
            })
            .collect();
    let newly_failing: Vec<&String> = failed
        .iter()
        .filter(|(id, _)| !expected.contains_key(*id))
        .map(|(_, l)| l)
        .collect();
    let newly_passing: Vec<&String> = expected
        .iter()
        .filter(|(id, _)| !failed.contains_key(*id))
        .map(|(_, l)| l)
        .collect();
    assert!(
        newly_failing.is_empty() && newly_passing.is_empty(),
        "the oracle's failures differ from {EXPECTED_FAILURES}\n\
         newly failing ({}):\n{}\nnewly passing, was expected to fail ({}):\n{}\n\
         if the change is intended, rewrite the list with EMBER_BLESS=1 and commit it",
        newly_failing.len(),
        newly_failing
            .iter()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
        newly_passing.len(),
        newly_passing
            .iter()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
    );
}

/// Generation itself, on one kitchen and one living room: every sub-type is produced, and each
/// generated case resolves against its scene.
#[test]
fn generation_covers_every_sub_type() {
    let compat = Compatibility::embedded().unwrap();
    let opts = GenerateOptions {
        per_type: 1,
        ..GenerateOptions::default()
    };
    let mut sim = ThorLite::new();
    let mut types = std::collections::BTreeSet::new();
    for scene in ["FloorPlan5", "FloorPlan206"] {
        let meta = start_metadata(&mut sim, scene);
        let cases = generate::generate_scene(scene, &meta, &compat, &opts, 0).unwrap();
        assert!(cases.len() >= 6, "{scene}: only {} cases", cases.len());
        for c in &cases {
            check_case_resolves(c, &meta).unwrap();
            types.insert(c.tasktype.clone());
        }
    }
    assert_eq!(types.len(), TaskType::ALL.len(), "{types:?}");
}

/// `tests/data/er-cases-train.json` is made by
/// `ember er generate --per-type 1 --max-per-type 30 --seed 0 --compact --out
/// tests/data/er-cases-train.json` (the validation set for thor-lite's fidelity off the
/// evaluation scenes); every case must still name objects of the scenes and resolve by type.
#[test]
fn the_committed_training_set_matches_the_scenes() {
    let cases = load_cases(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/er-cases-train.json"
    ))
    .unwrap();
    assert!(cases.len() >= 250, "{} cases", cases.len());
    let mut sim = ThorLite::new();
    let mut metas: std::collections::BTreeMap<String, Metadata> = Default::default();
    for c in &cases {
        assert!(
            !generate::is_evaluation_scene(&c.scene),
            "{}: evaluation scene {}",
            c.label(),
            c.scene
        );
        let meta = metas
            .entry(c.scene.clone())
            .or_insert_with(|| start_metadata(&mut sim, &c.scene));
        for a in &c.task_metadata.actions {
            if a.action != "end" {
                assert!(
                    meta.object(&a.object_id).is_some(),
                    "{}: {} not in the scene",
                    c.label(),
                    a.object_id
                );
            }
        }
        check_case_resolves(c, meta).unwrap_or_else(|e| panic!("{}: {e}", c.label()));
    }
    for t in TaskType::ALL {
        assert!(
            cases.iter().filter(|c| c.tasktype == t.as_str()).count() >= 20,
            "too few {t} cases"
        );
    }
}

#[test]
fn the_placement_table_is_thor_lites() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let ours = std::fs::read_to_string(format!("{root}/agent/data/er/receptacles.json")).unwrap();
    let sims =
        std::fs::read_to_string(format!("{root}/sim_bridge/data/ithor/receptacles.json")).unwrap();
    assert_eq!(
        ours, sims,
        "agent/data/er/receptacles.json must stay a copy of thor-lite's"
    );
    assert_eq!(generate::RECEPTACLES_JSON, ours);
}
