//! `ember er generate` end to end: deterministic files in the benchmark's format, scene
//! selection, evaluation scenes refused, errors that name the argument.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

mod common;
use common::ember;

fn run(args: &[&str]) -> Output {
    ember().args(args).output().expect("run ember")
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "ember {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(args: &[&str]) -> String {
    let out = run(args);
    assert!(!out.status.success(), "ember {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn cases(path: &Path) -> Vec<Value> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v.as_array().unwrap().clone()
}

#[test]
fn generate_writes_the_same_benchmark_file_twice() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.json");
    let b = dir.path().join("sub/b.json");
    let args = |out: &Path| {
        vec![
            "er".to_string(),
            "generate".into(),
            "--scenes".into(),
            "FloorPlan5,FloorPlan205".into(),
            "--per-type".into(),
            "1".into(),
            "--seed".into(),
            "4".into(),
            "--out".into(),
            out.display().to_string(),
        ]
    };
    let stdout = ok(&args(&a).iter().map(String::as_str).collect::<Vec<_>>());
    ok(&args(&b).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let cs = cases(&a);
    assert!(cs.len() >= 10, "{} cases", cs.len());
    // Per-type counts are printed, every sub-type listed.
    assert!(stdout.contains(&format!("{} cases (2 of the 2 scenes asked for)", cs.len())));
    for t in [
        "single_search",
        "single_toggle",
        "ordered_pickup_two_object_and_put",
    ] {
        assert!(stdout.contains(t), "{stdout}");
    }
    for (i, c) in cs.iter().enumerate() {
        assert_eq!(c["identity"], (i + 1) as i64);
        assert!(["FloorPlan5", "FloorPlan205"].contains(&c["scene"].as_str().unwrap()));
        for k in [
            "tasktype",
            "instruction_idx",
            "taskname",
            "taskquery",
            "task_metadata",
            "target_objects",
            "related_objects",
            "navigable_objects",
        ] {
            assert!(c.get(k).is_some(), "case {i} lacks {k}");
        }
    }
    // `ember er cases` accepts the file.
    let listing = ok(&["er", "cases", a.to_str().unwrap(), "--counts"]);
    assert!(
        listing.contains(&format!("{} cases in", cs.len())),
        "{listing}"
    );

    // Another seed, another file; --compact, --queries and --first-identity shape it.
    let c = dir.path().join("c.json");
    ok(&[
        "er",
        "generate",
        "--scenes",
        "FloorPlan5",
        "--per-type",
        "1",
        "--queries",
        "2",
        "--types",
        "single_pickup",
        "--first-identity",
        "100",
        "--compact",
        "--out",
        c.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&c).unwrap();
    assert_eq!(text.lines().count(), 4, "[, two cases, ]");
    let cs = cases(&c);
    assert_eq!(cs.len(), 2);
    assert_eq!(
        (cs[0]["identity"].clone(), cs[1]["identity"].clone()),
        (100.into(), 101.into())
    );
    assert_eq!(cs[0]["task_metadata"], cs[1]["task_metadata"]);
    assert_ne!(cs[0]["taskquery"], cs[1]["taskquery"]);
}

#[test]
fn scene_sets_and_the_per_type_cap() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("k.json");
    let stdout = ok(&[
        "er",
        "generate",
        "--scenes",
        "bathrooms",
        "--per-type",
        "1",
        "--types",
        "single_search,single_pickup",
        "--max-per-type",
        "5",
        "--out",
        out.to_str().unwrap(),
    ]);
    let cs = cases(&out);
    assert_eq!(cs.len(), 10, "{stdout}");
    let eval = ["FloorPlan401", "FloorPlan403", "FloorPlan404"];
    for c in &cs {
        let s = c["scene"].as_str().unwrap();
        let n: u32 = s.trim_start_matches("FloorPlan").parse().unwrap();
        assert!((401..=430).contains(&n) && !eval.contains(&s), "{s}");
    }
    assert!(stdout.contains("of the 27 scenes asked for"), "{stdout}");
}

#[test]
fn evaluation_scenes_and_bad_arguments_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.json");
    let o = out.to_str().unwrap();
    let e = fails(&[
        "er",
        "generate",
        "--scenes",
        "FloorPlan5,FloorPlan201",
        "--out",
        o,
    ]);
    assert!(e.contains("FloorPlan201 is an evaluation scene"), "{e}");
    let e = fails(&["er", "generate", "--scenes", "FloorPlan99", "--out", o]);
    assert!(e.contains("unknown scene 'FloorPlan99'"), "{e}");
    let e = fails(&[
        "er",
        "generate",
        "--scenes",
        "FloorPlan5",
        "--types",
        "pickup",
        "--out",
        o,
    ]);
    assert!(
        e.contains("--types") && e.contains("unknown task type 'pickup'"),
        "{e}"
    );
    let e = fails(&[
        "er",
        "generate",
        "--scenes",
        "FloorPlan5",
        "--queries",
        "0",
        "--out",
        o,
    ]);
    assert!(e.contains("--queries"), "{e}");
    assert!(!out.exists());
}
