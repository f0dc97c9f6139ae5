//! The Embodied-Reasoner harness under the event loop, on thor-lite: the built-in oracle
//! (which plays the case's key actions from the harness's privileged information) solves a
//! sample case, and its summary is the benchmark's case line; the random policy, over several
//! seeds and training-scene cases, behaves as a uniform choice over the legal actions and
//! succeeds no more often than such a choice can.
//!
//! How the random baseline is judged. A wrapper records, at every decision, the legal actions
//! the loop offered and the action chosen. For a policy that picks uniformly among the `n_t`
//! legal actions, the chance that decision `t` picks an action of a set `K_t` fixed before the
//! decision is exactly `p_t = |K_t ∩ legal_t| / n_t`, so the hits `h_t = 1[choice ∈ K_t]` minus
//! their compensator `p_t` sum to a martingale with increments in `[-1, 1]` and conditional
//! variance `p_t (1 - p_t)`. Freedman's inequality bounds how far the observed hits can stray
//! from the computed expectation `Σ p_t` (see [`freedman`]). We check:
//! - calibration: hits of each verb (`navigate to`, `pickup`, ..., `end`), of the first half
//!   of the legal list, and of the case's not-yet-chosen key interactions, against their
//!   compensators, both ways;
//! - successes: a case whose key interactions (`pickup X`, `put Y`, `open Z`...; navigation and
//!   `end` aside) number `m >= 1` can only succeed when each was chosen at least once, so
//!   `success <= H / m` with `H` the distinct key interactions chosen, and the successes over all
//!   episodes are at most `Σ A_e / m_e` (the computed expected number: `A_e` is the episode's
//!   compensator of first choices of its key interactions) plus Freedman's deviation;
//! - that every choice is legal, every verb offered is chosen somewhere, a seed replays the same
//!   choices and different seeds make different ones.
//!
//! Every case runs with the same episode seed, as `ember eval` runs them; the martingale argument
//! needs fresh draws at every decision, so a policy that replayed the same draws in every case of
//! a run fails the calibration (it did, before `RandomPolicy` mixed the episode's id into its
//! seed: `end` was chosen 59 times where 17 were expected).
//!
//! The same judge rejects a policy that plays the oracle's actions (see
//! `the_baseline_judge_rejects_a_policy_that_plays_the_key_actions`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use ember_agent::action::Action;
use ember_agent::er::cases::{Case, load_cases};
use ember_agent::er::executor::ReachableCache;
use ember_agent::er::generate::is_evaluation_scene;
use ember_agent::er::{CaseResult, ErHarness, Mode, PromptVariant};
use ember_agent::event_loop::{EpisodeEnd, LoopSettings, StopSignal, run_episode, share_policy};
use ember_agent::memory::{Budget, EstimatedTokens, Memory};
use ember_agent::policies::{OraclePolicy, RandomPolicy, decision_text};
use ember_agent::policy::{Context, Decision, EpisodeInfo, Policy};
use ember_agent::recorder::{NullRecorder, Recorder};
use ember_sim_bridge::world::SimWorld;

fn world() -> Box<SimWorld> {
    Box::new(ember_tests::er_world::world())
}

