"""A loopback stand-in for the Hugging Face Hub, for tests that must not touch the network.

It speaks just enough of the Hub's HTTP API for huggingface_hub's *real* client (pointed at it
with HF_ENDPOINT, in a subprocess) to pull and push a model repo:

    HEAD/GET /{repo}/resolve/{rev}/{file}          file bytes + X-Repo-Commit, ETag, Content-Length
    GET      /api/models/{repo}[/revision/{rev}]   repo info: sha, siblings
    POST     /api/repos/create                     create a repo (409 when it exists)
    POST     /api/validate-yaml                    model card metadata check
    POST     /api/models/{repo}/preupload/{rev}    upload mode per file (regular | lfs)
    POST     /{repo}.git/info/lfs/objects/batch    LFS batch: where to PUT each large file
    PUT      /_lfs/{oid}, POST /_lfs/{oid}/verify  the LFS "basic" transfer
    POST     /api/models/{repo}/commit/{rev}       NDJSON commit: regular files inline, LFS by oid
    GET      /api/whoami-v2                        the token's user

Errors carry the Hub's `X-Error-Code` header (RepoNotFound, RevisionNotFound, EntryNotFound),
which is what huggingface_hub turns into its typed exceptions. `drop` makes the server close
matching connections without an answer, as a failing network does. The server serves at most
`max_requests` requests (then 503s), its sockets time out, and `stop()` shuts it down, so a
client stuck in a retry loop cannot hang a test.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

TOKEN = "hf_loopback_test_token"
LFS_SUFFIXES = (".safetensors", ".png", ".bin", ".pt")
_REPO = r"(?P<repo>[\w.-]+/[\w.-]+)"
_REV = r"(?P<rev>[^/]+)"


@dataclass
class Repo:
    """A model repo: commits as full file snapshots, and refs (branches, tags) to them."""

    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    private: bool = False

    def resolve(self, rev: str) -> str | None:
        if rev in self.refs:
            return self.refs[rev]
        return rev if rev in self.commits else None


def commit_sha(files: dict[str, bytes], parent: str | None) -> str:
    h = hashlib.sha1((parent or "").encode())
    for path in sorted(files):
        h.update(path.encode() + b"\0" + hashlib.sha256(files[path]).digest())
    return h.hexdigest()


def etag(path: str, data: bytes) -> str:
    """The Hub's ETag: sha256 for LFS files, the git blob sha1 otherwise."""
    if path.endswith(LFS_SUFFIXES):
        return hashlib.sha256(data).hexdigest()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    """`with FakeHub() as hub:` serves on 127.0.0.1:<free port>; `hub.url` is the HF_ENDPOINT."""

    def __init__(self, token: str = TOKEN, max_requests: int = 400):
        self.token = token
        self.max_requests = max_requests
        self.repos: dict[str, Repo] = {}
        self.lfs: dict[str, bytes] = {}  # sha256 oid -> uploaded bytes
        self.log: list[tuple[str, str]] = []  # (method, path) of every request, in order
        self.drop: str | None = None  # regex on "METHOD /path": close those connections unanswered
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._url = ""

    # --- repo contents ------------------------------------------------------------------

    def add_commit(self, repo_id: str, files: dict[str, bytes], branch: str = "main",
                   tag: str | None = None, replace: bool = False) -> str:
        """Commit `files` (added to the branch's files unless `replace`) and return the sha."""
        with self.lock:
            repo = self.repos.setdefault(repo_id, Repo())
            parent = repo.refs.get(branch)
            base = {} if replace or parent is None else dict(repo.commits[parent])
            base.update(files)
            sha = commit_sha(base, parent)
            repo.commits[sha] = base
            repo.refs[branch] = sha
            if tag:
                repo.refs[tag] = sha
            return sha

    def files(self, repo_id: str, rev: str = "main") -> dict[str, bytes]:
        repo = self.repos[repo_id]
        return repo.commits[repo.resolve(rev)]

    def requests_to(self, pattern: str) -> list[tuple[str, str]]:
        return [r for r in self.log if re.search(pattern, f"{r[0]} {r[1]}")]

    # --- server lifecycle ---------------------------------------------------------------

    @property
    def url(self) -> str:
        """The HF_ENDPOINT to use; it stays readable after stop() (for messages that name it)."""
        assert self._url, "start() the FakeHub first"
        return self._url

    def start(self) -> "FakeHub":
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self._url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> "FakeHub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"  # keep-alive, as the client expects
    timeout = 10  # an idle or stalled connection cannot hold a thread forever

    def log_message(self, *args) -> None:  # quiet: the hub keeps its own log
        pass

    # --- plumbing ---------------------------------------------------------------------

    def _dispatch(self) -> None:
        hub = self.hub
        path = urlsplit(self.path).path
        self.blobs = "blobs=true" in urlsplit(self.path).query
        with hub.lock:
            hub.log.append((self.command, path))
            n = len(hub.log)
        if hub.drop and re.search(hub.drop, f"{self.command} {path}"):
            self._drop()
            return
        self.body = self._read_body()  # always consumed: the connection is reused for the next request
        if n > hub.max_requests:
            self._send(503, {"error": "fake hub request budget exhausted"})
            return
        for method, pattern, handler in _ROUTES:
            m = re.fullmatch(pattern, path)
            if m and method == self.command.replace("HEAD", "GET"):
                groups = {k: unquote(v) for k, v in m.groupdict().items()}
                handler(self, **groups)
                return
        self._send(404, {"error": f"no route for {self.command} {path}"})

    do_GET = do_HEAD = do_POST = do_PUT = _dispatch

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _json(self) -> dict:
        return json.loads(self.body or b"{}")

    def _send(self, status: int, payload=None, headers: dict | None = None, body: bytes | None = None) -> None:
        if body is None:
            body = json.dumps(payload if payload is not None else {}).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
        self._send(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message, **(headers or {})})

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {self.hub.token}":
            return True
        message = "Invalid credentials in Authorization header"
        self._send(401, {"error": message}, {"X-Error-Message": message})
        return False

    def _repo(self, repo: str) -> Repo | None:
        found = self.hub.repos.get(repo)
        if found is None:
            # Like the Hub: a missing repo and a private one look the same (401 + RepoNotFound).
            self._error(401, "RepoNotFound", "Repository not found")
        return found

    def _commit(self, repo_id: str, rev: str) -> tuple[Repo, str] | None:
        repo = self._repo(repo_id)
        if repo is None:
            return None
        sha = repo.resolve(rev)
        if sha is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            return None
        return repo, sha

    # --- routes -----------------------------------------------------------------------

    def resolve(self, repo: str, rev: str, file: str) -> None:
        found = self._commit(repo, rev)
        if found is None:
            return
        r, sha = found
        data = r.commits[sha].get(file)
        if data is None:
            self._error(404, "EntryNotFound", f"{file} does not exist on {rev}", {"X-Repo-Commit": sha})
            return
        self._send(200, headers={"X-Repo-Commit": sha, "ETag": f'"{etag(file, data)}"',
                                 "Content-Type": "application/octet-stream"}, body=data)

    def repo_info(self, repo: str, rev: str = "main") -> None:
        found = self._commit(repo, rev)
        if found is None:
            return
        r, sha = found
        self._send(200, {"id": repo, "modelId": repo, "sha": sha, "private": r.private, "tags": [],
                         "lastModified": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                         # with ?blobs=true (files_metadata) the Hub adds each file's size
                         "siblings": [{"rfilename": p, **({"size": len(data)} if self.blobs else {})}
                                      for p, data in sorted(r.commits[sha].items())]})

    def whoami(self) -> None:
        if self._authorized():
            self._send(200, {"type": "user", "name": "loopback", "auth": {"type": "access_token"}})

    def create_repo(self) -> None:
        if not self._authorized():
            return
        req = self._json()
        repo_id = f"{req.get('organization') or 'loopback'}/{req['name']}"
        hub = self.hub
        url = f"http://{self.headers['Host']}/{repo_id}"
        if repo_id in hub.repos:
            self._send(409, {"error": "You already created this model repo", "url": url})
            return
        hub.add_commit(repo_id, {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"})
        hub.repos[repo_id].private = req.get("visibility") == "private" or bool(req.get("private"))
        self._send(200, {"url": url, "name": repo_id})

    def validate_yaml(self) -> None:
        content = self._json().get("content", "")
        if not content.startswith("---\n"):
            self._send(400, {"errors": [{"message": "README.md has no metadata block"}]})
            return
        self._send(200, {"errors": [], "warnings": []})

    def preupload(self, repo: str, rev: str) -> None:
        if not self._authorized() or self._commit(repo, rev) is None:
            return
        files = self._json()["files"]
        self._send(200, {"files": [{"path": f["path"], "shouldIgnore": False, "oid": None,
                                    "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) else "regular"}
                                   for f in files]})

    def lfs_batch(self, repo: str) -> None:
        if not self._authorized() or self._repo(repo) is None:
            return
        base = f"http://{self.headers['Host']}"
        objects = []
        for obj in self._json()["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"]}
            if obj["oid"] not in self.hub.lfs:
                entry["actions"] = {"upload": {"href": f"{base}/_lfs/{obj['oid']}"},
                                    "verify": {"href": f"{base}/_lfs/{obj['oid']}/verify"}}
            objects.append(entry)
        self._send(200, {"transfer": "basic", "objects": objects})

    def lfs_put(self, oid: str) -> None:
        data = self.body
        if hashlib.sha256(data).hexdigest() != oid:
            self._send(400, {"error": "sha256 of the upload does not match its oid"})
            return
        self.hub.lfs[oid] = data
        self._send(200, {})

    def lfs_verify(self, oid: str) -> None:
        req = self._json()
        ok = oid in self.hub.lfs and len(self.hub.lfs[oid]) == req.get("size")
        self._send(200 if ok else 404, {} if ok else {"error": f"object {oid} was not uploaded"})

    def commit(self, repo: str, rev: str) -> None:
        if not self._authorized() or self._commit(repo, rev) is None:
            return
        changes: dict[str, bytes] = {}
        summary = ""
        for line in self.body.splitlines():
            item = json.loads(line)
            value = item["value"]
            if item["key"] == "header":
                summary = value["summary"]
            elif item["key"] == "file":
                changes[value["path"]] = base64.b64decode(value["content"])
            elif item["key"] == "lfsFile":
                if value["oid"] not in self.hub.lfs:
                    self._send(422, {"error": f"LFS object {value['oid']} of {value['path']} was never uploaded"})
                    return
                changes[value["path"]] = self.hub.lfs[value["oid"]]
            else:
                self._send(400, {"error": f"unsupported commit operation {item['key']}"})
                return
        if not summary:
            self._send(400, {"error": "a commit needs a summary"})
            return
        sha = self.hub.add_commit(repo, changes, branch=rev)
        self._send(200, {"success": True, "commitOid": sha,
                         "commitUrl": f"http://{self.headers['Host']}/{repo}/commit/{sha}"})


_ROUTES = [
    ("GET", rf"/{_REPO}/resolve/{_REV}/(?P<file>.+)", _Handler.resolve),
    ("GET", rf"/api/models/{_REPO}", _Handler.repo_info),
    ("GET", rf"/api/models/{_REPO}/revision/{_REV}", _Handler.repo_info),
    ("GET", r"/api/whoami-v2", _Handler.whoami),
    ("POST", r"/api/repos/create", _Handler.create_repo),
    ("POST", r"/api/validate-yaml", _Handler.validate_yaml),
    ("POST", rf"/api/models/{_REPO}/preupload/{_REV}", _Handler.preupload),
    ("POST", rf"/{_REPO}\.git/info/lfs/objects/batch", _Handler.lfs_batch),
    ("PUT", r"/_lfs/(?P<oid>[0-9a-f]{64})", _Handler.lfs_put),
    ("POST", r"/_lfs/(?P<oid>[0-9a-f]{64})/verify", _Handler.lfs_verify),
    ("POST", rf"/api/models/{_REPO}/commit/{_REV}", _Handler.commit),
]
