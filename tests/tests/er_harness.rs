//! The Embodied-Reasoner harness driven directly (no event loop) on thor-lite, in process, with
//! the reference's rendering settings (800x450, field of view 90, visibility 20 m, grid 0.1).

use std::sync::Arc;

use ember_agent::action::Action;
use ember_agent::er::cases::{Case, load_cases};
use ember_agent::er::executor::ReachableCache;
use ember_agent::er::prompts::Prompts;
use ember_agent::er::rules::EndReason;
use ember_agent::er::{ErHarness, Mode, PromptVariant, Summary, sim_settings};
use ember_agent::harness::Harness;
use ember_agent::policy::{ContentPart, Decision, FeedbackKind, Role};
use ember_sim_bridge::world::SimWorld;

use ember_tests::er_world::world;

fn cases() -> Vec<Case> {
    load_cases(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/er-cases-sample.json"
    ))
    .unwrap()
}

fn case(id: &str) -> Case {
    cases()
        .into_iter()
        .find(|c| c.identity.to_string() == id)
        .unwrap()
}

fn reply(text: &str) -> Decision {
    Decision {
        raw: format!("I should act now.\n<DecisionMaking>{text}</DecisionMaking>"),
        ..Default::default()
    }
}

fn text_of(m: &ember_agent::policy::Message) -> String {
    m.joined_text()
}

/// Plays the key actions as replies; returns the harness.
fn play_key_actions(
    case: &Case,
    mode: Mode,
    w: &mut SimWorld,
    cache: &Arc<ReachableCache>,
) -> ErHarness {
    let mut h = ErHarness::new(case.clone(), mode, PromptVariant::Put, 7)
        .with_policy_name("key-actions")
        .with_reachable_cache(cache.clone());
    h.start(w).unwrap();
    for k in case.key_actions() {
        assert!(!h.is_done(), "case {}: ended before '{k}'", case.identity);
        let step = h.act(&reply(&k), w).unwrap();
        if k != "end" {
            assert!(
                step.feedback.success,
                "case {}: '{k}' failed: {}",
                case.identity, step.feedback.message
            );
        }
    }
    assert!(h.is_done());
    h
}

#[test]
fn key_actions_solve_every_sample_case() {
    let cache = Arc::new(ReachableCache::new());
    let prompts = Prompts::get().unwrap();
    let mut results = Vec::new();
    for mode in [Mode::ErCompat, Mode::Strict] {
        for case in cases() {
            let mut w = world();
            let h = play_key_actions(&case, mode, &mut w, &cache);
            let r = h.result();
            let k = case.key_actions().len();
            assert_eq!(r.success, 1, "case {} ({mode})", case.identity);
            // init + every key action but end + the end record.
            assert_eq!(r.trajectory.len(), k + 1);
            assert_eq!(r.efficiency, (k as f64 + 1.0) / r.trajectory.len() as f64);
            assert_eq!(r.completeness, 1.0);
            assert_eq!(r.order_aware_completeness, 1.0);
            assert_eq!(r.steps as usize, k, "init + {} actions", k - 1);
            assert_eq!(r.end_reason, Some(EndReason::ModelEnd));
            assert_eq!(r.mode, mode);
            assert_eq!(r.simulator, "thor-lite");
            let names: Vec<&str> = r.trajectory.iter().map(|t| t.action.as_str()).collect();
            let mut want = vec!["init".to_string()];
            want.extend(case.task_metadata.actions.iter().map(|a| a.action.clone()));
            assert_eq!(names, want);
            for (i, t) in r.trajectory.iter().enumerate().take(k) {
                assert_eq!(t.success, 1);
                assert_eq!(t.images, vec![format!("step{}.png", i + 1)]);
            }
            assert!(
                r.trajectory[1]
                    .legal_locations
                    .contains(&case.task_metadata.actions[0].object_type)
            );
            // The summary line carries everything.
            let v = h.summary();
            assert_eq!(v["success"], 1);
            assert_eq!(v["mode"], mode.as_str());
            results.push(r);
        }
    }
    let compat: Vec<_> = results
        .iter()
        .filter(|r| r.mode == Mode::ErCompat)
        .cloned()
        .collect();
    let s = Summary::from_results(&compat).unwrap();
    assert_eq!(
        (s.cases, s.success_rate, s.search_efficiency),
        (5, 1.0, 1.0)
    );
    assert!(s.table().contains("thor-lite"));
    let _ = prompts;
}

