"""Release check: the cluster's release watcher, one look (scheduled as a KFP recurring run
by `python run.py release schedule`)."""

from zenml import pipeline

from steps.deployment.watch import check_release


@pipeline(enable_cache=False)
def release_check_pipeline(model_name: str) -> None:
    """Judge the model's running release on the traffic sink's rows with the release gate
    and promote or abort it when the gate decides; a run with no release running, or with
    too little evidence yet, changes nothing."""
    check_release(model_name)
