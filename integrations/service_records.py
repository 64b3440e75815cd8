"""ZenML's service records of zenkube's model deployers (local Seldon, KServe).

ZenML's `find_model_server` filters by ZenML Model version, not by the served registry
model, and deletes records that are still being deployed; so the deployers read and
write the store through these two functions.
"""

from __future__ import annotations

from typing import TypeVar

from zenml.client import Client
from zenml.services.service import BaseDeploymentService

S = TypeVar("S", bound=BaseDeploymentService)


def records(service_class: type[S], model_name: str | None = None) -> list[S]:
    """The finished deployments of `service_class` (for one registered model), newest first."""
    stype = service_class.SERVICE_TYPE
    found = []
    for response in (
        Client()
        .list_services(
            sort_by="desc:created", type=stype.type, flavor=stype.flavor, hydrate=True, size=1000
        )
        .items
    ):
        if not response.service_source:  # a deploy that did not finish
            continue
        if model_name and response.config.get("model_name") != model_name:
            continue
        found.append(service_class.from_model(response))
    return found


def save(service: BaseDeploymentService) -> None:
    """Record a deployed service in the store: what `records` reads back."""
    Client().update_service(
        id=service.uuid,
        name=service.config.service_name,
        service_source=service.model_dump().get("type"),
        admin_state=service.admin_state,
        status=service.status.model_dump(),
        prediction_url=service.get_prediction_url(),
        health_check_url=service.get_healthcheck_url(),
    )
