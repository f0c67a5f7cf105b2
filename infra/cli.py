"""The ``slm-deploy`` command line: validate, plan, render (and the policy commands).

Exit status: 0 success, 1 a check found something (policy violations, invalid manifests),
2 bad input (stack file, arguments) — always one clear line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from infra.config.stack import StackConfig
    from infra.plan.stack import StackPlan
    from infra.policy.model import PolicyReport

app = typer.Typer(
    name="slm-deploy",
    help="Small language models on Kubernetes: validate, plan and render Pulumi stacks offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"slm-deploy {version('slm-deploy')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Small language models on Kubernetes: validate, plan and render Pulumi stacks offline."""


StackOption = Annotated[
    str, typer.Option("--stack", "-s", help="Stack name (stacks/Pulumi.<stack>.yaml) or the stack file's path.")
]
RootOption = Annotated[
    Path, typer.Option("--root", help="Project directory (holds stacks/).", file_okay=False, exists=True)
]


# Typed choices: typer lists them in --help and refuses anything else (one line, exit 2: see main).
OutputFormat = StrEnum("OutputFormat", ["text", "json"])
DiffFormat = StrEnum("DiffFormat", ["text", "json", "markdown"])
CheckFormat = StrEnum("CheckFormat", ["text", "json", "sarif", "junit", "markdown"])
CiProvider = StrEnum("CiProvider", ["github", "azure"])
Precision = StrEnum("Precision", ["bf16", "fp16", "fp8", "int8", "int4"])
Show = StrEnum("Show", ["resources", "network"])
Mode = StrEnum("Mode", ["preview", "update"])


def fail(message: str, code: int = 2) -> NoReturn:
    """One line on stderr, then exit: bad input is 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def warn(path: Path, config: StackConfig) -> None:
    """The stack's warnings, one line each on stderr (``warning: <file>: slm-deploy:<key>: …``); exit unchanged."""
    from infra.config.loader import display_path

    source = display_path(path)
    for warning in config.warnings():
        typer.echo(warning.line(source), err=True)


def _stack(stack: str, root: Path) -> tuple[str, Path]:
    """The stack's name and project folder for a --stack value (a name or a file path); a missing stack: exit 2."""
    from infra.config.loader import StackConfigError
    from infra.stack_ref import resolve_stack

    try:
        return resolve_stack(stack, root)
    except StackConfigError as error:
        fail(str(error))


def _need_extra(module: str, extra: str, what: str) -> None:
    """`bash scripts/run.sh plan` installs no extra: say which one a command needs (exit 2) instead of a traceback."""
    from importlib.util import find_spec

    if find_spec(module) is None:
        fail(f"{what} needs the '{extra}' extra: pip install 'slm-deploy[{extra}]' (or bash scripts/run.sh test)")


def _warn_unbound(name: str, path: Path) -> None:
    """Say so when no level file binds the stack's name: `check` would judge it at prod."""
    from infra.policy.analyzer import DEFAULT_PACK_DIR
    from infra.stack_ref import unbound_level_warning

    warning = unbound_level_warning(name, path, DEFAULT_PACK_DIR)
    if warning:
        typer.echo(warning, err=True)


def _guarded_plan(stack: str, root: Path, preview: bool) -> StackPlan:
    from infra import collector
    from infra.config.loader import StackConfigError
    from infra.plan.stack import plan_stack

    stack, root = _stack(stack, root)
    try:
        # The SDKs and the recorded plan live until this command ends: frozen as the run ends (keep).
        plan = plan_stack(stack, root, preview=preview, keep=True)
    except StackConfigError as error:
        fail(str(error))
    warn(plan.stack_file, plan.config)
    collector.freeze()
    return plan


@app.command()
def validate(stack: StackOption, root: RootOption = Path(".")) -> None:
    """Check a stack file alone: types, keys, names, quantities, combinations."""
    from infra.config.loader import StackConfigError
    from infra.plan.stack import load_stack

    name, root = _stack(stack, root)
    try:
        path, config = load_stack(name, root)
    except StackConfigError as error:
        fail(str(error))
    warn(path, config)
    _warn_unbound(name, path)
    typer.echo(f"{path}: valid ({len(config.models)} model(s), environment {config.environment})")


