"""Client threads that keep posting while a test changes what serves (a redeploy, a
release, a killed process): the part the load generators of the serving tests and
benchmarks/bench_release.py share. Each subclass says what one client sends and keeps."""

from __future__ import annotations

import threading


class ClientThreads:
    """`clients` threads, each running `run(client)` until the `with` block ends (`stop`
    is set); `lock` guards what they record."""

    def __init__(self, clients: int, join_timeout: float | None = 60):
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.join_timeout = join_timeout
        self.threads = [
            threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(clients)
        ]

    def run(self, client: int) -> None:
        raise NotImplementedError

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=self.join_timeout)


def row_for(client: int, i: int, rows: int) -> int:
    """The row a client sends in its `i`-th request: spread over the data, another
    sequence per client."""
    return (client * 997 + i * 31) % rows


def seldon_server(row: int, answer: dict) -> str:
    """The server that answered: its model name, which Seldon puts in meta.requestPath."""
    return answer["meta"]["requestPath"]["classifier"].removeprefix("zenkube/")


def wrong_answers(url: str, body: dict, expected, answer_of, each: int, clients: int = 8) -> int:
    """`clients` concurrent clients each post `body` `each` times on a keep-alive session:
    how many answers were not HTTP 200 with `answer_of(json) == expected`."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    def client_loop(_) -> int:
        session, errors = requests.Session(), 0
        for _ in range(each):
            response = session.post(url, json=body, timeout=30)
            if response.status_code != 200 or answer_of(response.json()) != expected:
                errors += 1
        return errors

    with ThreadPoolExecutor(clients) as pool:
        return sum(pool.map(client_loop, range(clients)))
