//! The benchmark's metrics, per case and over cases.
//!
//! Per case, as the reference (`evaluate/utils.py` `metric`, `evaluate/show_result.py`):
//! ```text
//! reward = 0; remaining = copy(key_actions)
//! for each record t:
//!     if t.action in {init, observe, move forward, navigate to, error} or not t.success: continue
//!     if t.action is end:
//!         single_search: +1 if a type in t.legal_objects is a substring of taskname
//!                        (case-insensitive), else +1 if the previous successful action
//!                        ("verb object") is a key action
//!         otherwise: +1
//!     else: verb = "put" if it starts with "put"; if "verb object" is in remaining: remove, +1
//! total        = key actions other than navigate to / observe / move forward (end included)
//! success      = floor(reward / total)
//! efficiency   = (len(key_actions) + 1) / len(trajectory) if success else 0   (not capped)
//! completeness = reward / total
//! ```
//! - order-aware completeness: the longest common subsequence of the rewarded actions (in
//!   order, `end` included) with the key actions other than navigate/observe/move forward,
//!   divided by their number; for `single_search` it equals the completeness (as the reference);
//! - repeat rate (the reference's "repeated searches"): over the `navigate to` records, (their
//!   number - the number of distinct objects) / their number; 0 when there are none.
//!
//! Over cases ([`Summary`]): plain means of success, efficiency, completeness, order-aware
//! completeness and repeat rate, overall and per category, as fractions in [0, 1] (efficiency
//! may exceed 1 for a single case, as in the reference).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Mode;
use super::cases::{Case, Category, IntOrString};
use super::record::TrajectoryRecord;
use super::rules::EndReason;
use crate::error::{Error, Result};

/// The metrics of one case.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaseScore {
    /// Whether the case succeeded.
    pub success: bool,
    /// Search efficiency (0 when unsuccessful).
    pub efficiency: f64,
    /// Task completeness.
    pub completeness: f64,
    /// Order-aware completeness.
    pub order_aware_completeness: f64,
    /// Repeat rate of navigation targets.
    pub repeat_rate: f64,
    /// Reward earned.
    pub reward: u32,
    /// Reward available.
    pub total: u32,
    /// single_search only: the `end` was rewarded through the previous key action (the
    /// reference's `key_actions_success`).
    pub key_action_success: bool,
}

fn is_navigation_like(k: &str) -> bool {
    k.contains("observe") || k.contains("move forward") || k.contains("navigate to")
}

