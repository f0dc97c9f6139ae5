//! The Embodied-Reasoner harness under the event loop, on thor-lite: the built-in oracle
//! (which plays the case's key actions from the harness's privileged information) solves a
//! sample case, and its summary is the benchmark's case line.

use std::sync::Arc;

use ember_agent::er::{CaseResult, ErHarness, Mode, PromptVariant};
use ember_agent::event_loop::{EpisodeEnd, LoopSettings, StopSignal, run_episode, share_policy};
use ember_agent::memory::{Budget, EstimatedTokens, Memory};
use ember_agent::policies::{OraclePolicy, RandomPolicy};
use ember_agent::policy::Policy;
use ember_agent::recorder::{NullRecorder, Recorder};
use ember_sim_bridge::world::SimWorld;

fn world() -> Box<SimWorld> {
    Box::new(ember_tests::er_world::world())
}

async fn play(policy: Box<dyn Policy>, name: &str) -> (EpisodeEnd, CaseResult) {
    let case = ember_tests::er_world::sample_case("5");
    let harness =
        ErHarness::new(case, Mode::ErCompat, PromptVariant::Put, 3).with_policy_name(name);
    let memory = Memory::new(Budget::default(), Arc::new(EstimatedTokens), None);
    let recorder: Arc<dyn Recorder> = Arc::new(NullRecorder);
    let out = run_episode(
        world(),
        Box::new(harness),
        share_policy(policy),
        memory,
        recorder,
        &LoopSettings::default(),
        &StopSignal::new(),
    )
    .await;
    let result: CaseResult = serde_json::from_value(out.report.summary.clone()).unwrap();
    (out.report.end, result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oracle_solves_a_case_through_the_loop() {
    let (end, r) = play(Box::new(OraclePolicy::new()), "oracle").await;
    assert_eq!(end, EpisodeEnd::Completed);
    assert_eq!(r.success, 1, "{:#?}", r.trajectory);
    assert_eq!(r.efficiency, 1.0);
    assert_eq!(r.policy, "oracle");
    assert_eq!(r.trajectory.first().unwrap().action, "init");
    assert_eq!(r.trajectory.last().unwrap().action, "end");

    let (end, r) = play(Box::new(RandomPolicy::new(11)), "random").await;
    assert_eq!(end, EpisodeEnd::Completed);
    assert!(
        r.completeness < 1.0,
        "a random policy should not complete this task"
    );
}
