//! The VLM policy on a tiny checkpoint with a tokenizer built in the test: conversations with
//! images in, streamed replies out, thought split, determinism, Robot-R1 answers parsed or
//! reported, and token counting for the memory budget.

mod common;

use std::sync::Arc;

use ember_agent::memory::TokenCounter;
use ember_agent::policy::{Candidate, ContentPart, Context, EpisodeInfo, Message, Policy, Role};
use ember_agent::robot_r1;
use ember_models::generate::SamplingConfig;
use ember_models::policy::{ReplyFormat, VlmPolicy, er_thought};

use common::{fixtures, load_png, tiny_vlm};

fn conversation() -> Vec<Message> {
    let img = |n: &str| ContentPart::Image(Arc::new(load_png(&fixtures().join("images").join(n))));
    vec![
        Message::text(Role::System, "You are a robot in given room."),
        Message {
            role: Role::User,
            content: vec![
                img("wide_112x84.png"),
                ContentPart::Text("Task: \"find the apple\"".into()),
            ],
        },
        Message::text(
            Role::Assistant,
            "I see a table.<DecisionMaking>observe</DecisionMaking>",
        ),
        Message {
            role: Role::User,
            content: vec![
                img("square_56x56.png"),
                ContentPart::Text(
                    "After executing your previous \"observe\", you get this new image above."
                        .into(),
                ),
            ],
        },
    ]
}

fn context(step: u64) -> Context {
    Context {
        episode: EpisodeInfo {
            id: "t".into(),
            seed: 11,
            ..Default::default()
        },
        step,
        messages: conversation(),
        ..Default::default()
    }
}

#[test]
fn embodied_reasoner_policy_streams_a_reply_and_splits_the_thought() {
    let sampling = SamplingConfig {
        max_new_tokens: 12,
        ..Default::default()
    };
    let mut p = VlmPolicy::new(
        tiny_vlm("qwen2-vl-tiny"),
        ReplyFormat::EmbodiedReasoner,
        sampling,
        4096,
    );
    p.reset(&context(0).episode).unwrap();
    let mut streamed = String::new();
    let d = p
        .decide(&context(3), &mut |t| streamed.push_str(t))
        .unwrap();
    assert_eq!(streamed, d.raw);
    assert_eq!(d.thought, er_thought(&d.raw));
    assert!(d.action.is_none(), "the ER harness parses the reply");
    assert_eq!(d.timings.generated_tokens, 12);
    // 2 images (4 + 12 tokens) plus the text.
    assert!(
        d.timings.prompt_tokens > 16 + 100,
        "{}",
        d.timings.prompt_tokens
    );
    assert!(d.timings.total >= d.timings.prefill && d.timings.decode > 0.0);
    // Greedy: the same context gives the same reply.
    let again = p.decide(&context(3), &mut |_| {}).unwrap();
    assert_eq!(again.raw, d.raw);
}

#[test]
fn sampling_is_deterministic_per_episode_and_step() {
    let sampling = SamplingConfig {
        max_new_tokens: 10,
        temperature: 0.9,
        top_k: 50,
        top_p: 0.95,
        repetition_penalty: 1.1,
        seed: 5,
        ..Default::default()
    };
    let mut p = VlmPolicy::new(
        tiny_vlm("qwen2_5-vl-tiny"),
        ReplyFormat::EmbodiedReasoner,
        sampling,
        4096,
    );
    p.reset(&context(0).episode).unwrap();
    let a = p.decide(&context(1), &mut |_| {}).unwrap().raw;
    let b = p.decide(&context(2), &mut |_| {}).unwrap().raw;
    let a2 = p.decide(&context(1), &mut |_| {}).unwrap().raw;
    assert_eq!(a, a2, "same episode seed and step, same sample");
    assert_ne!(a, b, "another step draws another sample");
}

#[test]
fn robot_r1_noise_is_a_reported_error_not_a_guess() {
    let sampling = SamplingConfig {
        max_new_tokens: 8,
        ..Default::default()
    };
    let mut p = VlmPolicy::new(
        tiny_vlm("qwen2_5-vl-tiny-bf16"),
        ReplyFormat::RobotR1,
        sampling,
        4096,
    );
    let candidates: Vec<Candidate> = ['A', 'B', 'C', 'D']
        .iter()
        .enumerate()
        .map(|(i, &label)| Candidate {
            label,
            position: [0.1 * i as f64, 0.0, 0.8],
            frame: robot_r1::TASK_FRAME.into(),
        })
        .collect();
    let prompt = robot_r1::next_keypoint_prompt(
        "put the cube in the box",
        [0.2, 0.0, 0.9],
        &candidates,
        robot_r1::View::Front,
    );
    let ctx = Context {
        step: 4,
        messages: vec![Message {
            role: Role::User,
            content: vec![
                ContentPart::Image(Arc::new(load_png(
                    &fixtures().join("images/tall_84x140.png"),
                ))),
                ContentPart::Text(prompt),
            ],
        }],
        candidates,
        ..Default::default()
    };
    let e = p.decide(&ctx, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("step 4") && e.contains("Robot-R1 reply"), "{e}");
}

#[test]
fn prompt_limits_and_empty_contexts_are_errors() {
    let mut p = VlmPolicy::new(
        tiny_vlm("qwen2-vl-tiny"),
        ReplyFormat::EmbodiedReasoner,
        SamplingConfig::default(),
        50,
    );
    let e = p.decide(&context(0), &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("over the limit of 50"), "{e}");
    let e = p
        .decide(&Context::default(), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("no messages"), "{e}");
}

#[test]
fn token_counter_matches_the_real_prompt() {
    let vlm = tiny_vlm("qwen2-vl-tiny");
    let counter = vlm.token_counter();
    let msgs = conversation();
    let prompt = vlm.prompt(&msgs).unwrap();
    // Images: the processed token count plus the two vision markers.
    for p in &prompt.images {
        let (h, w) = (p.grid_thw[1] * 14, p.grid_thw[2] * 14);
        assert_eq!(counter.image_tokens(w as u32, h as u32), p.n_tokens(2) + 2);
    }
    assert_eq!(
        counter.text_tokens("find the apple"),
        vlm.tokenizer.encode("find the apple").unwrap().len()
    );
    // Parts counted one by one, plus the template's framing, give the real prompt length
    // exactly (this tokenizer has no merges across part boundaries).
    let tok = |s: &str| vlm.tokenizer.encode(s).unwrap().len();
    let mut expected = tok("<|im_start|>assistant\n");
    for m in &msgs {
        expected += tok(&format!("<|im_start|>{}\n", m.role.as_str())) + tok("<|im_end|>\n");
        for p in &m.content {
            expected += match p {
                ContentPart::Text(t) => counter.text_tokens(t),
                ContentPart::Image(i) => counter.image_tokens(i.width, i.height),
            };
        }
    }
    assert_eq!(prompt.input_ids.len(), expected);
}
