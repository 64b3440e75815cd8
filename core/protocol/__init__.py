"""The serving protocol: its allowed values, its default and the one rule that chooses it.

A model is served with one protocol: `seldon` (Seldon Core v1 REST, /api/v1.0/predictions)
or `v2` (the Open Inference Protocol, /v2/models/<name>/infer). A deploy serves what was
asked for; with nothing asked, what is served now (a redeploy, a rollback and a retraining
redeploy never switch a live endpoint's protocol); with nothing served, the config's.

The wire codecs live beside this rule, one module per protocol, shared by everything
that reads or writes a request or an answer (the client, the front and its recorder,
the model-server runtimes, the cluster's traffic sink):

- `core.protocol.wire`: what both share (BadRequest, the row cap, tensor shapes, JSON);
- `core.protocol.seldon`: Seldon Core v1 messages (`data.ndarray` / `data.tensor`);
- `core.protocol.v2`: the Open Inference Protocol (inputs, datatypes, outputs).

They import the standard library and numpy only (and pyarrow, which both server
environments install, only when a Seldon `binData` body is read or written), so the
model-server environments (seldon-core 1.18, MLServer 1.7) import them too
(runtime/README.md). Importing this
package itself loads neither (the command line imports it).
"""

from __future__ import annotations

import re
from typing import Literal, get_args

Protocol = Literal["seldon", "v2"]
PROTOCOLS: tuple[str, ...] = get_args(Protocol)
DEFAULT_PROTOCOL: Protocol = "seldon"

DESCRIPTIONS = {
    "seldon": "Seldon Core v1 REST (/api/v1.0/predictions)",
    "v2": "Open Inference Protocol (/v2/models/<name>/infer)",
}


def check(protocol: str) -> str:
    """`protocol` when it is one zenkube serves; ValueError naming the allowed ones."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: use one of {', '.join(PROTOCOLS)}")
    return protocol


def choose(asked: str | None, served: str | None, configured: str | None = None) -> str:
    """The protocol to serve: the one asked for, else the one served now, else the config's."""
    return check(asked or served or configured or DEFAULT_PROTOCOL)


# Every V2 model was served as `classifier` before it was served under its own name; the
# V2 server still answers that path (integrations/seldon_local/runtime/launch_mlserver.py).
OLD_V2_NAME = "classifier"


def v2_model_name(model_name: str) -> str:
    """The name a registered model is served under on V2 (`/v2/models/<name>/infer`): its
    own name as one path segment (characters other than letters, digits, `_.-` become
    `_`)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", model_name)[:200]
    return name if re.match(r"[A-Za-z0-9_]", name) else f"_{name}"[:200]
