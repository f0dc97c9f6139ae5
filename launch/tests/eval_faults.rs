//! `ember eval` loses no case: a world that panics, a world call that fails in the middle of an
//! episode, and a scene that cannot be loaded each give that case a line in `cases.jsonl` with
//! the infrastructure-failure status and the error; `summary.json` counts the cases selected,
//! scored and failed, with the rates over both; the exit code is non-zero; and `--resume`
//! runs the failed cases again.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::{ember, repo};

/// The committed training-scene cases (never the evaluation scenes).
fn train_cases() -> PathBuf {
    repo().join("tests/data/er-cases-train.json")
}

/// A launch file that includes `launch/er-eval.toml` and adds `[world.fault]` lines.
fn launch_with_fault(dir: &Path, fault: &str) -> PathBuf {
    let path = dir.join("faulty.toml");
    let text = format!(
        "include = [{:?}]\nname = \"faulty\"\n\n[world.fault]\n{fault}\n",
        repo().join("launch/er-eval.toml").display().to_string()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn eval(launch: &Path, cases: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut c: Command = ember();
    c.args(["--log", "warn", "eval"])
        .arg(launch)
        .arg("--cases")
        .arg(cases)
        .arg("--out")
        .arg(out)
        .args(extra);
    c.output().expect("run ember")
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn summary(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Checks the counts and both rates of `summary.json` against the lines, and returns the
/// lines that are infrastructure failures.
fn check_summary(out: &Path, selected: usize) -> Vec<Value> {
    let lines = lines(&out.join("cases.jsonl"));
    assert_eq!(lines.len(), selected, "every selected case has a line");
    let s = summary(out);
    let failed: Vec<Value> = lines
        .iter()
        .filter(|l| l["status"] == "infrastructure_failure")
        .cloned()
        .collect();
    let scored: Vec<&Value> = lines.iter().filter(|l| l["status"] == "scored").collect();
    assert_eq!(scored.len() + failed.len(), selected);
    assert_eq!(s["cases"], selected);
    assert_eq!(s["cases_scored"], scored.len());
    assert_eq!(s["cases_failed_infrastructure"], failed.len());
    let successes: f64 = scored.iter().map(|l| l["success"].as_f64().unwrap()).sum();
    let over_all = s["success_rate"].as_f64().unwrap();
    assert!(
        (over_all - successes / selected as f64).abs() < 1e-12,
        "{s}"
    );
    let over_scored = s["over_scored"]["success_rate"].as_f64().unwrap();
    assert!(
        (over_scored - successes / scored.len() as f64).abs() < 1e-12,
        "{s}"
    );
    assert_eq!(s["failures"].as_array().unwrap().len(), failed.len());
    for f in &failed {
        assert_eq!(f["success"], 0);
        assert!(!f["error"].as_str().unwrap_or("").is_empty(), "{f}");
    }
    failed
}

#[test]
fn a_panicking_world_is_reported_as_an_infrastructure_failure_and_resumed() {
    let dir = tempfile::tempdir().unwrap();
    // Case 6 (FloorPlan6) panics at reset; two jobs, so the panic happens beside a healthy job.
    let launch = launch_with_fault(dir.path(), "kind = \"panic\"\nepisode = \"6\"");
    let out = dir.path().join("out");
    let o = eval(
        &launch,
        &train_cases(),
        &out,
        &["--limit", "12", "--jobs", "2"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let failed = check_summary(&out, 12);
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["identity"], 6);
    let error = failed[0]["error"].as_str().unwrap();
    assert!(
        error.contains("panicked") && error.contains("injected fault"),
        "{error}"
    );
    let s = summary(&out);
    assert_eq!(s["failures"][0]["identity"], 6);
    assert!(
        text(&o).contains("1 of 12 cases failed for infrastructure reasons"),
        "{}",
        text(&o)
    );

    // Resumed without the fault: the failed case runs again and the evaluation is whole.
    let healthy = repo().join("launch/er-eval.toml");
    let o = eval(
        &healthy,
        &train_cases(),
        &out,
        &["--limit", "12", "--jobs", "2", "--resume"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(check_summary(&out, 12).is_empty());
}

#[test]
fn a_failing_step_and_an_unloadable_scene_are_infrastructure_failures() {
    let dir = tempfile::tempdir().unwrap();
    // The first five training cases, and a copy of the first whose scene does not exist.
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(train_cases()).unwrap()).unwrap();
    let mut picked: Vec<Value> = cases[..5].to_vec();
    let mut lost = cases[0].clone();
    lost["identity"] = Value::from(90_001);
    lost["scene"] = Value::from("FloorPlan9999");
    picked.push(lost);
    let cases_path = dir.path().join("cases.json");
    std::fs::write(&cases_path, serde_json::to_string(&picked).unwrap()).unwrap();
    // Case 2's second world step returns an error; one job, so the same world goes on.
    let launch = launch_with_fault(
        dir.path(),
        "kind = \"error\"\nduring = \"step\"\nstep = 2\nepisode = \"2\"",
    );
    let out = dir.path().join("out");
    let o = eval(&launch, &cases_path, &out, &["--jobs", "1"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let failed = check_summary(&out, 6);
    let ids: Vec<i64> = failed
        .iter()
        .map(|f| f["identity"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [2, 90_001], "{failed:?}");
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("injected fault (step 2, episode 2)"),
        "{}",
        failed[0]
    );
    assert!(
        failed[1]["error"]
            .as_str()
            .unwrap()
            .contains("FloorPlan9999"),
        "{}",
        failed[1]
    );
}
