"""Run a compiled KFP pipeline's tasks as pods would, and a recorder standing in for KFP's API.

`replay` runs each task's exact command, args and env from the YAML, in topological
order, in a fresh process with a fresh working directory and ZENML_CONFIG_PATH (the
image's code on PYTHONPATH). Like KFP's launcher it fills in the output placeholders
(each declared artifact's local path and URI, the executor output file) and, after the
task, "uploads" every declared output artifact: a missing file fails the task.
`KfpApiRecorder` answers the few KFP API calls the `kfp` client makes to submit a run
(experiments, runs, recurring runs), records them, and runs each submitted pipeline with
`replay` while the client polls, as a cluster would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

from integrations.kubeflow.validate import parse_strict, task_graph, topological_order
from tests.conftest import REPO_ROOT


class TaskFailed(AssertionError):
    pass


class Uploaded(dict):
    """What the launcher would upload for one task: artifact name -> (schema title, file)."""

    executor_output: dict


def launcher_placeholders(component: dict, pod: Path, job: str, task: str) -> dict[str, str]:
    """The values KFP's launcher substitutes for a task's output placeholders."""
    values = {"{{$.outputs.output_file}}": str(pod / "kfp_outputs" / "output_metadata.json")}
    for name in component.get("outputDefinitions", {}).get("artifacts", {}):
        values[f"{{{{$.outputs.artifacts['{name}'].path}}}}"] = str(
            pod / "minio" / "mlpipeline" / "v2" / "artifacts" / job / task / name
        )
        values[f"{{{{$.outputs.artifacts['{name}'].uri}}}}"] = (
            f"minio://mlpipeline/v2/artifacts/{job}/{task}/{name}"
        )
    return values


def uploaded(component: dict, values: dict[str, str], task: str) -> Uploaded:
    result = Uploaded()
    for name, definition in component.get("outputDefinitions", {}).get("artifacts", {}).items():
        path = Path(values[f"{{{{$.outputs.artifacts['{name}'].path}}}}"])
        if not path.is_file():
            raise TaskFailed(f"task {task}: output artifact '{name}' was not written ({path})")
        result[name] = (definition["artifactType"]["schemaTitle"], path)
    output_file = Path(values["{{$.outputs.output_file}}"])
    result.executor_output = json.loads(output_file.read_text()) if output_file.is_file() else {}
    return result


def replay(
    documents: list[dict],
    root: Path,
    extra_env: dict | None = None,
    uploads: dict[str, Uploaded] | None = None,
) -> list[str]:
    """Run every task of the compiled pipeline as a pod would; return the task order.

    `uploads`, when given, receives what each task's launcher would upload (by task name).
    """
    spec = parse_strict(documents[0])
    display, edges = task_graph(spec)
    executors = documents[0]["deploymentSpec"]["executors"]
    job_name = f"replay-{uuid.uuid4().hex[:8]}"
    order = topological_order(set(display), edges)
    for task in order:
        component_name = documents[0]["root"]["dag"]["tasks"][task]["componentRef"]["name"]
        component = documents[0]["components"][component_name]
        executor = component["executorLabel"]
        container = executors[executor]["container"]
        pod = root / "pods" / job_name / task
        pod.mkdir(parents=True)
        env = {
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(pod),
            # the image's code: in a pod it sits in the image's working directory
            "PYTHONPATH": str(REPO_ROOT),
            "ZENML_CONFIG_PATH": str(pod / "zenml-config"),
            **(extra_env or {}),
        }
        for item in container.get("env", []):
            env[item["name"]] = item["value"].replace("{{$.pipeline_job_name}}", job_name)
        values = launcher_placeholders(component, pod, job_name, task)
        args = [values.get(arg, arg) for arg in container.get("args", [])]
        unresolved = [arg for arg in args if "{{$" in arg]
        if unresolved:
            raise TaskFailed(f"task {task}: placeholders the launcher does not fill: {unresolved}")
        result = subprocess.run(
            container["command"] + args,
            cwd=pod,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            raise TaskFailed(
                f"task {task} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
            )
        if uploads is not None:
            uploads[display[task]] = uploaded(component, values, task)
    return [display[t] for t in order]


class KfpApiRecorder:
    """The KFP API server's HTTP endpoint, stood in on 127.0.0.1 (see the module doc)."""

    def __init__(
        self,
        root: Path,
        secrets: dict[str, dict[str, str]] | None = None,
        pod_env: dict[str, str] | None = None,
    ):
        self.root = root
        # What every pod of the cluster has (e.g. how to reach the Kubernetes API).
        self.pod_env = pod_env or {}
        self.requests: list[tuple[str, str, dict]] = []
        self.runs: dict[str, dict] = {}
        self.recurring: list[dict] = []
        # Kubernetes Secrets the pods get as env (secretAsEnv in the platform spec).
        self.secrets = secrets or {}
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}") if length else {}

            def do_GET(self):
                path = urlparse(self.path).path
                recorder.requests.append(("GET", self.path, {}))
                if path.endswith("/experiments"):
                    return self._reply(200, {})
                if "/runs/" in path:
                    run = recorder.runs.get(path.rsplit("/", 1)[-1])
                    if run is None:
                        return self._reply(404, {"error": "no such run"})
                    return self._reply(200, {"run_id": run["run_id"], "state": run["state"]})
                return self._reply(200, {})

            def do_POST(self):
                path = urlparse(self.path).path
                body = self._body()
                recorder.requests.append(("POST", self.path, body))
                if path.endswith("/experiments"):
                    return self._reply(200, {**body, "experiment_id": "exp-1"})
                if path.endswith("/recurringruns"):
                    recorder.recurring.append(body)
                    return self._reply(200, {**body, "recurring_run_id": "rr-1"})
                if path.endswith("/runs"):
                    run_id = uuid.uuid4().hex
                    recorder.runs[run_id] = {"run_id": run_id, "state": "RUNNING", "body": body}
                    threading.Thread(target=recorder._execute, args=(run_id,), daemon=True).start()
                    return self._reply(200, {**body, "run_id": run_id, "state": "RUNNING"})
                return self._reply(404, {"error": f"not stood in: {path}"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def documents(self, run_id: str) -> list[dict]:
        spec = self.runs[run_id]["body"]["pipeline_spec"]
        if "pipeline_spec" in spec:  # with a platform spec, kfp nests both
            return [spec["pipeline_spec"], spec.get("platform_spec") or {}]
        return [spec]

    def _secret_env(self, documents: list[dict]) -> dict[str, str]:
        env = {}
        platform = documents[1] if len(documents) > 1 else {}
        executors = (
            platform.get("platforms", {}).get("kubernetes", {}).get("deploymentSpec", {})
        ).get("executors", {})
        for entry in executors.values():
            for ref in entry.get("secretAsEnv", []):
                values = self.secrets.get(ref["secretName"], {})
                for key in ref["keyToEnv"]:
                    if key["secretKey"] in values:
                        env[key["envVar"]] = values[key["secretKey"]]
        return env

    def _execute(self, run_id: str) -> None:
        run = self.runs[run_id]
        try:
            documents = self.documents(run_id)
            run["uploads"] = {}
            env = {**self.pod_env, **self._secret_env(documents)}
            run["order"] = replay(documents, self.root, env, run["uploads"])
            run["state"] = "SUCCEEDED"
        except Exception as exc:  # reported through the run's state, as KFP does
            run["error"] = str(exc)
            run["state"] = "FAILED"

    def __enter__(self) -> KfpApiRecorder:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
