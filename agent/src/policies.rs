//! Built-in policies: `oracle` (privileged upper bound and expert data), `random` (seeded,
//! uniform over legal actions) and `replay` (re-runs the replies of an episode log).
//!
//! All three answer in the Embodied-Reasoner reply format, `<DecisionMaking>action</DecisionMaking>`,
//! so their replies go through the same parser as a model's.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::action::Action;
use crate::error::{Error, Result};
use crate::memory::EpisodeLog;
use crate::policy::{Context, Decision, DecisionTimings, EpisodeInfo, Policy};

/// Wraps an action in the Embodied-Reasoner decision tag.
pub fn decision_text(action: &Action) -> String {
    format!("<DecisionMaking>{action}</DecisionMaking>")
}

fn timed(start: Instant, raw: String, thought: String, on_text: &mut dyn FnMut(&str)) -> Decision {
    on_text(&raw);
    Decision {
        raw,
        thought,
        action: None,
        timings: DecisionTimings {
            total: start.elapsed().as_secs_f64(),
            ..Default::default()
        },
    }
}

/// Executes the case's key actions in order (privileged). Its success rate is the harness's
/// upper bound; its episodes are expert demonstrations.
#[derive(Debug, Default)]
pub struct OraclePolicy {
    next: usize,
}

impl OraclePolicy {
    /// A new oracle.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Policy for OraclePolicy {
    fn name(&self) -> &str {
        "oracle"
    }

    fn needs_privileged(&self) -> bool {
        true
    }

    fn reset(&mut self, _episode: &EpisodeInfo) -> Result<()> {
        self.next = 0;
        Ok(())
    }

    fn decide(&mut self, context: &Context, on_text: &mut dyn FnMut(&str)) -> Result<Decision> {
        let start = Instant::now();
        let privileged = context.privileged.as_ref().ok_or_else(|| Error::Policy {
            step: context.step,
            message: "the oracle needs privileged information, which this task does not provide"
                .into(),
        })?;
        let keys = &privileged.key_actions;
        let (action, thought) = match keys.get(self.next) {
            Some(a) => (
                Action::Discrete(a.clone()),
                format!("Key action {} of {}: {a}.", self.next + 1, keys.len()),
            ),
            None => (
                Action::Discrete(crate::action::DiscreteAction::bare(
                    crate::action::Verb::End,
                )),
                "All key actions are done.".to_string(),
            ),
        };
        self.next += 1;
        let raw = format!("{thought} {}", decision_text(&action));
        Ok(timed(start, raw, thought, on_text))
    }
}

/// Picks uniformly among the harness's legal actions with a seeded generator.
#[derive(Debug)]
pub struct RandomPolicy {
    seed: u64,
    rng: ChaCha8Rng,
}

impl RandomPolicy {
    /// A random policy; each episode reseeds from this seed, the episode's seed and its id.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }
}

impl Policy for RandomPolicy {
    fn name(&self) -> &str {
        "random"
    }

    fn reset(&mut self, episode: &EpisodeInfo) -> Result<()> {
        // The episode's identity is mixed in (not its index, which depends on sharding and
        // resuming): every case of a run draws its own actions, and the same case draws the
        // same ones whichever shard or job runs it.
        let id = episode.id.bytes().fold(0xCBF2_9CE4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
        });
        let mixed = self
            .seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(episode.seed)
            .rotate_left(17)
            ^ id;
        self.rng = ChaCha8Rng::seed_from_u64(mixed);
        Ok(())
    }

    fn decide(&mut self, context: &Context, on_text: &mut dyn FnMut(&str)) -> Result<Decision> {
        let start = Instant::now();
        if context.legal_actions.is_empty() {
            return Err(Error::Policy {
                step: context.step,
                message: "no legal actions to choose from".into(),
            });
        }
        let i = self.rng.random_range(0..context.legal_actions.len());
        let action = &context.legal_actions[i];
        let thought = format!(
            "Random choice {} of {} legal actions.",
            i + 1,
            context.legal_actions.len()
        );
        let raw = format!("{thought} {}", decision_text(action));
        Ok(timed(start, raw, thought, on_text))
    }
}

