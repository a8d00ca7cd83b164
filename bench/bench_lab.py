"""The Lab's speed with three runs side by side: training steps/s per run and refreshes/s.

    OMP_NUM_THREADS=1 python bench/bench_lab.py [--seconds 10] [--dataset 8gaussians] [--parallel] [--browser]
    OMP_NUM_THREADS=1 python bench/bench_lab.py --skip 2000 [--seeds 0 1 2 3 4]   # fast-forward
    WGAN_LAB_WORKERS=0 OMP_NUM_THREADS=1 python bench/bench_lab.py --skip 2000   # ... in the server's thread
    python bench/bench_lab.py --first-minute 60 [--seeds 0 1 2 3 4] [--out DIR]   # what Run shows at 60 s
    python bench/bench_lab.py --first-minute 60 --skip 2000   # ... with Skip ahead pressed 2 s after Run

Two phases on the default presets. 1) Each run's own speed: the three train in turn in chunks
of ~40 ms, each timed on its own (steps/s while it has the CPU). 2) Live: for --seconds, what
the Lab does while Run is on: the workspace's thread trains, and every TICK_S (the page's timer)
a refresh copies the runs, then measures, draws and encodes the three panels as the Lab sends them
(render.png_bytes): refreshes/s and each run's steps per wall-clock second. Prints a table.
Figures taken beside another job are
not comparable with a quiet machine's: compare versions in one session (A/B) and quote ratios.
3) With --browser: the app itself in headless Chromium (Playwright, the system's chromium): press
Run in the Lab and count, for --seconds after a 3 s warm-up, how often each panel's <img> gets a
new picture (the issue's "updates in the browser"), and each run's steps per wall second.
4) With --first-minute S: per seed, a fresh page of the app in headless Chromium; set the seed,
press Run, and S seconds later read what each panel shows (step, modes, share near a mode, exact
W1, rho) and save a screenshot of the panels to --out. The Lab's claims as a visitor sees them.
With --skip N too, Skip ahead N is pressed 2 s after Run: it prints when the panels drew again.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, not installed
from wgan_app.lab import fastforward
from wgan_app.lab.render import png_bytes
from wgan_app.lab.session import PRESETS
from wgan_app.lab.workspace import TICK_S, Workspace


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="wall time of each phase")
    ap.add_argument("--dataset", default="8gaussians")
    ap.add_argument("--seeds", type=int, nargs="+", default=[PRESETS["gan"].seed],
                    help="--skip / --first-minute: the Lab seeds to try (default: the Lab's own)")
    ap.add_argument("--parallel", action="store_true",
                    help="live phase: train the three runs in threads at once (Workspace.parallel)")
    ap.add_argument("--browser", action="store_true", help="also phase 3: the Lab in headless Chromium")
    ap.add_argument("--skip", type=int, metavar="N", help="only time the fast-forward button: N steps of the three "
                    "presets from a fresh start, no drawing, and what the panels then show (modes, W1); "
                    "with --first-minute: press Skip ahead N 2 s after Run, in the browser")
    ap.add_argument("--first-minute", type=float, metavar="S",
                    help="only: what the panels show S seconds after Run, per --seeds, in headless Chromium")
    ap.add_argument("--out", type=Path, help="--first-minute: folder for a screenshot per seed")
    args = ap.parse_args()
    if args.first_minute:
        return first_minute(args)
    if args.skip:
        return fast_forward(args)
    if args.browser:
        refreshes, steps_s = in_browser(args.seconds, args.parallel)

    ws = Workspace([s.replace(dataset=args.dataset) for s in PRESETS.values()], parallel=args.parallel)
    ws.train(0.1)  # warm-up: first calls allocate
    ws.panels(keep_frame=False)
    steps, spent = [0] * len(ws.runs), [0.0] * len(ws.runs)
    t_end = time.perf_counter() + args.seconds
    while time.perf_counter() < t_end:  # phase 1: each run's own time
        for i, run in enumerate(ws.runs):
            t = time.perf_counter()
            steps[i] += run.steps(max(1, int(ws._rate[i] * 0.04)))
            spent[i] += time.perf_counter() - t
            ws._rate[i] = steps[i] / spent[i]

    # phase 2: what the Lab does while Run is on. The workspace's thread trains; a refresh every
    # TICK_S (the page's timer) takes the workspace to copy the runs, then measures, draws and
    # encodes the copies outside it.
    live0, ticks, render_s, held_s = [r.step for r in ws.runs], 0, 0.0, 0.0
    ws.keep_training(args.seconds + 5)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < args.seconds:
        t = time.perf_counter()
        with ws.held():  # as the Lab's tick: copy under the lock, measure and draw after it
            h = time.perf_counter()
            views = ws.snapshot()
            held_s += time.perf_counter() - h
        for p in ws.draw(views):
            png_bytes(p)  # what the Lab's tick hands Gradio (a file in its cache)
        render_s += time.perf_counter() - t
        ticks += 1
        time.sleep(max(0.0, t + TICK_S - time.perf_counter()))  # the timer's next tick
    wall = time.perf_counter() - t0
    ws.pause(wait=True)
    live = [r.step - a for r, a in zip(ws.runs, live0)]

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, dataset {args.dataset}, "
          f"{args.seconds:g} s per phase, live runs {'in parallel' if ws.parallel else 'in turn'}")
    print("| run | n_critic | steps/s (own time) | critic updates/s (own time) | steps/s (live, wall) |")
    print("|---|---|---|---|---|")
    for run, k, s, n in zip(ws.runs, steps, spent, live):
        print(f"| {run.settings.objective} | {run.settings.n_critic} | {k / s:.0f} | "
              f"{k * run.settings.n_critic / s:.0f} | {n / wall:.0f} |")
    # The target's arithmetic: a run at r steps/s of its own time needs 200 / r of a core for 200 steps/s.
    need = sum(200 * s / k for k, s in zip(steps, spent))
    print(f"\ncores of training time for 200 steps/s in every run at once: {need:.2f} "
          f"(before any drawing, the web server or a browser; this machine has {os.cpu_count()})")
    print(f"live: {ticks / wall:.1f} refreshes/s at a {TICK_S:g} s timer ({render_s / ticks * 1e3:.0f} ms to copy, "
          f"measure, draw and encode the three panels, of which {held_s / ticks * 1e3:.1f} ms holding the workspace; "
          "the training thread has it the rest of the time)")
    if args.browser:
        print(f"in the browser: panels updated {' / '.join(f'{r:.1f}' for r in refreshes)} times/s, "
              f"steps per wall second {' / '.join(f'{s:.0f}' for s in steps_s)} (8 Gaussians)")


def fast_forward(args) -> None:
    """Seconds the Lab's fast-forward takes for --skip steps of the presets, and where they get."""
    t0 = time.perf_counter()
    for f in fastforward.warm():  # as the Lab's Run button does: the workers start before the skip
        f.result()
    if fastforward.pool() is not None:
        print(f"{fastforward.WORKERS} fast-forward workers started in {time.perf_counter() - t0:.1f} s")
    for seed in args.seeds:
        ws = Workspace([s.replace(dataset=args.dataset, seed=seed) for s in PRESETS.values()], parallel=args.parallel)
        t0 = time.perf_counter()
        with ws.held():
            ws.fast_forward(args.skip)
        ws._thread.join()
        wall = time.perf_counter() - t0
        shown = []
        for r in ws.runs:
            m = r.measure(fresh=True)
            shown.append(f"{r.settings.objective} W1 {m.w1:.2f}" + (f" modes {m.modes}/{m.of}" if m.modes is not None
                                                                      else ""))
        where = f"{fastforward.WORKERS} worker processes" if fastforward.pool() else "in turn in the server's thread"
        print(f"seed {seed}: {args.skip:,} steps in {wall:.1f} s ({where}, "
              f"torch {torch.get_num_threads()} threads): " + "; ".join(shown))


