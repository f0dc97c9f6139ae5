//! Cancelling a decision: the VLM policy checks `Context::cancel` before the image encoding,
//! before the prefill and between tokens, so a decision the event loop gave up on (its timeout
//! passed, or Ctrl-C) stops within one token and releases the model for the next episode.

mod common;

use std::sync::Arc;

use ember_agent::policy::{Cancel, ContentPart, Context, EpisodeInfo, Message, Policy, Role};
use ember_models::generate::SamplingConfig;
use ember_models::policy::{ReplyFormat, VlmPolicy};

use common::{fixtures, load_png, tiny_vlm};

fn context(cancel: Cancel) -> Context {
    let image = load_png(&fixtures().join("images").join("wide_112x84.png"));
    Context {
        episode: EpisodeInfo {
            id: "cancel".into(),
            ..Default::default()
        },
        step: 1,
        messages: vec![
            Message::text(Role::System, "You are a robot in given room."),
            Message {
                role: Role::User,
                content: vec![
                    ContentPart::Image(Arc::new(image)),
                    ContentPart::Text("Task: \"find the apple\"".into()),
                ],
            },
        ],
        cancel,
        ..Default::default()
    }
}

fn policy() -> VlmPolicy {
    let sampling = SamplingConfig {
        max_new_tokens: 40,
        // No stop string or stop token ends the reply early: only the limit or a cancel.
        stop_strings: Vec::new(),
        stop_token_ids: Vec::new(),
        ..Default::default()
    };
    VlmPolicy::new(
        tiny_vlm("qwen2-vl-tiny"),
        ReplyFormat::EmbodiedReasoner,
        sampling,
        4096,
    )
}

#[test]
fn a_cancelled_decision_stops_between_tokens() {
    let mut p = policy();
    // Uncancelled, the tiny model writes text as it goes.
    let whole = p.decide(&context(Cancel::new()), &mut |_| {}).unwrap();
    assert!(whole.timings.generated_tokens > 3, "{whole:?}");

    // Cancelled while streaming: the next check between tokens stops it.
    let cancel = Cancel::new();
    let raised = cancel.clone();
    let mut pieces = 0;
    let e = p
        .decide(&context(cancel), &mut |_| {
            pieces += 1;
            raised.cancel();
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("generation cancelled after"), "{e}");
    assert_eq!(pieces, 1, "it went on writing after the cancel");
    let tokens: usize = e
        .split("cancelled after ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX);
    assert!(tokens < whole.timings.generated_tokens, "{e}");

    // Cancelled before it starts: nothing is computed.
    let cancel = Cancel::new();
    cancel.cancel();
    let e = p
        .decide(&context(cancel), &mut |_| panic!("no text after a cancel"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("generation cancelled after 0 tokens"), "{e}");
}
