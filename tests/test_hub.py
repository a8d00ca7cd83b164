"""Hub pulls and pushes through huggingface_hub's real client, against a loopback Hub.

huggingface_hub reads HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE when it is imported, so every
networked step runs in a subprocess started with those set; the loopback server (fake_hub.py)
runs in this process, records every request and is stopped by its fixture. Nothing here can
reach the internet: the subprocess environment points every Hub variable at 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fake_hub import TOKEN, FakeHub

from wgan_app.checkpoint import CONFIG_NAME, WEIGHTS_NAME, load_checkpoint
from wgan_app.errors import UserError
from wgan_app.hub import check_repo_id, model_card, parse_hub_ref

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

# Resolves each (ref, endpoint) given as JSON in argv[1]; prints {ref: ["ok", path] | ["err", message]}.
RESOLVE = r"""
import json, sys
from wgan_app.errors import UserError
from wgan_app.hub import resolve_hub_checkpoint
out = {}
for ref, endpoint in json.loads(sys.argv[1]):
    try:
        out[ref] = ["ok", str(resolve_hub_checkpoint(ref, endpoint=endpoint))]
    except UserError as e:
        out[ref] = ["err", str(e)]
print(json.dumps(out))
"""


def hub_env(tmp_path: Path, endpoint: str, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(tmp_path / "hf-home"), HF_HUB_DISABLE_XET="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", GRADIO_ANALYTICS_ENABLED="False", PYTHONPATH=str(ROOT))
    env.update(extra)
    return env


def run(args: list[str], env: dict, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def resolve(env: dict, pairs: list[tuple[str, str | None]]) -> dict:
    r = run(["-c", RESOLVE, json.dumps(pairs)], env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def ckpt_files(ckpt: Path) -> dict[str, bytes]:
    return {f: (ckpt / f).read_bytes() for f in (CONFIG_NAME, WEIGHTS_NAME)}


def closed_port_url() -> str:
    with socket.socket() as s:  # bound then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def assert_one_line_error(message: str, *needles: str) -> None:
    assert "\n" not in message.strip(), message
    for needle in needles:
        assert needle in message, (needle, message)


@pytest.fixture(scope="module")
def hub(acgan_ckpt, wgan_gp_ckpt):
    """alice/digits: tag v1 = the conditional model, main = a later unconditional one."""
    with FakeHub() as hub:
        hub.v1 = hub.add_commit("alice/digits", ckpt_files(acgan_ckpt), tag="v1")
        hub.main = hub.add_commit("alice/digits", ckpt_files(wgan_gp_ckpt))
        hub.add_commit("alice/config-only", {CONFIG_NAME: (acgan_ckpt / CONFIG_NAME).read_bytes()})
        foreign = json.loads((acgan_ckpt / CONFIG_NAME).read_text()) | {"model_type": "bert"}
        hub.add_commit("alice/not-ours", {CONFIG_NAME: json.dumps(foreign).encode(),
                                          WEIGHTS_NAME: (acgan_ckpt / WEIGHTS_NAME).read_bytes()})
        yield hub


# --- names, no network --------------------------------------------------------------------------


def test_parse_hub_ref_accepts_repo_and_revision_and_rejects_malformed_ids():
    assert parse_hub_ref("hf://alice/digits") == ("alice/digits", None)
    assert parse_hub_ref(" hf://alice/my_model-2.0@v1 ") == ("alice/my_model-2.0", "v1")
    assert parse_hub_ref("hf://a/b@" + "c" * 40) == ("a/b", "c" * 40)
    assert parse_hub_ref("hf://a/b@refs/pr/3") == ("a/b", "refs/pr/3")
    for bad in ["alice/digits", "hf://digits", "hf://a/b/c", "hf://a--b/c", "hf://a/b@", "hf://a/b@ x",
                "hf:///b", "hf://a/" + "x" * 97, "hf://a/b.git"]:
        with pytest.raises(UserError, match="hf://|Hub reference"):
            parse_hub_ref(bad)
    assert check_repo_id("alice/digits") == "alice/digits"
    with pytest.raises(UserError, match="USER/REPO"):
        check_repo_id("alice", what="--push-to-hub")


# --- pull ---------------------------------------------------------------------------------------


def test_pull_through_real_client_pins_revisions_and_uses_the_cache(hub, tmp_path, acgan_ckpt, wgan_gp_ckpt):
    env = hub_env(tmp_path, hub.url)
    refs = ["hf://alice/digits", "hf://alice/digits@v1", f"hf://alice/digits@{hub.v1}"]
    before = len(hub.log)
    got = resolve(env, [(r, None) for r in refs])
    assert all(v[0] == "ok" for v in got.values()), got
    main, v1, pinned = (Path(got[r][1]) for r in refs)
    # The cache's snapshot folder of each commit, holding byte-identical files.
    assert main.name == hub.main and v1.name == hub.v1 and pinned == v1
    assert str(main).startswith(str(tmp_path / "hf-home" / "hub" / "models--alice--digits"))
    assert ckpt_files(main) == ckpt_files(wgan_gp_ckpt) and ckpt_files(v1) == ckpt_files(acgan_ckpt)
    seen = [f"{m} {p}" for m, p in hub.log[before:]]
    assert "GET /api/models/alice/digits" in seen and "GET /api/models/alice/digits/revision/v1" in seen
    assert f"GET /alice/digits/resolve/{hub.main}/model.safetensors" in seen
    # The pinned commit was already cached by the @v1 pull: no request mentions it after that.
    assert not [s for s in seen if f"revision/{hub.v1}" in s]

    # Second process, same cache: the CLI samples the pinned model; the bytes match a local run.
    out = tmp_path / "hub.npz"
    r = run(["app.py", "--sample", "--checkpoint", "hf://alice/digits@v1", "--num", "12", "--seed", "3",
             "--out", str(out)], env)
    assert r.returncode == 0, r.stderr
    from wgan_app.sampler import Sampler

    local = Sampler.load(acgan_ckpt).sample([i % 10 for i in range(12)], seed=3, n=12)
    np.testing.assert_array_equal(np.load(out)["images"], local)


def test_pull_errors_name_the_repo_and_the_cause(hub, tmp_path):
    before = len(hub.log)
    got = resolve(hub_env(tmp_path, hub.url), [
        ("hf://alice/missing", None), ("hf://alice/config-only", None), ("hf://alice/digits@v9", None),
        ("hf://alice/not-ours", None)])
    assert_one_line_error(got["hf://alice/missing"][1], "hf://alice/missing", "no such model repo", hub.url)
    assert_one_line_error(got["hf://alice/config-only"][1], "hf://alice/config-only", "has no model.safetensors")
    assert_one_line_error(got["hf://alice/digits@v9"][1], "hf://alice/digits@v9", "no revision 'v9'")
    assert_one_line_error(got["hf://alice/not-ours"][1], "hf://alice/not-ours", "not describe a wgan_app model")
    assert all(v[0] == "err" for v in got.values())
    # A missing file is known from the repo listing: nothing was downloaded for it.
    assert not [p for m, p in hub.log[before:] if "config-only/resolve" in p]


# Like RESOLVE, under a server's PullPolicy given as JSON in argv[2]: {"allow": [...], "max_bytes": N}.
RESOLVE_WITH_POLICY = RESOLVE.replace("resolve_hub_checkpoint(ref, endpoint=endpoint)",
                                      "resolve_hub_checkpoint(ref, endpoint=endpoint, policy=policy)").replace(
    "out = {}", "from wgan_app.hub import PullPolicy\np = json.loads(sys.argv[2])\n"
                "policy = PullPolicy(allow=tuple(p['allow']), max_bytes=p['max_bytes'])\nout = {}")


def test_a_servers_pull_policy_refuses_other_repos_and_oversized_files_before_downloading(hub, tmp_path,
                                                                                       acgan_ckpt):
    weights = (acgan_ckpt / WEIGHTS_NAME).stat().st_size
    env = hub_env(tmp_path, hub.url)

    def pull(allow, max_bytes):
        before = len(hub.log)
        r = run(["-c", RESOLVE_WITH_POLICY, json.dumps([["hf://alice/digits@v1", None]]),
                 json.dumps({"allow": allow, "max_bytes": max_bytes})], env)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout.strip().splitlines()[-1])["hf://alice/digits@v1"], hub.log[before:]

    (kind, msg), log = pull(["bob/*", "carol/digits"], 10**9)
    assert kind == "err"
    assert_one_line_error(msg, "hf://alice/digits@v1", "only loads Hub models from bob/*, carol/digits",
                          "WGAN_APP_HUB_ALLOW")
    assert log == []  # refused before any request

    (kind, msg), log = pull([], weights - 1)
    assert kind == "err"
    assert_one_line_error(msg, "model.safetensors is", "above this server's download limit", "WGAN_APP_HUB_MAX_MB")
    assert log and not [p for m, p in log if "/resolve/" in p]  # the listing only: no file was downloaded

    (kind, path), _ = pull(["alice/*"], weights + 10_000)  # allowed and within the cap: loads
    assert kind == "ok" and load_checkpoint(path).model.conditional


def test_pull_over_a_failing_network_says_why(tmp_path, acgan_ckpt):
    """Dropped connections (on downloads only, or on everything) and a dead endpoint."""
    with FakeHub() as dropping_files, FakeHub() as dropping_all:
        for h in (dropping_files, dropping_all):
            h.add_commit("alice/digits", ckpt_files(acgan_ckpt))
        dropping_files.drop = r"/resolve/"
        dropping_all.drop = r".*"
        dead = closed_port_url()
        got = resolve(hub_env(tmp_path, dead), [
            ("hf://alice/digits", dropping_files.url), ("hf://alice/digits@main", dropping_all.url),
            ("hf://alice/digits@v1", dead)])
        assert len(dropping_files.log) < 20 and len(dropping_all.log) < 20  # no runaway retry loop
    assert_one_line_error(got["hf://alice/digits"][1], "hf://alice/digits:", dropping_files.url, "disconnected")
    assert_one_line_error(got["hf://alice/digits@main"][1], "hf://alice/digits@main:", "disconnected")
    assert_one_line_error(got["hf://alice/digits@v1"][1], "hf://alice/digits@v1:", "refused", "not in the local cache")


def test_offline_pull_reads_a_prepopulated_cache(tmp_path, acgan_ckpt):
    """The cache layout written by hand (refs/main + snapshots/<commit>), read with HF_HUB_OFFLINE=1."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hf-home" / "hub" / "models--alice--digits"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for name, data in ckpt_files(acgan_ckpt).items():
        (snap / name).write_bytes(data)
    with FakeHub() as hub:  # it must see no request at all
        got = resolve(hub_env(tmp_path, hub.url, HF_HUB_OFFLINE="1"), [
            ("hf://alice/digits", None), (f"hf://alice/digits@{commit}", None), ("hf://alice/absent", None)])
        assert hub.log == []
    assert got["hf://alice/digits"] == ["ok", str(snap)]
    assert got[f"hf://alice/digits@{commit}"] == ["ok", str(snap)]
    assert_one_line_error(got["hf://alice/absent"][1], "hf://alice/absent", "HF_HUB_OFFLINE=1", "not in the local cache")
    # Not offline, but the Hub is unreachable: the cached copy still serves.
    got = resolve(hub_env(tmp_path, closed_port_url()), [("hf://alice/digits", None)])
    assert got["hf://alice/digits"] == ["ok", str(snap)]


