//! The data engine (`er::generate`) on thor-lite's scene data: cases generated for training
//! scenes are solved by their key actions (the oracle) through the harness, the committed
//! training set still matches the scenes, and the placement table is thor-lite's.

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

/// Scenes whose generated cases (one per sub-type, seed 0) the oracle solves on thor-lite today.
const SOLVED_SCENES: [&str; 2] = ["FloorPlan5", "FloorPlan206"];

#[test]
fn the_oracle_solves_the_cases_generated_for_training_scenes() {
    let compat = Compatibility::embedded().unwrap();
    let opts = GenerateOptions {
        per_type: 1,
        ..GenerateOptions::default()
    };
    let mut sim = ThorLite::new();
    let cache = Arc::new(ReachableCache::new());
    let mut types = std::collections::BTreeSet::new();
    let mut problems = Vec::new();
    let mut n = 0;
    for scene in SOLVED_SCENES {
        let meta = start_metadata(&mut sim, scene);
        let cases = generate::generate_scene(scene, &meta, &compat, &opts, 0).unwrap();
        assert!(cases.len() >= 6, "{scene}: only {} cases", cases.len());
        for c in &cases {
            check_case_resolves(c, &meta).unwrap();
            let mut w = world();
            let (failures, success) = play(c, &mut w, &cache);
            if success != 1 || !failures.is_empty() {
                problems.push(format!("{} {}: {failures:?}", c.scene, c.label()));
            }
            types.insert(c.tasktype.clone());
            n += 1;
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {n} cases failed:\n{}",
        problems.len(),
        problems.join("\n")
    );
    // Between them the scenes cover every sub-type.
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