#[test]
fn conversation_follows_the_reference() {
    let prompts = Prompts::get().unwrap();
    let c = case("2");
    let mut w = world();
    let mut h = ErHarness::new(c.clone(), Mode::ErCompat, PromptVariant::Put, 0);
    let first = h.start(&mut w).unwrap();
    assert!(first.executed);
    assert_eq!(first.messages.len(), 2);
    assert_eq!(first.messages[0].role, Role::System);
    assert_eq!(text_of(&first.messages[0]), prompts.EMBODIED_SYSTEM_PROMPT);
    let u = &first.messages[1];
    assert_eq!(u.role, Role::User);
    assert!(
        matches!(u.content[0], ContentPart::Image(_)),
        "the start image comes first"
    );
    assert_eq!(u.image_count(), 1);
    assert_eq!(
        text_of(u),
        prompts
            .task_prefix(PromptVariant::Put, &c.taskquery)
            .unwrap()
    );
    let m = h.last_observation().unwrap().sim.clone().unwrap();
    assert_eq!(m.agent.camera_horizon, 0.0);
    assert!(
        [45.0, 135.0, 225.0, 315.0].contains(&m.agent.rotation.y),
        "{}",
        m.agent.rotation.y
    );

    // An unparseable reply: the invalid prompt, no image, no step.
    let s = h
        .act(
            &Decision {
                raw: "I will open the fridge.".into(),
                ..Default::default()
            },
            &mut w,
        )
        .unwrap();
    assert!(!s.executed);
    assert_eq!(s.feedback.kind, FeedbackKind::Unparseable);
    assert_eq!(s.messages.len(), 1);
    assert_eq!(s.messages[0].image_count(), 0);
    assert_eq!(text_of(&s.messages[0]), prompts.after_invalid());
    assert_eq!(h.steps(), 1);
    assert_eq!(h.trajectory().last().unwrap().action, "error");

    // An interaction with an object not in view: a failed step with the interaction feedback.
    let s = h.act(&reply("pickup Apple"), &mut w).unwrap();
    assert!(s.executed && !s.feedback.success);
    assert_eq!(s.feedback.kind, FeedbackKind::Illegal);
    assert_eq!(s.messages[0].image_count(), 0);
    assert_eq!(
        text_of(&s.messages[0]),
        prompts
            .after_failure("pickup", Some("Apple"), "pickup Apple")
            .unwrap()
    );
    assert_eq!(h.steps(), 2);
    assert_eq!(
        h.trajectory().last().unwrap().error_info,
        prompts
            .failure_feedback("pickup", Some("Apple"), "pickup Apple")
            .unwrap()
    );

    // A navigation to something not navigable (yet): the navigation feedback.
    let s = h.act(&reply("navigate to Apple"), &mut w).unwrap();
    assert!(s.executed && !s.feedback.success);
    assert!(text_of(&s.messages[0]).contains("Object: \"Apple\" is not currently navigable"));
    let s = h
        .act(&reply("navigate to the flux capacitor"), &mut w)
        .unwrap();
    assert!(
        text_of(&s.messages[0]).contains("the name of the navigated object doesn't quite match")
    );
    assert_eq!(
        h.trajectory().last().unwrap().object.as_deref(),
        Some("No Suitable Object")
    );

    // observe: ONE stitched image of three views, the USER_IMAGE_PREFIX text.
    let before = h.legality().navigable().len();
    let s = h.act(&reply("observe"), &mut w).unwrap();
    assert!(s.feedback.success);
    // EMBER_TEST_IMAGES=DIR saves the panorama for a look.
    if let Ok(dir) = std::env::var("EMBER_TEST_IMAGES")
        && let ContentPart::Image(img) = &s.messages[0].content[0]
    {
        image::RgbImage::from_raw(img.width, img.height, img.data.clone())
            .unwrap()
            .save(format!("{dir}/er_observe.png"))
            .unwrap();
    }
    let ContentPart::Image(img) = &s.messages[0].content[0] else {
        panic!("image first")
    };
    assert_eq!(
        (img.width, img.height),
        (3 * sim_settings::WIDTH + 10, sim_settings::HEIGHT)
    );
    assert_eq!(
        text_of(&s.messages[0]),
        prompts.after_success("observe", false).unwrap()
    );
    let labels: Vec<&str> = s.observations.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        labels,
        ["observe:left", "observe:back", "observe:right", "observe"]
    );
    assert!(h.legality().navigable().len() >= before);
    // The heading is restored.
    let after = h.last_observation().unwrap().sim.clone().unwrap();
    assert_eq!(after.agent.rotation.y, m.agent.rotation.y);

    // move forward: its own prompt.
    let s = h.act(&reply("move forward"), &mut w).unwrap();
    if s.feedback.success {
        assert_eq!(
            text_of(&s.messages[0]),
            prompts.after_success("move forward", true).unwrap()
        );
    }

    // Navigation success text names the resolved object.
    let s = h.act(&reply("navigate to fridge"), &mut w).unwrap();
    assert!(s.feedback.success, "{}", s.feedback.message);
    assert_eq!(
        text_of(&s.messages[0]),
        prompts.after_success("navigate to Fridge", false).unwrap()
    );
    assert_eq!(
        s.action,
        Some(Action::Discrete(ember_agent::action::DiscreteAction {
            verb: ember_agent::action::Verb::NavigateTo,
            object_type: Some("Fridge".into()),
            object_id: None,
        }))
    );
    let rec: Vec<serde_json::Value> = serde_json::from_value(s.record.clone()).unwrap();
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0]["action"], "navigate to");
    assert_eq!(rec[0]["object"], "Fridge");
    assert_eq!(rec[0]["images"][0], format!("step{}.png", h.steps()));
}

