//! Step counting and the ending rules.
//!
//! The reference's loop (`evaluate/evaluate.py`, `get_trajectory`) runs while the last parsed
//! action is not `end`, executed steps < the step limit, and fewer than 3 model calls were made
//! since the last executed step; after each model call the call counter resets when the
//! iteration that preceded the call executed a step. Four identical (action, object) emissions
//! in a row force an `end` record with success 0 (its `init` counts as the first of a run, so a
//! run starts one later; no reply can equal `init`). Every other exit appends an `end` record
//! with success 1 in `er-compat` mode; in `strict` mode only an explicit `end` does.
//!
//! Steps count every executed action (`init`, failed and illegal-object actions included: the
//! reference's `exec` counts them); replies without a tag or without a known verb do not.
//!
//! The reference calls the model once more after the step that reaches the limit (or after the
//! third call without a step) and discards the reply; we end the episode as soon as that state
//! is reached, saving the call. The records are the same except the final `end` record's
//! `response`, which is "" here instead of the discarded reply.

use super::Mode;

/// The reference's `MAX_MODEL_INFER_COUNT`: model calls allowed without an executed step, and
/// the number of repeats (after the first emission) that ends an episode.
pub const MAX_CALLS_WITHOUT_STEP: u32 = 3;

/// Why an episode ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// The model said `end`.
    ModelEnd,
    /// Executed steps reached the task type's limit.
    StepLimit,
    /// Three model calls without an executed step.
    NoProgress,
    /// Four identical emissions in a row.
    Repeated,
}

impl EndReason {
    /// The `success` value of the `end` record this exit appends.
    pub fn end_record_success(&self, mode: Mode) -> bool {
        match self {
            EndReason::ModelEnd => true,
            EndReason::Repeated => false,
            EndReason::StepLimit | EndReason::NoProgress => mode == Mode::ErCompat,
        }
    }
}

/// What to do with a reply, before handling it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Handle it.
    Proceed,
    /// End the episode without handling it.
    End(EndReason),
}

/// The counters of the ending rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndRules {
    max_steps: u32,
    steps: u32,
    calls_without_step: u32,
    pending_calls: u32,
    prev: (String, Option<String>),
    same_count: u32,
    ended: Option<EndReason>,
}

impl EndRules {
    /// Rules for a step limit.
    pub fn new(max_steps: u32) -> Self {
        EndRules {
            max_steps,
            steps: 0,
            calls_without_step: 0,
            pending_calls: 0,
            prev: ("init".into(), None),
            same_count: 0,
            ended: None,
        }
    }

    /// Executed steps so far (init included).
    pub fn steps(&self) -> u32 {
        self.steps
    }

    /// The step limit.
    pub fn max_steps(&self) -> u32 {
        self.max_steps
    }

    /// Model calls since the last executed step, as the reference counts them.
    pub fn calls_without_step(&self) -> u32 {
        self.calls_without_step
    }

    /// Why the episode ended, once it has.
    pub fn ended(&self) -> Option<EndReason> {
        self.ended
    }

    /// Records the harness's `init` (an executed step, and the first of a repeat run).
    pub fn after_init(&mut self) -> Option<EndReason> {
        self.prev = ("init".into(), None);
        self.same_count = 1;
        self.after_handling(true)
    }

    /// A reply arrived and was parsed to `(action, item)`. Says whether to handle it.
    pub fn on_reply(&mut self, action: &str, item: Option<&str>) -> Verdict {
        if let Some(r) = self.ended {
            return Verdict::End(r);
        }
        self.calls_without_step = self.pending_calls;
        let verdict = if action == "end" {
            Verdict::End(EndReason::ModelEnd)
        } else if self.steps >= self.max_steps {
            Verdict::End(EndReason::StepLimit)
        } else if self.calls_without_step >= MAX_CALLS_WITHOUT_STEP {
            Verdict::End(EndReason::NoProgress)
        } else if self.prev.0 == action && self.prev.1.as_deref() == item {
            self.same_count += 1;
            if self.same_count == MAX_CALLS_WITHOUT_STEP {
                Verdict::End(EndReason::Repeated)
            } else {
                Verdict::Proceed
            }
        } else {
            self.same_count = 0;
            self.prev = (action.to_string(), item.map(str::to_string));
            Verdict::Proceed
        };
        if let Verdict::End(r) = verdict {
            self.ended = Some(r);
        }
        verdict
    }

