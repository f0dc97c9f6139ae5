//! `ember view RUN.rrd`: open recordings in the Rerun viewer.
//!
//! The viewer is the `rerun` executable of Rerun 0.36.3, from `pip install rerun-sdk==0.36.3`
//! (which ships the native viewer) or `cargo install rerun-cli --version 0.36.3 --locked`. It is
//! looked up as `--viewer`, then `$EMBER_RERUN`, then `rerun` on the `PATH`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Args;

/// How to install the viewer, for error messages.
const INSTALL_HINT: &str = "install the Rerun 0.36.3 viewer with `pip install rerun-sdk==0.36.3` \
     (or `cargo install rerun-cli --version 0.36.3 --locked`), or name it with --viewer or \
     EMBER_RERUN";

/// `ember view`.
#[derive(Debug, Args)]
pub struct ViewArgs {
    /// The recordings to open (`.rrd` files written by `[recording] mode = "file"`).
    #[arg(required = true, value_name = "RUN.rrd")]
    pub files: Vec<PathBuf>,
    /// The viewer executable (default: $EMBER_RERUN, then `rerun` on the PATH).
    #[arg(long, value_name = "PATH")]
    pub viewer: Option<PathBuf>,
    /// Save a screenshot of the viewer to this PNG and exit (needs a display; see the README
    /// for running it under Xvfb).
    #[arg(long, value_name = "PNG")]
    pub screenshot: Option<PathBuf>,
    /// The viewer's window size in points, e.g. `1600x1000`.
    #[arg(long, value_name = "WxH")]
    pub window_size: Option<String>,
}

/// Checks that a file looks like a Rerun recording (the `RRF2` header).
fn check_rrd(path: &Path) -> Result<()> {
    use std::io::Read;
    if path.is_dir() {
        bail!(
            "{} is a folder; give the .rrd file(s) inside it",
            path.display()
        );
    }
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut magic = [0u8; 4];
    f.read_exact(&mut magic)
        .with_context(|| format!("{} is too short to be a Rerun recording", path.display()))?;
    if &magic != b"RRF2" {
        bail!(
            "{} is not a Rerun recording (.rrd files start with `RRF2`, this one with {:?})",
            path.display(),
            String::from_utf8_lossy(&magic)
        );
    }
    Ok(())
}

/// The viewer to run.
fn viewer(arg: Option<&Path>) -> PathBuf {
    arg.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("EMBER_RERUN").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("rerun"))
}

/// Builds the viewer command line.
fn command(args: &ViewArgs) -> Command {
    let mut cmd = Command::new(viewer(args.viewer.as_deref()));
    if let Some(size) = &args.window_size {
        cmd.arg("--window-size").arg(size);
    }
    if let Some(shot) = &args.screenshot {
        cmd.arg("--screenshot-to").arg(shot);
        if args.window_size.is_none() {
            cmd.arg("--window-size").arg("1600x1000");
        }
    }
    cmd.args(&args.files);
    cmd
}

/// Runs `ember view`.
pub fn run(args: ViewArgs) -> Result<()> {
    for f in &args.files {
        check_rrd(f)?;
    }
    let mut cmd = command(&args);
    let program = cmd.get_program().to_string_lossy().into_owned();
    tracing::info!("opening {} file(s) with {program}", args.files.len());
    let status = cmd.status().map_err(|e| {
        anyhow::anyhow!("cannot start the Rerun viewer `{program}`: {e}; {INSTALL_HINT}")
    })?;
    // With --screenshot-to the viewer exits with 102 once the picture is saved.
    let screenshot_done = args.screenshot.is_some() && status.code() == Some(102);
    if !status.success() && !screenshot_done {
        bail!("the Rerun viewer `{program}` exited with {status}");
    }
    if let Some(shot) = &args.screenshot {
        println!("screenshot saved to {}", shot.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_files_that_are_not_recordings() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("notes.rrd");
        std::fs::write(&p, b"hello").unwrap();
        let err = check_rrd(&p).unwrap_err().to_string();
        assert!(err.contains("not a Rerun recording"), "{err}");
        let err = check_rrd(&dir.path().join("missing.rrd"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.rrd"), "{err}");
        std::fs::write(&p, b"RRF2\0\0").unwrap();
        assert!(check_rrd(&p).is_ok());
    }

    #[test]
    fn builds_the_viewer_command_line() {
        let args = ViewArgs {
            files: vec!["a.rrd".into(), "b.rrd".into()],
            viewer: Some("/opt/rerun".into()),
            screenshot: Some("shot.png".into()),
            window_size: None,
        };
        let cmd = command(&args);
        assert_eq!(cmd.get_program(), "/opt/rerun");
        let a: Vec<_> = cmd
            .get_args()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            a,
            [
                "--screenshot-to",
                "shot.png",
                "--window-size",
                "1600x1000",
                "a.rrd",
                "b.rrd"
            ]
        );
    }

    #[test]
    fn a_missing_viewer_says_how_to_install_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("run.rrd");
        std::fs::write(&p, b"RRF2....").unwrap();
        let err = run(ViewArgs {
            files: vec![p],
            viewer: Some(dir.path().join("no-such-viewer")),
            screenshot: None,
            window_size: None,
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("pip install rerun-sdk==0.36.3"), "{err}");
    }
}