#[test]
fn ending_rules_on_a_live_episode() {
    let c = case("2");
    let cache = Arc::new(ReachableCache::new());
    // Four identical emissions: an end record with success 0, the fourth not executed.
    let mut w = world();
    let mut h = ErHarness::new(c.clone(), Mode::ErCompat, PromptVariant::Put, 0)
        .with_reachable_cache(cache.clone());
    h.start(&mut w).unwrap();
    for i in 0..4 {
        let s = h.act(&reply("navigate to Fridge"), &mut w).unwrap();
        assert_eq!(s.executed, i < 3);
    }
    assert!(h.is_done());
    assert_eq!(h.end_reason(), Some(EndReason::Repeated));
    let last = h.trajectory().last().unwrap();
    assert_eq!((last.action.as_str(), last.success), ("end", 0));
    assert_eq!(h.result().success, 0);
    assert!(
        h.act(&reply("end"), &mut w).is_err(),
        "acting after the end is an error"
    );

    // Three model calls without a step.
    let mut w = world();
    let mut h = ErHarness::new(c.clone(), Mode::ErCompat, PromptVariant::Put, 0)
        .with_reachable_cache(cache.clone());
    h.start(&mut w).unwrap();
    for _ in 0..3 {
        h.act(
            &Decision {
                raw: "hmm".into(),
                ..Default::default()
            },
            &mut w,
        )
        .unwrap();
    }
    assert_eq!(h.end_reason(), Some(EndReason::NoProgress));
    assert_eq!(h.trajectory().len(), 1 + 3 + 1);

    // The step limit: every key action but `end`, then wandering until the limit (24 steps).
    for (mode, success) in [(Mode::ErCompat, 1), (Mode::Strict, 0)] {
        let mut w = world();
        let mut h = ErHarness::new(c.clone(), mode, PromptVariant::Put, 0)
            .with_reachable_cache(cache.clone());
        h.start(&mut w).unwrap();
        for k in [
            "navigate to Fridge",
            "open Fridge",
            "pickup Apple",
            "close Fridge",
        ] {
            assert!(h.act(&reply(k), &mut w).unwrap().feedback.success, "{k}");
        }
        let mut n = 0;
        while !h.is_done() {
            h.act(
                &reply(if n % 2 == 0 {
                    "observe"
                } else {
                    "move forward"
                }),
                &mut w,
            )
            .unwrap();
            n += 1;
        }
        assert_eq!(h.end_reason(), Some(EndReason::StepLimit));
        assert_eq!(h.steps(), 24);
        let r = h.result();
        assert_eq!(r.success, success, "{mode}");
        assert_eq!(r.trajectory.len(), 24 + 1);
        if success == 1 {
            assert_eq!(r.efficiency, 6.0 / 25.0);
        } else {
            assert_eq!(r.completeness, 0.75);
        }
    }
}

#[test]
fn episodes_are_deterministic() {
    let c = case("5");
    let run = || {
        let mut w = world();
        let h = play_key_actions(&c, Mode::ErCompat, &mut w, &Arc::new(ReachableCache::new()));
        serde_json::to_string(&h.summary()).unwrap()
    };
    assert_eq!(run(), run());
}