/// Length of the longest common subsequence.
pub fn lcs_len<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                prev[j + 1].max(cur[j])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Scores one trajectory (see the module doc).
pub fn score(
    tasktype: &str,
    taskname: &str,
    key_actions: &[String],
    trajectory: &[TrajectoryRecord],
) -> CaseScore {
    let mut remaining: Vec<String> = key_actions.to_vec();
    let mut reward = 0u32;
    let mut pre_action = String::new();
    let mut flag = false;
    let mut rewarded: Vec<String> = Vec::new();
    let mut navigated: Vec<Option<&str>> = Vec::new();
    let name_lower = taskname.to_lowercase();
    for t in trajectory {
        let mut action = t.action.clone();
        let item = t.object.as_deref();
        if action == "navigate to" {
            navigated.push(item);
        }
        let skipped = matches!(
            action.as_str(),
            "init" | "observe" | "move forward" | "navigate to" | "error"
        );
        if skipped || !t.succeeded() {
            if t.succeeded() {
                pre_action = match item {
                    Some(i) => format!("{action} {i}"),
                    None => action.clone(),
                };
            }
            continue;
        }
        if action.contains("end") {
            if tasktype == "single_search" {
                let found = t
                    .legal_objects
                    .iter()
                    .any(|o| name_lower.contains(&o.to_lowercase()));
                if found {
                    reward += 1;
                } else if key_actions.contains(&pre_action) {
                    reward += 1;
                    flag = true;
                    break;
                }
            } else {
                reward += 1;
                rewarded.push(action.clone());
            }
        } else if let Some(i) = item {
            if action.starts_with("put") {
                action = "put".into();
            }
            let k = format!("{action} {i}");
            if let Some(pos) = remaining.iter().position(|r| *r == k) {
                remaining.remove(pos);
                rewarded.push(k);
                reward += 1;
            }
        }
        pre_action = match item {
            Some(i) => format!("{action} {i}"),
            None => action,
        };
    }
    let ordered: Vec<String> = key_actions
        .iter()
        .filter(|k| !is_navigation_like(k))
        .cloned()
        .collect();
    let total = ordered.len() as u32;
    let completeness = if total > 0 {
        f64::from(reward) / f64::from(total)
    } else {
        0.0
    };
    let success = total > 0 && reward >= total;
    let efficiency = if success && !trajectory.is_empty() {
        (key_actions.len() as f64 + 1.0) / trajectory.len() as f64
    } else {
        0.0
    };
    let order_aware_completeness = if tasktype == "single_search" {
        completeness
    } else if ordered.is_empty() {
        0.0
    } else {
        lcs_len(&rewarded, &ordered) as f64 / ordered.len() as f64
    };
    let repeat_rate = if navigated.is_empty() {
        0.0
    } else {
        let mut distinct: Vec<Option<&str>> = navigated.clone();
        distinct.sort();
        distinct.dedup();
        (navigated.len() - distinct.len()) as f64 / navigated.len() as f64
    };
    CaseScore {
        success,
        efficiency,
        completeness,
        order_aware_completeness,
        repeat_rate,
        reward,
        total,
        key_action_success: flag,
    }
}

/// Whether a case was scored by the benchmark's rules, or its episode failed outside them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// The episode ran to an end the benchmark scores.
    #[default]
    Scored,
    /// The episode failed for a reason outside the benchmark's rules (a panic, a world,
    /// harness or policy error, a decision timeout, a scene that cannot be loaded): its
    /// metrics are zero and `error` says what failed.
    InfrastructureFailure,
}

/// One line of `cases.jsonl`: a case's identity, its metrics and its trajectory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    /// The case's identity.
    pub identity: IntOrString,
    /// The scene.
    pub scene: String,
    /// The task type.
    pub tasktype: String,
    /// The reporting category.
    pub category: Category,
    /// The paraphrase index.
    pub instruction_idx: IntOrString,
    /// The task query the model saw.
    pub taskquery: String,
    /// 1 when the case succeeded, else 0.
    pub success: u8,
    /// Search efficiency.
    pub efficiency: f64,
    /// Task completeness.
    pub completeness: f64,
    /// Order-aware completeness.
    pub order_aware_completeness: f64,
    /// Repeat rate.
    pub repeat_rate: f64,
    /// Executed steps (init included).
    pub steps: u32,
    /// The step limit of the task type.
    pub max_steps: u32,
    /// Why the episode ended.
    pub end_reason: Option<EndReason>,
    /// The key actions.
    pub key_actions: Vec<String>,
    /// The mode the case ran in.
    pub mode: Mode,
    /// The policy that played it.
    pub policy: String,
    /// The world it ran in (`thor-lite`, `ai2thor`...).
    pub simulator: String,
    /// The trajectory records.
    pub trajectory: Vec<TrajectoryRecord>,
    /// Scored, or an infrastructure failure (absent in older files: scored).
    #[serde(default)]
    pub status: CaseStatus,
    /// What failed, for an infrastructure failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl CaseResult {
    /// Whether the case was scored (not an infrastructure failure).
    pub fn is_scored(&self) -> bool {
        self.status == CaseStatus::Scored
    }

    /// Marks the result as an infrastructure failure: the metrics become zero (the case is
    /// not a success, whatever the partial trajectory holds) and `error` records why.
    pub fn into_infrastructure_failure(mut self, error: impl Into<String>) -> Self {
        self.status = CaseStatus::InfrastructureFailure;
        self.error = Some(error.into());
        self.success = 0;
        self.efficiency = 0.0;
        self.completeness = 0.0;
        self.order_aware_completeness = 0.0;
        self.repeat_rate = 0.0;
        self
    }

    /// The line of a case whose episode produced no result at all (its harness was lost in a
    /// panic, or it never ran).
    pub fn infrastructure_failure(
        case: &Case,
        error: impl Into<String>,
        mode: Mode,
        policy: &str,
        simulator: &str,
    ) -> Self {
        CaseResult::new(case, Vec::new(), 0, None, mode, policy, simulator)
            .into_infrastructure_failure(error)
    }

    /// Scores a finished episode of a case.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        case: &Case,
        trajectory: Vec<TrajectoryRecord>,
        steps: u32,
        end_reason: Option<EndReason>,
        mode: Mode,
        policy: &str,
        simulator: &str,
    ) -> Self {
        let key_actions = case.key_actions();
        let s = score(&case.tasktype, &case.taskname, &key_actions, &trajectory);
        CaseResult {
            identity: case.identity.clone(),
            scene: case.scene.clone(),
            tasktype: case.tasktype.clone(),
            category: case.category(),
            instruction_idx: case.instruction_idx.clone(),
            taskquery: case.taskquery.clone(),
            success: u8::from(s.success),
            efficiency: s.efficiency,
            completeness: s.completeness,
            order_aware_completeness: s.order_aware_completeness,
            repeat_rate: s.repeat_rate,
            steps,
            max_steps: case.step_limit(),
            end_reason,
            key_actions,
            mode,
            policy: policy.to_string(),
            simulator: simulator.to_string(),
            trajectory,
            status: CaseStatus::Scored,
            error: None,
        }
    }
}

