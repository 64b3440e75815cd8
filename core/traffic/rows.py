"""Served traffic as data: the rows a model answered, their predictions, and labels that
arrive later as feedback — written as Parquet batches, read back as a monitoring batch.

Plain pandas/pyarrow (no ZenML): the model's front (`seldon_local/router/`) writes with
it, and `python run.py monitor --from-traffic` reads with it.

Layout of one model's folder (`<artifact store>/traffic/<model>/`):
    requests-<utc time>-<id>.parquet   one row per scored row: the columns the request
        held (the model's inputs, and any row ids or target the model ignores), plus
        _request_id, _row (its index in the request), _time (UTC seconds), _prediction,
        _version, _protocol, _role (who answered: `champion`, or during a release `canary`
        for the candidate's answers callers got, `shadow` for the answers they did not)
    feedback-<utc time>-<id>.parquet   _request_id, _row, _label, _time

Request ids are the protocols' own: Seldon's `meta.puid` in the response (the client's
when it sent one), and V2's response `id` (the client's `id` when it sent one).
Feedback joins labels to rows by (request id, row). A shadow row has the request id of
the champion's answer to the same request, so one label reaches both.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from core.protocol import seldon, v2, wire
from core.protocol.wire import flat


class _Pandas:
    """pandas, imported at first use: the front (seldon_local/router/) imports this module, and a
    front its keeper restarts must answer within a second, not after pandas' ~2 s."""

    def __getattr__(self, name: str):
        import pandas

        return getattr(pandas, name)


pd = _Pandas()

logger = logging.getLogger(__name__)
META = ("_request_id", "_row", "_time", "_prediction", "_version", "_protocol", "_role")
SHADOW = "shadow"  # a release's candidate answered a copy; the caller got another answer
ROLES = ("champion", "canary", SHADOW)  # who answered a row (`_role`)
POSITION = "_col"  # column name prefix for rows sent without names
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


MAX_ID_CHARS = 256  # a request id or a text label
MAX_FEEDBACK_BYTES = 4 * 2**20  # ~1M labels in one message


class TrafficError(ValueError):
    """A feedback message or a traffic request that cannot be used; the text says why.
    `status`: the HTTP status a client gets for it (400 unless said otherwise)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def safe_name(model_name: str) -> str:
    """A registered model's name as one path segment (folder, URL)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", model_name)


FOLDER_KEPT = re.compile(r"[A-Za-z0-9_-]{1,200}")
# every folder a model's traffic goes to: kept, hashed, and a Seldon shadow's (+ .shadow)
FOLDER = re.compile(r"[A-Za-z0-9_-]{1,200}(\.[0-9a-f]{16})?(\.shadow)?")


def folder_name(model_name: str) -> str:
    """A registered model's traffic folder, one per name (injective): the name itself when
    it is only letters, digits, `_` and `-`; else those characters with `.<16 hex of a
    hash of the name>`. A kept name has no `.`, so it never meets a hashed folder, nor a
    Seldon shadow's `<folder>.shadow` (`X.shadow` the model gets its own hashed folder)."""
    if FOLDER_KEPT.fullmatch(model_name):
        return model_name
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", model_name)[:100]
    return f"{slug}.{hashlib.sha256(model_name.encode()).hexdigest()[:16]}"


def logged_as(url: str, role: str, version: str, predictor: str = "") -> str:
    """A request logger's URL that tells the cluster's traffic sink who answers there:
    `<sink>/<folder>?role=<role>&version=<version>`. The deployers write it per predictor
    (the loggers post to the configured URL as it is, query included), so every row the
    sink writes carries `_role` and `_version` (core/traffic/sink.py); Seldon's
    `predictor`, which the sink checks against the logger's `Ce-Endpoint`."""
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
    query = {"role": role, "version": str(version or "")}
    return f"{url}?{urlencode(query | ({'predictor': predictor} if predictor else {}))}"