    /// The reply was handled; `executed` says whether it counted as a step. Returns the reason
    /// the episode ends now, if it does (the state the reference would detect after its next,
    /// wasted, model call).
    pub fn after_handling(&mut self, executed: bool) -> Option<EndReason> {
        if executed {
            self.steps += 1;
            self.pending_calls = 0;
        } else {
            self.pending_calls = self.calls_without_step + 1;
        }
        let r = if self.steps >= self.max_steps {
            Some(EndReason::StepLimit)
        } else if self.pending_calls >= MAX_CALLS_WITHOUT_STEP {
            Some(EndReason::NoProgress)
        } else {
            None
        };
        if r.is_some() {
            self.ended = r;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives the rules with (action, item, executed) replies; returns how many were handled
    /// and why it ended.
    fn drive(max: u32, replies: &[(&str, Option<&str>, bool)]) -> (usize, Option<EndReason>, u32) {
        let mut r = EndRules::new(max);
        assert_eq!(r.after_init(), None);
        let mut handled = 0;
        for (a, i, executed) in replies {
            match r.on_reply(a, *i) {
                Verdict::End(reason) => return (handled, Some(reason), r.steps()),
                Verdict::Proceed => {
                    handled += 1;
                    if let Some(reason) = r.after_handling(*executed) {
                        return (handled, Some(reason), r.steps());
                    }
                }
            }
        }
        (handled, None, r.steps())
    }

    #[test]
    fn model_end_ends_at_once() {
        let (h, why, steps) = drive(22, &[("observe", None, true), ("end", None, false)]);
        assert_eq!((h, why, steps), (1, Some(EndReason::ModelEnd), 2));
    }

    #[test]
    fn four_identical_emissions_end_with_failure() {
        let nav = ("navigate to", Some("Fridge"), true);
        let (h, why, steps) = drive(22, &[nav, nav, nav, nav, nav]);
        // Three handled, the fourth ends the episode unhandled.
        assert_eq!((h, why, steps), (3, Some(EndReason::Repeated), 4));
        // A different emission in between resets the run.
        let obs = ("observe", None, true);
        let (h, why, _) = drive(22, &[nav, nav, nav, obs, nav, nav, nav, nav]);
        assert_eq!((h, why), (7, Some(EndReason::Repeated)));
        // Same action, different objects: no repeat.
        let (_, why, _) = drive(
            22,
            &[
                ("pickup", Some("Apple"), true),
                ("pickup", Some("Bread"), true),
                ("pickup", Some("Apple"), true),
                ("pickup", Some("Bread"), true),
            ],
        );
        assert_eq!(why, None);
        assert!(!EndReason::Repeated.end_record_success(Mode::ErCompat));
    }

    #[test]
    fn three_calls_without_a_step_end_the_episode() {
        let bad = ("error", None, false);
        let (h, why, steps) = drive(22, &[("observe", None, true), bad, bad, bad, bad]);
        assert_eq!((h, why, steps), (4, Some(EndReason::NoProgress), 2));
        // A step in between resets the count.
        let (h, why, _) = drive(
            22,
            &[
                bad,
                bad,
                ("observe", None, true),
                bad,
                bad,
                ("end", None, false),
            ],
        );
        assert_eq!((h, why), (5, Some(EndReason::ModelEnd)));
        // Unparseable replies end by the call count before the repeat rule can fire.
        assert!(EndReason::NoProgress.end_record_success(Mode::ErCompat));
        assert!(!EndReason::NoProgress.end_record_success(Mode::Strict));
    }

    #[test]
    fn step_limit_counts_init_and_failed_actions() {
        // Limit 4: init + 3 executed actions (failed ones count too).
        let (h, why, steps) = drive(
            4,
            &[
                ("navigate to", Some("Apple"), true),
                ("pickup", Some("Apple"), true),
                ("error", None, false),
                ("observe", None, true),
                ("end", None, false),
            ],
        );
        assert_eq!((h, why, steps), (4, Some(EndReason::StepLimit), 4));
        assert!(EndReason::StepLimit.end_record_success(Mode::ErCompat));
        assert!(!EndReason::StepLimit.end_record_success(Mode::Strict));
        assert!(EndReason::ModelEnd.end_record_success(Mode::Strict));
    }

    #[test]
    fn ended_rules_stay_ended() {
        let mut r = EndRules::new(2);
        assert_eq!(r.after_init(), None);
        assert_eq!(r.on_reply("observe", None), Verdict::Proceed);
        assert_eq!(r.after_handling(true), Some(EndReason::StepLimit));
        assert_eq!(
            r.on_reply("observe", None),
            Verdict::End(EndReason::StepLimit)
        );
        assert_eq!(r.ended(), Some(EndReason::StepLimit));
    }
}