/// Means over a group of cases.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupStats {
    /// Number of cases.
    pub cases: usize,
    /// Mean success, in [0, 1].
    pub success_rate: f64,
    /// Mean search efficiency.
    pub search_efficiency: f64,
    /// Mean task completeness, in [0, 1].
    pub task_completeness: f64,
    /// Mean order-aware completeness, in [0, 1].
    pub order_aware_completeness: f64,
    /// Mean repeat rate, in [0, 1].
    pub repeat_rate: f64,
}

impl GroupStats {
    fn of<'a>(results: impl Iterator<Item = &'a CaseResult>) -> GroupStats {
        let mut g = GroupStats::default();
        for r in results {
            g.cases += 1;
            g.success_rate += f64::from(r.success);
            g.search_efficiency += r.efficiency;
            g.task_completeness += r.completeness;
            g.order_aware_completeness += r.order_aware_completeness;
            g.repeat_rate += r.repeat_rate;
        }
        if g.cases > 0 {
            let n = g.cases as f64;
            g.success_rate /= n;
            g.search_efficiency /= n;
            g.task_completeness /= n;
            g.order_aware_completeness /= n;
            g.repeat_rate /= n;
        }
        g
    }
}

/// A case that failed for infrastructure reasons, as the summary lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InfrastructureFailure {
    /// The case's identity.
    pub identity: IntOrString,
    /// The scene.
    pub scene: String,
    /// What failed.
    pub error: String,
}

/// The summary of a run. The top-level rates and `per_category` are over every selected case,
/// an infrastructure failure counting as an unsuccessful case with zero metrics;
/// `over_scored` gives the same means over the scored cases only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of cases selected (every line of `cases.jsonl`).
    pub cases: usize,
    /// Cases scored by the benchmark's rules.
    pub cases_scored: usize,
    /// Cases whose episode failed for infrastructure reasons (listed in `failures`).
    pub cases_failed_infrastructure: usize,
    /// Mean success over all selected cases, in [0, 1].
    pub success_rate: f64,
    /// Mean search efficiency.
    pub search_efficiency: f64,
    /// Mean task completeness, in [0, 1].
    pub task_completeness: f64,
    /// Mean order-aware completeness, in [0, 1].
    pub order_aware_completeness: f64,
    /// Mean repeat rate, in [0, 1].
    pub repeat_rate: f64,
    /// The same means per category (categories with cases only).
    pub per_category: BTreeMap<Category, GroupStats>,
    /// The means over the scored cases only.
    pub over_scored: GroupStats,
    /// The infrastructure failures.
    pub failures: Vec<InfrastructureFailure>,
    /// The mode.
    pub mode: Mode,
    /// The policy.
    pub policy: String,
    /// The world the numbers come from.
    pub simulator: String,
    /// What the numbers are comparable with.
    pub label: String,
}

