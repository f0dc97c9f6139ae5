//! Privileged data by opt-in: the event loop hands the harness's answer key and the full
//! simulator metadata only to a policy that declares it needs them (the oracle). The real
//! `random`, `replay` and `vlm` policies play a whole Embodied-Reasoner episode on thor-lite and
//! receive none at any step; the oracle receives it at every step. The episode log says which
//! kind of policy ran and whether it was privileged.

use std::sync::{Arc, Mutex};

use ember_agent::er::{ErHarness, Mode, PromptVariant};
use ember_agent::event_loop::{EpisodeEnd, LoopSettings, StopSignal, run_episode, share_policy};
use ember_agent::memory::{Budget, EpisodeLog, EstimatedTokens, Memory};
use ember_agent::policies::{OraclePolicy, RandomPolicy, ReplayPolicy};
use ember_agent::policy::{Context, Decision, Policy};
use ember_agent::recorder::{NullRecorder, Recorder};
use ember_models::policy::{ReplyFormat, VlmPolicy, er_sampling};
use ember_tests::watched::Watched;

/// What one episode showed: the privileged flag at each decision, the end, and the log's
/// header line.
struct Played {
    saw: Vec<bool>,
    end: EpisodeEnd,
    header: serde_json::Value,
}

async fn play(policy: Box<dyn Policy>, log: &std::path::Path) -> Played {
    let saw = Arc::new(Mutex::new(Vec::new()));
    let name = policy.name().to_string();
    let seen = saw.clone();
    let spy = Watched {
        inner: policy,
        watch: move |ctx: &Context, _: &ember_agent::Result<Decision>| {
            seen.lock().unwrap().push(ctx.privileged.is_some());
        },
    };
    let case = ember_tests::er_world::sample_case("5");
    let harness =
        ErHarness::new(case, Mode::ErCompat, PromptVariant::Put, 3).with_policy_name(&name);
    let memory = Memory::new(
        Budget {
            max_images: 2,
            max_tokens: 0,
        },
        Arc::new(EstimatedTokens),
        Some(EpisodeLog::create(log).unwrap()),
    );
    let recorder: Arc<dyn Recorder> = Arc::new(NullRecorder);
    let out = run_episode(
        Box::new(ember_tests::er_world::world()),
        Box::new(harness),
        share_policy(Box::new(spy)),
        memory,
        recorder,
        &LoopSettings::default(),
        &StopSignal::new(),
    )
    .await;
    let header = EpisodeLog::read(log).unwrap()[0].clone();
    let saw = saw.lock().unwrap().clone();
    Played {
        saw,
        end: out.report.end,
        header,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_replay_and_vlm_receive_no_privileged_data_and_the_oracle_does() {
    let dir = tempfile::tempdir().unwrap();

    // The oracle: privileged at every step, and it solves the case with it.
    let oracle = play(
        Box::new(OraclePolicy::new()),
        &dir.path().join("oracle/5.jsonl"),
    )
    .await;
    assert_eq!(oracle.end, EpisodeEnd::Completed);
    assert!(!oracle.saw.is_empty() && oracle.saw.iter().all(|p| *p));
    assert_eq!(oracle.header["info"]["policy"]["name"], "oracle");
    assert_eq!(oracle.header["info"]["policy"]["privileged"], true);

    // Replay re-runs the oracle's replies (the same actions), without the answer key.
    let vlm = ember_tests::vlm::tiny_vlm();
    let sampling = ember_models::generate::SamplingConfig {
        max_new_tokens: 8,
        ..er_sampling()
    };
    let honest: Vec<(&str, Box<dyn Policy>)> = vec![
        ("random", Box::new(RandomPolicy::new(7))),
        (
            "replay",
            Box::new(ReplayPolicy::new(dir.path().join("oracle")).unwrap()),
        ),
        (
            "qwen2-vl",
            Box::new(VlmPolicy::new(
                vlm,
                ReplyFormat::EmbodiedReasoner,
                sampling,
                8192,
            )),
        ),
    ];
    for (name, policy) in honest {
        let played = play(policy, &dir.path().join(format!("{name}/5.jsonl"))).await;
        assert!(
            !played.saw.is_empty(),
            "{name}: the policy never decided ({:?})",
            played.end
        );
        assert!(
            played.saw.iter().all(|p| !*p),
            "{name} received privileged data: {:?}",
            played.saw
        );
        assert_eq!(played.header["info"]["policy"]["name"], name);
        assert_eq!(played.header["info"]["policy"]["privileged"], false);
        assert!(
            matches!(played.end, EpisodeEnd::Completed),
            "{name}: {:?}",
            played.end
        );
    }
}
