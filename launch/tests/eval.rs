//! `ember eval` end to end on thor-lite: the oracle's scores, random's, an interrupted and
//! resumed evaluation, shard merging; and an episode log read back after a SIGKILL.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{ember, repo};

fn sample_cases() -> PathBuf {
    repo().join("tests/data/er-cases-sample.json")
}

fn eval_launch() -> PathBuf {
    repo().join("launch/er-eval.toml")
}

/// `ember --log warn eval launch/er-eval.toml --cases CASES --out OUT`.
fn eval_cmd(cases: impl AsRef<Path>, out: impl AsRef<Path>) -> Command {
    let mut c = ember();
    c.args(["--log", "warn", "eval"])
        .arg(eval_launch())
        .arg("--cases")
        .arg(cases.as_ref())
        .arg("--out")
        .arg(out.as_ref());
    c
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run ember");
    assert!(
        out.status.success(),
        "ember failed ({:?}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn read_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn oracle_scores_success_one_and_the_formula_efficiency() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("oracle");
    let stdout = run_ok(&mut eval_cmd(sample_cases(), &out)).stdout;
    let text = String::from_utf8_lossy(&stdout);
    assert!(text.contains("success%"), "no summary table:\n{text}");
    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["cases"], 5);
    assert_eq!(summary["success_rate"], 1.0);
    assert_eq!(summary["policy"], "oracle");
    assert_eq!(summary["mode"], "er-compat");
    for cat in ["Search", "Manipulate", "Transport"] {
        assert_eq!(summary["per_category"][cat]["success_rate"], 1.0, "{cat}");
    }
    let lines = read_lines(&out.join("cases.jsonl"));
    assert_eq!(lines.len(), 5);
    let mut efficiencies = Vec::new();
    for l in &lines {
        assert_eq!(l["success"], 1);
        let keys = l["key_actions"].as_array().unwrap().len() as f64;
        let traj = l["trajectory"].as_array().unwrap();
        // efficiency = (len(key_actions) + 1) / len(trajectory)
        let expected = (keys + 1.0) / traj.len() as f64;
        assert!((l["efficiency"].as_f64().unwrap() - expected).abs() < 1e-12);
        assert_eq!(traj[0]["action"], "init");
        assert_eq!(traj.last().unwrap()["action"], "end");
        for r in traj {
            for k in [
                "response",
                "action",
                "object",
                "legal_locations",
                "legal_objects",
                "success",
                "errorInfo",
                "images",
            ] {
                assert!(r.get(k).is_some(), "record lacks {k}: {r}");
            }
        }
        efficiencies.push(expected);
    }
    let mean = efficiencies.iter().sum::<f64>() / efficiencies.len() as f64;
    assert!((summary["search_efficiency"].as_f64().unwrap() - mean).abs() < 1e-12);
}

/// Policy seeds of the random baseline.
const RANDOM_SEEDS: [u64; 3] = [7, 8, 9];

/// The random baseline's cases: the first three committed training-scene cases of each task type
/// with a key interaction (`single_search` aside: it succeeds by `end` with the target in view),
/// never an evaluation scene. Returns the file and the number of cases.
fn random_baseline_cases(dir: &Path) -> (PathBuf, usize) {
    let all: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/data/er-cases-train.json")).unwrap(),
    )
    .unwrap();
    let mut per = std::collections::BTreeMap::<String, usize>::new();
    let picked: Vec<Value> = all
        .into_iter()
        .filter(|c| {
            let n = per.entry(c["tasktype"].to_string()).or_default();
            *n += 1;
            c["tasktype"] != "single_search" && *n <= 3
        })
        .collect();
    for c in &picked {
        assert!(
            !ember_agent::er::generate::is_evaluation_scene(c["scene"].as_str().unwrap()),
            "{c}"
        );
    }
    assert!(picked.len() >= 20, "{} cases", picked.len());
    let path = dir.join("baseline-cases.json");
    std::fs::write(&path, serde_json::to_string(&picked).unwrap()).unwrap();
    (path, picked.len())
}

/// The action a trajectory record names (`put` variants as `put`, as the scorer reads them).
fn record_action(r: &Value) -> String {
    let action = r["action"].as_str().unwrap_or("");
    let action = if action.starts_with("put") {
        "put"
    } else {
        action
    };
    match r["object"].as_str() {
        Some(o) => format!("{action} {o}"),
        None => action.to_string(),
    }
}

/// The action in a reply's `<DecisionMaking>` tag.
fn tagged_action(raw: &str) -> Option<String> {
    let i = raw.rfind("<DecisionMaking>")? + "<DecisionMaking>".len();
    let rest = &raw[i..];
    Some(rest[..rest.find("</DecisionMaking>")?].trim().to_string())
}

