"""What an open Train tab costs the run it shows: generator steps per wall second of the same
default run headless (`python app.py --train`, no server), as the server's job with no page open,
then with the Train tab open in headless Chromium on the same cores, and the CPU each process
used meanwhile.

    python bench/bench_train_page.py --data-dir DIR [--seconds 60] [--warmup 15] [--threads N]
        [--phases headless,closed,open]

The headless phase trains with the form's quality settings (--eval-every 250 --eval-num 500) so
the three rates differ only by the server and the page. Each other phase starts a fresh
`python app.py` on a free port (its own runs folder), starts the form's
default run through the /train_start API (acgan, fast recipe, quality measured every 250 steps on
500 samples, as a visitor's Start), waits --warmup seconds, then counts the steps the job logs in
--seconds of wall time (evaluation pauses included: the rate a visitor waits on). The CPU seconds
of the server and of Chromium's processes over the window come from /proc. Target (issue "The
live views teach"): the page-open rate at least 80 % of the headless one. Run it on a quiet
machine and name the CPU; figures beside another job are not comparable.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process and its threads, from /proc (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pids_named(word: str) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if word in (p / "cmdline").read_bytes().decode(errors="replace"):
                    out.append(int(p.name))
            except OSError:
                pass
    return out


def latest_step(runs: Path) -> int:
    """The newest step any run under `runs` has logged (metrics.jsonl)."""
    best = 0
    for m in runs.glob("*/metrics.jsonl"):
        for line in m.read_text().splitlines()[-5:]:
            try:
                best = max(best, int(json.loads(line).get("step", 0)))
            except ValueError:
                pass
    return best


def headless(args) -> dict:
    """The default run from the command line, its steps counted over the same window."""
    runs = Path(tempfile.mkdtemp(prefix="bench-train-headless-"))
    cmd = [sys.executable, str(ROOT / "app.py"), "--train", "--data-dir", args.data_dir, "--run-dir", str(runs / "run"),
           "--eval-every", "250", "--eval-num", "500"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(args.warmup)
        s0, t0, c0 = latest_step(runs), time.monotonic(), cpu_seconds(proc.pid)
        time.sleep(args.seconds)
        s1, t1 = latest_step(runs), time.monotonic()
        return {"page": "headless", "steps_per_s": round((s1 - s0) / (t1 - t0), 2),
                "server_cpu_s": round(cpu_seconds(proc.pid) - c0, 1), "chromium_cpu_s": 0, "wall_s": round(t1 - t0, 1)}
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(runs, ignore_errors=True)


def phase(args, with_page: bool) -> dict:
    runs = Path(tempfile.mkdtemp(prefix="bench-train-page-"))
    port = free_port()
    env = {**os.environ, "WGAN_APP_RUNS_DIR": str(runs), "GRADIO_ANALYTICS_ENABLED": "False"}
    if args.threads:  # torch reads it at start-up: the server's training and drawing threads
        env["OMP_NUM_THREADS"] = str(args.threads)
    server = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), "--data-dir", args.data_dir],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        from gradio_client import Client

        Client(url, verbose=False).predict(api_name="/train_start")  # the form's defaults
        browser = pw = None
        if with_page:
            from playwright.sync_api import sync_playwright

            pw = sync_playwright().start()
            browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            page.get_by_role("tab", name="Train").click()
        time.sleep(args.warmup)
        chrome = pids_named("chromium") if with_page else []
        s0, t0 = latest_step(runs), time.monotonic()
        c_server, c_chrome = cpu_seconds(server.pid), sum(cpu_seconds(p) for p in chrome)
        time.sleep(args.seconds)
        s1, t1 = latest_step(runs), time.monotonic()
        d_server = cpu_seconds(server.pid) - c_server
        d_chrome = sum(cpu_seconds(p) for p in chrome) - c_chrome
        if browser is not None:
            browser.close()
            pw.stop()
        return {"page": with_page, "steps_per_s": round((s1 - s0) / (t1 - t0), 2),
                "server_cpu_s": round(d_server, 1), "chromium_cpu_s": round(d_chrome, 1), "wall_s": round(t1 - t0, 1)}
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(runs, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("WGAN_APP_DATA_DIR", "data"))
    ap.add_argument("--seconds", type=float, default=60.0, help="the measured window of each phase")
    ap.add_argument("--warmup", type=float, default=15.0, help="seconds between Start and the window")
    ap.add_argument("--threads", type=int, default=0,
                    help="the server's torch threads (OMP_NUM_THREADS; default: the app's own); headless keeps its own")
    ap.add_argument("--phases", default="headless,closed,open", help="which phases to run, comma-separated")
    args = ap.parse_args()
    phases = args.phases.split(",")
    unknown = set(phases) - {"headless", "closed", "open"}
    if unknown:
        ap.error(f"--phases: unknown {', '.join(sorted(unknown))}; use headless, closed, open")
    results = {}
    if "headless" in phases:
        results["headless"] = headless(args)
    if "closed" in phases:
        results["closed"] = phase(args, with_page=False)
    if "open" in phases:
        results["open"] = phase(args, with_page=True)
    server = f"server{f', {args.threads} torch thread(s)' if args.threads else ''}"
    names = {"headless": "python app.py --train", "closed": f"{server}, Train tab closed",
             "open": f"{server}, Train tab open"}
    print("| run | steps/s | training process CPU s | Chromium CPU s | window s |\n|---|---|---|---|---|")
    for k, r in results.items():
        print(f"| {names[k]} | {r['steps_per_s']} | {r['server_cpu_s']} | {r['chromium_cpu_s']} | {r['wall_s']} |")
    if "headless" in results:
        rate = max(results["headless"]["steps_per_s"], 1e-9)
        for k in ("open", "closed"):
            if k in results:
                target = " (target >= 80 %)" if k == "open" else ""
                print(f"{k} / headless: {results[k]['steps_per_s'] / rate:.0%}{target}")


if __name__ == "__main__":
    main()