async fn play_case(
    case: Case,
    episode_seed: u64,
    policy: Box<dyn Policy>,
    name: &str,
    cache: &Arc<ReachableCache>,
) -> (EpisodeEnd, CaseResult) {
    let harness = ErHarness::new(case, Mode::ErCompat, PromptVariant::Put, episode_seed)
        .with_policy_name(name)
        .with_reachable_cache(cache.clone());
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
    let result: CaseResult = serde_json::from_value(out.report.summary.clone())
        .unwrap_or_else(|e| panic!("summary {}: {e}", out.report.summary));
    (out.report.end, result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oracle_solves_a_case_through_the_loop() {
    let case = ember_tests::er_world::sample_case("5");
    let cache = Arc::new(ReachableCache::new());
    let (end, r) = play_case(case, 3, Box::new(OraclePolicy::new()), "oracle", &cache).await;
    assert_eq!(end, EpisodeEnd::Completed);
    assert_eq!(r.success, 1, "{:#?}", r.trajectory);
    assert_eq!(r.efficiency, 1.0);
    assert_eq!(r.policy, "oracle");
    assert_eq!(r.trajectory.first().unwrap().action, "init");
    assert_eq!(r.trajectory.last().unwrap().action, "end");
}

// ---------------------------------------------------------------------------------------------
// The random baseline.

/// Policy seeds of the baseline.
const SEEDS: [u64; 3] = [1, 2, 3];
/// Cases per task type (single_search aside: it has no key interaction, see [`baseline_cases`]).
const PER_TYPE: usize = 3;
/// The chance that a truly uniform policy fails one check (each check, each side).
const DELTA: f64 = 1e-4;

/// One decision: the legal actions offered (as the reply text names them) and the one chosen.
#[derive(Clone, Debug, PartialEq)]
struct Choice {
    legal: Vec<String>,
    chosen: String,
}

/// Records what a policy was offered and what it chose, and passes everything else through.
struct Watched {
    inner: Box<dyn Policy>,
    log: Arc<Mutex<Vec<Choice>>>,
}

/// The action named in a reply's `<DecisionMaking>` tag.
fn tagged(raw: &str) -> String {
    let open = "<DecisionMaking>";
    let Some(i) = raw.rfind(open) else {
        return String::new();
    };
    let rest = &raw[i + open.len()..];
    rest[..rest.find("</DecisionMaking>").unwrap_or(rest.len())]
        .trim()
        .to_string()
}

fn action_text(a: &Action) -> String {
    tagged(&decision_text(a))
}

impl Policy for Watched {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn needs_privileged(&self) -> bool {
        self.inner.needs_privileged()
    }
    fn reset(&mut self, episode: &EpisodeInfo) -> ember_agent::error::Result<()> {
        self.inner.reset(episode)
    }
    fn decide(
        &mut self,
        context: &Context,
        on_text: &mut dyn FnMut(&str),
    ) -> ember_agent::error::Result<Decision> {
        let d = self.inner.decide(context, on_text)?;
        let chosen = match &d.action {
            Some(a) => action_text(a),
            None => tagged(&d.raw),
        };
        self.log.lock().unwrap().push(Choice {
            legal: context.legal_actions.iter().map(action_text).collect(),
            chosen,
        });
        Ok(d)
    }
}

/// A broken "random" policy: plays the case's key actions in order (what the oracle plays),
/// known to it from the case file, not from privileged context.
struct PlaysKeyActions {
    keys: BTreeMap<String, Vec<String>>,
    current: Vec<String>,
    next: usize,
}

impl Policy for PlaysKeyActions {
    fn name(&self) -> &str {
        "random"
    }
    fn reset(&mut self, episode: &EpisodeInfo) -> ember_agent::error::Result<()> {
        self.current = self.keys.get(&episode.id).cloned().unwrap_or_default();
        self.next = 0;
        Ok(())
    }
    fn decide(
        &mut self,
        _context: &Context,
        _on_text: &mut dyn FnMut(&str),
    ) -> ember_agent::error::Result<Decision> {
        let a = self
            .current
            .get(self.next)
            .cloned()
            .unwrap_or_else(|| "end".into());
        self.next += 1;
        Ok(Decision {
            raw: format!("<DecisionMaking>{}</DecisionMaking>", a.trim()),
            ..Default::default()
        })
    }
}

/// One episode of the baseline.
struct Episode {
    case: Case,
    seed: u64,
    choices: Vec<Choice>,
    success: bool,
}

/// The baseline's cases: the first [`PER_TYPE`] committed training-scene cases of each task type
/// that has a key interaction (all but `single_search`, whose success needs only `end` with
/// the target in view and is not bounded by choices of key interactions).
fn baseline_cases() -> Vec<Case> {
    let cases = load_cases(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/er-cases-train.json"
    ))
    .unwrap();
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    let picked: Vec<Case> = cases
        .into_iter()
        .filter(|c| {
            let n = per.entry(c.tasktype.clone()).or_default();
            *n += 1;
            !key_interactions(c).is_empty() && *n <= PER_TYPE
        })
        .collect();
    for c in &picked {
        assert!(!is_evaluation_scene(&c.scene), "{}", c.label());
    }
    assert!(picked.len() >= 20, "only {} cases", picked.len());
    picked
}

/// The case's key interactions: its key actions but navigation-like ones and `end`, distinct.
fn key_interactions(c: &Case) -> BTreeSet<String> {
    c.key_actions()
        .iter()
        .map(|k| k.trim().to_string())
        .filter(|k| {
            k != "end"
                && !k.contains("navigate to")
                && !k.contains("observe")
                && !k.contains("move forward")
        })
        .collect()
}

/// The episode seed of every case, as `ember eval` seeds every case with `run.seed` (the
/// harness passes it to the world's reset and to the policy as `EpisodeInfo::seed`): the cases
/// of a run differ only by their identity, which the policy must mix in to draw fresh actions.
const EPISODE_SEED: u64 = 3;

/// Plays every case with every seed, two episodes at a time; `make` builds the policy for a seed.
async fn run_baseline(
    cases: &[Case],
    seeds: &[u64],
    make: impl Fn(u64) -> Box<dyn Policy>,
) -> Vec<Episode> {
    let cache = Arc::new(ReachableCache::new());
    let jobs: Vec<(Case, u64, u64)> = seeds
        .iter()
        .flat_map(|s| cases.iter().map(move |c| (c.clone(), *s, EPISODE_SEED)))
        .collect();
    let half = jobs.len().div_ceil(2);
    let lane = |jobs: Vec<(Case, u64, u64)>| {
        let cache = cache.clone();
        let policies: Vec<Box<dyn Policy>> = jobs.iter().map(|(_, s, _)| make(*s)).collect();
        async move {
            let mut out = Vec::new();
            for ((case, seed, episode_seed), inner) in jobs.into_iter().zip(policies) {
                let log = Arc::new(Mutex::new(Vec::new()));
                let policy = Box::new(Watched {
                    inner,
                    log: log.clone(),
                });
                let (end, r) =
                    play_case(case.clone(), episode_seed, policy, "random", &cache).await;
                assert_eq!(end, EpisodeEnd::Completed, "{}", case.label());
                let choices = std::mem::take(&mut *log.lock().unwrap());
                out.push(Episode {
                    case,
                    seed,
                    choices,
                    success: r.success == 1,
                });
            }
            out
        }
    };
    let b = jobs[half..].to_vec();
    let a = jobs[..half].to_vec();
    let (mut x, y) = tokio::join!(lane(a), lane(b));
    x.extend(y);
    x
}

/// Freedman's inequality, made usable with the realised variance. For a martingale with
/// increments bounded by 1 and predictable variance `V`, `P(M >= x, V <= v) <= exp(-x^2 / (2 (v
/// + x / 3)))`. Taking `v` over the dyadic levels `1, 2, 4, ..., 2^39` (a union bound over 40
/// levels) and the smallest level above the realised `V`, the deviation returned is exceeded
/// with probability at most `delta`: `x = sqrt(2 v L) + 2 L / 3` with `L = ln(40 / delta)`
/// makes the exponent at least `L`.
fn freedman(variance: f64, delta: f64) -> f64 {
    let l = (40.0 / delta).ln();
    let mut v = 1.0;
    while v < variance {
        v *= 2.0;
    }
    (2.0 * v * l).sqrt() + 2.0 * l / 3.0
}

/// Observed hits, their compensator and variance for one family of target sets.
#[derive(Default, Debug)]
struct Tally {
    hits: f64,
    expected: f64,
    variance: f64,
}

impl Tally {
    fn add(&mut self, weight: f64, p: f64, hit: bool) {
        self.hits += weight * f64::from(u8::from(hit));
        self.expected += weight * p;
        self.variance += weight * weight * p * (1.0 - p);
    }
}

fn verb_of(action: &str) -> &'static str {
    const VERBS: [&str; 9] = [
        "navigate to",
        "pickup",
        "put",
        "open",
        "close",
        "toggle",
        "observe",
        "move forward",
        "end",
    ];
    VERBS
        .into_iter()
        .find(|v| action == *v || action.starts_with(&format!("{v} ")))
        .unwrap_or("?")
}

