"""slm-deploy diff: a render directory or a git ref as base, field-level changes, reports, exit status."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.cli import app
from infra.gitops.diff import (
    DiffResult,
    FieldChange,
    ObjectChange,
    diff_command,
    diff_stack,
    render_json,
    render_markdown,
    render_text,
)
from infra.plan.render import MARKER
from tests.helpers import gated_model_stack

ROOT = Path(__file__).resolve().parents[2]
NS = "slm-qwen3-micro"
DEPLOYMENT = f"{NS}/deployment.apps--qwen3-micro.yaml"
SERVICE = f"{NS}/service--qwen3-micro.yaml"
STALE = f"{NS}/configmap--retired.yaml"


def _project(tmp: Path) -> Path:
    (tmp / "stacks").mkdir(parents=True)
    shutil.copy(ROOT / "stacks" / "Pulumi.dev.yaml", tmp / "stacks" / "Pulumi.dev.yaml")
    return tmp


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _project(tmp_path_factory.mktemp("diff-project"))


@pytest.fixture(scope="module")
def base_render(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `slm-deploy render` writes for the dev stack today."""
    out = tmp_path_factory.mktemp("renders") / "dev"
    result = CliRunner().invoke(app, ["render", "--stack", "dev", "--root", str(project), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def edited_base(base_render: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An "earlier" render: one object different, one missing (added now), one extra (removed now)."""
    from ruamel.yaml import YAML

    base = tmp_path_factory.mktemp("edited") / "dev"
    shutil.copytree(base_render, base)
    yaml = YAML(typ="safe", pure=True)
    deployment = yaml.load((base / DEPLOYMENT).read_text())
    deployment["spec"]["replicas"] = 3
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    for variable in container["env"]:
        if variable["name"] == "OLLAMA_KEEP_ALIVE":
            variable["value"] = "5m"
    with (base / DEPLOYMENT).open("w") as stream:
        yaml.dump(deployment, stream)
    (base / SERVICE).unlink()
    (base / STALE).write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: retired\n  namespace: slm-qwen3-micro\ndata:\n  a: b\n"
    )
    return base


@pytest.fixture(scope="module")
def edited_diff(project: Path, edited_base: Path) -> DiffResult:
    return diff_stack(project, "dev", str(edited_base), with_policy=True)


def test_a_fresh_render_diffs_clean(project: Path, base_render: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert diff_command(project, "dev", str(base_render), "json", None) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["added"] == data["summary"]["changed"] == data["summary"]["removed"] == 0
    assert data["summary"]["unchanged"] == len([p for p in base_render.rglob("*.yaml")])


def test_directory_base_added_changed_removed(edited_diff: DiffResult) -> None:
    assert [c.path for c in edited_diff.added] == [SERVICE]
    assert [c.path for c in edited_diff.removed] == [STALE]
    assert [c.path for c in edited_diff.changed] == [DEPLOYMENT]
    removed = edited_diff.removed[0]
    assert (removed.kind, removed.name, removed.namespace) == ("ConfigMap", "retired", NS)
    fields = {f.path: f for f in edited_diff.changed[0].fields}
    assert fields["spec.replicas"] == FieldChange("spec.replicas", "changed", 3, 0)
    # Named list items are matched by name and shown by name, not by index.
    keep_alive = "spec.template.spec.containers[name=ollama].env[name=OLLAMA_KEEP_ALIVE].value"
    assert fields[keep_alive] == FieldChange(keep_alive, "changed", "5m", "24h")
    assert len(fields) == 2
    assert edited_diff.base_kind == "render"


def _objects(render: Path) -> int:
    return len(list(render.rglob("*.yaml")))


def test_exit_status_and_output_file(project: Path, base_render: Path, edited_base: Path, tmp_path: Path) -> None:
    target = tmp_path / "reports" / "diff.json"
    assert diff_command(project, "dev", str(edited_base), "json", target) == 1
    unchanged = _objects(base_render) - 2  # one changed, one added (missing from the edited base)
    assert json.loads(target.read_text())["summary"] == {"added": 1, "changed": 1, "removed": 1, "unchanged": unchanged}


@pytest.mark.parametrize(
    ("base", "stack", "message"),
    [
        ("not-a-ref-anywhere", "dev", "neither a render directory nor a git ref"),
        ("{plain}", "dev", f"no {MARKER} file"),
        ("{render}", "missing", "Pulumi.missing.yaml"),
    ],
)
def test_errors_exit_2_with_one_line(
    project: Path,
    base_render: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    base: str,
    stack: str,
    message: str,
) -> None:
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "x.yaml").write_text("a: 1\n")
    base = base.format(plain=tmp_path / "plain", render=base_render)
    assert diff_command(project, stack, base, "text", None) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert message in err
    assert diff_command(project, "dev", str(base_render), "yaml", None) == 2


def test_text_and_json_reports(edited_diff: DiffResult) -> None:
    text = render_text(edited_diff)
    assert "spec.replicas" in text and f"1 added, 1 changed, 1 removed, {edited_diff.unchanged} unchanged" in text
    data = json.loads(render_json(edited_diff))
    changed = next(c for c in data["changes"] if c["status"] == "changed")
    assert {"path": "spec.replicas", "kind": "changed", "old": 3, "new": 0} in changed["fields"]
    assert data["policy"]["ok"] in (True, False)


def test_markdown_comment(edited_diff: DiffResult) -> None:
    text = render_markdown(edited_diff)
    assert text.startswith("## ") and f"`dev`: 1 added, 1 changed, 1 removed, {edited_diff.unchanged} unchanged" in text
    assert "| `spec.replicas` | changed | `3` | `0` |" in text
    assert "`ConfigMap` slm-qwen3-micro/retired" in text
    assert "Policy pack" in text  # the policy results of the new render follow
    assert "Level `dev` (bound by name in dev.json)" in text
    assert "Truncated" not in text
    assert len(text) <= 65_000


def _big_result(objects: int, fields: int) -> DiffResult:
    changes = [
        ObjectChange(
            path=f"ns/configmap--c{i}.yaml",
            status="changed",
            kind="ConfigMap",
            name=f"c{i}",
            namespace="ns",
            fields=tuple(FieldChange(f"data.key{j}", "changed", "x" * 300, "y" * 300) for j in range(fields)),
        )
        for i in range(objects)
    ]
    return DiffResult(stack="big", base="HEAD", base_kind="git", changes=changes, unchanged=0)


@pytest.mark.parametrize("limit", [65_000, 5_000])
def test_markdown_truncates_with_a_note(limit: int) -> None:
    text = render_markdown(_big_result(400, 6), limit=limit)
    assert len(text) <= limit
    assert "**Truncated:**" in text and "of 400 resource section(s) shown" in text
    assert "slm-deploy diff --stack big" in text


def test_markdown_keeps_policy_within_limit(edited_diff: DiffResult) -> None:
    big = _big_result(300, 4)
    big.policy = edited_diff.policy
    text = render_markdown(big, limit=20_000)
    assert len(text) <= 20_000
    assert "Policy pack" in text and "**Truncated:**" in text


# --------------------------------------------------------------------------- secrets

CANARY = "hf_CANARY_5b0c7e21aa"
SECRET_STACK = gated_model_stack("staging")


def test_secret_values_never_appear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.secret.yaml").write_text(SECRET_STACK)
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"slm-deploy:secrets": json.dumps({"hfToken": CANARY})}))
    monkeypatch.setenv("PULUMI_CONFIG_SECRET_KEYS", json.dumps(["slm-deploy:secrets"]))
    base = tmp_path / "base"
    result = CliRunner().invoke(app, ["render", "--stack", "secret", "--root", str(tmp_path), "--out", str(base)])
    assert result.exit_code in (0, 1), result.output
    secrets = [p for p in base.rglob("secret--*.yaml")]
    assert len(secrets) == 1
    # A hand-edited base holding a real value, and an object removed now that carries one too.
    text = secrets[0].read_text()
    assert "[secret]" in text
    secrets[0].write_text(text.replace("'[secret]'", CANARY).replace("[secret]", CANARY))
    (base / "slm-gated" / "secret--old.yaml").write_text(
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: old\n  namespace: slm-gated\nstringData:\n  t: {CANARY}\n"
    )
    diff = diff_stack(tmp_path, "secret", str(base), with_policy=True)
    assert [c.path for c in diff.removed] == ["slm-gated/secret--old.yaml"]
    assert not [c for c in diff.changed if c.kind == "Secret"]  # both sides read [secret]
    for text in (render_text(diff), render_json(diff), render_markdown(diff)):
        assert CANARY not in text


# --------------------------------------------------------------------------- git ref


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_git_ref_base_uses_the_base_revisions_own_code(tmp_path: Path) -> None:
    """A throwaway repository: the base commit's code labels objects differently than the code now."""
    repo = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "infra", repo / "infra", ignore=ignore)
    shutil.copytree(ROOT / "policies", repo / "policies", ignore=ignore)
    shutil.copytree(ROOT / "templates", repo / "templates", ignore=ignore)  # the Jinja2 templates the code reads
    shutil.copy(ROOT / "Pulumi.yaml", repo / "Pulumi.yaml")
    _project(repo)
    labels = repo / "infra" / "components" / "labels.py"
    original = labels.read_text()
    assert '"app.kubernetes.io/part-of": PART_OF' in original
    labels.write_text(original.replace('"app.kubernetes.io/part-of": PART_OF', '"app.kubernetes.io/part-of": "old"'))
    _git(repo, "init", "--quiet", "--initial-branch=main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "--quiet", "-m", "base")
    labels.write_text(original)
    stack = repo / "stacks" / "Pulumi.dev.yaml"
    stack.write_text(stack.read_text().replace("keepAlive: 24h", "keepAlive: 12h", 1))

    diff = diff_stack(repo, "dev", "HEAD")

    assert diff.base_kind == "git" and not diff.added and not diff.removed
    deployment = next(c for c in diff.changed if c.path == DEPLOYMENT)
    fields = {f.path: (f.old, f.new) for f in deployment.fields}
    keep_alive = "spec.template.spec.containers[name=ollama].env[name=OLLAMA_KEEP_ALIVE].value"
    assert fields[keep_alive] == ("24h", "12h")
    assert fields['metadata.labels["app.kubernetes.io/part-of"]'] == ("old", "slm-deploy")
    # The temporary worktree is gone.
    assert _git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_git_ref_where_the_stack_does_not_exist_yet(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "README.md").write_text("x\n")
    _git(repo, "init", "--quiet", "--initial-branch=main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "--quiet", "-m", "empty")
    _project(repo)
    diff = diff_stack(repo, "dev", "main")
    assert not diff.changed and not diff.removed and diff.added and diff.unchanged == 0
    assert "does not exist at main" in diff.notes[0]
    assert _git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


# --------------------------------------------------------------------------- safe to paste, bound levels


def _markdown_html(text: str) -> str:
    markdown_it = pytest.importorskip("markdown_it")
    return str(markdown_it.MarkdownIt("commonmark", {"html": True}).enable(["table"]).render(text))


HOSTILE = "<img src=x onerror=alert(1)> @org/team [click](https://evil) ![x](https://evil/x.png) | broken | `tick`\nnew"


def test_markdown_escapes_every_user_provided_string() -> None:
    """Stack, base, notes, object names, paths, field paths and values all come from users."""
    change = ObjectChange(
        path=f"ns/configmap--{HOSTILE}.yaml",
        status="changed",
        kind=f"ConfigMap{HOSTILE}",
        name=HOSTILE,
        namespace=HOSTILE,
        fields=(FieldChange(f'metadata.labels["{HOSTILE}"]', "changed", HOSTILE, {"k": HOSTILE}),),
    )
    added = ObjectChange(path=f"ns/{HOSTILE}.yaml", status="added", kind=HOSTILE, name=HOSTILE, namespace=None)
    result = DiffResult(
        stack=HOSTILE, base=HOSTILE, base_kind="git", changes=[change, added], unchanged=0, notes=[HOSTILE]
    )
    text = render_markdown(result)
    html = _markdown_html(text)
    tags = {t.lower() for t in re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", html)}
    assert tags <= {
        "h2",
        "h3",
        "p",
        "code",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "blockquote",
        "details",
        "summary",
    }
    assert html.count("<details>") == html.count("</details>") == 1
    rows = re.findall(r"<tr>(.*?)</tr>", html, re.S)
    assert [row.count("<td>") for row in rows if "<td>" in row] == [3, 4]  # added/removed table, fields table
    outside_code = re.sub(r"<[^>]+>", "", re.sub(r"<code>.*?</code>", "", html, flags=re.S))
    assert not re.search(r"(?<![\w\u200b])@[A-Za-z0-9]", outside_code) and "://" not in outside_code
    marked = DiffResult(
        stack="[bold]s[/bold]", base="[link=https://evil]b[/link]", base_kind="git", changes=[], unchanged=0
    )
    assert "Stack [bold]s[/bold]: now vs [link=https://evil]b[/link]" in render_text(marked)  # rich markup escaped


def test_a_prod_stack_declaring_dev_shows_in_the_diff(tmp_path: Path) -> None:
    """The weakened copy of prod against the reference prod render: the comment says failed and names
    environment-binding."""
    reference = tmp_path / "reference"
    (reference / "stacks").mkdir(parents=True)
    shutil.copy(ROOT / "stacks" / "Pulumi.prod.yaml", reference / "stacks" / "Pulumi.prod.yaml")
    render = tmp_path / "render"
    done = CliRunner().invoke(app, ["render", "--stack", "prod", "--root", str(reference), "--out", str(render)])
    assert done.exit_code == 0, done.output
    weak = tmp_path / "weak"
    (weak / "stacks").mkdir(parents=True)
    text = (ROOT / "stacks" / "Pulumi.prod.yaml").read_text()
    (weak / "stacks" / "Pulumi.prod.yaml").write_text(
        text.replace("slm-deploy:environment: prod", "slm-deploy:environment: dev")
    )
    out = tmp_path / "comment.md"
    # The manifests are the same (the declared environment changes resource options, not objects):
    # the policy section is where it shows, judged at prod.
    assert diff_command(weak, "prod", str(render), "markdown", out) == 0
    comment = out.read_text()
    assert "Policy pack `slm-deploy` failed for stack `prod`" in comment
    assert "Level `prod` (bound by name in prod.json)" in comment and "environment `dev`" in comment
    row = next(
        line for line in comment.splitlines() if "environment\\-binding" in line or "environment-binding" in line
    )
    assert "| violation | mandatory |" in row and "declares slm-deploy:environment 'dev'" in row


def _commit_levels(repo: Path, prod_bound_to: str) -> None:
    config = repo / "policies" / "config"
    config.mkdir(parents=True, exist_ok=True)
    for level in ("dev", "staging", "prod"):
        stacks = [level] if level != prod_bound_to else [level, "prod"]
        if level == "prod" and prod_bound_to != "prod":
            stacks = []
        entry = {"enforcementLevel": "mandatory", "environment": level, "stacks": stacks}
        (config / f"{level}.json").write_text(json.dumps({"all": "mandatory", "environment-binding": entry}))


def test_moving_a_stack_to_a_weaker_level_is_refused_in_the_comment(tmp_path: Path) -> None:
    from infra.gitops.diff import _judge_rebinding, base_level
    from infra.policy.model import PolicyReport

    repo = tmp_path / "repo"
    repo.mkdir()
    _commit_levels(repo, "prod")
    _git(repo, "init", "--quiet", "--initial-branch=main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "--quiet", "-m", "prod at prod")
    _commit_levels(repo, "dev")  # the change: prod listed in dev.json
    config = repo / "policies" / "config"
    assert base_level(repo, "prod", "HEAD", config) == "prod"
    assert base_level(repo, "prod", "HEAD", tmp_path) is None  # not in the repository: nothing to compare

    def judged(level: str) -> DiffResult:
        policy = PolicyReport("slm-deploy", "0.1.0", "c", "dev", "prod", [], [], level=level)
        result = DiffResult(stack="prod", base="HEAD", base_kind="git", changes=[], unchanged=1, policy=policy)
        _judge_rebinding(result, repo, "HEAD", config)
        return result

    weaker = judged("dev")
    assert weaker.policy is not None and not weaker.policy.ok
    (violation,) = weaker.policy.violations
    assert violation.policy_name == "environment-binding" and violation.blocking
    assert "from level prod (at HEAD) to level dev, a weaker one" in weaker.notes[0]
    assert "environment-binding" in render_markdown(weaker) and ":x:" in render_markdown(weaker)
    same = judged("prod")
    assert same.policy is not None and same.policy.ok and not same.notes


def test_the_pr_comment_keeps_parts_apart() -> None:
    from infra.gitops.pr import combine_comments

    part = "## `dev`\n<details><summary>changed</summary>\n\n" + "| a | b |\n" * 5000 + "\n</details>\n"
    text = combine_comments([part, "## `prod`: nothing\n"], limit=20_000)
    assert len(text) <= 20_000
    dev, _ = text.split("## `prod`")
    assert dev.count("<details>") == dev.count("</details>") == 1  # prod is not inside dev's block
