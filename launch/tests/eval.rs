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
fn oracle_scores_success_one_and_the_formula_efficiency_random_far_lower() {
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

    let rand_out = dir.path().join("random");
    run_ok(eval_cmd(sample_cases(), &rand_out).args([
        "--set",
        "policy.kind=random",
        "--set",
        "policy.seed=7",
    ]));
    let random = read_json(&rand_out.join("summary.json"));
    assert_eq!(random["policy"], "random");
    let r = random["success_rate"].as_f64().unwrap();
    assert!(r <= 0.4, "random succeeded too often: {r}");
    assert!(random["search_efficiency"].as_f64().unwrap() < 0.5);
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
