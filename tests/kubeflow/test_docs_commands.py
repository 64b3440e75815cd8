"""docs/kubeflow.md can be followed to the end: every `run.py` and `kubectl apply` command of
its shell blocks is run here or by a named test (the table below).

A command is read from the fenced ``bash`` blocks as a shell reads it (continuation lines
joined, comments dropped, a heredoc's body attached). What needs no cluster is run here
verbatim: the RBAC manifest files against Kubernetes' own schema, section 2's Istio
Gateway against the name Seldon is installed with, and section 6's `stack up kubeflow` / `stack show` /
`stack check` against the Kubernetes API stand-in. Every other command names the tests
that run it, and the literals those tests must pass to `run.py` (checked in their source),
so a command added to the guide, or a test renamed, fails here until the table says how
it is tested.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
import textwrap
import threading
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path

import yaml

from core.paths import REPO_ROOT
from integrations.kubeflow import rbac
from tests.conftest import cli_in
from tests.kubeflow.test_preflight import SECRET, Health, crd
from tests.kubeflow.test_rbac import schema_problems
from tests.kubernetes_api import KubernetesApi

GUIDE = REPO_ROOT / "docs" / "kubeflow.md"


@dataclass(frozen=True)
class Command:
    tokens: tuple[str, ...]
    heredoc: str = ""

    @property
    def key(self) -> str:
        """The command as the table names it: its words, and a heredoc's first object."""
        text = " ".join(self.tokens)
        if self.heredoc:
            first = next(d for d in yaml.safe_load_all(self.heredoc) if d)
            text += f" [{first['kind']} {first['metadata']['name']}]"
        return text

    @property
    def run_py_args(self) -> list[str]:
        """The arguments after `run.py`, up to a redirection."""
        args = list(self.tokens[self.tokens.index("run.py") + 1 :])
        return args[: args.index(">")] if ">" in args else args


def documented_commands(text: str) -> list[Command]:
    """The `run.py` and `kubectl apply` commands of the guide's ``bash`` blocks."""
    found = []
    for block in re.finditer(r"^( *)```bash\n(.*?)^\1```", text, re.S | re.M):
        lines = textwrap.dedent(block.group(2)).splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            while line.rstrip().endswith("\\"):
                i += 1
                line = line.rstrip()[:-1] + " " + lines[i].strip()
            heredoc = ""
            marker = re.search(r"<<-?'?(\w+)'?", line)
            if marker:
                end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == marker[1])
                heredoc = "\n".join(lines[i + 1 : end])
                i = end
            tokens = tuple(shlex.split(line, comments=True))
            if "run.py" in tokens or ("kubectl" in tokens and "apply" in tokens):
                found.append(Command(tokens, heredoc))
            i += 1
    return found


@dataclass(frozen=True)
class Tested:
    """Run by these functions (tests or their fixtures) of `file`, whose source passes
    each of `literals` (to run.py, or the file they check)."""

    file: str
    functions: tuple[str, ...]
    literals: tuple[str, ...] = field(default=())
    note: str = ""


HERE = "run here"
UPSTREAM = "an upstream project's own manifest, applied as its install guide says"
SUBMIT = "tests/kubeflow/test_submit_path.py"  # a real ZenML server, KFP replayed
KSERVE = "tests/kubeflow/test_kserve_manifest.py"

# The guide's two dry-runs, verbatim (the same model name and URI), through the CLI; their
# YAML against the vendored CRDs.
DRY_RUN = Tested(
    "tests/kubeflow/test_dry_run.py",
    ("dry_run", "test_dry_run_prints_manifests_the_crds_accept_with_distinct_names"),
    ("deploy", "--dry-run", "--stack", "--model-name", "--model-uri", "kubeflow",
     "kubeflow-kserve", "House_Prices"),
)  # fmt: skip