@app.command()
def plan(
    stack: StackOption,
    root: RootOption = Path("."),
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.text,
    mode: Annotated[Mode, typer.Option(help="preview: outputs unknown, as `pulumi preview`.")] = Mode.preview,
    show: Annotated[Show, typer.Option(help="network: the allowed flows (from, to, port).")] = Show.resources,
) -> None:
    """Run the program offline under the mock engine and show every resource it declares."""
    from infra.plan.report import network_json, plan_json, print_network, print_plan

    result = _guarded_plan(stack, root, preview=mode is Mode.preview)
    _warn_unbound(result.stack, result.stack_file)
    if show is Show.network:
        if output_format is OutputFormat.json:
            typer.echo(json.dumps(network_json(result), indent=2, sort_keys=True))
        else:
            print_network(result)
    elif output_format is OutputFormat.json:
        typer.echo(json.dumps(plan_json(result), indent=2, sort_keys=True))
    else:
        print_plan(result)


@app.command()
def render(
    stack: StackOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the manifests (replaced).")],
    root: RootOption = Path("."),
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.text,
) -> None:
    """Write every Kubernetes object as YAML (one file each) and validate it against the schemas."""
    from infra.plan.render import RenderError, stack_manifests, write_render
    from infra.plan.report import print_schema_results, schema_json
    from infra.plan.schema import validate_manifests

    result = _guarded_plan(stack, root, preview=False)
    items = stack_manifests(result)
    checks = validate_manifests([item for item in items if item.is_kubernetes], result.config.kubernetes_version)
    try:
        write_render(items, out)
    except (RenderError, OSError) as error:
        fail(str(error))
    if output_format is OutputFormat.json:
        typer.echo(json.dumps(schema_json(checks, out), indent=2, sort_keys=True))
    else:
        print_schema_results(checks, out, result.config.kubernetes_version)
    if any(c.status == "invalid" for c in checks):
        raise typer.Exit(1)


@app.command()
def size(
    model: Annotated[str, typer.Argument(help="Catalogue key, e.g. phi-4-mini-instruct (see infra/catalog).")],
    precision: Annotated[Precision, typer.Option(help="Bytes per weight of the checkpoint.")] = Precision.bf16,
    context: Annotated[int | None, typer.Option(help="Tokens per sequence; native context capped at 8192.")] = None,
    concurrency: Annotated[int, typer.Option(help="Sequences at full context at once.")] = 1,
    vm_size: Annotated[
        str | None, typer.Option("--vm-size", help="Check this Azure VM size instead of choosing.")
    ] = None,
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.text,
) -> None:
    """Memory a model needs (weights, KV cache, overhead), where it fits, and the vLLM flags."""
    from infra.sizing.cli import size_command

    code = size_command(model, precision.value, context, concurrency, vm_size, output_format.value)
    if code:
        raise typer.Exit(code)


@app.command("pack-weights")
def pack_weights(
    folder: Annotated[
        Path, typer.Argument(help="The model folder (config, tokenizer, safetensors), e.g. from `hf download`.")
    ],
    layout: Annotated[Path, typer.Option("--layout", help="The OCI image layout to write (created, or added to).")],
    tag: Annotated[str, typer.Option("--tag", help="The image's tag, e.g. the date or the model's revision.")],
    repository: Annotated[
        str,
        typer.Option("--repository", help="Where it will be pushed, e.g. myacr.azurecr.io/models/phi-4-mini-instruct."),
    ],
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.text,
) -> None:
    """Pack model weights as an OCI image for an image volume; print its digest, how to push it, the stack key."""
    from infra.weights.command import pack_weights_command

    code = pack_weights_command(folder, layout, tag, repository, output_format.value)
    if code:
        raise typer.Exit(code)