/// What numbers from a world compare with.
pub fn simulator_label(simulator: &str) -> String {
    match simulator {
        "thor-lite" => {
            "numbers from thor-lite, ember's embedded simulator: a different observation \
                        setting than the Unity-rendered AI2-THOR of published Embodied-Reasoner \
                        results, not directly comparable with them"
                .into()
        }
        "ai2thor" => "numbers from AI2-THOR (Unity-rendered), the setting of published \
                      Embodied-Reasoner results"
            .into(),
        other => format!(
            "numbers from '{other}': not the Unity-rendered AI2-THOR of published \
             Embodied-Reasoner results, not directly comparable with them"
        ),
    }
}

fn single<'a>(
    results: &'a [CaseResult],
    what: &str,
    get: impl Fn(&'a CaseResult) -> String,
) -> Result<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for r in results {
        *seen.entry(get(r)).or_default() += 1;
    }
    if seen.len() > 1 {
        let list: Vec<String> = seen
            .iter()
            .map(|(k, n)| format!("'{k}' ({n} cases)"))
            .collect();
        return Err(Error::Invalid(format!(
            "results mix {what}s: {}; summarise them separately",
            list.join(", ")
        )));
    }
    Ok(seen.into_keys().next().unwrap_or_default())
}

impl Summary {
    /// Summarises results of one mode, policy and simulator.
    pub fn from_results(results: &[CaseResult]) -> Result<Summary> {
        let mode = single(results, "mode", |r| r.mode.as_str().to_string())?;
        let policy = single(results, "policy", |r| r.policy.clone())?;
        let simulator = single(results, "simulator", |r| r.simulator.clone())?;
        let mode: Mode = if mode.is_empty() {
            Mode::default()
        } else {
            mode.parse()?
        };
        let all = GroupStats::of(results.iter());
        let mut per_category = BTreeMap::new();
        for c in Category::ALL {
            let g = GroupStats::of(results.iter().filter(|r| r.category == c));
            if g.cases > 0 {
                per_category.insert(c, g);
            }
        }
        let over_scored = GroupStats::of(results.iter().filter(|r| r.is_scored()));
        let failures: Vec<InfrastructureFailure> = results
            .iter()
            .filter(|r| !r.is_scored())
            .map(|r| InfrastructureFailure {
                identity: r.identity.clone(),
                scene: r.scene.clone(),
                error: r.error.clone().unwrap_or_default(),
            })
            .collect();
        Ok(Summary {
            cases: all.cases,
            cases_scored: over_scored.cases,
            cases_failed_infrastructure: failures.len(),
            over_scored,
            failures,
            success_rate: all.success_rate,
            search_efficiency: all.search_efficiency,
            task_completeness: all.task_completeness,
            order_aware_completeness: all.order_aware_completeness,
            repeat_rate: all.repeat_rate,
            per_category,
            mode,
            label: simulator_label(&simulator),
            simulator,
            policy,
        })
    }