/// What the judge measured.
#[derive(Debug, Default)]
struct Verdict {
    /// Checks that failed.
    violations: Vec<String>,
    /// Episodes, decisions, successes, and their bound (expected, deviation).
    episodes: usize,
    decisions: usize,
    successes: usize,
    expected_successes: f64,
    success_deviation: f64,
}

/// Judges episodes as a uniform choice over the legal actions (see the module doc).
fn judge(episodes: &[Episode]) -> Verdict {
    let mut v = Verdict {
        episodes: episodes.len(),
        ..Verdict::default()
    };
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let mut successes = Tally::default();
    let mut offered: BTreeSet<&str> = BTreeSet::new();
    let mut chosen_verbs: BTreeSet<&str> = BTreeSet::new();
    for e in episodes {
        let keys = key_interactions(&e.case);
        let weight = 1.0 / keys.len() as f64;
        let mut remaining = keys.clone();
        let mut first_choices = 0usize;
        for (t, c) in e.choices.iter().enumerate() {
            v.decisions += 1;
            let n = c.legal.len() as f64;
            if !c.legal.contains(&c.chosen) {
                v.violations.push(format!(
                    "{} seed {} decision {t}: chose '{}', not among the {} legal actions",
                    e.case.label(),
                    e.seed,
                    c.chosen,
                    c.legal.len()
                ));
                continue;
            }
            let verbs: Vec<&'static str> = c.legal.iter().map(|a| verb_of(a)).collect();
            offered.extend(verbs.iter().copied());
            let cv = verb_of(&c.chosen);
            chosen_verbs.insert(cv);
            for verb in verbs.iter().copied().collect::<BTreeSet<_>>() {
                let k = verbs.iter().filter(|x| **x == verb).count() as f64;
                tallies
                    .entry(format!("verb '{verb}'"))
                    .or_default()
                    .add(1.0, k / n, cv == verb);
            }
            let half = c.legal.len() / 2;
            let index = c.legal.iter().position(|a| *a == c.chosen).unwrap();
            tallies
                .entry("first half of the legal list".into())
                .or_default()
                .add(1.0, half as f64 / n, index < half);
            let k = c.legal.iter().filter(|a| remaining.contains(*a)).count() as f64;
            let hit = remaining.remove(&c.chosen);
            first_choices += usize::from(hit);
            tallies
                .entry("first choices of key interactions".into())
                .or_default()
                .add(1.0, k / n, hit);
            successes.add(weight, k / n, hit);
        }
        if e.success {
            v.successes += 1;
            if first_choices < keys.len() {
                v.violations.push(format!(
                    "{} seed {}: succeeded without choosing all of {keys:?}",
                    e.case.label(),
                    e.seed
                ));
            }
        }
    }
    for (name, t) in &tallies {
        let x = freedman(t.variance, DELTA);
        let ok = (t.hits - t.expected).abs() <= x;
        println!(
            "  {name:<40} chosen {:>6.0}  expected {:>8.2}  allowed +-{x:.2}{}",
            t.hits,
            t.expected,
            if ok { "" } else { "  VIOLATED" }
        );
        if !ok {
            v.violations.push(format!(
                "{name}: chosen {} times, a uniform choice expects {:.2} +- {x:.2}",
                t.hits, t.expected
            ));
        }
    }
    let missing: Vec<&&str> = offered.difference(&chosen_verbs).collect();
    if !missing.is_empty() {
        v.violations
            .push(format!("verbs offered but never chosen: {missing:?}"));
    }
    v.expected_successes = successes.expected;
    v.success_deviation = freedman(successes.variance, DELTA);
    if v.successes as f64 > v.expected_successes + v.success_deviation {
        v.violations.push(format!(
            "{} successes in {} episodes; a uniform choice over the legal actions expects at \
             most {:.2} (+ {:.2})",
            v.successes, v.episodes, v.expected_successes, v.success_deviation
        ));
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_baseline_is_uniform_over_legal_actions_and_bounded_by_its_expectation() {
    let cases = baseline_cases();
    let t = std::time::Instant::now();
    let episodes = run_baseline(&cases, &SEEDS, |s| Box::new(RandomPolicy::new(s))).await;
    println!(
        "random baseline: {} cases x {} seeds in {:.0} s",
        cases.len(),
        SEEDS.len(),
        t.elapsed().as_secs_f64()
    );
    let v = judge(&episodes);
    println!(
        "random baseline: {} successes in {} episodes ({} decisions); computed expectation at \
         most {:.2}, bound {:.2}",
        v.successes,
        v.episodes,
        v.decisions,
        v.expected_successes,
        v.expected_successes + v.success_deviation
    );
    assert!(v.violations.is_empty(), "{:#?}", v.violations);

    // Seeded: a seed replays its choices; different seeds choose differently.
    let by_seed = |s: u64| -> Vec<&Vec<Choice>> {
        episodes
            .iter()
            .filter(|e| e.seed == s)
            .map(|e| &e.choices)
            .collect()
    };
    for (i, a) in SEEDS.iter().enumerate() {
        for b in &SEEDS[i + 1..] {
            assert_ne!(by_seed(*a), by_seed(*b), "seeds {a} and {b} chose alike");
        }
    }
    let again = run_baseline(&cases[..2], &SEEDS[..1], |s| Box::new(RandomPolicy::new(s))).await;
    for e in &again {
        let first = episodes
            .iter()
            .find(|x| x.seed == e.seed && x.case.identity == e.case.identity)
            .unwrap();
        assert_eq!(
            e.choices,
            first.choices,
            "{} seed {} did not replay",
            e.case.label(),
            e.seed
        );
    }
}

/// The judge can fail: a policy that plays the oracle's actions (the case's key actions) fails
/// it, on the same cases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_baseline_judge_rejects_a_policy_that_plays_the_key_actions() {
    let cases = baseline_cases();
    let keys: BTreeMap<String, Vec<String>> = cases
        .iter()
        .map(|c| (c.identity.to_string(), c.key_actions()))
        .collect();
    let episodes = run_baseline(&cases, &SEEDS, |_| {
        Box::new(PlaysKeyActions {
            keys: keys.clone(),
            current: Vec::new(),
            next: 0,
        })
    })
    .await;
    let v = judge(&episodes);
    println!("{:#?}", v.violations);
    assert!(
        v.violations.iter().any(|m| m.contains("successes in")),
        "the success bound did not reject it ({} successes, bound {:.2}): {:#?}",
        v.successes,
        v.expected_successes + v.success_deviation,
        v.violations
    );
    assert!(
        v.violations
            .iter()
            .any(|m| m.starts_with("first choices of key interactions")),
        "{:#?}",
        v.violations
    );
}
