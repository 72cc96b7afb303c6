"""Every command in the docs runs, so the docs cannot drift from the code.

For each of ``README.md`` and ``docs/*.md``, the fenced ``sh`` blocks are read in order, in a
scratch directory (with ``.venv`` linked to this one and ``stepup.toml`` copied from the sandbox
config):

- install commands (``python3 -m venv``, ``pip install``) are checked, not executed: each must
  install this project (``.``, ``.[extra]`` or ``stepup-stack[extra]`` with a real extra), and the
  test command must be the one ``.ci/run`` runs;
- ``pytest`` is what this suite is: not run again from inside itself;
- servers (``stepup provider|api|sandbox``) start in the background on free ports, must print
  their "listening" lines and answer a probe, and stay up for the rest of the file;
- everything else runs in bash (``set -euo pipefail``), with ports 9000/9001 rewritten to the
  servers' ports; a sandbox is started first if a command talks to one and none is running.

A ``python`` block right after an ``<!-- doc-test: run -->`` line runs too, the same way, with
``STEPUP_ISSUER`` and ``STEPUP_API_URL`` set to the running servers' URLs (the variables the docs'
examples read, docs/sdk.md "Run the examples"); one
after ``<!-- doc-test: file NAME -->`` is written to ``NAME`` in the scratch directory, for the
``sh`` blocks after it (a test module that a ``pytest`` command runs, say).
A PostgreSQL URL is replaced by the test server's, or the command is skipped when there is none.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(
    r"^(?:<!-- doc-test: (run|file [\w.-]+) -->\n)?```(\w+)[^\n]*\n(.*?)^```", re.M | re.S
)
SERVER = re.compile(r"^(?:\S*/)?stepup (provider|api|sandbox)\b")
PORT_OPTIONS = ("--port", "--provider-port", "--api-port")


@dataclass(frozen=True)
class Block:
    lang: str
    line: int
    commands: tuple[str, ...]
    file: str | None = None  # a python block to write to this file, not to run


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    found = []
    for m in FENCE.finditer(text):
        marked, lang, body = m.group(1), m.group(2), m.group(3)
        line = text.count("\n", 0, m.start()) + 1
        if lang == "sh":
            found.append(Block("sh", line, tuple(logical_lines(body))))
        elif lang == "python" and marked == "run":
            found.append(Block("python", line, (body,)))
        elif lang == "python" and marked:
            found.append(Block("python", line, (body,), file=marked.removeprefix("file ")))
    return found


def logical_lines(body: str) -> Iterator[str]:
    """Lines with backslash continuations joined and trailing ``  # comments`` removed."""
    joined = re.sub(r"\\\n\s*", " ", body)
    for raw in joined.splitlines():
        line = re.sub(r"\s{2,}#.*$", "", raw).strip()
        if line and not line.startswith("#"):
            yield line


def test_every_python_block_of_the_sdk_guide_is_executed() -> None:
    # docs/sdk.md promises that each example runs as written: each is run here, or (the web app,
    # which serves forever when run) written to a file that test_docs_web_app.py drives.
    guide = ROOT / "docs" / "sdk.md"
    fences = re.findall(r"^```python", guide.read_text(encoding="utf-8"), re.M)
    python = [b for b in blocks(guide) if b.lang == "python"]
    assert len(python) == len(fences)
    assert [b.file for b in python if b.file is not None] == ["web_app.py"]


def test_the_docs_have_commands() -> None:
    quickstart = blocks(ROOT / "docs" / "quickstart.md")
    assert any("stepup demo" in c for b in quickstart for c in b.commands)
    assert any(b.lang == "python" for b in quickstart)


# --- checks for install commands ------------------------------------------------------------------


def ci_commands() -> list[str]:
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    return [part.strip() for ln in lines if not ln.startswith("#") for part in ln.split("&&")]


def check_install(command: str) -> None:
    if command.startswith("python3 -m venv"):
        assert command == "python3 -m venv .venv", command
        assert command in ci_commands()
        return
    words = shlex.split(command)
    assert re.fullmatch(r"(\.venv/bin/)?pip", words[0]), command
    assert words[1] == "install", command
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = set(project["optional-dependencies"])
    flags = {w for w in words[2:] if w.startswith("-")}
    assert flags <= {"-e", "-q"}, command
    for target in (w for w in words[2:] if not w.startswith("-")):
        m = re.fullmatch(r"(\.|[\w-]+)(?:\[([\w,]+)\])?", target)
        assert m, f"{command}: cannot read {target!r}"
        assert m.group(1) in (".", project["name"]), f"{command}: installs something else"
        for extra in filter(None, (m.group(2) or "").split(",")):
            assert extra in extras, f"{command}: no extra {extra!r} in pyproject.toml"
    if "-e" in flags:  # the developer install is what CI does, to the letter (less -q)
        assert command in [c.replace(" -q", "") for c in ci_commands()], command


