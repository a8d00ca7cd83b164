"""Hugging Face Hub: pull a checkpoint by `hf://USER/REPO[@REVISION]`, push a run's checkpoint.

A Hub repo holds one checkpoint folder at its root — `config.json` (the model's constructor
arguments, flat, plus wgan_app's metadata) and `model.safetensors` — with `samples.png` and a
model card beside them. That is the layout `PyTorchModelHubMixin` reads and writes, so the repo
looks familiar on the Hub and a mixin class built on `models.Generator` loads it too; the app
itself goes through `checkpoint.load_checkpoint` (strict load, validated config) like any local
checkpoint. Pulls use `hf_hub_download` and its cache, so a repo pulled once also works offline.
Every failure becomes one `UserError` line that names the repo and the cause.

huggingface_hub is imported inside the functions: importing this module stays cheap, and the
HF_* variables (HF_ENDPOINT, HF_HUB_OFFLINE, HF_HOME, HF_TOKEN) keep their usual meaning.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .cards import SAMPLES_NAME, model_card  # noqa: F401  (model_card: public here too)
from .checkpoint import CONFIG_NAME, WEIGHTS_NAME, Checkpoint, load_checkpoint
from .errors import UserError

SCHEME = "hf://"
# USER/REPO as the Hub accepts it: letters, digits, '-', '_', '.'; no '--' or '..'; <= 96 each.
_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?"
_REPO_ID = re.compile(rf"{_NAME}/{_NAME}")
_REVISION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")
_COMMIT = re.compile(r"[0-9a-f]{40}")
NO_TOKEN = ("pushing to the Hub needs a token with write access: set HF_TOKEN or run `hf auth login`, "
            "then try again")


# --- names ------------------------------------------------------------------------------------


def check_repo_id(repo_id: str, what: str = "repo id") -> str:
    """`USER/REPO` or a UserError that says what a Hub repo id looks like."""
    rid = str(repo_id or "").strip()
    if not _REPO_ID.fullmatch(rid) or "--" in rid or ".." in rid or rid.endswith(".git"):
        raise UserError(f"{what} {repo_id!r} is not a Hub repo id: use USER/REPO (letters, digits, '-', '_', "
                        "'.'; at most 96 characters each)")
    return rid


def is_hub_ref(ref) -> bool:
    return isinstance(ref, str) and ref.strip().startswith(SCHEME)


def parse_hub_ref(ref: str) -> tuple[str, Optional[str]]:
    """`hf://USER/REPO[@REVISION]` -> (repo_id, revision or None)."""
    text = str(ref or "").strip()
    if not text.startswith(SCHEME):
        raise UserError(f"{ref!r} is not a Hub reference: write hf://USER/REPO or hf://USER/REPO@REVISION")
    repo_id, at, revision = text[len(SCHEME):].partition("@")
    check_repo_id(repo_id.rstrip("/"), what=f"{text}:")
    if at and not _REVISION.fullmatch(revision):
        raise UserError(f"{text}: revision {revision!r} is not a branch, tag or commit name "
                        "(write hf://USER/REPO@main, @v1 or @<commit>)")
    return repo_id.rstrip("/"), revision or None


def _label(repo_id: str, revision: Optional[str]) -> str:
    return f"{SCHEME}{repo_id}" + (f"@{revision}" if revision else "")


# --- pull -------------------------------------------------------------------------------------


DEFAULT_MAX_MB = 100  # the largest generator the app builds is a few MB: 100 leaves room, refuses a flood


@dataclass(frozen=True)
class PullPolicy:
    """What a server lets visitors pull: repos matching `allow` (fnmatch patterns such as
    "wgan-app/*"; empty: any repo), each download at most `max_bytes`. The CLI's own pulls use
    the defaults; the web app reads WGAN_APP_HUB_ALLOW and WGAN_APP_HUB_MAX_MB."""

    allow: tuple[str, ...] = ()
    max_bytes: int = DEFAULT_MAX_MB * 2**20

    def check_repo(self, repo_id: str, name: str) -> None:
        if self.allow and not any(fnmatch.fnmatchcase(repo_id, pat) for pat in self.allow):
            raise UserError(f"{name}: this server only loads Hub models from {', '.join(self.allow)} "
                            "(its WGAN_APP_HUB_ALLOW setting); pick one of those or a model listed here")

    def check_size(self, name: str, sizes: dict[str, Optional[int]]) -> None:
        total = sum(v for v in sizes.values() if v)
        if total > self.max_bytes:
            big = max(sizes, key=lambda k: sizes[k] or 0)
            raise UserError(f"{name}: {big} is {_mb(sizes[big])} MB, above this server's download limit of "
                            f"{_mb(self.max_bytes)} MB (its WGAN_APP_HUB_MAX_MB setting); wgan_app generators "
                            "are a few MB")


def _mb(n: Optional[int]) -> str:
    return f"{(n or 0) / 2**20:.1f}".rstrip("0").rstrip(".")


def resolve_hub_checkpoint(ref: str, cache_dir=None, endpoint: Optional[str] = None,
                           token: Optional[str] = None, policy: PullPolicy = PullPolicy()) -> Path:
    """Download (or find in the cache) a Hub checkpoint; return its local folder, validated.

    The repo-info call comes first: it answers "no such repo / revision / file" and "no network"
    with one quick request (hf_hub_download would retry a dead connection for ~20 s), gives the
    files' sizes so an oversized repo is refused before any download, and pins the commit so
    both files come from the same one. A pinned commit already in the cache, or any cached
    revision when the Hub cannot be reached, needs no network at all.
    """
    repo_id, revision = parse_hub_ref(ref)
    name = _label(repo_id, revision)
    policy.check_repo(repo_id, name)
    folder = _pull(repo_id, revision, name, cache_dir, endpoint, token, policy)
    try:
        load_checkpoint(folder)  # strict: config validated, every tensor present with its shape
    except UserError as e:
        raise UserError(f"{name}: {e}") from None
    return folder


def _pull(repo_id: str, revision: Optional[str], name: str, cache_dir, endpoint, token,
          policy: PullPolicy) -> Path:
    from huggingface_hub import HfApi, constants

    if revision and _COMMIT.fullmatch(revision):
        cached = _from_cache(repo_id, revision, cache_dir)
        if cached is not None:
            return cached
    try:
        info = HfApi(endpoint=endpoint, token=token).model_info(
            repo_id, revision=revision, timeout=constants.HF_HUB_ETAG_TIMEOUT, files_metadata=True)
    except Exception as e:
        if _is_connection_problem(e):
            cached = _from_cache(repo_id, revision, cache_dir)
            if cached is not None:
                return cached
        raise _pull_error(name, revision, e, endpoint) from None
    if info.siblings is None:  # the Hub always lists them; a mirror that does not cannot be size-checked
        raise UserError(f"{name}: the Hub did not list the repo's files; cannot check their size before "
                        "downloading")
    present = {s.rfilename: s.size for s in info.siblings}
    for f in (CONFIG_NAME, WEIGHTS_NAME):
        if f not in present:
            raise UserError(f"{name}: the repo has no {f} at revision {revision or 'main'} ({info.sha}); "
                            f"it is not a wgan_app checkpoint (a checkpoint needs {CONFIG_NAME} and "
                            f"{WEIGHTS_NAME} at its root)")
        if present[f] is None:
            raise UserError(f"{name}: the Hub did not give the size of {f}; cannot check it before downloading")
    policy.check_size(name, {f: present[f] for f in (CONFIG_NAME, WEIGHTS_NAME)})
    try:
        return _download(repo_id, revision or "main", info.sha, cache_dir, endpoint, token)
    except Exception as e:
        raise _pull_error(name, revision, e, endpoint) from None


def _download(repo_id: str, revision: str, commit: Optional[str], cache_dir, endpoint, token) -> Path:
    from huggingface_hub import hf_hub_download

    kw = dict(repo_id=repo_id, cache_dir=cache_dir, endpoint=endpoint, token=token)
    # config.json by the revision's name, so the cache records refs/<revision> for offline use;
    # the weights by the commit that config.json came from, so the pair always matches.
    config = Path(hf_hub_download(filename=CONFIG_NAME, revision=revision, **kw))
    pinned = commit if commit and config.parent.name != commit else config.parent.name
    weights = Path(hf_hub_download(filename=WEIGHTS_NAME, revision=pinned, **kw))
    if weights.parent != config.parent:
        raise UserError(f"{SCHEME}{repo_id}: the repo changed while downloading; try again")
    return config.parent


def _from_cache(repo_id: str, revision: Optional[str], cache_dir) -> Optional[Path]:
    """The cached snapshot folder of `revision` holding both files, or None."""
    from huggingface_hub import hf_hub_download

    try:
        paths = [Path(hf_hub_download(repo_id, f, revision=revision, cache_dir=cache_dir, local_files_only=True))
                 for f in (CONFIG_NAME, WEIGHTS_NAME)]
    except Exception:  # not cached (LocalEntryNotFoundError) or a damaged cache entry
        return None
    return paths[0].parent if paths[0].parent == paths[1].parent else None


def _is_connection_problem(e: BaseException) -> bool:
    """Offline mode, or no answer from the server (refused, timed out, dropped mid-way)."""
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OfflineModeIsEnabled):
            return True
        if isinstance(e, HfHubHTTPError):
            return False
        if type(e).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore") and "Status" not in type(e).__name__:
            return True
        if isinstance(e, (ConnectionError, TimeoutError, LocalEntryNotFoundError)):
            return True
        e = e.__cause__ or e.__context__
    return False


def _cause(e: BaseException) -> str:
    """The innermost exception's first line: 'Server disconnected...', '[Errno 111] ...'."""
    while e.__cause__ is not None or e.__context__ is not None:
        e = e.__cause__ or e.__context__
    text = (str(e).strip().splitlines() or [""])[0][:160]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _pull_error(name: str, revision: Optional[str], e: Exception, endpoint: Optional[str]) -> UserError:
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(e, UserError):
        return e
    hub = endpoint or constants.ENDPOINT
    if isinstance(e, GatedRepoError):
        return UserError(f"{name}: the repo is gated; accept its terms on the Hub and set HF_TOKEN")
    if isinstance(e, RepositoryNotFoundError):
        return UserError(f"{name}: no such model repo on {hub} (check the name; a private repo needs HF_TOKEN)")
    if isinstance(e, RevisionNotFoundError):
        return UserError(f"{name}: the repo has no revision {revision!r}; use a branch, tag or commit it has")
    if isinstance(e, EntryNotFoundError) and not _is_connection_problem(e):
        return UserError(f"{name}: a file is missing from the repo ({_cause(e)}); it is not a wgan_app checkpoint")
    if isinstance(e, OfflineModeIsEnabled) or constants.is_offline_mode():
        return UserError(f"{name}: not in the local cache and HF_HUB_OFFLINE=1 forbids downloading; "
                         "pull it once online or unset HF_HUB_OFFLINE")
    if _is_connection_problem(e):
        return UserError(f"{name}: cannot download from {hub} ({_cause(e)}) and it is not in the local cache; "
                         "check the network or HF_ENDPOINT")
    if isinstance(e, HfHubHTTPError) and e.response is not None:
        return UserError(f"{name}: the Hub answered HTTP {e.response.status_code} ({_cause(e)})")
    if isinstance(e, OSError):
        return UserError(f"{name}: cannot store the download ({_cause(e)}); check HF_HOME / the cache folder")
    raise e  # anything else is a bug: keep its traceback