/// Decisions whose legal-action count the policy's reply states ("... of N legal actions") and
/// that matched the count reconstructed from the records.
static CROSS_CHECKED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// For one case line of a random run: (success, m, A, V, decisions) where m counts the case's
/// distinct key interactions (key actions but navigation-like ones and `end`) and A is the
/// compensator of first choices of them under a uniform choice over the legal actions: the sum,
/// over decisions, of (key interactions not chosen yet that are legal) / (legal actions), with V
/// its variance sum. The legal actions before a decision are those of the previous record, as
/// the harness offers them: `navigate to` each legal location, the five interactions on each
/// legal object, `observe`, `move forward` and `end`. Returns also the first choices made.
fn random_line_compensator(l: &Value) -> (bool, usize, f64, f64, usize, usize) {
    let mut remaining: std::collections::BTreeSet<String> = l["key_actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().trim().to_string())
        .filter(|k| {
            k != "end"
                && !k.contains("navigate to")
                && !k.contains("observe")
                && !k.contains("move forward")
        })
        .collect();
    let m = remaining.len();
    let traj = l["trajectory"].as_array().unwrap();
    let (mut a, mut v, mut decisions, mut hits) = (0.0, 0.0, 0, 0);
    for w in traj.windows(2) {
        let (prev, r) = (&w[0], &w[1]);
        let response = r["response"].as_str().unwrap_or("");
        if r["action"] == "end" && response.is_empty() {
            continue; // the step limit's end record: no decision
        }
        decisions += 1;
        let objects: Vec<&str> = prev["legal_objects"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let n = prev["legal_locations"].as_array().unwrap().len() + 5 * objects.len() + 3;
        if let Some(claimed) = response
            .split(" legal actions")
            .next()
            .and_then(|s| s.rsplit(" of ").next())
            .and_then(|s| s.parse::<usize>().ok())
        {
            assert_eq!(claimed, n, "legal actions reconstructed wrongly: {r}");
            CROSS_CHECKED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let legal_keys = remaining
            .iter()
            .filter(|k| k.split_once(' ').is_some_and(|(_, o)| objects.contains(&o)))
            .count();
        let p = legal_keys as f64 / n as f64;
        a += p;
        v += p * (1.0 - p);
        let chosen = if r["action"] == "end" {
            tagged_action(response).unwrap_or_default()
        } else {
            record_action(r)
        };
        if remaining.remove(&chosen) {
            hits += 1;
        }
    }
    (l["success"] == 1, m, a, v, decisions, hits)
}

/// `ember eval` with `policy.kind=random` over three seeds and the training-scene cases of
/// [`random_baseline_cases`], against a bound computed from the episodes themselves. A case
/// with `m` key interactions succeeds only if each was chosen at least once, so its success is
/// at most `H / m` (`H`: key interactions chosen); for a uniform choice `H - A` is a martingale
/// (`A` from [`random_line_compensator`]), so the successes over all episodes stay below the
/// computed expectation `Σ A / m` plus Freedman's deviation `sqrt(2 v L) + 2 L / 3`, `L =
/// ln(40 / δ)`, `v` the variance sum rounded up to a power of two (a union over 40 levels),
/// `δ = 1e-4`. A policy that played the key actions would succeed in most cases and fail this;
/// `tests/tests/er_event_loop.rs` checks the choices themselves in more detail (and that the
/// cases of one run, which share `run.seed`, draw fresh actions, which this bound assumes).
#[test]
fn random_baseline_stays_within_its_computed_expectation() {
    let dir = tempfile::tempdir().unwrap();
    let (cases, n_cases) = random_baseline_cases(dir.path());
    let (mut successes, mut expected, mut variance) = (0usize, 0.0f64, 0.0f64);
    let (mut episodes, mut decisions) = (0usize, 0usize);
    let mut runs = Vec::new();
    for seed in RANDOM_SEEDS {
        let out = dir.path().join(format!("random-{seed}"));
        run_ok(eval_cmd(&cases, &out).args([
            "--jobs",
            "2",
            "--set",
            "policy.kind=random",
            "--set",
            &format!("policy.seed={seed}"),
        ]));
        let summary = read_json(&out.join("summary.json"));
        assert_eq!(summary["policy"], "random");
        let lines = read_lines(&out.join("cases.jsonl"));
        assert_eq!(lines.len(), n_cases);
        for l in &lines {
            let (success, m, a, v, d, hits) = random_line_compensator(l);
            assert!(m >= 1, "{l}");
            assert!(
                !success || hits == m,
                "succeeded without its key interactions: {l}"
            );
            successes += usize::from(success);
            expected += a / m as f64;
            variance += v / (m * m) as f64;
            episodes += 1;
            decisions += d;
        }
        runs.push(std::fs::read_to_string(out.join("cases.jsonl")).unwrap());
    }
    let l = (40.0f64 / 1e-4).ln();
    let level = (0..40)
        .map(|k| 2f64.powi(k))
        .find(|x| *x >= variance)
        .unwrap();
    let bound = expected + (2.0 * level * l).sqrt() + 2.0 * l / 3.0;
    println!(
        "random baseline ({n_cases} cases x {} seeds, {decisions} decisions): {successes} \
         successes of {episodes}; computed expectation at most {expected:.2}, bound {bound:.2} \
         ({} legal-action counts cross-checked with the replies)",
        RANDOM_SEEDS.len(),
        CROSS_CHECKED.load(std::sync::atomic::Ordering::Relaxed)
    );
    assert!(
        successes as f64 <= bound,
        "random succeeded {successes} times in {episodes} episodes; a uniform choice over the \
         legal actions expects at most {expected:.2}, bound {bound:.2}"
    );
    // Seeded: different seeds make different episodes.
    assert_ne!(runs[0], runs[1]);
    assert_ne!(runs[1], runs[2]);
}

/// A bigger case file: the sample cases repeated with new identities.
fn many_cases(dir: &Path, copies: usize) -> PathBuf {
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(sample_cases()).unwrap()).unwrap();
    let mut out = Vec::new();
    for k in 0..copies {
        for c in &cases {
            let mut c = c.clone();
            c["identity"] = Value::from(100 * (k + 1) + c["identity"].as_u64().unwrap() as usize);
            out.push(c);
        }
    }
    let path = dir.join("cases.json");
    std::fs::write(&path, serde_json::to_string(&out).unwrap()).unwrap();
    path
}

fn count_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// Waits until `path` has at least `n` lines; fails with `what` after two minutes.
fn wait_for_lines(path: &Path, n: usize, what: &str) {
    let t0 = Instant::now();
    while count_lines(path) < n {
        assert!(t0.elapsed() < Duration::from_secs(120), "{what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn an_interrupted_and_resumed_eval_gives_the_uninterrupted_summary() {
    let dir = tempfile::tempdir().unwrap();
    let cases = many_cases(dir.path(), 4);
    let full = dir.path().join("full");
    run_ok(&mut eval_cmd(&cases, &full));

    let part = dir.path().join("part");
    let paced = || {
        let mut c = eval_cmd(&cases, &part);
        c.args(["--jobs", "1", "--set", "loop.min_step_interval_s=0.05"]);
        c
    };
    let child = paced()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let results = part.join("cases.jsonl");
    wait_for_lines(&results, 3, "no progress");
    // SIGINT, as Ctrl-C sends it.
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    let done = count_lines(&results);
    assert!((3..20).contains(&done), "interrupted after {done} of 20");
    assert!(!part.join("summary.json").exists());

    // Without --resume the results are protected; with it, the rest runs.
    let refused = paced().output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--resume"));
    run_ok(paced().args(["--resume", "--set", "loop.min_step_interval_s=0"]));
    assert_eq!(count_lines(&results), 20);
    assert_eq!(
        read_json(&part.join("summary.json")),
        read_json(&full.join("summary.json"))
    );
}

#[test]
fn shards_merge_into_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    run_ok(&mut eval_cmd(sample_cases(), &whole));
    let mut shard_dirs = Vec::new();
    for i in 0..2 {
        let d = dir.path().join(format!("shard{i}"));
        run_ok(eval_cmd(sample_cases(), &d).args(["--shard", &format!("{i}/2")]));
        shard_dirs.push(d);
    }
    assert_eq!(count_lines(&shard_dirs[0].join("cases.jsonl")), 3);
    assert_eq!(count_lines(&shard_dirs[1].join("cases.jsonl")), 2);
    let merged = dir.path().join("merged");
    run_ok(
        ember()
            .args(["eval", "merge"])
            .args(&shard_dirs)
            .arg("--out")
            .arg(&merged),
    );
    assert_eq!(
        read_json(&merged.join("summary.json")),
        read_json(&whole.join("summary.json"))
    );
    // Merging a shard twice is refused.
    let dup = ember()
        .args(["eval", "merge"])
        .arg(&shard_dirs[0])
        .arg(&shard_dirs[0])
        .arg("--out")
        .arg(dir.path().join("dup"))
        .output()
        .unwrap();
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("appears twice"));
}

#[test]
fn an_episode_log_is_readable_after_a_kill_mid_episode() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut child = ember()
        .args(["--log", "warn", "run"])
        .arg(repo().join("launch/demo.toml"))
        .arg("--set")
        .arg(format!("run.out_dir={:?}", out.display().to_string()))
        .args(["--set", "loop.min_step_interval_s=0.5"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let log = out.join("episodes/2.jsonl");
    wait_for_lines(&log, 3, "no episode log");
    child.kill().unwrap(); // SIGKILL: no chance to flush anything more
    child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 3);
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("a whole JSON line"))
        .collect();
    assert_eq!(parsed[0]["type"], "episode");
    assert_eq!(parsed[0]["episode"]["id"], "2");
    assert_eq!(parsed[1]["type"], "step");
    assert_eq!(parsed[1]["action"], "init");
    assert!(
        parsed.iter().all(|l| l["type"] != "end"),
        "the episode was not killed mid-way"
    );
    assert!(
        parsed[2]["reply"]
            .as_str()
            .unwrap()
            .contains("<DecisionMaking>navigate to Fridge</DecisionMaking>")
    );
}