# --- push ---------------------------------------------------------------------------------------

# Pulls what was pushed three ways and checks each generator against the local checkpoint:
# the app's resolver, a PyTorchModelHubMixin class (strict), and the model card's own snippet.
ROUNDTRIP = r"""
import json, sys, torch
from huggingface_hub import ModelCard, PyTorchModelHubMixin, hf_hub_download
from wgan_app.checkpoint import load_checkpoint
from wgan_app.config import ModelConfig
from wgan_app.hub import resolve_hub_checkpoint
from wgan_app.models import Generator

repo, local = sys.argv[1], sys.argv[2]
G_local = load_checkpoint(local).build_generator()
z, y = torch.randn(6, G_local.cfg.z_dim), torch.arange(6)
want = G_local(z, y)

G_app = load_checkpoint(resolve_hub_checkpoint("hf://" + repo)).build_generator()

class HubGenerator(Generator, PyTorchModelHubMixin):
    def __init__(self, **config):
        super().__init__(ModelConfig.from_dict({k: config[k] for k in ModelConfig.__dataclass_fields__}))

G_mixin = HubGenerator.from_pretrained(repo, strict=True).eval()

card = ModelCard.load(repo)
snippet = re.search(r"```python\n(.*?)```", card.content, re.S).group(1)
scope = {"__name__": "card"}
exec(compile(snippet, "model_card", "exec"), scope)
G_card = scope["G"]

with torch.no_grad():
    for name, G in [("app", G_app), ("mixin", G_mixin), ("card", G_card)]:
        torch.testing.assert_close(G(z, y), want, msg=name)
print(json.dumps({"card_data": card.data.to_dict(), "card_images": list(scope["images"].shape)}))
""".replace("import json, sys, torch", "import json, re, sys, torch")