# --- push -------------------------------------------------------------------------------------


def configured_token() -> Optional[str]:
    """HF_TOKEN or the `hf auth login` token, if any: the UI offers a push only when one exists."""
    from huggingface_hub import get_token

    return get_token()


def push_checkpoint(ckpt_dir, repo_id: str, token: Optional[str] = None, private: bool = False,
                    endpoint: Optional[str] = None) -> str:
    """Upload config.json, model.safetensors, samples.png and a model card; return the repo URL.

    The resume state (training_state.pt: critic, optimizers, pickled RNG state) stays local: the
    Hub copy is for sampling, and nobody should have to unpickle a file from the internet.
    """
    from huggingface_hub import HfApi

    repo_id = check_repo_id(repo_id)
    ckpt = ckpt_dir if isinstance(ckpt_dir, Checkpoint) else load_checkpoint(ckpt_dir)
    token = token or configured_token()
    if not token:
        raise UserError(NO_TOKEN)
    api = HfApi(endpoint=endpoint, token=token)
    with tempfile.TemporaryDirectory(prefix="wgan_app-push-") as tmp:
        stage = Path(tmp)
        for f in (CONFIG_NAME, WEIGHTS_NAME):
            shutil.copyfile(ckpt.path / f, stage / f)
        if (ckpt.path / SAMPLES_NAME).is_file():
            shutil.copyfile(ckpt.path / SAMPLES_NAME, stage / SAMPLES_NAME)
        else:
            (stage / SAMPLES_NAME).write_bytes(_samples_png(ckpt))
        (stage / "README.md").write_text(model_card(ckpt, repo_id=repo_id))
        try:
            url = api.create_repo(repo_id, private=private, exist_ok=True)
            api.upload_folder(repo_id=repo_id, folder_path=stage,
                              commit_message=f"wgan_app {ckpt.model.variant} checkpoint, step {ckpt.step}")
        except Exception as e:
            raise _push_error(repo_id, e, endpoint) from None
    return str(url)