def model_folder(root: str | Path, model_name: str) -> str:
    """Where one model's traffic goes under the traffic root (a path or a URI: s3://…)."""
    return f"{str(root).rstrip('/')}/{folder_name(model_name)}"


def stack_folder(model_name: str) -> str:
    """Where served traffic of `model_name` is kept: `traffic/<model>/` in the active
    stack's artifact store (a local folder, or the bucket on a cluster stack)."""
    from zenml.client import Client

    store = Client().active_stack.artifact_store
    return model_folder(f"{store.path.rstrip('/')}/traffic", model_name)


def _fs(folder: str | Path):
    """(filesystem, path) for a local folder or any fsspec URI (s3:// on a cluster)."""
    import fsspec

    return fsspec.core.url_to_fs(str(folder))


def parse_duration(text: str) -> float:
    """Seconds in '90m', '24h', '7d' (s, m, h, d, w)."""
    match = DURATION.match(str(text))
    if not match:
        raise TrafficError(
            f"'{text}' is not a duration: use a number and a unit, e.g. 30m, 24h or 7d"
        )
    return float(match.group(1)) * SECONDS[match.group(2)]


# -- what one answered request holds ------------------------------------------------------
def seldon_rows(request: dict, response: dict, columns: list[str]) -> tuple[str, pd.DataFrame]:
    """(request id, rows with predictions) of an answered Seldon request."""
    rows, names = seldon.decode_request(request)
    names = names or columns or None
    frame = pd.DataFrame(rows, columns=names)
    if names is None:  # a client that sent no names, seen by a sink that knows no schema
        frame.columns = [f"{POSITION}{i}" for i in range(frame.shape[1])]
    request_id, predictions = seldon.decode_response(response)
    frame["_prediction"] = list(predictions)
    return request_id, frame


def v2_rows(request: dict, response: dict, columns: list[str]) -> tuple[str, pd.DataFrame]:
    """(request id, rows with predictions) of an answered V2 request."""
    values, names = v2.decode_inputs(request, columns, check_values=False)
    if names is None:  # one 2-D input of rows
        # a sink that knows no schema keeps a tensor's columns by position (as for Seldon)
        width = len(values[0]) if values else 0
        frame = pd.DataFrame(values, columns=columns or [f"{POSITION}{i}" for i in range(width)])
    else:
        frame = pd.DataFrame(values)
    request_id, predictions = v2.decode_response(response)
    frame["_prediction"] = flat(predictions)
    return request_id, frame


def answered_rows(
    protocol: str, request_body: bytes, response_body: bytes, columns: list[str]
) -> tuple[str, pd.DataFrame]:
    """The rows of one answered request, with `_request_id` and `_row`."""
    parse = v2_rows if protocol == "v2" else seldon_rows
    request_id, frame = parse(wire.loads(request_body), wire.loads(response_body), columns)
    frame["_request_id"] = request_id
    frame["_row"] = range(len(frame))
    return request_id, frame


def feedback_labels(protocol: str, body: bytes) -> pd.DataFrame:
    """Labels from a feedback message: Seldon's `{"response": {"meta": {"puid"}}, "truth":
    {"data": {"ndarray": [...]}}}` (what SeldonClient.feedback sends), or zenkube's V2
    `{"id": "<the infer response id>", "truth": [...]}`."""
    if len(body) > MAX_FEEDBACK_BYTES:
        raise TrafficError(
            f"the feedback body is {len(body)} bytes; the limit is {MAX_FEEDBACK_BYTES} "
            "(send the labels in smaller batches)",
            status=413,
        )
    try:
        message = json.loads(body)
    except ValueError as exc:
        raise TrafficError(f"the feedback body is not valid JSON: {str(exc)[:80]}") from None
    except RecursionError:
        raise TrafficError("the feedback body is nested too deeply to be feedback") from None
    if not isinstance(message, dict):
        raise TrafficError("the feedback body must be a JSON object")
    codec = v2 if protocol == "v2" else seldon
    request_id, truth = codec.decode_feedback(message)
    example = codec.FEEDBACK_EXAMPLE
    if not request_id or not isinstance(truth, list) or not truth:
        raise TrafficError(f"feedback needs the request id and the true labels: send {example}")
    if not isinstance(request_id, str | int) or len(str(request_id)) > MAX_ID_CHARS:
        raise TrafficError(f"the request id is text of at most {MAX_ID_CHARS} characters")
    labels = [t[0] if isinstance(t, list) and len(t) == 1 else t for t in truth]
    if any(isinstance(t, list | dict) for t in labels):
        raise TrafficError("truth holds one label per row of the request (a flat list)")
    if any(isinstance(t, int) and not -(2**63) <= t < 2**63 for t in labels):
        raise TrafficError("a label is an integer beyond 64 bits: send the class label itself")
    if any(isinstance(t, str) and len(t) > MAX_ID_CHARS for t in labels):
        raise TrafficError(f"a label is text of more than {MAX_ID_CHARS} characters")
    return pd.DataFrame(
        {"_request_id": str(request_id), "_row": range(len(labels)), "_label": labels}
    )