    /// A plain-text table (percentages) for the terminal.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Embodied-Reasoner: {} cases, mode {}, policy {}",
            self.cases,
            self.mode,
            if self.policy.is_empty() {
                "?"
            } else {
                &self.policy
            }
        );
        let _ = writeln!(s, "({})", self.label);
        let _ = writeln!(
            s,
            "{:<12} {:>6} {:>9} {:>11} {:>13} {:>9} {:>8}",
            "category", "cases", "success%", "efficiency%", "completeness%", "ordered%", "repeat%"
        );
        let row = |s: &mut String, name: &str, g: &GroupStats| {
            let _ = writeln!(
                s,
                "{:<12} {:>6} {:>9.2} {:>11.2} {:>13.2} {:>9.2} {:>8.2}",
                name,
                g.cases,
                100.0 * g.success_rate,
                100.0 * g.search_efficiency,
                100.0 * g.task_completeness,
                100.0 * g.order_aware_completeness,
                100.0 * g.repeat_rate
            );
        };
        for (c, g) in &self.per_category {
            row(&mut s, c.as_str(), g);
        }
        let all = GroupStats {
            cases: self.cases,
            success_rate: self.success_rate,
            search_efficiency: self.search_efficiency,
            task_completeness: self.task_completeness,
            order_aware_completeness: self.order_aware_completeness,
            repeat_rate: self.repeat_rate,
        };
        row(&mut s, "all", &all);
        if self.cases_failed_infrastructure > 0 {
            row(&mut s, "scored only", &self.over_scored);
            let _ = writeln!(
                s,
                "{} of {} cases scored; {} failed for infrastructure reasons (counted as \
                 unsuccessful in the rows above):",
                self.cases_scored, self.cases, self.cases_failed_infrastructure
            );
            for f in &self.failures {
                let _ = writeln!(s, "  case {} ({}): {}", f.identity, f.scene, f.error);
            }
        }
        s
    }
}

/// Reads a `cases.jsonl` file (one [`CaseResult`] per line; blank lines skipped).
pub fn read_results(path: impl AsRef<Path>) -> Result<Vec<CaseResult>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_results(&text, &path.display().to_string())
}

/// Parses `cases.jsonl` text; `source` names it in errors.
pub fn parse_results(text: &str, source: &str) -> Result<Vec<CaseResult>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let r: CaseResult = serde_json::from_str(line).map_err(|e| {
            Error::Invalid(format!(
                "{source}:{}:{}: not a case result: {e}",
                i + 1,
                e.column()
            ))
        })?;
        out.push(r);
    }
    Ok(out)
}

