"""Compiled YAML authenticates its pods with the API key from the Secret, whether it was
compiled against a local store or while connected to a server (whose session token
ZenML writes into every task's env)."""

from integrations.kubeflow.compile import STORE_KEY_ENV, portable_store
from integrations.kubeflow.secrets import strip_credentials


def documents(env: list[tuple[str, str]]) -> list[dict]:
    container = {"env": [{"name": n, "value": v} for n, v in env]}
    return [{"deploymentSpec": {"executors": {"exec-a": {"container": container}}}}]


def env_and_refs(docs: list[dict]) -> tuple[dict, list]:
    cleaned = strip_credentials(docs, "zenml-store-credentials")
    container = cleaned[0]["deploymentSpec"]["executors"]["exec-a"]["container"]
    platform = cleaned[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    return {e["name"]: e["value"] for e in container["env"]}, platform["exec-a"]["secretAsEnv"]


def test_a_connected_servers_session_token_gives_way_to_the_api_key():
    connected = [
        ("ZENML_STORE_TYPE", "rest"),
        ("ZENML_STORE_URL", "https://zenml.example.com"),
        ("ZENML_STORE_API_TOKEN", "eyJhbGciOi.session"),
        ("ZENML_ACTIVE_STACK_ID", "s"),
    ]
    env, refs = env_and_refs(portable_store(documents(connected), None))
    assert env == {
        "ZENML_STORE_TYPE": "rest",
        "ZENML_STORE_URL": "https://zenml.example.com",
        "ZENML_ACTIVE_STACK_ID": "s",
    }
    assert refs == [
        {
            "secretName": "zenml-store-credentials",
            "keyToEnv": [{"secretKey": STORE_KEY_ENV, "envVar": STORE_KEY_ENV}],
        }
    ]
    env, _ = env_and_refs(portable_store(documents(connected), "https://other.example.com"))
    assert env["ZENML_STORE_URL"] == "https://other.example.com"


def test_a_local_store_becomes_the_given_server():
    local = [("ZENML_STORE_TYPE", "sql"), ("ZENML_STORE_URL", "sqlite:////home/me/zenml.db")]
    env, refs = env_and_refs(portable_store(documents(local), "https://zenml.example.com"))
    assert env == {"ZENML_STORE_TYPE": "rest", "ZENML_STORE_URL": "https://zenml.example.com"}
    assert refs[0]["keyToEnv"] == [{"secretKey": STORE_KEY_ENV, "envVar": STORE_KEY_ENV}]