/// Re-emits the replies recorded in episode logs, in order.
#[derive(Debug)]
pub struct ReplayPolicy {
    source: PathBuf,
    replies: Vec<(String, String)>,
    next: usize,
    loaded_from: Option<PathBuf>,
}

impl ReplayPolicy {
    /// Replays from a log file, or from a directory holding `<episode id>.jsonl` logs.
    pub fn new(source: impl Into<PathBuf>) -> Result<Self> {
        let source = source.into();
        if !source.exists() {
            return Err(Error::Invalid(format!(
                "replay source {} does not exist",
                source.display()
            )));
        }
        Ok(Self {
            source,
            replies: Vec::new(),
            next: 0,
            loaded_from: None,
        })
    }

    fn log_for(&self, episode: &EpisodeInfo) -> PathBuf {
        if self.source.is_dir() {
            self.source
                .join(format!("{}.jsonl", sanitize_id(&episode.id)))
        } else {
            self.source.clone()
        }
    }

    fn load(path: &Path) -> Result<Vec<(String, String)>> {
        let lines = EpisodeLog::read(path)?;
        Ok(lines
            .iter()
            .filter(|l| l["type"] == "step" && l["step"].as_u64().unwrap_or(0) > 0)
            .map(|l| {
                (
                    l["reply"].as_str().unwrap_or("").to_string(),
                    l["thought"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect())
    }
}

/// Makes an episode id safe as a file name.
pub fn sanitize_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Policy for ReplayPolicy {
    fn name(&self) -> &str {
        "replay"
    }

    fn reset(&mut self, episode: &EpisodeInfo) -> Result<()> {
        let path = self.log_for(episode);
        self.replies = Self::load(&path)?;
        self.loaded_from = Some(path);
        self.next = 0;
        Ok(())
    }

    fn decide(&mut self, context: &Context, on_text: &mut dyn FnMut(&str)) -> Result<Decision> {
        let start = Instant::now();
        let (raw, thought) = self
            .replies
            .get(self.next)
            .cloned()
            .ok_or_else(|| Error::Policy {
                step: context.step,
                message: format!(
                    "the replay log {} has only {} replies",
                    self.loaded_from
                        .as_deref()
                        .unwrap_or(&self.source)
                        .display(),
                    self.replies.len()
                ),
            })?;
        self.next += 1;
        Ok(timed(start, raw, thought, on_text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::{DiscreteAction, Verb};
    use crate::policy::Privileged;

    fn ctx_with_legal(n: usize) -> Context {
        Context {
            legal_actions: (0..n)
                .map(|i| Action::Discrete(DiscreteAction::on(Verb::NavigateTo, format!("T{i}"))))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn oracle_walks_the_key_actions_then_ends() {
        let mut o = OraclePolicy::new();
        let ctx = Context {
            privileged: Some(Privileged {
                key_actions: vec![
                    DiscreteAction::on(Verb::NavigateTo, "Fridge"),
                    DiscreteAction::bare(Verb::End),
                ],
                metadata: None,
            }),
            ..Default::default()
        };
        let mut seen = String::new();
        let d1 = o.decide(&ctx, &mut |t| seen.push_str(t)).unwrap();
        assert!(
            d1.raw
                .ends_with("<DecisionMaking>navigate to Fridge</DecisionMaking>")
        );
        assert_eq!(seen, d1.raw);
        let d2 = o.decide(&ctx, &mut |_| {}).unwrap();
        assert!(d2.raw.ends_with("<DecisionMaking>end</DecisionMaking>"));
        let d3 = o.decide(&ctx, &mut |_| {}).unwrap();
        assert!(d3.raw.ends_with("<DecisionMaking>end</DecisionMaking>"));
        o.reset(&EpisodeInfo::default()).unwrap();
        assert_eq!(o.decide(&ctx, &mut |_| {}).unwrap().raw, d1.raw);
        // Without privileged information it refuses instead of guessing.
        assert!(o.decide(&Context::default(), &mut |_| {}).is_err());
    }

    #[test]
    fn random_is_seeded_and_covers_the_legal_actions() {
        let ctx = ctx_with_legal(5);
        let ep = EpisodeInfo {
            seed: 3,
            ..Default::default()
        };
        let run = |seed| {
            let mut p = RandomPolicy::new(seed);
            p.reset(&ep).unwrap();
            (0..50)
                .map(|_| p.decide(&ctx, &mut |_| {}).unwrap().raw)
                .collect::<Vec<_>>()
        };
        let a = run(1);
        assert_eq!(a, run(1));
        assert_ne!(a, run(2));
        for i in 0..5 {
            assert!(a.iter().any(|r| r.contains(&format!("navigate to T{i}<"))));
        }
        let mut p = RandomPolicy::new(0);
        assert!(p.decide(&ctx_with_legal(0), &mut |_| {}).is_err());
    }

    #[test]
    fn random_draws_differ_between_episodes_of_a_run_and_repeat_per_episode() {
        // As `ember eval` runs it: every case has the run's seed; only the identity differs.
        let ctx = ctx_with_legal(5);
        let draws = |id: &str| {
            let mut p = RandomPolicy::new(7);
            p.reset(&EpisodeInfo {
                id: id.into(),
                seed: 3,
                ..Default::default()
            })
            .unwrap();
            (0..20)
                .map(|_| p.decide(&ctx, &mut |_| {}).unwrap().raw)
                .collect::<Vec<_>>()
        };
        let ids: Vec<String> = (1..=10).map(|i| i.to_string()).collect();
        let all: Vec<Vec<String>> = ids.iter().map(|id| draws(id)).collect();
        for (i, a) in all.iter().enumerate() {
            assert_eq!(*a, draws(&ids[i]), "case {} is not reproducible", ids[i]);
            for b in &all[i + 1..] {
                assert_ne!(a, b, "two cases drew the same 20 actions");
            }
        }
    }

    #[test]
    fn replay_re_emits_logged_replies() {
        use crate::memory::{Budget, EstimatedTokens, Memory, StepEntry};
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("case-7.jsonl");
        let mut m = Memory::new(
            Budget::default(),
            Arc::new(EstimatedTokens),
            Some(EpisodeLog::create(&path).unwrap()),
        );
        let entry = |step: u64, reply: &str| StepEntry {
            step,
            executed: true,
            reply: reply.into(),
            thought: format!("t{step}"),
            action: String::new(),
            success: true,
            feedback: Default::default(),
            observations: vec![],
            agent_pose: None,
            record: serde_json::Value::Null,
        };
        m.record_step(entry(0, "")).unwrap();
        m.record_step(entry(1, "<DecisionMaking>observe</DecisionMaking>"))
            .unwrap();
        m.record_step(entry(2, "<DecisionMaking>end</DecisionMaking>"))
            .unwrap();
        m.sync_log().unwrap();
        let mut p = ReplayPolicy::new(dir.path()).unwrap();
        p.reset(&EpisodeInfo {
            id: "case-7".into(),
            ..Default::default()
        })
        .unwrap();
        let ctx = Context::default();
        assert_eq!(
            p.decide(&ctx, &mut |_| {}).unwrap().raw,
            "<DecisionMaking>observe</DecisionMaking>"
        );
        let d = p.decide(&ctx, &mut |_| {}).unwrap();
        assert_eq!(
            (d.raw.as_str(), d.thought.as_str()),
            ("<DecisionMaking>end</DecisionMaking>", "t2")
        );
        let err = p.decide(&ctx, &mut |_| {}).unwrap_err().to_string();
        assert!(err.contains("only 2 replies"), "{err}");
        assert!(ReplayPolicy::new(dir.path().join("missing")).is_err());
    }
}
