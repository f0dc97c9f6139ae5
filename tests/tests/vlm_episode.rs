//! An Embodied-Reasoner episode end to end with the VLM policy: thor-lite in process, the ER
//! harness (the benchmark's exact conversation strings), the event loop, a memory budget that
//! counts tokens with the checkpoint's tokenizer, and a tiny Qwen2-VL checkpoint
//! (`models/fixtures/qwen2-vl-tiny`) with a byte-level tokenizer built here. The tiny model's
//! replies are noise; the point is that prompts, images, budgets and parsing work.
//!
//! The oracle plays the first two steps (so the conversation holds several images and the
//! success prompts); from then on the VLM decides on that conversation, its replies are
//! unparseable, the harness answers with the invalid-action prompt, and the episode ends by the
//! benchmark's rule (three calls without an executed step).

use std::sync::{Arc, Mutex};

use ember_agent::er::prompts::Prompts;
use ember_agent::er::{CaseResult, ErHarness, Mode, PromptVariant};
use ember_agent::event_loop::{EpisodeEnd, LoopSettings, StopSignal, run_episode, share_policy};
use ember_agent::memory::{Budget, EpisodeLog, Memory, TokenCounter};
use ember_agent::policies::OraclePolicy;
use ember_agent::policy::{ContentPart, Context, Decision, EpisodeInfo, Message, Policy, Role};
use ember_agent::recorder::{NullRecorder, Recorder};
use ember_models::generate::SamplingConfig;
use ember_models::policy::{ReplyFormat, VlmPolicy, er_thought};
use ember_sim_bridge::world::SimWorld;

/// What the VLM saw and said at one decision.
#[derive(Clone, Debug)]
struct Seen {
    messages: Vec<Message>,
    decision: Decision,
    streamed: String,
}