def test_push_uploads_a_loadable_repo_with_a_model_card(hub, tmp_path, acgan_ckpt):
    run_dir = acgan_ckpt.parent.parent
    env = hub_env(tmp_path, hub.url, HF_TOKEN=TOKEN)
    r = run(["app.py", "--push-to-hub", "alice/pushed", "--checkpoint", str(run_dir)], env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{hub.url}/alice/pushed"
    files = hub.files("alice/pushed")
    assert set(files) == {".gitattributes", CONFIG_NAME, WEIGHTS_NAME, "samples.png", "README.md"}
    assert {k: files[k] for k in (CONFIG_NAME, WEIGHTS_NAME)} == ckpt_files(acgan_ckpt)
    assert files["samples.png"] == (acgan_ckpt / "samples.png").read_bytes()
    # The weights went through the LFS batch + PUT + verify protocol, not inline in the commit.
    assert hub.requests_to(r"POST /alice/pushed\.git/info/lfs/objects/batch")
    assert files[WEIGHTS_NAME] in hub.lfs.values() and hub.requests_to(r"/_lfs/[0-9a-f]+/verify")
    assert hub.requests_to(r"POST /api/models/alice/pushed/commit/main")

    r = run(["-c", ROUNDTRIP, "alice/pushed", str(acgan_ckpt)], env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["card_images"] == [10, 1, 28, 28]
    data = out["card_data"]
    assert data["license"] and "wgan_app" in data["tags"] and data["datasets"] == ["ylecun/mnist"]


# Runs `app.py` argument lists (JSON in argv[1]) through cli.main in one process, each with its
# HF_TOKEN (None = unset); prints [[exit code, stderr], ...].
CLI_CASES = r"""
import contextlib, io, json, os, sys
from wgan_app.cli import main
out = []
for token, argv in json.loads(sys.argv[1]):
    os.environ.pop("HF_TOKEN", None)
    if token:
        os.environ["HF_TOKEN"] = token
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    out.append([code, err.getvalue()])
print(json.dumps(out))
"""


def test_push_checks_everything_before_the_network(hub, tmp_path, acgan_ckpt):
    env = hub_env(tmp_path, hub.url, HF_HUB_DISABLE_PROGRESS_BARS="1")  # an empty HF_HOME: not logged in
    ckpt = str(acgan_ckpt)
    cases = [
        (None, ["--push-to-hub", "alice/x", "--checkpoint", ckpt], ["HF_TOKEN", "hf auth login"]),
        (TOKEN, ["--push-to-hub", "not a repo", "--checkpoint", ckpt], ["--push-to-hub", "USER/REPO"]),
        (TOKEN, ["--push-to-hub", "alice/x", "--checkpoint", str(tmp_path / "nowhere")], ["does not exist"]),
        (TOKEN, ["--push-to-hub", "alice/x"], ["needs --checkpoint"]),
        (TOKEN, ["--push-to-hub", "alice/x", "--checkpoint", "hf://alice/digits"], ["local checkpoint"]),
        # A token the Hub refuses: one line, after the first request.
        ("hf_wrong", ["--push-to-hub", "alice/x", "--checkpoint", ckpt], ["refused the token", "HTTP 401"]),
    ]
    before = len(hub.log)
    r = run(["-c", CLI_CASES, json.dumps([[t, argv] for t, argv, _ in cases])], env)
    assert r.returncode == 0, r.stderr
    results = json.loads(r.stdout.strip().splitlines()[-1])
    for (token, argv, needles), (code, err) in zip(cases, results):
        assert code == 2, (argv, err)
        assert_one_line_error(err, "app.py: error:", *needles)
    # Only the refused-token case spoke to the Hub: one create (refused), one existence check.
    sent = [f"{m} {p}" for m, p in hub.log[before:] if "/api/agent-harnesses" not in p]
    assert sent == ["POST /api/repos/create", "GET /api/models/alice/x"]
    assert "alice/x" not in hub.repos


# --- model card ---------------------------------------------------------------------------------


def test_model_card_describes_the_run(wgan_gp_ckpt):
    from huggingface_hub import ModelCard

    ckpt = load_checkpoint(wgan_gp_ckpt)
    text = model_card(ckpt, repo_id="bob/gp")
    card = ModelCard(text)
    assert card.data.pipeline_tag == "unconditional-image-generation"
    assert "pytorch_model_hub_mixin" in card.data.tags
    assert re.search(r"WGAN-GP .* mnist", text) and f"for {ckpt.step} generator steps" in text
    n_critic = ckpt.meta["train_config"]["n_critic"]
    assert "| lambda_gp | 10.0 |" in text and f"| n_critic | {n_critic} |" in text and "| recipe | fast |" in text
    assert re.search(r"## Metrics at step \d+", text) and "| wasserstein |" in text  # from metrics.jsonl
    assert "--checkpoint hf://bob/gp" in text and 'REPO = "bob/gp"' in text
