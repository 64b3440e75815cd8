"""Serving: zenkube's local Seldon endpoint (protocols seldon and v2) vs in-process
`model.predict` vs `mlflow models serve`, batches of 1/100/10,000 rows, 1 and 8 clients.
A batch of client.BINARY_ROWS rows or more is also sent to the Seldon front as zenkube's
client sends it, `binData` (an Arrow stream: "seldon binData via front").

Everything on 127.0.0.1 with bounded request counts. Prints p50/p99 latency (ms),
rows/s and errors, and each figure's ratio to in-process predict measured in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import requests
from common import save, table

from integrations.seldon_local import client, process
from integrations.seldon_local.environments import runtime_python

JSON = {"Content-Type": "application/json"}
# Request bodies are encoded once, outside the timed loop: the figures compare servers,
# and in-process predict pays no client-side encoding either.
# batch size → requests per client (10,000 rows: 20; with 6, one slow request moved a
# one-client ratio by 0.15, docs/performance.md §16)
BATCHES = {1: 300, 100: 60, 10_000: 20}
ROUNDS = 3  # each cell's requests are spread over rounds that visit every server in turn


def train_model(folder: Path):
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    data = load_breast_cancer(as_frame=True)
    model = RandomForestClassifier(n_estimators=100, random_state=0).fit(data.data, data.target)
    example = data.data.head(5)
    mlflow.sklearn.save_model(
        model,
        str(folder),
        serialization_format="cloudpickle",
        signature=infer_signature(example, model.predict(example)),
        input_example=example,
    )
    return model, data.data


def batch_of(features: pd.DataFrame, size: int) -> pd.DataFrame:
    rows = np.random.default_rng(size).integers(0, len(features), size)
    return features.iloc[rows].reset_index(drop=True)


def percentile(values, q):
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def load(send, clients: int, requests_per_client: int) -> tuple[list[float], int, float]:
    """(latencies, errors, wall seconds) of `clients` threads each sending in a loop."""

    def loop(_):
        latencies, errors = [], 0
        session = requests.Session()
        for _ in range(requests_per_client):
            started = time.perf_counter()
            try:
                ok = send(session)
            except Exception:
                ok = False
            latencies.append(time.perf_counter() - started)
            errors += 0 if ok else 1
        return latencies, errors

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(loop, range(clients)))
    wall = time.perf_counter() - started
    return [x for lat, _ in results for x in lat], sum(e for _, e in results), wall


def interleaved(sends: dict, batch_rows: int, clients: int, requests_per_client: int) -> dict:
    """Each server's figures, measured in ROUNDS rounds that visit every server in turn
    (each round starting one server later): the machine is shared, and a load that
    changes during the run then slows every server alike instead of the one measured at
    that moment (a ratio of one run measured server after server moved by ±50%)."""
    names = list(sends)
    rounds = max(1, min(ROUNDS, requests_per_client))
    per_round = [
        requests_per_client // rounds + (r < requests_per_client % rounds) for r in range(rounds)
    ]
    got = {name: ([], 0, 0.0) for name in names}
    for r, n in enumerate(per_round):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            latencies, errors, wall = load(sends[name], clients, n)
            before = got[name]
            got[name] = (before[0] + latencies, before[1] + errors, before[2] + wall)
    return {
        name: {
            "p50_ms": percentile(latencies, 50),
            "p99_ms": percentile(latencies, 99),
            "rows_per_s": batch_rows * len(latencies) / wall,
            "errors": errors,
        }
        for name, (latencies, errors, wall) in got.items()
    }


def start_zenkube(protocol: str, model_dir: Path, workers: int):
    proto = process.get_protocol(protocol)
    port = process.free_port()
    log = model_dir.parent / f"{protocol}.log"
    pid = process.spawn(
        proto.command(runtime_python(protocol), model_dir, "classifier", port, workers),
        log,
        {"ZENKUBE_HOST": "127.0.0.1"},
    )
    process.wait_healthy(pid, proto.url(port, "classifier", proto.health_path), log, 180)
    return pid, proto.url(port, "classifier", proto.predict_path)


def start_front(folder: Path, server_url: str, protocol: str):
    """The model's front (what `deploy` puts before the server) forwarding to
    `server_url`: the endpoint users call."""
    from integrations.seldon_local.front import ModelFront

    backend = int(server_url.split(":")[2].split("/")[0])
    front = ModelFront(folder / f"state-{protocol}", "bench")
    port = process.free_port()
    front.start(port, backend, served={"model": "bench", "version": "1", "protocol": protocol})
    return front.pid, server_url.replace(f":{backend}/", f":{port}/")


def start_mlflow_serve(model_dir: Path, workers: int):
    port = process.free_port()
    log = open(model_dir.parent / "mlflow-serve.log", "wb")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "models",
            "serve",
            "-m",
            str(model_dir),
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            str(workers),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # mlflow starts `uvicorn` by name
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"},
    )
    process.wait_healthy(
        proc.pid, f"http://127.0.0.1:{port}/ping", model_dir.parent / "mlflow-serve.log", 180
    )
    return proc.pid, f"http://127.0.0.1:{port}/invocations"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--quick", action="store_true", help="fewer requests (smoke run)")
    parser.add_argument(
        "--batches", default="1,100,10000", help="batch sizes to measure (comma-separated)"
    )
    args = parser.parse_args()
    sizes = [int(b) for b in args.batches.split(",")]
    scale = 0.2 if args.quick else 1.0
    load_before = os.getloadavg()[0]
    folder = Path(tempfile.mkdtemp(prefix="zenkube-bench-serving-"))
    model, features = train_model(folder / "model")
    servers = {}
    try:
        for protocol in ("seldon", "v2"):
            servers[protocol] = start_zenkube(protocol, folder / "model", args.workers)
        for protocol in ("seldon", "v2"):
            servers[f"{protocol} via front"] = start_front(folder, servers[protocol][1], protocol)
        servers["mlflow serve"] = start_mlflow_serve(folder / "model", args.workers)
        results, rows = [], []
        for batch_rows, per_client in BATCHES.items():
            if batch_rows not in sizes:
                continue
            batch = batch_of(features, batch_rows)
            expected = model.predict(batch).tolist()
            for clients in (1, 8):
                n = max(2, int(per_client * scale / (2 if clients == 8 else 1)))
                sends = {"in-process": lambda s, b=batch: model.predict(b) is not None}
                for name, (_, url) in servers.items():
                    if name == "mlflow serve":
                        body = json.dumps(
                            {
                                "dataframe_split": {
                                    "columns": list(batch.columns),
                                    "data": batch.to_numpy().tolist(),
                                }
                            }
                        )

                        def send(s, url=url, body=body, n_rows=batch_rows):
                            r = s.post(url, data=body, headers=JSON, timeout=120)
                            return r.status_code == 200 and len(r.json()["predictions"]) == n_rows
                    else:
                        protocol = name.split()[0]
                        body = json.dumps(client.request_body(protocol, batch))
                        proto = process.get_protocol(protocol)

                        def send(s, url=url, body=body, proto=proto, expected=expected):
                            r = s.post(url, data=body, headers=JSON, timeout=120)
                            return r.status_code == 200 and proto.predictions(r.json()) == expected

                    sends[name] = send
                if batch_rows >= client.BINARY_ROWS:  # what `run.py predict` sends
                    binary = client.request_body("seldon", batch, client.BINARY_ROWS)
                    sends["seldon binData via front"] = partial(
                        sends["seldon via front"], body=json.dumps(binary)
                    )
                row = {"batch": batch_rows, "clients": clients}
                row.update(interleaved(sends, batch_rows, clients, n))
                results.append(row)
                for name in sends:
                    m = row[name]
                    rows.append(
                        [
                            batch_rows,
                            clients,
                            name,
                            m["p50_ms"],
                            m["p99_ms"],
                            m["rows_per_s"],
                            m["rows_per_s"] / row["in-process"]["rows_per_s"],
                            m["errors"],
                        ]
                    )
        print(
            table(
                "Serving (RandomForest, 100 trees, breast_cancer features)",
                [
                    "batch",
                    "clients",
                    "server",
                    "p50 ms",
                    "p99 ms",
                    "rows/s",
                    "× in-process",
                    "errors",
                ],
                rows,
            )
        )
        verdicts = []
        for row in results:  # the target: the endpoint at >= 0.6x, p99 <= 2x
            if (row["batch"], row["clients"]) == (100, 1):
                m, base = row["seldon via front"], row["in-process"]
                ratio, p99 = m["rows_per_s"] / base["rows_per_s"], m["p99_ms"] / base["p99_ms"]
                if ratio < 0.6 or p99 > 2:
                    verdicts.append(
                        f"the seldon endpoint (front) at 100x1: {ratio:.2f}x rows/s, p99 {p99:.2f}x"
                    )
            for name in ("seldon", "v2"):
                m, base, mlf = row[name], row["in-process"], row["mlflow serve"]
                if m["rows_per_s"] < mlf["rows_per_s"]:
                    verdicts.append(
                        f"{name} slower than mlflow serve at batch {row['batch']}×{row['clients']}"
                    )
                if row["batch"] >= 100 and m["rows_per_s"] < 0.9 * base["rows_per_s"]:
                    verdicts.append(
                        f"{name} < 0.9× in-process at batch {row['batch']}×{row['clients']} "
                        f"({m['rows_per_s'] / base['rows_per_s']:.2f}×)"
                    )
        for row in results:  # issue #37: a 10,000-row batch through the front
            if row["batch"] != 10_000:
                continue
            base, mlf = row["in-process"]["rows_per_s"], row["mlflow serve"]["rows_per_s"]
            fronts = {n: m["rows_per_s"] / base for n, m in row.items() if "via front" in n}
            if max(fronts.values()) < 0.5:
                verdicts.append(
                    f"10000x{row['clients']} via the front below 0.5x in-process on every "
                    f"form ({', '.join(f'{n} {r:.2f}x' for n, r in fronts.items())})"
                )
            if row["v2 via front"]["rows_per_s"] < mlf:
                verdicts.append(
                    f"v2 via the front slower than mlflow serve at 10000x{row['clients']}"
                )
        load_after = os.getloadavg()[0]
        print(f"Load average (1 min) at the start {load_before:.1f}, at the end {load_after:.1f}")
        print("Targets: " + ("all met" if not verdicts else "NOT met: " + "; ".join(verdicts)))
        print(
            f"JSON: {save('serving', {'workers': args.workers, 'results': results, 'misses': verdicts, 'load': [load_before, load_after]})}"
        )
    finally:
        for pid, _ in servers.values():
            process.stop_group(pid)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