/// The oracle for the first `oracle_steps` decisions, then the VLM (recording its contexts).
struct OracleThenVlm {
    oracle: OraclePolicy,
    vlm: VlmPolicy,
    oracle_steps: usize,
    calls: usize,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Policy for OracleThenVlm {
    fn name(&self) -> &str {
        "oracle-then-qwen2-vl"
    }
    /// The oracle part plays the case's key actions: it needs the privileged answer key.
    fn needs_privileged(&self) -> bool {
        true
    }
    fn reset(&mut self, episode: &EpisodeInfo) -> ember_agent::Result<()> {
        self.oracle.reset(episode)?;
        self.vlm.reset(episode)
    }
    fn decide(
        &mut self,
        ctx: &Context,
        on_text: &mut dyn FnMut(&str),
    ) -> ember_agent::Result<Decision> {
        self.calls += 1;
        if self.calls <= self.oracle_steps {
            return self.oracle.decide(ctx, on_text);
        }
        let mut streamed = String::new();
        let d = self.vlm.decide(ctx, &mut |t| {
            streamed.push_str(t);
            on_text(t);
        })?;
        self.seen.lock().unwrap().push(Seen {
            messages: ctx.messages.clone(),
            decision: d.clone(),
            streamed,
        });
        Ok(d)
    }
}

fn text_of(m: &Message) -> String {
    m.content
        .iter()
        .filter_map(|p| match p {
            ContentPart::Text(t) => Some(t.as_str()),
            ContentPart::Image(_) => None,
        })
        .collect()
}

fn world() -> Box<SimWorld> {
    Box::new(ember_tests::er_world::world())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_er_episode_runs_with_the_vlm_policy() {
    let case = ember_tests::er_world::sample_case("2");
    let query = case.taskquery.clone();

    let vlm = ember_tests::vlm::tiny_vlm();
    let counter = Arc::new(vlm.token_counter());
    let sampling = SamplingConfig {
        max_new_tokens: 24,
        ..ember_models::policy::er_sampling()
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let policy = OracleThenVlm {
        oracle: OraclePolicy::new(),
        vlm: VlmPolicy::new(vlm, ReplyFormat::EmbodiedReasoner, sampling, 8192),
        oracle_steps: 2,
        calls: 0,
        seen: seen.clone(),
    };
    let budget = Budget {
        max_images: 2,
        max_tokens: 4000,
    };
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("episode.jsonl");
    let memory = Memory::new(
        budget,
        counter.clone(),
        Some(EpisodeLog::create(&log_path).unwrap()),
    );
    let harness = ErHarness::new(case, Mode::ErCompat, PromptVariant::Put, 3)
        .with_policy_name("oracle-then-qwen2-vl");
    let recorder: Arc<dyn Recorder> = Arc::new(NullRecorder);
    let out = run_episode(
        world(),
        Box::new(harness),
        share_policy(Box::new(policy)),
        memory,
        recorder,
        &LoopSettings::default(),
        &StopSignal::new(),
    )
    .await;
    assert_eq!(
        out.report.end,
        EpisodeEnd::Completed,
        "{:?}",
        out.report.end
    );
    let result: CaseResult = serde_json::from_value(out.report.summary.clone()).unwrap();

    let prompts = Prompts::get().unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.len(),
        3,
        "the VLM decides until three calls pass without a step"
    );
    for (i, s) in seen.iter().enumerate() {
        let m = &s.messages;
        // The benchmark's exact strings, from the harness.
        assert_eq!(m[0].role, Role::System);
        assert_eq!(text_of(&m[0]), prompts.EMBODIED_SYSTEM_PROMPT);
        assert_eq!(
            text_of(&m[1]),
            prompts.task_prefix(PromptVariant::Put, &query).unwrap()
        );
        // Images kept within the budget, the start image always first.
        let images: usize = m.iter().map(Message::image_count).sum();
        assert!((1..=2).contains(&images), "call {i}: {images} images");
        assert!(matches!(m[1].content[0], ContentPart::Image(_)));
        // The token budget, counted with the checkpoint's tokenizer, holds for the real prompt.
        let counted: usize = m
            .iter()
            .map(|x| {
                counter.text_tokens(&text_of(x))
                    + x.content
                        .iter()
                        .map(|p| match p {
                            ContentPart::Image(img) => counter.image_tokens(img.width, img.height),
                            ContentPart::Text(_) => 0,
                        })
                        .sum::<usize>()
                    + 4
            })
            .sum();
        assert!(
            counted <= budget.max_tokens,
            "call {i}: {counted} tokens counted"
        );
        let real = s.decision.timings.prompt_tokens;
        assert!(
            real.abs_diff(counted) <= m.len() * 8 + 16,
            "call {i}: counted {counted}, real {real}"
        );
        // The reply: streamed as written, noise, split into thought and raw text.
        assert_eq!(s.streamed, s.decision.raw);
        assert_eq!(s.decision.thought, er_thought(&s.decision.raw));
        assert!(s.decision.action.is_none());
        assert!(s.decision.timings.generated_tokens >= 1);
        // After an unparseable reply, the harness's invalid-action prompt follows it.
        if i > 0 {
            let last = m.last().unwrap();
            assert_eq!(last.role, Role::User);
            assert_eq!(text_of(last), prompts.after_invalid());
            let reply = &m[m.len() - 2];
            assert_eq!(reply.role, Role::Assistant);
            assert_eq!(text_of(reply), seen[i - 1].decision.raw);
        }
    }
    // The oracle's executed steps brought new images and the success prompt.
    let first = &seen[0].messages;
    assert!(
        first.iter().any(|m| m.role == Role::Assistant),
        "the oracle's replies are in the conversation"
    );
    assert!(text_of(first.last().unwrap()).contains("you get this new image above"));

    // The trajectory: init, the oracle's two actions, then the VLM's unparseable replies.
    let actions: Vec<&str> = result
        .trajectory
        .iter()
        .map(|r| r.action.as_str())
        .collect();
    assert_eq!(actions[0], "init");
    assert_eq!(
        actions.iter().filter(|a| **a == "error").count(),
        3,
        "{actions:?}"
    );
    assert_eq!(*actions.last().unwrap(), "end");
    // The episode log has every reply.
    let log = std::fs::read_to_string(&log_path).unwrap();
    for s in &seen {
        let escaped = serde_json::to_string(&s.decision.raw).unwrap();
        assert!(
            log.contains(escaped.trim_matches('"')),
            "reply missing from the episode log"
        );
    }
}
