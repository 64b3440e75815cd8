"""Run by the pinned Seldon runtime's python (seldon-core 1.18's own SeldonClient), not by
pytest: calls a served model the ways SeldonClient can and prints what came back as JSON.

    <seldon env>/bin/python seldon_client_calls.py '{"endpoint": "127.0.0.1:8000",
        "rows": [[...], ...], "names": [...], "labels": [...]}'
"""

import json
import sys

import numpy as np
from google.protobuf import json_format
from seldon_core.proto import prediction_pb2
from seldon_core.seldon_client import SeldonClient
from seldon_core.utils import array_to_grpc_datadef


def outcome(result) -> dict:
    response = result.response
    if response is not None and not isinstance(response, dict):
        response = json_format.MessageToDict(response)
    return {"success": result.success, "msg": result.msg, "response": response}


def main() -> None:
    spec = json.loads(sys.argv[1])
    rows, names = np.array(spec["rows"], dtype=float), spec["names"]
    endpoint = spec["endpoint"]
    client = SeldonClient(
        gateway="seldon",
        transport="rest",
        gateway_endpoint=endpoint,
        microservice_endpoint=endpoint,
        client_return_type="proto",
    )
    done = {}
    for payload in ("ndarray", "tensor"):
        done[f"predict_{payload}"] = outcome(
            client.predict(data=rows, payload_type=payload, names=names)
        )
    first = client.predict(data=rows, payload_type="ndarray", names=names)
    truth = prediction_pb2.SeldonMessage(
        data=array_to_grpc_datadef("ndarray", np.array(spec["labels"]))
    )
    done["feedback"] = outcome(
        client.feedback(
            prediction_request=first.request,
            prediction_response=first.response,
            prediction_truth=truth,
            reward=1.0,
        )
    )
    done["feedback_puid"] = first.response.meta.puid
    # the microservice API: Seldon's form field json=… on /predict and /send-feedback
    micro = client.microservice(method="predict", data=rows, payload_type="ndarray", names=names)
    done["microservice_predict"] = outcome(micro)
    done["microservice_feedback"] = outcome(
        client.microservice_feedback(
            prediction_request=micro.request, prediction_response=micro.response, reward=1.0
        )
    )
    print(json.dumps(done))


if __name__ == "__main__":
    main()
