#!/usr/bin/env python3
"""Opens a recording in the real Rerun viewer under Xvfb (software rendering) and checks that
it loaded without errors and that the screenshot is not blank.

Usage: screenshot.py RUN.rrd OUT.png [--keep-log LOG]

The viewer is $EMBER_RERUN (default: `rerun` next to this Python, then on the PATH). Needs
Xvfb, xdotool and ImageMagick (`convert`, `identify`). Steps:
  1. start `Xvfb :N -screen 0 3200x2000x24 -extension Composite -noreset` on a free display
     (without `-extension Composite` the screenshot is black; without `-noreset` the pointer
     returns to the centre of the screen and the viewer shows a hover tooltip);
  2. `rerun analytics disable`; park the pointer in a corner (no hover tooltips);
  3. `rerun --window-size 1600x1000 --screenshot-to OUT RUN.rrd` (the viewer renders with
     llvmpipe through Vulkan when mesa-vulkan-drivers is installed; it exits with 102 after the
     screenshot);
  4. check the log: the file was loaded, the screenshot was saved, and no ERROR or panic
     happened before that, except one known artefact of `--screenshot-to` (a wgpu
     `Surface::configure` validation error when it resizes its window for the screenshot);
  5. check the picture: many colours and a non-trivial spread of grey levels.
Exits 0 when all checks pass, 1 otherwise (with the reasons and the viewer's log).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

SCREEN = "3200x2000x24"
WINDOW = "1600x1000"
BENIGN_ERROR_CONTEXT = "Surface::configure"


def viewer():
    env = os.environ.get("EMBER_RERUN")
    if env:
        return env
    here = os.path.join(os.path.dirname(sys.executable), "rerun")
    if os.path.exists(here):
        return here
    return shutil.which("rerun") or "rerun"


def free_display():
    for n in range(90, 140):
        if not os.path.exists(f"/tmp/.X11-unix/X{n}") and not os.path.exists(f"/tmp/.X{n}-lock"):
            return n
    raise SystemExit("no free X display between :90 and :139")


def strip_ansi(s):
    return re.sub(r"\x1b\[[0-9;]*m", "", s)


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        print(__doc__)
        return 2
    rrd, out = os.path.abspath(args[0]), os.path.abspath(args[1])
    keep_log = args[args.index("--keep-log") + 1] if "--keep-log" in args else None
    rerun = viewer()
    problems = []
    work = tempfile.mkdtemp(prefix="ember-shot-")
    os.chmod(work, 0o700)
    n = free_display()
    xvfb = subprocess.Popen(
        # -noreset: the server must not reset (and re-centre the pointer) when a client leaves.
        ["Xvfb", f":{n}", "-screen", "0", SCREEN, "-extension", "Composite", "-nolisten", "tcp", "-noreset"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = dict(os.environ, DISPLAY=f":{n}", XDG_RUNTIME_DIR=work, RUST_LOG="info")
    log_text = ""
    try:
        for _ in range(100):
            if subprocess.run(["xdpyinfo"], env=env, capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        else:
            problems.append(f"Xvfb :{n} did not start")
            raise RuntimeError
        subprocess.run([rerun, "analytics", "disable"], env=env, capture_output=True)
        w, h = (int(v) for v in SCREEN.split("x")[:2])
        subprocess.run(["xdotool", "mousemove", str(w - 1), str(h - 1)], env=env, capture_output=True)
        if os.path.exists(out):
            os.remove(out)
        started = time.time()
        p = subprocess.run(
            [rerun, "--window-size", WINDOW, "--screenshot-to", out, rrd],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        elapsed = time.time() - started
        log_text = strip_ansi(p.stdout + p.stderr)
        if p.returncode != 102:
            problems.append(f"the viewer exited with {p.returncode} (102 means: screenshot taken)")
        lines = log_text.splitlines()
        saved = next((i for i, l in enumerate(lines) if "Screenshot saved" in l), None)
        if saved is None:
            problems.append("the viewer did not report `Screenshot saved`")
            saved = len(lines)
        if not any("Loading" in l and os.path.basename(rrd) in l for l in lines):
            problems.append(f"the viewer did not report loading {rrd}")
        for i, l in enumerate(lines[:saved]):
            if " ERROR " in l or "panicked" in l:
                context = "\n".join(lines[i : i + 5])
                if BENIGN_ERROR_CONTEXT in context:
                    continue
                problems.append(f"viewer error before the screenshot: {l.strip()}")
        if os.path.exists(out):
            ident = subprocess.run(
                ["identify", "-format", "%w %h %k", out], capture_output=True, text=True
            ).stdout.split()
            sd = subprocess.run(
                ["convert", out, "-colorspace", "Gray", "-format", "%[fx:standard_deviation]", "info:"],
                capture_output=True,
                text=True,
            ).stdout.strip()
            width, height, colours = int(ident[0]), int(ident[1]), int(ident[2])
            spread = float(sd or 0)
            print(f"screenshot {out}: {width}x{height}, {colours} colours, grey spread {spread:.3f}, "
                  f"viewer ran {elapsed:.1f} s")
            if colours < 1000:
                problems.append(f"the screenshot has only {colours} colours (blank?)")
            if spread < 0.05:
                problems.append(f"the screenshot is nearly uniform (grey spread {spread:.3f})")
        else:
            problems.append(f"no screenshot at {out}")
    except RuntimeError:
        pass
    finally:
        xvfb.terminate()
        try:
            xvfb.wait(timeout=10)
        except subprocess.TimeoutExpired:
            xvfb.kill()
        shutil.rmtree(work, ignore_errors=True)
        if keep_log:
            with open(keep_log, "w") as f:
                f.write(log_text)
    if problems:
        print("FAILED:")
        for pr in problems:
            print("  -", pr)
        print("---- viewer log ----")
        print(log_text[-6000:])
        return 1
    print("viewer screenshot OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