# Counts, every 5 ms, the panels whose <img> shows a picture it did not show before.
COUNT_JS = """() => { window.__seen = [null, null, null]; window.__n = [0, 0, 0];
  setInterval(() => { for (let i = 0; i < 3; i++) {
    const im = document.querySelector(`#lab-panel-${i} img`), src = im && im.getAttribute('src');
    if (src && src !== window.__seen[i]) { window.__seen[i] = src; window.__n[i]++; } } }, 5); }"""


def _lab_app(patched_train, name: str = "train"):
    """The real app on a free port with Workspace.<name> (train) replaced by `patched_train(the
    original)`: (url, restore)."""
    import socket
    import tempfile

    from wgan_app.lab import workspace
    from wgan_app.ui import Settings, build_demo, launch_options

    train = getattr(workspace.Workspace, name)
    setattr(workspace.Workspace, name, patched_train(train))
    root = Path(tempfile.mkdtemp(prefix="bench-lab-"))
    demo = build_demo(Settings(runs_dir=root / "runs", data_dir=root / "data"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True, server_port=port, **launch_options())

    def restore():
        import shutil

        demo.close()
        setattr(workspace.Workspace, name, train)
        shutil.rmtree(root, ignore_errors=True)
    return url, restore


def first_minute(args) -> None:
    """Per seed: a fresh page, the seed set, Run, and args.first_minute seconds later what the
    three panels show, read from the page's own workspace (the one its ticks train)."""
    import shutil

    from playwright.sync_api import sync_playwright

    seen: list = []

    def patched(train):
        def recording(self, *a, **kw):  # the page's workspace: its Run, ticks and Skip ahead call this
            if not seen or seen[-1] is not self:
                seen.append(self)
            return train(self, *a, **kw)
        return recording

    url, restore = _lab_app(patched, "keep_training")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                        args=["--no-sandbox", "--disable-gpu"])
            for seed in args.seeds:
                page = browser.new_page(viewport={"width": 1400, "height": 1300})
                page.goto(url)
                page.get_by_role("tab", name="Lab").click()
                box = page.locator("#lab-seed input")
                box.fill(str(seed))
                box.press("Enter")  # the runs restart on the new seed at their next step
                time.sleep(1.0)
                page.locator("#lab-run").click()
                t0 = time.perf_counter()
                arrived = None
                if args.skip:  # a visitor who presses Skip ahead after a glance at the live panels
                    time.sleep(2.0)
                    page.locator("#lab-skip-steps input").fill(str(args.skip))
                    page.locator("#lab-skip").click()
                    status = page.locator("#lab-status")
                    status.filter(has_text="panels paused").wait_for(timeout=30_000)
                    while "panels paused" in (status.text_content() or ""):
                        time.sleep(0.2)
                    arrived = time.perf_counter() - t0
                time.sleep(max(0.0, args.first_minute - (time.perf_counter() - t0)))
                ws = seen[-1]
                with ws.held():  # what the panels show now (measured now, not 10 steps ago)
                    shown = [(r.settings.objective, r.settings.seed, r.step, r.measure(fresh=True), r.tracking())
                             for r in ws.runs]
                wall = time.perf_counter() - t0
                if args.out:
                    page.locator("#lab-panel-0").scroll_into_view_if_needed()
                    page.screenshot(path=str(args.out / f"lab-first-minute-seed{seed}.png"))
                page.locator("#lab-pause").click()
                page.close()
                assert all(s == seed for _, s, *_ in shown), f"the page's runs are not on seed {seed}"
                rows.append((seed, wall, shown))
                if arrived is not None:
                    print(f"seed {seed}: Skip ahead {args.skip:,} pressed 2 s after Run; the panels drew again "
                          f"{arrived:.1f} s after Run", flush=True)
            browser.close()
    finally:
        restore()
    print(f"What the Lab shows {args.first_minute:g} s after Run, headless Chromium on the same machine "
          f"({os.cpu_count()} cores), 8 Gaussians, the presets; torch {torch.__version__}")
    names = [o for o, *_ in rows[0][2]]
    print("| seed | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for seed, wall, shown in rows:
        cells = [f"step {k:,}: {m.modes}/{m.of} modes, {m.high_quality:.0%} near one, W1 {m.w1:.2f}"
                 + ("" if rho is None else f", rho {rho:+.2f}") for _, _, k, m, rho in shown]
        print(f"| {seed} | " + " | ".join(cells) + " |")


def in_browser(seconds: float, parallel: bool) -> tuple[list[float], list[float]]:
    """The Lab in the real app and a headless Chromium: (panel updates/s, steps/s) per run."""
    import shutil

    from playwright.sync_api import sync_playwright

    from wgan_app.lab import workspace

    done = [0] * workspace.N_RUNS

    def patched(train):
        def counting(self, *a, **kw):  # every run's steps, as the Lab's ticks take them
            self.parallel = parallel
            steps = train(self, *a, **kw)
            for i, k in enumerate(steps):
                done[i] += k
            return steps
        return counting

    url, restore = _lab_app(patched)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"),
                                        args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            page.goto(url)
            page.get_by_role("tab", name="Lab").click()
            page.evaluate(COUNT_JS)
            page.locator("#lab-run").click()
            time.sleep(3.0)  # warm-up: first ticks allocate, rates settle
            n0, s0, t0 = page.evaluate("window.__n"), list(done), time.perf_counter()
            time.sleep(seconds)
            n1, s1, t1 = page.evaluate("window.__n"), list(done), time.perf_counter()
            page.locator("#lab-pause").click()
            browser.close()
    finally:
        restore()
    return [(b - a) / (t1 - t0) for a, b in zip(n0, n1)], [(b - a) / (t1 - t0) for a, b in zip(s0, s1)]


if __name__ == "__main__":
    main()