COVERED: dict[str, str | Tested] = {
    "kubectl apply -k github.com/kubeflow/pipelines/manifests/kustomize/cluster-scoped-resources"
    "?ref=$PIPELINE_VERSION": UPSTREAM,
    "kubectl apply -k github.com/kubeflow/pipelines/manifests/kustomize/env/platform-agnostic"
    "?ref=$PIPELINE_VERSION": UPSTREAM,
    "kubectl apply -f - <<EOF [Gateway seldon-gateway]": HERE,
    "kubectl apply -f integrations/kubeflow/manifests/rbac-seldon.yaml": HERE,
    "kubectl apply -f integrations/kubeflow/manifests/rbac-kserve.yaml": HERE,
    ".venv/bin/python run.py stack up kubeflow": HERE,
    ".venv/bin/python run.py stack show": HERE,
    ".venv/bin/python run.py stack check": HERE,
    ".venv/bin/python run.py deploy --dry-run --stack kubeflow --model-name House_Prices "
    "--model-uri s3://zenkube-artifacts/mlflow/1/models/m-abc/artifacts": DRY_RUN,
    ".venv/bin/python run.py deploy --dry-run --stack kubeflow-kserve --model-name House_Prices "
    "--model-uri s3://zenkube-artifacts/mlflow/1/models/m-abc/artifacts > house_prices.yaml": DRY_RUN,
    ".venv/bin/python run.py train": Tested(
        SUBMIT,
        (
            "trained",
            "test_train_on_the_kubeflow_stack_submits_through_kfp_and_pods_report_over_rest",
        ),
        ("train",),
    ),
    ".venv/bin/python run.py deploy": Tested(
        SUBMIT,
        ("deployed", "test_deploy_on_the_kubeflow_stack_creates_a_seldon_deployment_that_answers"),
        ("deploy",),
        "KServe's deployer: test_kserve_manifest.py, through the same deployment step",
    ),
    ".venv/bin/python run.py monitor --input s3://zenkube-artifacts/batches/current.parquet": Tested(
        SUBMIT,
        ("monitored", "test_monitor_on_the_kubeflow_stack_runs_in_pods_too", "scheduled"),
        ("monitor", "--input"),
        "the loop in pods (monitored); a batch URI in the bucket the pods read (scheduled)",
    ),
    ".venv/bin/python run.py compile --out compiled": Tested(
        SUBMIT,
        ("test_the_compiled_monitoring_yaml_runs_as_uploaded_with_a_service_account_key",),
        ("compile", "--out"),
    ),
    ".venv/bin/python run.py schedule --cron 0 * * * * --input "
    "s3://zenkube-artifacts/batches/current.parquet": Tested(
        SUBMIT,
        ("scheduled", "test_schedule_on_the_kubeflow_stack_creates_a_recurring_run"),
        ("schedule", "--cron", "0 * * * *", "--input"),
    ),
    ".venv/bin/python run.py release schedule --model-name house_prices --cron */5 * * * *": Tested(
        SUBMIT,
        ("test_release_schedule_is_a_recurring_run_whose_pods_judge_the_release",),
        ("release", "schedule", "--cron", "*/5 * * * *", "--model-name"),
        "the release-check pipeline's recurring run; a run KFP starts runs in a pod",
    ),
    "kubectl apply -f https://github.com/cert-manager/cert-manager/releases/download/v1.16.2/"
    "cert-manager.yaml": UPSTREAM,
    "envsubst $ZENKUBE_REGISTRY < stacks/kserve/zenkube-mlserver-runtime.yaml | kubectl apply "
    "-f -": Tested(
        KSERVE,
        ("test_the_shipped_serving_runtime_runs_the_local_v2_runtime_class",),
        ("stacks/kserve/zenkube-mlserver-runtime.yaml", "${ZENKUBE_REGISTRY}"),
    ),
    ".venv/bin/python run.py stack up kubeflow-kserve": Tested(
        KSERVE,
        ("test_the_kserve_stack_registers_idempotently_and_compiles_yaml_kfp_accepts",),
        ("kubeflow-kserve",),
    ),
    "kubectl apply -f - <<EOF [Deployment zenkube-traffic-sink]": Tested(
        "tests/kubeflow/test_traffic_sink.py",
        ("test_the_documented_sink_objects_fit_the_sink_and_each_other",),
        ("kubectl apply -f - <<'EOF'\\n(.*?)\\n\\s*EOF\\n",),
    ),
}