# -- writing and reading ------------------------------------------------------------------
class OverCap(TrafficError):
    """One batch larger than the folder's whole cap (written, it would only rotate the
    older files out and then itself)."""

    def __init__(self, message: str):
        super().__init__(message, status=413)


@dataclass
class TrafficLog:
    """One model's traffic folder (a local path or a URI such as s3://bucket/traffic/m),
    capped at `max_bytes`: the oldest files go first."""

    folder: str | Path
    max_bytes: int = 512 * 2**20

    def write(self, kind: str, frame: pd.DataFrame) -> str | None:
        if frame.empty:
            return None
        fs, root = _fs(self.folder)
        fs.makedirs(root, exist_ok=True)
        # Names sort by time: the rotation and the readers go by name, on any store.
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"{time.time() % 1:.6f}"[1:]
        path = f"{root}/{kind}-{stamp}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = path[: -len(".parquet")] + ".partial"
        with fs.open(tmp, "wb") as f:
            _text_objects(frame).to_parquet(f, index=False)
        size = fs.size(tmp)
        if size > self.max_bytes:  # it would rotate everything out, itself too: not kept
            fs.rm(tmp)
            raise OverCap(
                f"a {kind} batch of {size} bytes is over the folder's cap of "
                f"{self.max_bytes} bytes: it was not written and nothing older was removed"
            )
        fs.mv(tmp, path)  # readers never see half a file
        self.rotate()
        return path

    def rotate(self) -> None:
        fs, root = _fs(self.folder)
        files = sorted(  # by the time in the name, whatever the kind
            fs.glob(f"{root}/*.parquet"), key=lambda p: p.rsplit("/", 1)[-1].split("-", 1)[1]
        )
        sizes = {f: fs.size(f) for f in files}
        total = sum(sizes.values())
        while files and total > self.max_bytes:
            oldest = files.pop(0)
            total -= sizes[oldest]
            fs.rm(oldest)


def _text_objects(frame: pd.DataFrame) -> pd.DataFrame:
    """Parquet needs one type per column: mixed object columns (labels, predictions,
    categories with gaps) are stored as text, missing values as null."""
    frame = frame.copy()
    for name in frame.columns:
        if frame[name].dtype == object:
            kinds = {type(v) for v in frame[name] if v is not None and v == v}
            if len(kinds) > 1 or (kinds and not kinds <= {str}):
                if kinds <= {int, float, bool}:
                    frame[name] = pd.to_numeric(frame[name], errors="coerce")
                else:
                    frame[name] = frame[name].map(lambda v: None if v is None else str(v))
    return frame


