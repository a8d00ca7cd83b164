"""Web UI latency: time from `python app.py` to the first HTTP 200, then /generate through
gradio_client (1 image and a 100-image grid) with 1 and with 8 concurrent clients.

    python bench/bench_ui.py [--checkpoint DIR] [--requests 40] [--json out.json]
    python bench/bench_ui.py --ready-only 5 [--root CHECKOUT]   # start-up alone, 5 starts, median

Targets: ready < 10 s, one image p50 < 100 ms. The same calls are also timed over plain HTTP:
gradio_client's SSE reader polls every 50 ms, a floor that no server change removes. It serves
checkpoints/acgan-mnist when shipped;
otherwise a randomly initialised generator of the same shape (the cost of a forward pass does
not depend on the weights). Latency is end to end: client, HTTP, queue, sampler, PNG, download.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_checkpoint(dest: Path) -> Path:
    """A full-size acgan generator with random weights, in the real checkpoint format."""
    import torch

    from wgan_app.checkpoint import checkpoint_config, write_checkpoint_dir
    from wgan_app.config import ModelConfig
    from wgan_app.models import Generator

    torch.manual_seed(0)
    model = ModelConfig()
    return write_checkpoint_dir(dest, checkpoint_config(model, step=0, ema=False), Generator(model).state_dict())


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"app.py exited early with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(0.02)
    raise SystemExit(f"app.py was not ready after {timeout} s")


def percentiles(xs: list[float]) -> dict:
    xs = sorted(xs)
    pick = lambda q: xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]  # noqa: E731
    return {"p50_ms": round(1000 * statistics.median(xs), 1), "p95_ms": round(1000 * pick(0.95), 1),
            "n": len(xs)}


def run_clients(url: str, num: int, clients: int, requests: int) -> dict:
    """`clients` threads, each with its own gradio_client, each making `requests` calls."""
    from gradio_client import Client

    conns = [Client(url, verbose=False) for _ in range(clients)]
    for c in conns:  # warm-up: model load, first PNG, connection setup
        c.predict(label=7, seed=0, num=num, api_name="/generate")
    lat: list[float] = []
    lock = threading.Lock()

    def work(i: int, c) -> None:
        for k in range(requests):
            t = time.perf_counter()
            c.predict(label=k % 10, seed=1000 * i + k, num=num, api_name="/generate")
            with lock:
                lat.append(time.perf_counter() - t)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=work, args=(i, c)) for i, c in enumerate(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    for c in conns:
        c.close()
    return {**percentiles(lat), "requests_per_s": round(len(lat) / wall, 1)}


def run_http(url: str, num: int, requests: int) -> dict:
    """The same call over plain HTTP (POST /gradio_api/run/generate, then GET the PNG): what the
    server costs without gradio_client, whose SSE reader polls every 50 ms."""
    def call(seed: int) -> None:
        body = json.dumps({"data": ["", 7, seed, num]}).encode()
        req = urllib.request.Request(url + "gradio_api/run/generate", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            out = json.loads(r.read())["data"][0]
        with urllib.request.urlopen(out["url"], timeout=30) as r:
            assert r.read(8) == b"\x89PNG\r\n\x1a\n"

    call(0)
    lat = []
    for k in range(requests):
        t = time.perf_counter()
        call(k + 1)
        lat.append(time.perf_counter() - t)
    return percentiles(lat)


def ready_only(n: int, root: Path) -> int:
    """Start `root`'s app.py n times with its own shipped checkpoints; print each time to the first
    HTTP 200 and the median."""
    times = []
    for _ in range(n):
        port = free_port()
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
        env.pop("WGAN_APP_MODEL", None)
        proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=root, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            times.append(wait_ready(f"http://127.0.0.1:{port}/", proc))
        finally:
            proc.terminate()
            proc.wait(10)
        print(f"ready after {times[-1]:.2f} s", flush=True)
    print(f"{root}: median {statistics.median(times):.2f} s over {n} starts, {os.cpu_count()} cores")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", help="checkpoints root holding acgan-mnist (default: the repo's, or random)")
    ap.add_argument("--requests", type=int, default=40, help="requests per client per case")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--ready-only", type=int, metavar="N", help="only time N starts to the first HTTP 200")
    ap.add_argument("--root", default=str(ROOT), help="--ready-only: the checkout whose app.py starts (A/B)")
    args = ap.parse_args()
    if args.ready_only:
        return ready_only(args.ready_only, Path(args.root))

    tmp = Path(tempfile.mkdtemp(prefix="bench_ui-"))
    ckpts = Path(args.checkpoint) if args.checkpoint else ROOT / "checkpoints"
    model_note = "shipped checkpoints/acgan-mnist"
    if not (ckpts / "acgan-mnist" / "model.safetensors").exists():
        ckpts = tmp / "checkpoints"
        random_checkpoint(ckpts / "acgan-mnist")
        model_note = "random-init acgan generator of the shipped shape (none shipped yet)"

    port = free_port()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "WGAN_APP_CHECKPOINTS": str(ckpts),
           "WGAN_APP_RUNS_DIR": str(tmp / "runs"), "HF_HUB_OFFLINE": "1"}
    env.pop("WGAN_APP_MODEL", None)
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        ready = wait_ready(url, proc)
        results = {"ready_s": round(ready, 2), "model": model_note, "cpu_count": os.cpu_count(),
                   "load_avg_1min": round(os.getloadavg()[0], 2)}
        for num in (1, 100):
            for clients in (1, 8):
                key = f"num{num}_clients{clients}"
                results[key] = run_clients(url, num, clients, max(1, args.requests // clients))
                print(f"{key:>18}: {results[key]}", flush=True)
            results[f"num{num}_plain_http"] = run_http(url, num, args.requests)
            print(f"{f'num{num}_plain_http':>18}: {results[f'num{num}_plain_http']}", flush=True)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(f"ready after {results['ready_s']} s (target < 10 s); one image p50 "
          f"{results['num1_clients1']['p50_ms']} ms through gradio_client, "
          f"{results['num1_plain_http']['p50_ms']} ms over plain HTTP (target < 100 ms); model: {model_note}")
    print(json.dumps(results, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