def _samples_png(ckpt: Checkpoint) -> bytes:
    from .images import grid, png_bytes
    from .sampler import Sampler

    sampler = Sampler(ckpt)
    labels = [i % ckpt.model.n_classes for i in range(100)] if sampler.conditional else None
    return png_bytes(grid(sampler.sample(labels, seed=0, n=100), nrow=10))


def _push_error(repo_id: str, e: Exception, endpoint: Optional[str]) -> UserError:
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError

    hub = endpoint or constants.ENDPOINT
    where = f"push to {repo_id}"
    if isinstance(e, HfHubHTTPError) and e.response is not None:
        status = e.response.status_code
        if status in (401, 403):
            return UserError(f"{where}: the Hub refused the token (HTTP {status}); use a token with write access "
                             "to that namespace (HF_TOKEN or `hf auth login`)")
        return UserError(f"{where}: the Hub answered HTTP {status} ({_cause(e)})")
    if _is_connection_problem(e):
        if constants.is_offline_mode():
            return UserError(f"{where}: HF_HUB_OFFLINE=1 forbids uploading; unset it")
        return UserError(f"{where}: cannot reach {hub} ({_cause(e)}); check the network or HF_ENDPOINT")
    if isinstance(e, (ValueError, OSError)):
        return UserError(f"{where} failed: {_cause(e)}")
    raise e


def run_push_cli(args: argparse.Namespace) -> int:
    """`app.py --push-to-hub USER/REPO --checkpoint RUN_DIR`: everything is checked before the network."""
    repo_id = check_repo_id(args.push_to_hub, what="--push-to-hub")
    if not args.checkpoint:
        raise UserError("--push-to-hub needs --checkpoint: the run directory or checkpoint folder to upload")
    if is_hub_ref(args.checkpoint):
        raise UserError("--push-to-hub uploads a local checkpoint: give --checkpoint a run directory or folder")
    ckpt = load_checkpoint(args.checkpoint)
    token = configured_token()
    if not token:
        raise UserError(NO_TOKEN)
    url = push_checkpoint(ckpt, repo_id, token=token, private=bool(getattr(args, "private", False)))
    print(f"pushed {ckpt.path} (step {ckpt.step}) to {url}", file=sys.stderr)
    print(url)
    return 0
