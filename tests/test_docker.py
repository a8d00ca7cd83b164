"""Deployment promises: the Dockerfile, .dockerignore and the Spaces front matter of README.md.

This machine has no Docker engine, so the image is never built here. What can be checked is:
the Dockerfile's instructions (base, user, layer order, port, env, healthcheck, command), that
the requirements it installs are the pinned versions the tests run with, that the build context
keeps runs/data/caches out, and that the container's command, run with the container's env,
starts the app bound to 0.0.0.0 and passes the HEALTHCHECK (and fails it once stopped).
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, backslash continuations joined."""
    out, pending = [], ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, args = line.partition(" ")
        out.append((word.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def args_of(instr: str) -> list[str]:
    return [a for i, a in dockerfile() if i == instr]


def index_of(pred) -> int:
    return next(n for n, (i, a) in enumerate(dockerfile()) if pred(i, a))


def image_env() -> dict[str, str]:
    env = {}
    for args in args_of("ENV"):
        for token in shlex.split(args):
            key, _, value = token.partition("=")
            env[key] = value
    return env


def requirements(name: str = "requirements.txt") -> dict[str, str]:
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-r"):
            assert re.fullmatch(r"[A-Za-z0-9_.-]+==[A-Za-z0-9_.+-]+", line), f"{name}: {line!r} is not pinned"
            pkg, version = line.split("==")
            pins[pkg.lower()] = version
    return pins


def front_matter() -> dict:
    text = (ROOT / "README.md").read_text()
    assert text.startswith("---\n"), "README.md must open with the Spaces front matter"
    return yaml.safe_load(text.split("---\n")[1])


# --- the Dockerfile -------------------------------------------------------------------------------


def test_dockerfile_base_user_and_layer_order():
    instrs = dockerfile()
    assert [i for i, _ in instrs].count("FROM") == 1
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", args_of("FROM")[0])
    # A uid-1000 user with a home, active before anything is installed or run.
    useradd = index_of(lambda i, a: i == "RUN" and "useradd" in a)
    assert re.search(r"(--uid|-u) 1000\b", instrs[useradd][1]) and "--create-home" in instrs[useradd][1]
    user = index_of(lambda i, a: i == "USER")
    assert args_of("USER") == ["user"] and user > useradd
    assert image_env()["HOME"] == "/home/user" and args_of("WORKDIR")[0].startswith("/home/user/")
    # requirements.txt alone, installed, and only then the code: code edits keep the pip layer.
    copy_reqs = index_of(lambda i, a: i == "COPY" and "requirements.txt" in a)
    pip = index_of(lambda i, a: i == "RUN" and "pip install" in a)
    copy_all = index_of(lambda i, a: i == "COPY" and re.search(r"(^|\s)\.\s+\.$", a))
    assert user < copy_reqs < pip < copy_all
    assert "-r requirements.txt" in instrs[pip][1]
    assert "--chown=user" in instrs[copy_reqs][1] and "--chown=user" in instrs[copy_all][1]


def test_dockerfile_serves_on_7860_with_a_healthcheck_and_the_app_command():
    assert args_of("EXPOSE") == ["7860"]
    env = image_env()
    assert env["GRADIO_SERVER_NAME"] == "0.0.0.0" and env.get("GRADIO_SERVER_PORT", "7860") == "7860"
    assert env["GRADIO_ANALYTICS_ENABLED"] == "False"
    assert env["HF_HOME"].startswith(env["HOME"])  # the cache is writable by the non-root user
    (health,) = args_of("HEALTHCHECK")
    assert re.search(r"--start-period=\d+s", health) and " CMD " in f" {health}"
    assert json.loads(args_of("CMD")[0]) == ["python", "app.py"]
    assert (ROOT / "app.py").is_file()


def test_the_image_installs_the_pinned_versions_the_tests_use():
    pins = requirements()
    for pkg in ("torch", "torchvision", "gradio", "huggingface_hub", "safetensors", "numpy", "pillow"):
        assert pkg in pins, f"requirements.txt does not pin {pkg}"
    for pkg, version in pins.items():
        installed = importlib.metadata.version(pkg).split("+")[0]  # 2.14.1+cpu is torch 2.14.1
        assert installed == version, f"{pkg}: requirements.txt pins {version}, the tests run {installed}"
    assert requirements("requirements-dev.txt")  # dev pins are pinned too (and include the runtime)
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text()


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, simplified: the last matching pattern wins; a pattern also covers subpaths."""
    ignored = False
    for pat in patterns:
        neg = pat.startswith("!")
        pat = pat.lstrip("!").strip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        if any(fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(p, pat.replace("**/", "")) for p in prefixes):
            ignored = not neg
    return ignored


def test_dockerignore_keeps_runs_data_and_caches_out_and_the_app_in():
    patterns = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    for out in ("runs/2025-acgan-mnist/metrics.jsonl", "data/MNIST/raw/train-images-idx3-ubyte",
                ".venv/bin/python", ".git/HEAD", "wgan_app/__pycache__/hub.cpython-311.pyc",
                ".pytest_cache/v/cache", ".gradio/certificate.pem", ".cache/huggingface/token"):
        assert dockerignored(out, patterns), f"{out} would be copied into the image"
    for keep in ("app.py", "requirements.txt", "wgan_app/hub.py", "checkpoints/acgan-mnist/model.safetensors",
                 "checkpoints/acgan-mnist/config.json", "README.md"):
        assert not dockerignored(keep, patterns), f"{keep} would be missing from the image"


# --- Hugging Face Spaces ------------------------------------------------------------------------


def test_readme_front_matter_configures_a_gradio_space_with_the_pinned_versions():
    meta = front_matter()
    for key in ("title", "emoji", "colorFrom", "colorTo", "sdk", "sdk_version", "app_file", "python_version",
                "license", "short_description"):
        assert meta.get(key), f"README front matter lacks {key}"
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert meta["sdk_version"] == requirements()["gradio"]
    assert meta["python_version"] == "3.11"  # a string: YAML would read 3.10 as 3.1
    assert args_of("FROM")[0].startswith(f"python:{meta['python_version']}")
    assert len(meta["short_description"]) <= 60  # the Hub's limit
    colors = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
    assert meta["colorFrom"] in colors and meta["colorTo"] in colors


# --- the container's command --------------------------------------------------------------------


def listening_address(port: int) -> str | None:
    """The IPv4 address a socket LISTENs on for `port`, from /proc/net/tcp (Linux)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr, p = local.split(":")
        if int(p, 16) == port and state == "0A":
            return socket.inet_ntoa(bytes.fromhex(addr)[::-1])
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_container_command_with_the_image_env_binds_all_interfaces_and_is_healthy(tmp_path):
    port = free_port()
    image = image_env()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "GRADIO_", "WGAN_APP_"))}
    env.update({k: v for k, v in image.items() if k not in ("PATH", "HOME", "HF_HOME")})
    # The container's env, plus: a port nobody else uses here, a private home and cache, and
    # no network at all for the Hub (the shipped checkpoints must be enough to start).
    env.update(GRADIO_SERVER_PORT=str(port), HOME=str(tmp_path), HF_HOME=str(tmp_path / "hf"), HF_HUB_OFFLINE="1",
               WGAN_APP_RUNS_DIR=str(tmp_path / "runs"))
    cmd = json.loads(args_of("CMD")[0])
    health = re.sub(r"^(--\S+\s+)*CMD\s+", "", args_of("HEALTHCHECK")[0])
    log = open(tmp_path / "app.log", "w")
    proc = subprocess.Popen([sys.executable, *cmd[1:]], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 240
        while True:
            assert proc.poll() is None, f"the app exited with {proc.returncode}: {(tmp_path / 'app.log').read_text()}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    assert r.status == 200
                break
            except OSError:
                assert time.time() < deadline, "the app did not answer within 240 s"
                time.sleep(1)
        assert listening_address(port) == "0.0.0.0"
        ok = subprocess.run(["sh", "-c", health], env=env, capture_output=True, text=True, timeout=30)
        assert ok.returncode == 0, ok.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    down = subprocess.run(["sh", "-c", health], env=env, capture_output=True, text=True, timeout=30)
    assert down.returncode != 0  # a stopped app is reported unhealthy
