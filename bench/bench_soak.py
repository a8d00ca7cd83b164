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

By default the clients are threads of this process, on the server's cores: the worst case, since
16 gradio_clients polling their queues take more CPU than the server (on two cores, the same
server answered 11 requests/s with them beside it and 41 with them elsewhere). On a Space the
visitors are elsewhere; to measure that on one bigger machine, pin the server to two cores and
put the clients in their own processes on the others:

    python bench/bench_soak.py --skip kills --server-cpus 0,1 --client-procs --client-cpus 2-15
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
    from wgan_app.checkpoint import load_checkpoint
    from wgan_app.rundir import list_step_dirs

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


def cpu_list(text: str | None) -> set[int] | None:
    """"0,1" or "2-15" or "0,4-7" -> a set of CPU numbers (None: no pinning)."""
    if not text:
        return None
    cpus: set[int] = set()
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            cpus.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a CPU list; write it like 0,1 or 2-15") from None
    missing = cpus - os.sched_getaffinity(0)
    if not cpus or missing:
        raise argparse.ArgumentTypeError(f"CPUs {sorted(missing) or text} are not available here; "
                                         f"this machine offers {sorted(os.sched_getaffinity(0))}")
    return cpus


class HttpClient:
    """/generate over plain HTTP, as a script with curl would call it: POST the call, read the answer
    from its event stream, GET the PNG. Costs the client far less CPU than gradio_client, whose
    stream reader polls every 50 ms."""

    def __init__(self, url: str):
        import httpx

        self.url, self.http = url, httpx.Client(timeout=60)

    def predict(self, label: int, seed: int, num: int, api_name: str) -> None:
        call = self.url + "gradio_api/call" + api_name
        event = self.http.post(call, json={"data": ["", label, seed, num]}).raise_for_status().json()["event_id"]
        with self.http.stream("GET", f"{call}/{event}") as r:
            kind, data = None, None
            for line in r.iter_lines():
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:") and kind in ("complete", "error"):
                    data = line[5:].strip()
                    break
        if kind != "complete":
            raise RuntimeError(f"/generate answered {kind}: {data}")
        png = self.http.get(json.loads(data)[0]["url"]).raise_for_status().content
        if not png.startswith(b"\x89PNG"):
            raise RuntimeError("/generate's image is not a PNG")

    def close(self) -> None:
        self.http.close()


def client_calls(url: str, i: int, calls: int, start, cpus: set[int] | None, kind: str, out) -> None:
    """One visitor: `calls` one-digit /generate calls once `start` (a barrier) lets every client go.

    Puts (latencies in s, failure strings) on `out`, always, also when the client itself breaks, so
    the bench never waits for an answer that will not come. Runs as a thread or as its own process.
    """
    lat, failures = [], []
    try:
        from gradio_client import Client

        if cpus:
            os.sched_setaffinity(0, cpus)
        try:
            c = Client(url, verbose=False) if kind == "gradio_client" else HttpClient(url)
            c.predict(label=7, seed=0, num=1, api_name="/generate")  # warm-up: connection, first PNG
        except BaseException:
            start.abort()  # every party's wait() raises at once instead of timing out
            raise
        start.wait()
        for k in range(calls):
            t = time.perf_counter()
            try:
                c.predict(label=k % 10, seed=1000 * i + k, num=1, api_name="/generate")
            except Exception as e:
                failures.append(f"{type(e).__name__}: {str(e)[:120]}")
                continue
            lat.append(time.perf_counter() - t)
        c.close()
    except BaseException as e:
        failures.append(f"client {i} broke: {type(e).__name__}: {str(e)[:120]}")
    finally:
        out.put((lat, failures))


