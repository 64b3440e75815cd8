"""ZenML's service records of zenkube's model deployers (integrations/zenml_adapters/deployer.py).

ZenML's `find_model_server` filters by ZenML Model version, not by the served registry
model, and deletes records that are still being deployed; so the deployers read and
write the store through these functions. A record without a `service_source` is a
deploy that has not finished (or was cut off: `unfinished` finds those for the repair).

A release's candidate (issue #27) is recorded too, with the label `zenkube.release:
candidate`: `records` leaves candidates out (the served version is the one without it)
and `candidates` lists them; a promote relabels it `served` (`save(service)`).
"""

from __future__ import annotations

from typing import TypeVar
from uuid import UUID

from zenml.client import Client
from zenml.models.v2.misc.service import ServiceType
from zenml.services.service import BaseDeploymentService

S = TypeVar("S", bound=BaseDeploymentService)

ROLE_LABEL = "zenkube.release"
CANDIDATE = "candidate"
SERVED = "served"


def model_server_type(name: str, flavor: str, description: str) -> ServiceType:
    """The ZenML service type of one of zenkube's model servers (type `model-serving`, as
    ZenML's own deployers' services): the records below are found by its type and flavor."""
    return ServiceType(name=name, type="model-serving", flavor=flavor, description=description)


def _is_candidate(response) -> bool:
    return (response.labels or {}).get(ROLE_LABEL) == CANDIDATE


def _responses(service_class: type[S], model_name: str | None):
    stype = service_class.SERVICE_TYPE
    for response in (
        Client()
        .list_services(
            sort_by="desc:created", type=stype.type, flavor=stype.flavor, hydrate=True, size=1000
        )
        .items
    ):
        if model_name and (response.config or {}).get("model_name") != model_name:
            continue
        yield response


def records(
    service_class: type[S], model_name: str | None = None, candidates: bool = False
) -> list[S]:
    """The finished deployments of `service_class` (for one registered model), newest
    first: the served ones, or (`candidates`) releases' candidates."""
    return [
        service_class.from_model(response)
        for response in _responses(service_class, model_name)
        if response.service_source and _is_candidate(response) == candidates
    ]


def unfinished(
    service_class: type[S], model_name: str | None = None, candidates: bool | None = None
) -> list[S]:
    """Records of deploys (or, `candidates`, release starts; None: both) that did not
    finish (their service rebuilt from the config)."""
    return [
        service_class(uuid=response.id, config=response.config)
        for response in _responses(service_class, model_name)
        if not response.service_source and candidates in (None, _is_candidate(response))
    ]


def mark_candidate(service_id: UUID) -> None:
    """Label a new record as a release's candidate (before its server starts)."""
    Client().update_service(id=service_id, labels={ROLE_LABEL: CANDIDATE})


def save(service: BaseDeploymentService, candidate: bool = False) -> None:
    """Record a deployed service in the store: what `records` reads back (a candidate's
    record keeps its label; saved without it, the service is the served one)."""
    Client().update_service(
        id=service.uuid,
        name=service.config.service_name,
        service_source=service.model_dump().get("type"),
        admin_state=service.admin_state,
        status=service.status.model_dump(),
        prediction_url=service.get_prediction_url(),
        health_check_url=service.get_healthcheck_url(),
        labels={ROLE_LABEL: CANDIDATE if candidate else SERVED},  # ZenML skips an empty one
    )


def delete(service_id: UUID) -> None:
    """Remove a record (already gone is fine)."""
    try:
        Client().delete_service(service_id)
    except KeyError:
        pass