/// Merges the results of several shards (each named, e.g. by its file), rejecting an identity
/// that appears twice; the merged list is sorted by identity.
pub fn merge_shards(shards: &[(String, Vec<CaseResult>)]) -> Result<Vec<CaseResult>> {
    let mut seen: HashMap<&IntOrString, (&str, usize)> = HashMap::new();
    let mut out = Vec::new();
    for (name, results) in shards {
        for (i, r) in results.iter().enumerate() {
            if let Some((other, j)) = seen.insert(&r.identity, (name, i)) {
                return Err(Error::Invalid(format!(
                    "case identity {} appears twice: {other} (result #{}) and {name} (result #{})",
                    r.identity,
                    j + 1,
                    i + 1
                )));
            }
            out.push(r.clone());
        }
    }
    out.sort_by(|a, b| a.identity.cmp(&b.identity));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(action: &str, object: Option<&str>, success: bool) -> TrajectoryRecord {
        TrajectoryRecord::simple(action, object, success)
    }

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn perfect_transport_run() {
        let k = keys(&[
            "navigate to CounterTop",
            "pickup Cup",
            "navigate to GarbageCan",
            "put GarbageCan",
            "end",
        ]);
        let t = vec![
            rec("init", None, true),
            rec("navigate to", Some("CounterTop"), true),
            rec("pickup", Some("Cup"), true),
            rec("navigate to", Some("GarbageCan"), true),
            rec("put", Some("GarbageCan"), true),
            rec("end", None, true),
        ];
        let s = score("pickup_and_put", "Put the cup in the bin.", &k, &t);
        assert_eq!((s.reward, s.total), (3, 3));
        assert!(s.success);
        // (5 + 1) / 6
        assert_eq!(s.efficiency, 1.0);
        assert_eq!(s.completeness, 1.0);
        assert_eq!(s.order_aware_completeness, 1.0);
        assert_eq!(s.repeat_rate, 0.0);
    }

    #[test]
    fn detours_failures_and_put_in() {
        let k = keys(&[
            "navigate to Fridge",
            "open Fridge",
            "pickup Apple",
            "close Fridge",
            "end",
        ]);
        let t = vec![
            rec("init", None, true),
            rec("observe", None, true),
            rec("error", None, false),
            rec("navigate to", Some("CounterTop"), true),
            rec("pickup", Some("Apple"), false), // failed: no reward
            rec("navigate to", Some("Fridge"), true),
            rec("open", Some("Fridge"), true),
            rec("pickup", Some("Apple"), true),
            rec("pickup", Some("Apple"), true), // already consumed
            rec("close", Some("Fridge"), true),
            rec("navigate to", Some("Fridge"), true),
            rec("end", None, true),
        ];
        let s = score("single_pickup_from_closerep", "x", &k, &t);
        assert_eq!((s.reward, s.total), (4, 4));
        assert!(s.success);
        assert_eq!(s.efficiency, 6.0 / 12.0);
        // Navigations: CounterTop, Fridge, Fridge -> 1 repeat of 3.
        assert!((s.repeat_rate - 1.0 / 3.0).abs() < 1e-12);
        // `put in` counts as `put`.
        let k = keys(&["navigate to Box", "put Box", "end"]);
        let t = vec![
            rec("init", None, true),
            rec("put in", Some("Box"), true),
            rec("end", None, true),
        ];
        let s = score("pickup_and_put", "x", &k, &t);
        assert!(s.success);
        assert_eq!(s.efficiency, 4.0 / 3.0); // not capped at 1
    }

    #[test]
    fn order_aware_completeness_uses_lcs() {
        let k = keys(&[
            "navigate to A",
            "pickup Apple",
            "navigate to B",
            "put Box",
            "pickup Pen",
            "put Box",
            "end",
        ]);
        // Pen first, then apple, then one put, then end: rewarded order pickup Pen, pickup Apple,
        // put Box, end; ordered: pickup Apple, put Box, pickup Pen, put Box, end.
        let t = vec![
            rec("init", None, true),
            rec("pickup", Some("Pen"), true),
            rec("pickup", Some("Apple"), true),
            rec("put", Some("Box"), true),
            rec("end", None, true),
        ];
        let s = score("ordered_pickup_two_object_and_put", "x", &k, &t);
        assert_eq!((s.reward, s.total), (4, 5));
        assert!(!s.success);
        assert_eq!(s.efficiency, 0.0);
        assert_eq!(s.completeness, 0.8);
        // LCS(["pickup Pen","pickup Apple","put Box","end"], ordered) = 3 (Apple, put, end).
        assert_eq!(s.order_aware_completeness, 0.6);
        assert_eq!(lcs_len(&[1, 3, 2, 4], &[1, 2, 3, 4]), 3);
        assert_eq!(lcs_len::<u8>(&[], &[1]), 0);
    }

    #[test]
    fn single_search_end_rule() {
        let k = keys(&["navigate to CounterTop", "end"]);
        let name = "Where is the Bread? Please find it.";
        // 1. A legal object named in the task name when ending: success.
        let mut end = rec("end", None, true);
        end.legal_objects = vec!["Fridge".into(), "Bread".into()];
        let t = vec![
            rec("init", None, true),
            rec("navigate to", Some("Fridge"), true),
            end.clone(),
        ];
        let s = score("single_search", name, &k, &t);
        assert!(s.success && !s.key_action_success);
        assert_eq!(s.efficiency, 1.0);
        // 2. Not visible, but the last successful action was the key navigation: success.
        let mut end2 = rec("end", None, true);
        end2.legal_objects = vec!["CounterTop".into()];
        let t = vec![
            rec("init", None, true),
            rec("navigate to", Some("CounterTop"), true),
            rec("pickup", Some("Knife"), false), // failures do not change the previous action
            end2.clone(),
        ];
        let s = score("single_search", name, &k, &t);
        assert!(s.success && s.key_action_success);
        assert_eq!(s.efficiency, 3.0 / 4.0);
        assert_eq!(s.order_aware_completeness, 1.0);
        // 3. Neither: failure.
        let t = vec![
            rec("init", None, true),
            rec("navigate to", Some("Fridge"), true),
            end2.clone(),
        ];
        let s = score("single_search", name, &k, &t);
        assert!(!s.success);
        assert_eq!(s.completeness, 0.0);
        // Substring, case-insensitive: "Pen" is in "pencil".
        let mut end3 = rec("end", None, true);
        end3.legal_objects = vec!["Pen".into()];
        let s = score(
            "single_search",
            "Find my PENCIL",
            &k,
            &[rec("init", None, true), end3],
        );
        assert!(s.success);
        // The rule is for single_search only: from_closerep ends get +1 regardless.
        let k2 = keys(&["navigate to Drawer", "open Drawer", "end"]);
        let t = vec![
            rec("init", None, true),
            rec("open", Some("Drawer"), true),
            end2,
        ];
        let s = score("single_search_from_closerep", name, &k2, &t);
        assert!(s.success);
        assert_eq!(s.order_aware_completeness, 1.0);
    }

    #[test]
    fn end_records_from_the_ending_rules() {
        let k = keys(&[
            "navigate to Fridge",
            "open Fridge",
            "pickup Apple",
            "close Fridge",
            "end",
        ]);
        let body = vec![
            rec("init", None, true),
            rec("navigate to", Some("Fridge"), true),
            rec("open", Some("Fridge"), true),
            rec("pickup", Some("Apple"), true),
            rec("close", Some("Fridge"), true),
        ];
        // er-compat quirk: the step limit (or 3 calls without a step) appends end with success 1,
        // so a run that did every key action but never said end succeeds.
        let mut compat = body.clone();
        compat.push(rec(
            "end",
            None,
            EndReason::StepLimit.end_record_success(Mode::ErCompat),
        ));
        let s = score("single_pickup_from_closerep", "x", &k, &compat);
        assert!(s.success);
        assert_eq!(s.efficiency, 1.0);
        // strict: the same run fails without an explicit end.
        let mut strict = body.clone();
        strict.push(rec(
            "end",
            None,
            EndReason::StepLimit.end_record_success(Mode::Strict),
        ));
        let s = score("single_pickup_from_closerep", "x", &k, &strict);
        assert!(!s.success);
        assert_eq!(s.completeness, 0.75);
        // Four identical emissions: end with success 0 in both modes.
        let mut rep = body.clone();
        rep.push(rec(
            "end",
            None,
            EndReason::Repeated.end_record_success(Mode::ErCompat),
        ));
        assert!(!score("single_pickup_from_closerep", "x", &k, &rep).success);
    }

    fn result(id: i64, tasktype: &str, success: u8, eff: f64, comp: f64) -> CaseResult {
        CaseResult {
            identity: IntOrString::Int(id),
            scene: "FloorPlan5".into(),
            tasktype: tasktype.into(),
            category: Category::of(tasktype),
            instruction_idx: IntOrString::Int(0),
            taskquery: String::new(),
            success,
            efficiency: eff,
            completeness: comp,
            order_aware_completeness: comp,
            repeat_rate: 0.0,
            steps: 3,
            max_steps: 22,
            end_reason: Some(EndReason::ModelEnd),
            key_actions: vec![],
            mode: Mode::ErCompat,
            policy: "oracle".into(),
            simulator: "thor-lite".into(),
            trajectory: vec![],
            status: CaseStatus::Scored,
            error: None,
        }
    }

    #[test]
    fn infrastructure_failures_count_against_all_selected_cases_and_are_listed() {
        let rs = vec![
            result(1, "single_search", 1, 1.0, 1.0),
            result(2, "single_search", 1, 1.0, 1.0),
            result(3, "single_toggle", 1, 0.5, 1.0)
                .into_infrastructure_failure("a world call panicked: boom"),
            result(4, "pickup_and_put", 0, 0.0, 0.5),
        ];
        assert_eq!(rs[2].success, 0);
        assert_eq!(rs[2].completeness, 0.0);
        let s = Summary::from_results(&rs).unwrap();
        assert_eq!(
            (s.cases, s.cases_scored, s.cases_failed_infrastructure),
            (4, 3, 1)
        );
        assert_eq!(s.success_rate, 0.5);
        assert!((s.over_scored.success_rate - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.over_scored.cases, 3);
        assert_eq!(s.failures.len(), 1);
        assert_eq!(s.failures[0].identity, IntOrString::Int(3));
        assert!(s.failures[0].error.contains("boom"));
        let table = s.table();
        assert!(table.contains("scored only"), "{table}");
        assert!(table.contains("3 of 4 cases scored; 1 failed"), "{table}");
        // The status survives a round trip, and older lines without it read as scored.
        let line = serde_json::to_value(&rs[2]).unwrap();
        assert_eq!(line["status"], "infrastructure_failure");
        let back: CaseResult = serde_json::from_value(line).unwrap();
        assert!(!back.is_scored());
        let mut old = serde_json::to_value(&rs[0]).unwrap();
        old.as_object_mut().unwrap().remove("status");
        let back: CaseResult = serde_json::from_value(old).unwrap();
        assert!(back.is_scored() && back.error.is_none());
    }

    #[test]
    fn summary_means_categories_and_table() {
        let rs = vec![
            result(1, "single_search", 1, 1.0, 1.0),
            result(2, "single_search", 0, 0.0, 0.0),
            result(3, "single_toggle", 1, 0.5, 1.0),
            result(4, "pickup_and_put", 0, 0.0, 0.5),
        ];
        let s = Summary::from_results(&rs).unwrap();
        assert_eq!(s.cases, 4);
        assert_eq!(s.success_rate, 0.5);
        assert_eq!(s.search_efficiency, 0.375);
        assert_eq!(s.task_completeness, 0.625);
        assert_eq!(s.per_category.len(), 3);
        assert_eq!(s.per_category[&Category::Search].cases, 2);
        assert_eq!(s.per_category[&Category::Search].success_rate, 0.5);
        assert_eq!(s.per_category[&Category::Transport].task_completeness, 0.5);
        assert!(s.label.contains("thor-lite") && s.label.contains("Unity"));
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["per_category"]["Search"]["cases"], 2);
        assert_eq!(v["mode"], "er-compat");
        let table = s.table();
        assert!(table.contains("Search"), "{table}");
        assert!(table.lines().last().unwrap().starts_with("all"), "{table}");
        assert!(table.contains("50.00"), "{table}");
        // Mixed modes are refused.
        let mut mixed = rs.clone();
        mixed[0].mode = Mode::Strict;
        let e = Summary::from_results(&mixed).unwrap_err().to_string();
        assert!(
            e.contains("mix modes") && e.contains("'strict' (1 cases)"),
            "{e}"
        );
    }

    #[test]
    fn shards_merge_and_reject_duplicates() {
        let a = vec![
            result(3, "single_search", 1, 1.0, 1.0),
            result(1, "single_search", 0, 0.0, 0.0),
        ];
        let b = vec![result(2, "single_toggle", 1, 1.0, 1.0)];
        let m = merge_shards(&[("a.jsonl".into(), a.clone()), ("b.jsonl".into(), b)]).unwrap();
        let ids: Vec<String> = m.iter().map(|r| r.identity.to_string()).collect();
        assert_eq!(ids, ["1", "2", "3"]);
        let e = merge_shards(&[
            ("a.jsonl".into(), a.clone()),
            ("c.jsonl".into(), vec![a[1].clone()]),
        ])
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "case identity 1 appears twice: a.jsonl (result #2) and c.jsonl (result #1)"
        );
        // cases.jsonl round trip, with a located error.
        let text: String = m
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect();
        assert_eq!(parse_results(&text, "x").unwrap(), m);
        let e = parse_results(&format!("{text}\n{{oops\n"), "run/cases.jsonl")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("run/cases.jsonl:5:"), "{e}");
    }
}