def soak_load(data_dir: str, clients: int, calls: int, recipe: str, server_cpus: set[int] | None = None,
              client_procs: bool = False, client_cpus: set[int] | None = None,
              client_kind: str = "gradio_client") -> dict:
    import multiprocessing as mp
    import queue

    from gradio_client import Client

    tmp = Path(tempfile.mkdtemp(prefix="bench_soak-"))
    ckpts = ROOT / "checkpoints"
    if not (ckpts / "acgan-mnist" / "model.safetensors").exists():
        ckpts = tmp / "checkpoints"
        random_checkpoint(ckpts / "acgan-mnist")
    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "WGAN_APP_CHECKPOINTS": str(ckpts),
           "WGAN_APP_RUNS_DIR": str(tmp / "runs"), "WGAN_APP_DATA_DIR": data_dir, "HF_HUB_OFFLINE": "1"}
    if server_cpus:  # the server's threads follow its cores, not the machine's
        env["OMP_NUM_THREADS"] = str(len(server_cpus))
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=(lambda: os.sched_setaffinity(0, server_cpus)) if server_cpus else None)
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

        # The clients connect and warm up first; the barrier's last party (this process) starts the clock.
        # Client threads share this process, so with --server-cpus they share the server's cores.
        if server_cpus and not client_procs:
            os.sched_setaffinity(0, server_cpus)
        if client_procs:
            ctx = mp.get_context("spawn")
            start, out = ctx.Barrier(clients + 1), ctx.Queue()
            workers = [ctx.Process(target=client_calls, args=(url, i, calls, start, client_cpus, client_kind, out))
                       for i in range(clients)]
        else:
            start, out = threading.Barrier(clients + 1), queue.Queue()
            workers = [threading.Thread(target=client_calls, args=(url, i, calls, start, None, client_kind, out))
                       for i in range(clients)]
        for w in workers:
            w.start()
        s0 = admin.predict(api_name="/train_status")["step"]
        t0 = time.perf_counter()
        try:
            start.wait(timeout=300)
        except threading.BrokenBarrierError:
            pass  # a client broke during its warm-up; its reason arrives on `out` with the others'
        lat, failures, received = [], [], 0
        while received < len(workers):
            try:
                got_lat, got_failures = out.get(timeout=5)
            except queue.Empty:  # a process killed outright (say, for memory) never answers
                dead = sum(client_procs and w.exitcode not in (None, 0) for w in workers)
                if dead and received + dead >= len(workers):
                    failures.append(f"{dead} client process(es) died without an answer")
                    break
                continue
            received += 1
            lat += got_lat
            failures += got_failures
        s1, t1 = admin.predict(api_name="/train_status")["step"], time.perf_counter()
        for w in workers:
            w.join()
        status = admin.predict(api_name="/train_status")
        admin.close()
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return {"clients": clients, "calls_per_client": calls, **percentiles(lat), "failures": len(failures),
            "failure_examples": failures[:3], "requests_per_s": round(len(lat) / (t1 - t0), 1),
            "train_state": status["state"], "train_recipe": recipe,
            "server_cpus": sorted(server_cpus) if server_cpus else "all",
            "client": client_kind,
            "clients_as": f"processes on cpus {sorted(client_cpus) if client_cpus else 'all'}" if client_procs
            else f"threads of the bench, on cpus {sorted(server_cpus) if server_cpus else 'all'}",
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
    ap.add_argument("--server-cpus", type=cpu_list, help="pin the load part's server to these CPUs, e.g. 0,1 (default: all)")
    ap.add_argument("--client-procs", action="store_true",
                    help="run each client in its own process instead of a thread of this one")
    ap.add_argument("--client", default="gradio_client", choices=("gradio_client", "http"),
                    help="how each client calls /generate: gradio_client, or plain HTTP (less client CPU)")
    ap.add_argument("--client-cpus", type=cpu_list, help="with --client-procs, pin the clients to these CPUs, e.g. 2-15")
    ap.add_argument("--skip", choices=("kills", "load"), help="run only the other part")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    if args.client_cpus and not args.client_procs:
        ap.error("--client-cpus pins client processes; add --client-procs")

    from wgan_app.train import cpu_name

    results = {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2)}
    if args.skip != "kills":
        results["kills"] = r = soak_kills(args.data_dir, args.kills, args.save_every, args.seed)
        print(f"kills: {r['survived']}/{r['kills']} survived, steps lost max {r['steps_lost_max']} "
              f"(mean {r['steps_lost_mean']}, --save-every {r['save_every']}), failures {r['failures'] or 0}",
              flush=True)
    if args.skip != "load":
        results["load"] = r = soak_load(args.data_dir, args.clients, args.calls, args.recipe,
                                        args.server_cpus, args.client_procs, args.client_cpus, args.client)
        print(f"load: {r['clients']} {r['client']} clients ({r['clients_as']}) x {r['calls_per_client']} one-digit /generate calls during "
              f"{args.recipe}-recipe training: p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms (target <= 1000), "
              f"{r['requests_per_s']} requests/s, failures {r['failures']}; training {r['train_steps_per_s_quiet']} steps/s quiet, "
              f"{r['train_steps_per_s_under_load']} under load", flush=True)
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    failed = results.get("kills", {}).get("failures") or results.get("load", {}).get("failures")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