@app.command()
def diff(
    stack: StackOption,
    base: Annotated[str, typer.Option(help="A git ref of this repository, or a directory of an earlier render.")],
    root: RootOption = Path("."),
    output_format: Annotated[
        DiffFormat, typer.Option("--format", "-f", help="markdown is the PR comment, with policy results.")
    ] = DiffFormat.text,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the report here.")] = None,
) -> None:
    """Per-object changes between the stack now and a base. Exit 0 no changes, 1 changes, 2 error."""
    from infra.gitops.diff import diff_command

    stack, root = _stack(stack, root)
    raise typer.Exit(diff_command(root, stack, base, output_format.value, output))


CostFormat = StrEnum("CostFormat", ["text", "json", "markdown", "png"])


@app.command()
def cost(
    stack: StackOption,
    root: RootOption = Path("."),
    output_format: Annotated[CostFormat, typer.Option("--format", "-f", help="png: a chart per model and pool.")] = (
        CostFormat.text
    ),
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the estimate here (needed for png).")] = None,
) -> None:
    """Monthly cost of what the stack creates, at min and max scale, from the dated price table (docs/cost.md)."""
    from infra.cost.command import needs_file, render, write_output
    from infra.cost.report import bound, money
    from infra.cost.stack import estimate_plan

    if needs_file(output_format.value, out):
        fail("--format png writes an image: give --out FILE.png")
    if output_format is CostFormat.png:
        _need_extra("matplotlib", "charts", "--format png")
    estimate = estimate_plan(_guarded_plan(stack, root, preview=False))
    result = render(estimate, output_format.value)
    if out is None:
        typer.echo(result, nl=False)
        return
    try:
        write_output(out, result)
    except OSError as error:
        fail(f"{out}: {error.strerror}")
    low, high = estimate.total
    at_least = bound(estimate)
    typer.echo(
        f"{out}: {at_least}{money(low, estimate.currency)} at min scale, "
        f"{at_least}{money(high, estimate.currency)} at max scale"
    )


@app.command("init-ci")
def init_ci(
    provider: Annotated[CiProvider, typer.Argument(help="Where the pipelines run.")],
    root: RootOption = Path("."),
    force: Annotated[bool, typer.Option(help="Overwrite existing pipeline files.")] = False,
) -> None:
    """Write the pull-request and deployment pipelines, rendered for this repository's stacks."""
    from infra.gitops.ci import init_ci_command

    raise typer.Exit(init_ci_command(root, provider.value, force))


@app.command()
def verify(
    stack: StackOption,
    root: RootOption = Path("."),
    context: Annotated[str | None, typer.Option(help="kubeconfig context of the stack's cluster.")] = None,
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.text,
    junit: Annotated[Path | None, typer.Option(help="Also write a JUnit report here.")] = None,
) -> None:
    """After a deployment: rollouts Ready, runtime checks in each model pod (testinfra), a chat smoke test."""
    from infra.verify.verify import verify_command

    _need_extra("testinfra", "verify", "verify")
    stack, root = _stack(stack, root)
    raise typer.Exit(verify_command(root, stack, context, output_format.value, junit))


@app.command()
def bench(
    url: Annotated[str, typer.Option(help="Base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1.")],
    model: Annotated[str | None, typer.Option(help="Model name; the first of /v1/models when unset.")] = None,
    concurrency: Annotated[str, typer.Option(help="Concurrency levels, comma-separated.")] = "1,4,16",
    requests: Annotated[int, typer.Option(help="Requests per concurrency level.")] = 32,
    api_key_file: Annotated[Path | None, typer.Option(help="File holding the API key.")] = None,
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.text,
    max_tokens: Annotated[int, typer.Option(help="Tokens to generate per request.")] = 128,
    ca_cert: Annotated[
        Path | None,
        typer.Option(
            help="PEM file of the CA(s) that signed the server's certificate (else SSL_CERT_FILE, "
            "REQUESTS_CA_BUNDLE, the system store)."
        ),
    ] = None,
    insecure: Annotated[bool, typer.Option(help="Do not check the server's certificate (said on stderr).")] = False,
    stack: Annotated[
        str | None, typer.Option("--stack", "-s", help="The stack the endpoint belongs to: its cluster is named.")
    ] = None,
    root: RootOption = Path("."),
) -> None:
    """Time to first token, inter-token latency, tokens/s and errors per concurrency level."""
    from infra.loadtest.bench import bench_command

    if stack is not None:
        from infra.config.loader import StackConfigError
        from infra.plan.stack import load_stack

        name, where = _stack(stack, root)
        try:
            _, config = load_stack(name, where)
        except StackConfigError as error:
            fail(str(error))
        cluster = config.cluster.context or "the current context (the stack names none)"
        typer.echo(f"bench: {url} of stack '{name}', whose cluster is kubeconfig context {cluster}", err=True)
    raise typer.Exit(
        bench_command(
            url, model, concurrency, requests, api_key_file, output_format.value, max_tokens, ca_cert, insecure
        )
    )


