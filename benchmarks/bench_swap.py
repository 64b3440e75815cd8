"""Redeploy under load: 8 clients post 5-row batches to the stable URL while a new version
is swapped in, on both protocols. Prints the swap time, failed requests, and p50/p99
latency before and during the swap (the ratio is against "before", measured in this run).
"""

from __future__ import annotations

import threading
import time

import numpy as np
import requests
from common import isolated_home, save, table

CLIENTS = 8


def load(url: str, body: dict, stop: threading.Event, samples: list, errors: list) -> None:
    session = requests.Session()
    while not stop.is_set():
        started = time.perf_counter()
        try:
            ok = session.post(url, json=body, timeout=30).status_code == 200
        except requests.RequestException:
            ok = False
        samples.append((started, time.perf_counter() - started))
        if not ok:
            errors.append(started)
        time.sleep(0.005)


def p(values, q) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def front_overhead(front_url: str, backend_url: str, body: dict, requests_n: int = 200) -> dict:
    """One client, sequential: the same body straight to the model server and via its front."""
    timings = {}
    for label, url in (("direct", backend_url), ("front", front_url)) * 2:  # interleaved
        session = requests.Session()
        samples = []
        for _ in range(requests_n // 2):
            started = time.perf_counter()
            session.post(url, json=body, timeout=30).raise_for_status()
            samples.append(time.perf_counter() - started)
        timings.setdefault(label, []).extend(samples)
    return {label: (p(v, 50), p(v, 99)) for label, v in timings.items()}


def swap(protocol: str) -> dict:
    from zenml.client import Client

    from app import runner
    from integrations.seldon_local import client
    from tests.conftest import FAST_TRAINER
    from tests.serving.helpers import deploy_folder

    name = f"bench-swap-{protocol}"
    result = runner.train(None, {"model_name": name, **FAST_TRAINER})
    info = runner.deploy(None, {"model_name": name, "protocol": protocol})
    (service,) = Client().active_stack.model_deployer.services_for(name)
    run = Client().get_pipeline_run(result.run_name)
    test = run.steps["split_data"].outputs["test_set"][0].load()
    body = client.request_body(protocol, test.features.head(5))
    big = client.request_body(protocol, test.features.sample(100, replace=True, random_state=0))
    backend_url = info.prediction_url.replace(f":{service.port}/", f":{service.backend_port}/")
    overhead = front_overhead(info.prediction_url, backend_url, big)
    stop, samples, errors = threading.Event(), [], []
    threads = [
        threading.Thread(target=load, args=(info.prediction_url, body, stop, samples, errors))
        for _ in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    time.sleep(3)
    swap_start = time.perf_counter()
    deploy_folder(name, service.model_dir, "2", protocol=protocol)
    swap_end = time.perf_counter()
    time.sleep(2)
    stop.set()
    for thread in threads:
        thread.join()
    before = [d for t, d in samples if t < swap_start]
    during = [d for t, d in samples if swap_start <= t <= swap_end]
    return {
        "protocol": protocol,
        "swap_s": swap_end - swap_start,
        "requests": len(samples),
        "failed": len(errors),
        "p50_before_ms": p(before, 50),
        "p99_before_ms": p(before, 99),
        "p50_during_ms": p(during, 50),
        "p99_during_ms": p(during, 99),
        "batch100_direct_p50_p99_ms": overhead["direct"],
        "batch100_front_p50_p99_ms": overhead["front"],
    }


def main() -> None:
    isolated_home("swap")
    from stacks.env import prepare_environment
    from stacks.manage import ensure_zenml_ready

    prepare_environment()
    ensure_zenml_ready("local")
    results = [swap("seldon"), swap("v2")]
    rows = [
        [
            r["protocol"],
            r["swap_s"],
            r["requests"],
            r["failed"],
            r["p50_before_ms"],
            r["p99_before_ms"],
            r["p50_during_ms"],
            r["p99_during_ms"],
            r["p99_during_ms"] / r["p99_before_ms"],
        ]
        for r in results
    ]
    print(
        table(
            f"Redeploy under load ({CLIENTS} clients, 5 rows per request; latency in ms)",
            [
                "protocol",
                "swap s",
                "requests",
                "failed",
                "p50 before",
                "p99 before",
                "p50 during",
                "p99 during",
                "p99 during/before",
            ],
            rows,
        )
    )
    print(
        table(
            "The front's cost: 100-row requests, one client, straight to the server vs via the front (ms)",
            ["protocol", "direct p50", "front p50", "direct p99", "front p99", "p50 front/direct"],
            [
                [
                    r["protocol"],
                    r["batch100_direct_p50_p99_ms"][0],
                    r["batch100_front_p50_p99_ms"][0],
                    r["batch100_direct_p50_p99_ms"][1],
                    r["batch100_front_p50_p99_ms"][1],
                    r["batch100_front_p50_p99_ms"][0] / r["batch100_direct_p50_p99_ms"][0],
                ]
                for r in results
            ],
        )
    )
    failed = sum(r["failed"] for r in results)
    print(
        f"Target: 0 failed requests during a swap → {failed} ({'met' if not failed else 'NOT met'})"
    )
    from core.paths import zenkube_home
    from tests.conftest import stop_servers_under

    stop_servers_under(zenkube_home() / "serving")
    print(f"JSON: {save('swap', {'results': results})}")


if __name__ == "__main__":
    main()
