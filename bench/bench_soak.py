"""Soak: hard kills during training, and visitors drawing digits while the server trains.

    python bench/bench_soak.py [--kills 10] [--clients 16] [--calls 50] [--recipe fast] [--json out.json]

Part 1, kills: `python app.py --train` is SIGKILLed at a random moment N times (after its first
checkpoint of that segment, so some kills land inside a checkpoint write) and resumed with
`--resume` each time. Prints kills survived (the newest checkpoint loads and the resume trains
on), steps lost per kill (last logged step minus the step resumed from; bounded by
--save-every), and failures.

Part 2, load: `python app.py` serves the shipped acgan model (a random one of the same shape when
none is shipped) and trains the UI's default run; `--clients` gradio_client clients each make
`--calls` one-digit /generate calls. Prints p50/p95 latency, failures, and training steps/s
before and under the load. Target: p95 <= 1 s for 16 clients x 50 calls on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_ui import free_port, percentiles, random_checkpoint, wait_ready  # noqa: E402


def soak_kills(data_dir: str, kills: int, save_every: int, seed: int) -> dict:
    from wgan_app.checkpoint import list_step_dirs, load_checkpoint

    rng = random.Random(seed)
    run = Path(tempfile.mkdtemp(prefix="bench_soak-")) / "run"
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    base = [sys.executable, "app.py", "--train", "--data-dir", data_dir, "--run-dir", str(run),
            "--save-every", str(save_every), "--log-every", "1", "--sample-every", "0", "--keep-checkpoints", "3"]
    survived, lost, failures = 0, [], []
    for k in range(kills + 1):
        last = k == kills  # the final segment runs to its end instead of being killed
        resume = ["--resume"] if k else []
        iters = (load_checkpoint(run).step + save_every) if last else 10**6
        proc = subprocess.Popen([*base, "--iters", str(iters), *resume], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if last:
            err = proc.communicate(timeout=600)[1]
            if proc.returncode != 0:
                failures.append(f"final resume exited {proc.returncode}: {err.strip().splitlines()[-1:]}")
            break
        first = list_step_dirs(run)[-1].name if list_step_dirs(run) else None
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            steps = list_step_dirs(run)
            if steps and steps[-1].name != first:
                break
            time.sleep(0.02)
        if proc.poll() is not None:
            failures.append(f"segment {k} exited {proc.returncode} before its kill: "
                            f"{proc.stderr.read().strip().splitlines()[-1:]}")
            break
        time.sleep(rng.uniform(0, 3.0))
        proc.kill()
        proc.wait()
        try:
            ckpt = load_checkpoint(run)
            logged = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
                      if line.strip()]
            lost.append(logged[-1] - ckpt.step)
            survived += 1
        except Exception as e:  # what the benchmark exists to catch
            failures.append(f"after kill {k + 1}: {type(e).__name__}: {e}")
            break
    leftovers = [p.name for p in (run / "checkpoints").iterdir() if not p.name.startswith("step_")]
    if leftovers:
        failures.append(f"temporary folders left: {leftovers}")
    return {"kills": kills, "survived": survived, "steps_lost_max": max(lost, default=None),
            "steps_lost_mean": round(sum(lost) / len(lost), 1) if lost else None, "save_every": save_every,
            "failures": failures}


def soak_load(data_dir: str, clients: int, calls: int, recipe: str) -> dict:
    from gradio_client import Client

    tmp = Path(tempfile.mkdtemp(prefix="bench_soak-"))
    ckpts = ROOT / "checkpoints"
    if not (ckpts / "acgan-mnist" / "model.safetensors").exists():
        ckpts = tmp / "checkpoints"
        random_checkpoint(ckpts / "acgan-mnist")
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "WGAN_APP_CHECKPOINTS": str(ckpts),
           "WGAN_APP_RUNS_DIR": str(tmp / "runs"), "WGAN_APP_DATA_DIR": data_dir, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_ready(url, proc)
        admin = Client(url, verbose=False)
        admin.predict(iters=4000, recipe=recipe, api_name="/train_start")
        while admin.predict(api_name="/train_status")["step"] < 50:  # past start-up, at its usual speed
            time.sleep(0.5)
        s0, t0 = admin.predict(api_name="/train_status")["step"], time.perf_counter()
        time.sleep(10)
        s1, t1 = admin.predict(api_name="/train_status")["step"], time.perf_counter()
        quiet_rate = (s1 - s0) / (t1 - t0)

        conns = [Client(url, verbose=False) for _ in range(clients)]
        for c in conns:
            c.predict(label=7, seed=0, num=1, api_name="/generate")
        lat, failures, lock = [], [], threading.Lock()

        def work(i: int, c) -> None:
            for k in range(calls):
                t = time.perf_counter()
                try:
                    c.predict(label=k % 10, seed=1000 * i + k, num=1, api_name="/generate")
                except Exception as e:
                    with lock:
                        failures.append(f"{type(e).__name__}: {str(e)[:120]}")
                    continue
                with lock:
                    lat.append(time.perf_counter() - t)

        s0, t0 = admin.predict(api_name="/train_status")["step"], time.perf_counter()
        threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(conns)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        s1, t1 = admin.predict(api_name="/train_status")["step"], time.perf_counter()
        status = admin.predict(api_name="/train_status")
        for c in [admin, *conns]:
            c.close()
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return {"clients": clients, "calls_per_client": calls, **percentiles(lat), "failures": len(failures),
            "failure_examples": failures[:3], "requests_per_s": round(len(lat) / (t1 - t0), 1),
            "train_state": status["state"], "train_recipe": recipe,
            "train_steps_per_s_quiet": round(quiet_rate, 2), "train_steps_per_s_under_load": round((s1 - s0) / (t1 - t0), 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--save-every", type=int, default=25)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--recipe", default="fast", choices=("fast", "paper"), help="of the server's training run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip", choices=("kills", "load"), help="run only the other part")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()

    from wgan_app.train import cpu_name

    results = {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2)}
    if args.skip != "kills":
        results["kills"] = r = soak_kills(args.data_dir, args.kills, args.save_every, args.seed)
        print(f"kills: {r['survived']}/{r['kills']} survived, steps lost max {r['steps_lost_max']} "
              f"(mean {r['steps_lost_mean']}, --save-every {r['save_every']}), failures {r['failures'] or 0}",
              flush=True)
    if args.skip != "load":
        results["load"] = r = soak_load(args.data_dir, args.clients, args.calls, args.recipe)
        print(f"load: {r['clients']} clients x {r['calls_per_client']} one-digit /generate calls during "
              f"{args.recipe}-recipe training: p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms (target <= 1000), "
              f"failures {r['failures']}; training {r['train_steps_per_s_quiet']} steps/s quiet, "
              f"{r['train_steps_per_s_under_load']} under load", flush=True)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    failed = results.get("kills", {}).get("failures") or results.get("load", {}).get("failures")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