def string_literals(file: str, functions: tuple[str, ...]) -> set[str]:
    """Every string constant in the named functions of `file` (they must all exist)."""
    tree = ast.parse((REPO_ROOT / file).read_text())
    defined = {node.name: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    missing = [name for name in functions if name not in defined]
    assert not missing, f"{file} has no function {missing}"
    return {
        node.value
        for name in functions
        for node in ast.walk(defined[name])
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def test_every_documented_command_is_run_here_or_by_a_named_test():
    commands = documented_commands(GUIDE.read_text())
    keys = {command.key for command in commands}
    untested = sorted(keys - COVERED.keys())
    assert not untested, f"docs/kubeflow.md commands no test runs (add them to COVERED): {untested}"
    stale = sorted(COVERED.keys() - keys)
    assert not stale, f"COVERED names commands the guide no longer has: {stale}"
    for key, how in COVERED.items():
        if isinstance(how, Tested):
            literals = string_literals(how.file, how.functions)
            assert set(how.literals) <= literals, (key, set(how.literals) - literals)


def test_the_table_catches_a_new_command():
    guide = (
        GUIDE.read_text() + "\n```bash\n.venv/bin/python run.py release promote \\\n  --x\n```\n"
    )
    keys = {command.key for command in documented_commands(guide)}
    assert keys - COVERED.keys() == {".venv/bin/python run.py release promote --x"}


def commands_here(pattern: str) -> list[Command]:
    found = [c for c in documented_commands(GUIDE.read_text()) if re.search(pattern, c.key)]
    assert found and all(COVERED[c.key] == HERE for c in found)
    return found


def test_the_documented_rbac_files_are_objects_kubernetes_accepts():
    for command in commands_here(r"^kubectl apply -f integrations/"):
        path = REPO_ROOT / command.tokens[-1]
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
        assert {d["kind"] for d in documents} == {"Role", "RoleBinding"}, path
        for document in documents:
            assert schema_problems(document, document["kind"]) == [], (path, document["kind"])


def test_the_documented_gateway_is_the_one_seldon_is_told_to_use():
    (command,) = commands_here(r"\[Gateway ")
    (gateway,) = [d for d in yaml.safe_load_all(command.heredoc) if d]
    text = GUIDE.read_text()
    told = re.search(r"--set istio\.gateway=([\w-]+)/([\w-]+)", text)
    assert (gateway["metadata"]["namespace"], gateway["metadata"]["name"]) == told.groups()
    assert gateway["apiVersion"].startswith("networking.istio.io/")
    assert gateway["spec"]["servers"][0]["port"]["number"] == 80


def test_section_6_stack_commands_run_as_documented_against_the_stand_in(tmp_path):
    """`stack up kubeflow`, `stack show`, `stack check` as section 6 gives them, with its
    exports, against a cluster set up as sections 2-3 say (the RBAC file applied, Seldon's
    CRD, the storage secret): every check passes but the ZenML server's (this machine
    has a local store), which stack check reports with its fix, exiting 1."""
    section = GUIDE.read_text().split("## 6. Secrets and the stack", 1)[1].split("\n## 7.")[0]
    commands = [c for c in documented_commands(section) if "run.py" in c.tokens]
    assert [c.run_py_args for c in commands] == [
        ["stack", "up", "kubeflow"], ["stack", "show"], ["stack", "check"]
    ]  # fmt: skip
    health = ThreadingHTTPServer(("127.0.0.1", 0), Health)  # where the MLflow server is
    threading.Thread(target=health.serve_forever, daemon=True).start()
    cli = cli_in(tmp_path / "laptop")
    try:
        with KubernetesApi(tmp_path / "k8s", mlflow_url="") as cluster:
            cluster.apply(*rbac.documents("seldon"), crd("seldon"), SECRET)
            env = {
                "KUBECONFIG": str(cluster.kubeconfig()),
                "ZENKUBE_MLFLOW_URI": f"http://127.0.0.1:{health.server_address[1]}",
                "SELDON_NAMESPACE": "zenkube",
                "ZENKUBE_BUCKET": "s3://zenkube-artifacts/zenml",
            }
            assert cli("stack", "show").returncode == 0  # the local store, as after make run
            subprocess.run(  # section 6's first line
                [str(Path(sys.executable).parent / "zenml"), "secret", "create",
                 "zenkube-mlflow", "--username=u", "--password=p"],
                env={**os.environ, "ZENML_CONFIG_PATH": str(cli.home / "zenml")},
                cwd=tmp_path / "laptop" / "repo", check=True, capture_output=True,
            )  # fmt: skip
            up, show, check = (cli(*c.run_py_args, extra_env=env) for c in commands)
    finally:
        health.shutdown()
    assert up.returncode == 0 and "Active stack: zenkube-kubeflow" in up.stdout, up.stderr
    assert (
        show.returncode == 0 and "orchestrator" in show.stdout and "zenkube_kubeflow" in show.stdout
    )
    assert check.returncode == 1, check.stdout + check.stderr
    failed = [line for line in check.stdout.splitlines() if line.startswith("✗")]
    assert len(failed) == 1 and "ZenML server" in failed[0], check.stdout
    passed = [line for line in check.stdout.splitlines() if line.startswith("✓")]
    assert len(passed) == len(rbac.granted("seldon", "zenkube")) + 3, check.stdout
    assert "Traceback" not in check.stdout + check.stderr