@app.command()
def check(
    stacks: Annotated[
        list[str] | None,
        typer.Option("--stack", "-s", help="Stack name: stacks/Pulumi.<stack>.yaml. Repeat it for several stacks."),
    ] = None,
    all_stacks: Annotated[bool, typer.Option("--all-stacks", help="Every stacks/Pulumi.*.yaml under --root.")] = False,
    root: RootOption = Path("."),
    output_format: Annotated[CheckFormat, typer.Option("--format", "-f")] = CheckFormat.text,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the report here.")] = None,
    junit: Annotated[Path | None, typer.Option(help="Also write a JUnit report here.")] = None,
    mode: Annotated[Mode, typer.Option(help="preview: outputs unknown, as `pulumi preview`.")] = Mode.preview,
    policy_pack: Annotated[
        Path | None,
        typer.Option(
            "--policy-pack",
            help="Judge with this policy pack folder instead of the installed one (said on stderr and in reports).",
            file_okay=False,
            exists=True,
        ),
    ] = None,
) -> None:
    """Run the program offline, then the policy pack through the analyzer protocol, for one or more stacks.

    The level file is the one the stack's name is bound to (the stacks lists in
    policies/config/<level>.json; unknown stacks get prod), never one the stack file picks; the
    installed pack judges (a policies/ folder under --root is ignored). Several stacks share one
    process and one merged report. Exit 0: nothing mandatory violated; 1: a mandatory violation in
    any stack; 2: bad input.
    """
    from infra.files import write_atomically
    from infra.policy.analyzer import DEFAULT_PACK_DIR

    names = _check_stacks(stacks or [], all_stacks, root)
    pack_dir = DEFAULT_PACK_DIR
    if policy_pack is not None:
        pack_dir = policy_pack.resolve()
        typer.echo(f"note: judging with the policy pack in {pack_dir}, not the installed one", err=True)
    reports = [_stack_report(name, root, pack_dir, preview=mode is Mode.preview) for name in names]
    text = _policy_report(reports, output_format)
    files = [(output, text)] if output is not None else []
    if junit is not None:
        files.append((junit, _policy_report(reports, CheckFormat.junit)))
    for path, content in files:
        try:
            write_atomically(path, content)
        except OSError as error:
            fail(f"{path}: {error.strerror}")
    if output is not None:
        mandatory = sum(r.mandatory_violations for r in reports)
        advisory = sum(r.advisory_violations for r in reports)
        waived = sum(len(r.waived) for r in reports)
        where = f" in {len(reports)} stacks" if len(reports) > 1 else ""
        typer.echo(f"{output}: {mandatory} mandatory, {advisory} advisory, {waived} waived{where}")
    else:
        typer.echo(text, nl=not text.endswith("\n"))
    if any(r.mandatory_violations for r in reports):
        raise typer.Exit(1)