def written_at(name: str) -> float | None:
    """When a traffic file was written, from its name (UTC), or None if it has none."""
    import calendar

    stamp = name.rsplit("/", 1)[-1].split("-", 1)[-1].split(".", 1)[0]
    try:
        return float(calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%S")))
    except ValueError:
        return None


def read_kind(
    folder: str | Path, kind: str, since: float | None, skipped: list[str] | None = None
) -> pd.DataFrame:
    """One kind of traffic file (requests, feedback) as one frame; rows before `since`
    (epoch seconds) are left out, and files written before it are not even read. A file
    that is not readable Parquet is skipped with a warning (and added to `skipped`)."""
    fs, root = _fs(folder)
    files = sorted(fs.glob(f"{root}/{kind}-*.parquet"))
    frames = []
    skipped = skipped if skipped is not None else []
    for name in files:
        at = written_at(name)
        if since is not None and at is not None and at + 1 < since:
            continue  # everything in it was served before the window
        try:
            with fs.open(name, "rb") as f:
                frames.append(pd.read_parquet(f))
        except Exception as exc:  # noqa: BLE001 - one bad file must not hide the others
            skipped.append(name)
            logger.warning(
                "Skipped %s: not a readable traffic file (%s). The front never writes "
                "such a file; move it out of the folder.",
                name, f"{type(exc).__name__}: {str(exc)[:120]}",
            )  # fmt: skip
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame()
    # A column that is empty in one file (no feedback yet, no version) takes its type from
    # the files that hold values, as it did before pandas deprecated that in concat.
    columns = list(dict.fromkeys(c for f in frames for c in f.columns))
    frames = [f.dropna(axis=1, how="all") for f in frames]
    frame = pd.concat(frames, ignore_index=True).reindex(columns=columns)
    if since is not None and "_time" in frame:
        frame = frame[frame["_time"] >= since]
    return frame


@dataclass
class TrafficBatch:
    """A monitoring batch built from served traffic."""

    frame: pd.DataFrame
    rows: int
    labelled: int
    labelled_batch: bool
    skipped: list[str] = field(default_factory=list)  # unreadable files left out


def traffic_batch(
    folder: str | Path, columns: list[str], target: str, since_seconds: float, min_rows: int
) -> TrafficBatch:
    """The rows served in the last `since_seconds`, as the monitoring pipeline reads a batch.

    With at least `min_rows` labelled rows the batch is those rows with the labels in the
    `target` column (drift, quality and, on an alert, retraining); otherwise it is every
    served row without labels (drift only). Fewer than `min_rows` served rows is an error.
    """
    cutoff = time.time() - since_seconds
    skipped: list[str] = []
    requests = read_kind(folder, "requests", cutoff, skipped)
    if "_role" in requests:  # what callers were answered with, never a shadow's answers
        requests = requests[requests["_role"] != SHADOW].reset_index(drop=True)
    if "_status" in requests:  # a request the cluster's sink saw fail has no rows to judge
        answered = requests["_status"].isna() | (requests["_status"] == 200)
        requests = requests[answered].reset_index(drop=True)
    window = _window(since_seconds)
    if len(requests) < min_rows:
        raise TrafficError(
            f"only {len(requests)} served row(s) were logged in the last {window} "
            f"(in {folder}); at least {min_rows} are needed. Wait for more traffic, widen "
            "--since, or lower --min-rows."
        )
    positional = [f"{POSITION}{i}" for i in range(len(columns))]
    if all(p in requests.columns for p in positional):  # some rows were sent without names
        for name, position in zip(columns, positional, strict=True):
            unnamed = requests[position]
            requests[name] = requests[name].combine_first(unnamed) if name in requests else unnamed
    missing = [c for c in columns if c not in requests.columns]
    if missing:
        raise TrafficError(
            f"the logged traffic lacks the model's column(s) {', '.join(missing[:5])}: it "
            "was served by a model with another input schema. Use --since to look only "
            "at traffic since the current model was deployed."
        )
    requests = requests.drop_duplicates(["_request_id", "_row"], keep="last")
    feedback = read_kind(folder, "feedback", None, skipped)
    if not feedback.empty:
        feedback = feedback.drop_duplicates(["_request_id", "_row"], keep="last")
        joined = requests.merge(
            feedback[["_request_id", "_row", "_label"]], on=["_request_id", "_row"], how="left"
        )
    else:
        joined = requests.assign(_label=None)
    labelled = joined[joined["_label"].notna()]
    if len(labelled) >= min_rows:
        frame = labelled[columns].copy()
        frame[target] = labelled["_label"].to_numpy()
        return TrafficBatch(frame.reset_index(drop=True), len(joined), len(labelled), True, skipped)
    return TrafficBatch(
        joined[columns].reset_index(drop=True), len(joined), len(labelled), False, skipped
    )


RELEASE_COLUMNS = ("_role", "_version", "_request_id", "_row", "_prediction", "_status",
                   "_latency_ms")  # fmt: skip


def release_rows(folders: list[str | Path], since: float | None) -> list[dict]:
    """The rows served since `since` (epoch seconds) in `folders` (a model's folder, and a
    Seldon shadow's `<folder>.shadow`), each with the `_label` feedback gave it (joined by
    request id and row): what `release_gate.evidence_from_rows` judges. Labels are read
    from every folder and reach the rows of all: callers post feedback to the model's
    folder, and a shadow's row of the same request (the request id the caller sent, which
    Istio's mirror copies) is labelled by it too."""
    found = [read_kind(folder, "feedback", None) for folder in folders]
    found = [frame for frame in found if not frame.empty]
    labels = None
    if found:
        labels = pd.concat(found, ignore_index=True)
        if "_time" in labels:
            labels = labels.sort_values("_time", kind="stable")
        labels = labels.drop_duplicates(["_request_id", "_row"], keep="last")
        labels = labels[["_request_id", "_row", "_label"]]
    out: list[dict] = []
    for folder in folders:
        requests = read_kind(folder, "requests", since)
        if requests.empty:
            continue
        requests = requests.drop_duplicates(["_request_id", "_row", "_role"], keep="last")
        keep = [c for c in RELEASE_COLUMNS if c in requests.columns]
        frame = requests[keep]
        if labels is not None:
            frame = frame.merge(labels, on=["_request_id", "_row"], how="left")
        out.extend(frame.to_dict("records"))
    return out


def _window(seconds: float) -> str:
    for unit in ("w", "d", "h", "m"):
        if seconds >= SECONDS[unit] and seconds % SECONDS[unit] == 0:
            return f"{int(seconds // SECONDS[unit])}{unit}"
    return f"{seconds:g}s"


MAX_PENDING_BYTES = int(os.environ.get("ZENKUBE_TRAFFIC_BUFFER_BYTES", 64 * 2**20))
FLUSH_SECONDS = float(os.environ.get("ZENKUBE_TRAFFIC_FLUSH_SECONDS", "5"))


class TrafficBuffer:
    """Answered requests and feedback held in memory and written as Parquet batches by a
    background task: never on the request path, never to a log.

    Bounded: requests and feedback share one budget per batch (MAX_PENDING_BYTES, and at
    most a quarter of the folder's cap, so one batch never rotates the folder empty);
    past it a request is not recorded and feedback is refused with 503. Nothing a request
    holds stops the recorder: what cannot be recorded is skipped and `on_drop(reason,
    detail)` is told (reasons: buffer_full, unreadable, write_failed)."""

    def __init__(
        self,
        folder: str | Path,
        max_bytes: int = 512 * 2**20,
        on_drop: Callable[[str, str], None] | None = None,
    ):
        self.log = TrafficLog(folder, max_bytes)
        self.budget = max(1, min(MAX_PENDING_BYTES, max_bytes // 4))
        self.pending: list[tuple] = []
        self.pending_bytes = 0
        self.labels: list[pd.DataFrame] = []
        self.failed: list[dict] = []
        self.on_drop = on_drop or (lambda reason, detail: None)

    def add(
        self,
        request: bytes,
        answer: bytes,
        protocol: str,
        version: str = "",
        columns: list[str] | None = None,
        role: str = "champion",
        request_id: str | None = None,
        latency_ms: float | None = None,
    ) -> None:
        """One answered request; `role` says who answered (champion, canary, shadow) and
        `request_id`, when given, replaces the answer's own (a shadow's answer is kept
        under the id of the answer the caller got)."""
        size = len(request) + len(answer)
        if self.pending_bytes + size > self.budget:
            self.on_drop("buffer_full", "the traffic buffer is full until the next write")
            return
        self.pending.append(
            (time.time(), protocol, version, columns or [], request, answer, role, request_id,
             latency_ms)
        )  # fmt: skip
        self.pending_bytes += size

    def add_failed(
        self, request_id: str, protocol: str, version: str, role: str, status: int
    ) -> None:
        """A request that got no answer (the cluster's sink: a logged request without its
        response): one row with its `_status`, no inputs or prediction; monitoring leaves
        it out, the release gate counts it."""
        self.failed.append(
            {"_request_id": request_id, "_row": 0, "_time": time.time(), "_version": version,
             "_protocol": protocol, "_role": role, "_status": status}
        )  # fmt: skip

    def add_feedback(self, protocol: str, body: bytes) -> pd.DataFrame:
        """Labels from one feedback body, kept for the next batch; TrafficError (the
        client's 4xx, or 503 while the buffer is full) when they cannot be."""
        if len(body) > self.budget:  # it would never fit: not a wait, a smaller body
            raise TrafficError(
                f"the feedback body is {len(body)} bytes; one batch of this endpoint's "
                f"traffic holds at most {self.budget} (a quarter of its folder's cap): send "
                "the labels in smaller batches",
                413,
            )
        if self.pending_bytes + len(body) > self.budget:
            self.on_drop("buffer_full", "feedback refused with 503 until the next write")
            raise TrafficError(
                "the traffic buffer is full; send the feedback again in a few seconds", 503
            )
        frame = feedback_labels(protocol, body)
        frame["_time"] = time.time()
        self.labels.append(frame)
        self.pending_bytes += len(body)
        return frame

    async def run(self, every: float = FLUSH_SECONDS) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.flush()
            except Exception as exc:  # noqa: BLE001 - the recorder must outlive any batch
                self.on_drop("write_failed", f"{type(exc).__name__}: {str(exc)[:200]}")

    async def flush(self) -> None:
        pending, self.pending, self.pending_bytes = self.pending, [], 0
        labels, self.labels = self.labels, []
        failed, self.failed = self.failed, []
        if pending or labels or failed:
            await asyncio.get_running_loop().run_in_executor(
                None, self.write, pending, labels, failed
            )

    def write(
        self, pending: list[tuple], labels: list[pd.DataFrame], failed: list[dict] | None = None
    ) -> None:
        frames = [pd.DataFrame(failed)] if failed else []
        for at, protocol, version, columns, request, answer, role, request_id, latency in pending:
            try:
                _, frame = answered_rows(protocol, request, answer, columns)
            except Exception as exc:  # noqa: BLE001 - served, but not readable back
                self.on_drop("unreadable", type(exc).__name__)
                continue
            frame["_time"], frame["_version"], frame["_protocol"] = at, version, protocol
            frame["_role"] = role
            if latency is not None:
                frame["_latency_ms"] = latency
            if request_id:
                frame["_request_id"] = request_id
            frames.append(frame)
        for kind, parts in (("requests", frames), ("feedback", labels)):
            if not parts:
                continue
            try:
                with warnings.catch_warnings():  # pandas' notice about all-NA columns
                    warnings.simplefilter("ignore", FutureWarning)
                    frame = pd.concat(parts, ignore_index=True)
                self.log.write(kind, frame)
            except OverCap as exc:  # the folder as it was: older files all kept
                for _ in parts:
                    self.on_drop("over_cap", str(exc))
            except Exception as exc:  # noqa: BLE001 - this batch is lost, not the recorder
                for _ in parts:
                    self.on_drop("write_failed", f"{type(exc).__name__}: {str(exc)[:200]}")
