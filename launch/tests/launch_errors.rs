//! Ten malformed launch files: each gives a clear error naming the file, line and field, and
//! none makes the process panic.

use std::path::Path;

mod common;
use common::{ember, repo};

/// Runs `ember check` on a file and returns stderr; asserts failure without a panic.
fn check_fails(path: &Path, extra: &[&str]) -> String {
    let out = ember()
        .arg("check")
        .arg(path)
        .args(extra)
        .output()
        .expect("run ember");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{} was accepted", path.display());
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn ten_malformed_launch_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases = repo().join("tests/data/er-cases-sample.json");
    let write = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    // (file name, contents, what the error must mention)
    let table: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "01-syntax.toml",
            "[world]\nwidth = 800\nheight = = 450\n".into(),
            vec!["01-syntax.toml:3:", "invalid TOML"],
        ),
        (
            "02-unknown-section.toml",
            "[world]\nwidth = 800\n\n[polcy]\nkind = \"oracle\"\n".into(),
            vec!["02-unknown-section.toml:4", "polcy", "unknown field"],
        ),
        (
            "03-unknown-field.toml",
            "[world]\nwidht = 800\n".into(),
            vec!["03-unknown-field.toml:2", "world.widht", "unknown field"],
        ),
        (
            "04-wrong-type.toml",
            "[world]\nwidth = \"wide\"\n".into(),
            vec!["04-wrong-type.toml:2", "world.width", "invalid type"],
        ),
        (
            "05-unknown-variant.toml",
            "[policy]\nkind = \"psychic\"\n".into(),
            vec![
                "05-unknown-variant.toml:2",
                "policy.kind",
                "psychic",
                "oracle",
            ],
        ),
        (
            "06-out-of-range.toml",
            "[world]\nwidth = 0\n".into(),
            vec![
                "06-out-of-range.toml:2",
                "world.width",
                "between 1 and 4096",
            ],
        ),
        (
            "07-replay-without-log.toml",
            "[policy]\nkind = \"replay\"\n".into(),
            vec![
                "07-replay-without-log.toml:1",
                "policy.log",
                "replay policy needs",
            ],
        ),
        (
            "08-missing-cases.toml",
            "[task]\nkind = \"er\"\ncases = \"no-such-cases.json\"\n".into(),
            vec![
                "08-missing-cases.toml:3",
                "task.cases",
                "no-such-cases.json",
            ],
        ),
        (
            "09-bad-endpoint.toml",
            "[world]\nkind = \"bridge\"\nendpoint = \"http://localhost:5555\"\n".into(),
            vec!["09-bad-endpoint.toml:3", "world.endpoint", "tcp://"],
        ),
        (
            "10-include-cycle.toml",
            "include = [\"10-include-cycle.toml\"]\n[world]\nwidth = 800\n".into(),
            vec!["include cycle", "10-include-cycle.toml"],
        ),
    ];
    assert_eq!(table.len(), 10);
    for (name, text, expect) in &table {
        let path = write(name, text);
        let stderr = check_fails(&path, &[]);
        for e in expect {
            assert!(stderr.contains(e), "{name}: error lacks '{e}':\n{stderr}");
        }
    }
    // A bad --set names the argument; a missing include names the including line.
    let ok = write(
        "ok.toml",
        &format!("[task]\ncases = {:?}\n", cases.display().to_string()),
    );
    let stderr = check_fails(&ok, &["--set", "policy.kind"]);
    assert!(
        stderr.contains("--set policy.kind") && stderr.contains("key.path=value"),
        "{stderr}"
    );
    let stderr = check_fails(&ok, &["--set", "world.fov=200"]);
    assert!(
        stderr.contains("--set world.fov=200") && stderr.contains("world.fov"),
        "{stderr}"
    );
    let inc = write("inc.toml", "\ninclude = [\"missing.toml\"]\n");
    let stderr = check_fails(&inc, &[]);
    assert!(
        stderr.contains("inc.toml:2") && stderr.contains("missing.toml"),
        "{stderr}"
    );
    // And the good file passes, with includes and overrides applied.
    let out = ember()
        .arg("check")
        .arg(&ok)
        .args(["--set", "policy.kind=random"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("policy: Random"));
}

#[test]
fn the_shipped_launch_files_are_valid() {
    for f in ["launch/demo.toml", "launch/er-eval.toml"] {
        let out = ember().arg("check").arg(repo().join(f)).output().unwrap();
        assert!(
            out.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