def _check_stacks(stacks: list[str], all_stacks: bool, root: Path) -> list[str]:
    """The stacks to check, each once: as given, or every stack in deployment order (dev, staging, prod)."""
    from infra.gitops.ci import CiError, stacks_of

    if all_stacks and stacks:
        fail("--all-stacks checks every stack: give it or --stack, not both")
    if all_stacks:
        try:
            found = [entry.name for entry in stacks_of(root)]
        except CiError as error:
            fail(str(error))
        if not found:
            fail(f"--all-stacks: no stack files ({root / 'stacks'}/Pulumi.<stack>.yaml)")
        return found
    if not stacks:
        fail("which stack? Give --stack NAME (repeat it for several) or --all-stacks")
    resolved = [_stack(stack, root) for stack in stacks]
    if any(where.resolve() != root.resolve() for _, where in resolved):
        fail("--stack: give stack files from the stacks/ folder under --root (or stack names)")
    return list(dict.fromkeys(name for name, _ in resolved))


def _stack_report(stack: str, root: Path, pack_dir: Path, preview: bool) -> PolicyReport:
    """One stack planned and judged at its bound level (bad input: the one-line error, exit 2)."""
    from infra.policy.analyzer import run_policy_pack
    from infra.policy.pack_config import PolicyConfigError, judge_stack

    plan = _guarded_plan(stack, root, preview=preview)
    try:
        return judge_stack(plan, pack_dir, run_policy_pack)
    except PolicyConfigError as error:
        fail(str(error))


def _policy_report(reports: list[PolicyReport], output_format: CheckFormat) -> str:
    from infra.policy import reports as render

    renderers = {
        CheckFormat.text: render.render_text,
        CheckFormat.json: render.render_json,
        CheckFormat.sarif: render.render_sarif,
        CheckFormat.junit: render.render_junit,
        CheckFormat.markdown: render.render_markdown,
    }
    return str(renderers[output_format](reports))


@app.command()
def models(
    stack: Annotated[
        str | None, typer.Option("--stack", "-s", help="Also show which of this stack's models use each entry.")
    ] = None,
    root: RootOption = Path("."),
    output_format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.text,
) -> None:
    """The model catalogue: keys, names, licences, gated or not (and, with --stack, token configured), ids, sizes."""
    from infra.catalog.listing import catalogue_rows, render_json, render_text

    config = None
    if stack is not None:
        from infra.config.loader import StackConfigError
        from infra.plan.stack import load_stack

        try:
            _, config = load_stack(*_stack(stack, root))
        except StackConfigError as error:
            fail(str(error))
    rows = catalogue_rows(config)
    text = render_json(rows) if output_format is OutputFormat.json else render_text(rows, config is not None)
    typer.echo(text, nl=False)


@app.command()
def docs(
    root: RootOption = Path("."),
    check: Annotated[bool, typer.Option(help="Fail (exit 1) if a generated file is out of date.")] = False,
) -> None:
    """Regenerate the generated documentation (docs/reference.md, docs/policies.md)."""
    from infra.docs import DocsError, generated_documents

    try:
        documents = generated_documents(root)
    except DocsError as error:
        fail(str(error))
    stale = []
    for path, text in documents.items():
        if path.read_text(encoding="utf-8") != text:
            stale.append(path)
            if not check:
                path.write_text(text, encoding="utf-8")
    for path in stale:
        typer.echo(f"{'out of date' if check else 'updated'}: {path}")
    if check and stale:
        raise typer.Exit(1)


def main() -> None:
    from infra import collector

    try:
        # Not standalone: bad arguments come back as exceptions, reported below like any bad input.
        code = app(standalone_mode=False, prog_name="slm-deploy")
    except typer.TyperException as error:
        # Click's usage errors (unknown option, a value outside a choice, a missing option) derive from it.
        message = error.format_message() if hasattr(error, "format_message") else str(error)
        if message:  # empty when help was printed for a bare command
            typer.echo(f"error: {' '.join(message.split())}", err=True)
        code = 2
    except (KeyboardInterrupt, typer.Abort):  # pragma: no cover - interactive only
        code = 130
    finally:
        collector.freeze()
    sys.exit(code or 0)


if __name__ == "__main__":  # pragma: no cover
    main()