# --- running them ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Session:
    """The scratch directory, the servers started so far, and the port rewrites they imply."""

    cwd: Path
    postgres: str | None
    servers: list[subprocess.Popen[str]] = field(default_factory=list)
    ports: dict[int, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    #: What the servers said they listen on: {"Provider": url, "API": url}.
    listening: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
        env["STEPUP_DATABASE_URL"] = f"sqlite:///{self.cwd / 'stepup.db'}"
        env["PYTHONPATH"] = str(ROOT)
        # The variables the docs' Python snippets read the sandbox's URLs from (docs/sdk.md).
        for label, variable in (("Provider", "STEPUP_ISSUER"), ("API", "STEPUP_API_URL")):
            if label in self.listening:
                env[variable] = self.listening[label]
            else:
                env.pop(variable, None)
        return env

    def rewrite(self, text: str) -> str:
        for old, new in self.ports.items():
            text = re.sub(rf"(127\.0\.0\.1|localhost):{old}\b", rf"\g<1>:{new}", text)
        return text

    def database(self, command: str) -> str | None:
        """``command`` with a PostgreSQL URL pointed at the test server, or None to skip it."""
        urls = re.findall(r"postgresql(?:\+\w+)?://\S+", command)
        if not urls:
            return command
        if self.postgres is None:
            self.skipped.append(f"{command} (no PostgreSQL server)")
            return None
        for url in urls:
            command = command.replace(url, shlex.quote(self.postgres))
        return command

    def run(self, script: str, what: str) -> None:
        if not script.strip():
            return
        if re.search(r"127\.0\.0\.1:900[01]\b", script) and not self.servers:
            self.start("stepup sandbox")
        result = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + self.rewrite(script)],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, (
            f"{what} failed ({result.returncode}):\n{script}\n--- stdout\n{result.stdout}"
            f"\n--- stderr\n{result.stderr}"
        )

    def start(self, command: str) -> None:
        kind = SERVER.match(command)
        assert kind is not None
        words = shlex.split(command)
        args = []
        skip = False
        for w in words:  # drop the doc's ports: ours are free ones
            if skip:
                skip = False
            elif w in PORT_OPTIONS:
                skip = True
            elif not w.startswith(tuple(o + "=" for o in PORT_OPTIONS)):
                args.append(w)
        expected = {"provider": ["Provider"], "api": ["API"], "sandbox": ["Provider", "API"]}
        labels = expected[kind.group(1)]
        if kind.group(1) == "sandbox":
            pport, aport = free_port(), free_port()
            args += ["--provider-port", str(pport), "--api-port", str(aport)]
            self.ports.update({9000: pport, 9001: aport})
        else:
            port = free_port()
            args += ["--port", str(port)]
            self.ports[9000 if kind.group(1) == "provider" else 9001] = port
        args[0] = str(VENV_BIN / "stepup")
        process = subprocess.Popen(
            args,
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.servers.append(process)
        listening: dict[str, str] = {}
        seen: list[str] = []
        deadline = time.monotonic() + 30
        assert process.stdout is not None
        while len(listening) < len(labels) and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            m = re.match(r"(\w+) listening on (http://\S+)", line)
            if m:
                listening[m.group(1)] = m.group(2)
        assert sorted(listening) == sorted(labels), (
            f"{command}: no listening lines\n{''.join(seen)}"
        )
        self.listening.update(listening)
        probes = {"Provider": "/.well-known/openid-configuration", "API": "/health"}
        for label, url in listening.items():
            response = requests.get(url + probes[label], timeout=10)
            assert response.status_code == 200, f"{command}: {label} {response.status_code}"

    def close(self) -> None:
        for process in self.servers:
            process.terminate()
        for process in self.servers:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
            if process.stdout is not None:
                process.stdout.close()


def play(doc: Path, session: Session) -> None:
    for block in blocks(doc):
        where = f"{doc.relative_to(ROOT)}:{block.line}"
        if block.file is not None:
            (session.cwd / block.file).write_text(block.commands[0])
            continue
        if block.lang == "python":
            script = session.cwd / f"block_{block.line}.py"
            script.write_text(session.rewrite(block.commands[0]))
            session.run(f"python {shlex.quote(str(script))}", where)
            continue
        pending: list[str] = []
        for line in block.commands:
            for command in (part.strip() for part in line.split(" && ")):
                if command.startswith("python3 -m venv") or re.search(r"\bpip install\b", command):
                    check_install(command)
                elif re.fullmatch(r"(\.venv/bin/)?pytest( -n auto)?", command):
                    assert command in ci_commands(), f"{where}: {command} is not what CI runs"
                elif (checked := session.database(command)) is None:
                    continue
                elif SERVER.match(checked):
                    session.run("\n".join(pending), where)
                    pending = []
                    session.start(checked)
                else:
                    pending.append(checked)
        session.run("\n".join(pending), where)


@pytest.mark.parametrize(
    "doc", [d for d in DOCS if blocks(d)], ids=lambda p: str(p.relative_to(ROOT))
)
def test_doc_commands_run(doc: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    (tmp_path / ".venv").symlink_to(VENV_BIN.parent)
    (tmp_path / "stepup.toml").write_text((ROOT / "stepup" / "sandbox.toml").read_text())
    postgres = None
    if any("postgresql://" in c for b in blocks(doc) for c in b.commands):
        try:
            postgres = request.getfixturevalue("postgres_url")
        except pytest.skip.Exception:
            postgres = None
    session = Session(tmp_path, postgres)
    try:
        play(doc, session)
    finally:
        session.close()
    if session.skipped:
        pytest.skip("ran everything except: " + "; ".join(session.skipped))
