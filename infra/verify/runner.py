"""Running the checks: the testinfra suite (any backend), the chat smoke request, kubectl port-forward."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from infra.processes import stop_process
from infra.verify.expectations import EXPECTATIONS_ENV, Expectation
from infra.verify.report import Check, CheckStatus

SUITE = Path(__file__).resolve().parent / "suite" / "test_runtime.py"
SUITE_TIMEOUT_S = 300
SMOKE_TIMEOUT_S = 120
_FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+)")


class VerifyError(Exception):
    """Verification could not run (no kubectl, no cluster access). ``str()`` is one line."""


def suite_check_names() -> list[str]:
    """The test functions of the runtime suite, in file order (read from its source, nothing imported)."""
    import ast

    tree = ast.parse(SUITE.read_text(encoding="utf-8"))
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]


def kubectl_hosts(pod: str, namespace: str, container: str, context: str | None = None) -> str:
    """testinfra's kubectl backend URL for one container of one pod."""
    url = f"kubectl://{pod}?container={container}&namespace={namespace}"
    return f"{url}&context={context}" if context else url


def parse_junit(path: Path) -> list[tuple[str, CheckStatus, str]]:
    """(test name, status, message) of every test case of a pytest JUnit file."""
    import xml.etree.ElementTree as ET

    results: list[tuple[str, CheckStatus, str]] = []
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name", "?").split("[", 1)[0]
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        skipped = case.find("skipped")
        if problem is not None:
            text = problem.get("message") or (problem.text or "").strip().splitlines()[-1:] or ["failed"]
            message = text if isinstance(text, str) else text[0]
            results.append((name, "failed", " ".join(message.split())[:500]))
        elif skipped is not None:
            reason = skipped.get("message", "")
            results.append((name, "skipped", reason.removeprefix("Skipped: ")))
        else:
            results.append((name, "passed", ""))
    return results


def run_suite(hosts: str, expectation: Expectation, timeout: float = SUITE_TIMEOUT_S) -> list[Check]:
    """Run the shipped testinfra suite against ``hosts`` (``kubectl://…`` or ``local://``)."""
    subject = expectation.model
    with tempfile.TemporaryDirectory(prefix="slm-verify-") as scratch:
        folder = Path(scratch)
        expectations = expectation.write(folder / "expectations.json")
        junit = folder / "junit.xml"
        (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        command = [
            sys.executable, "-m", "pytest", str(SUITE),
            f"--hosts={hosts}",
            "-c", str(folder / "pytest.ini"),
            "--rootdir", str(folder),
            "--confcutdir", str(SUITE.parent),
            "--import-mode=importlib",
            "-p", "no:cacheprovider",
            f"--junitxml={junit}",
            "-q",
        ]  # fmt: skip
        env = {**os.environ, EXPECTATIONS_ENV: str(expectations)}
        try:
            done = subprocess.run(
                command, cwd=folder, env=env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return [Check(subject, "runtime suite", "failed", f"did not finish within {timeout:.0f}s")]
        if not junit.exists():
            lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
            return [Check(subject, "runtime suite", "failed", lines[-1] if lines else f"exit {done.returncode}")]
        return [Check(subject, name, status, message) for name, status, message in parse_junit(junit)]


def smoke_chat(base_url: str, expectation: Expectation, timeout: float = SMOKE_TIMEOUT_S) -> Check:
    """One OpenAI-compatible chat completion: it must answer 200 with a completion."""
    import httpx

    url = f"{base_url.rstrip('/')}{expectation.api_base_path}/chat/completions"
    body = {
        "model": expectation.api_model,
        "messages": [{"role": "user", "content": "Reply with the word OK."}],
        "max_tokens": 8,
        "temperature": 0,
    }
    name = "chat completion through the Service"
    try:
        response = httpx.post(url, json=body, timeout=timeout)
    except httpx.HTTPError as error:
        return Check(expectation.model, name, "failed", f"{type(error).__name__}: {error}")
    if response.status_code != 200:
        return Check(expectation.model, name, "failed", f"HTTP {response.status_code}: {response.text[:200]}")
    try:
        data: Any = response.json()
        choice = data["choices"][0]
        content = choice["message"]["content"]
        tokens = int((data.get("usage") or {}).get("completion_tokens") or 0)
    except (ValueError, KeyError, IndexError, TypeError):
        return Check(expectation.model, name, "failed", f"not an OpenAI chat completion: {response.text[:200]}")
    if not isinstance(content, str) or not (content or tokens):
        return Check(expectation.model, name, "failed", "the completion is empty")
    return Check(expectation.model, name, "passed", f"{tokens} token(s), finish_reason {choice.get('finish_reason')}")


@contextmanager
def port_forward(
    namespace: str, service: str, port: int, context: str | None = None, timeout: float = 30
) -> Iterator[str]:
    """``kubectl port-forward service/…`` to a free loopback port; yields ``http://127.0.0.1:PORT``.

    Port-forwarding enters the pod's network namespace through the kubelet, so the model's
    default-deny NetworkPolicy does not have to admit the API server (the service proxy would).
    """
    command = ["kubectl", *(["--context", context] if context else [])]
    command += ["-n", namespace, "port-forward", f"service/{service}", f":{port}", "--address", "127.0.0.1"]
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except FileNotFoundError:
        raise VerifyError("kubectl is not installed: verify needs it for exec and port-forward") from None
    found: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            match = _FORWARDING.search(line)
            if match and not found:
                found.append(match.group(1))
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + timeout
        while not ready.wait(0.1) and time.monotonic() < deadline:
            pass
        if not found:
            error = process.stderr.read().strip() if process.stderr and process.poll() is not None else "no answer"
            raise VerifyError(f"kubectl port-forward service/{service} in {namespace}: {error or 'failed'}")
        yield f"http://127.0.0.1:{found[0]}"
    finally:
        stop_process(process)


class KubectlRunner:
    """The real runner: testinfra through ``kubectl exec``, the smoke request through port-forward."""

    def __init__(self, context: str | None = None) -> None:
        self.context = context

    def runtime_checks(self, pod: str, expectation: Expectation) -> list[Check]:
        hosts = kubectl_hosts(pod, expectation.namespace, expectation.container, self.context)
        return [Check(f"{c.subject}/{pod}", c.name, c.status, c.message) for c in run_suite(hosts, expectation)]

    def smoke(self, expectation: Expectation) -> Check:
        try:
            with port_forward(expectation.namespace, expectation.service, expectation.ports[0], self.context) as url:
                return smoke_chat(url, expectation)
        except VerifyError as error:
            return Check(expectation.model, "chat completion through the Service", "failed", str(error))
