"""Who may call the front: the headers a browser adds, not the body's content type."""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from integrations.seldon_local.router.wire import from_a_web_page, seldon_message, without_truth

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "headers, page",
    [
        ({}, False),  # curl, requests, seldon-core's SeldonClient
        ({"Sec-Fetch-Site": "none"}, False),  # typed in the address bar
        ({"Origin": "https://evil.example"}, True),
        ({"Origin": "null"}, True),  # a sandboxed page or a file://
        ({"Sec-Fetch-Site": "cross-site"}, True),  # an <img>'s GET carries no Origin
        ({"Sec-Fetch-Site": "Same-Site"}, True),  # another port of this host
    ],
)
def test_a_request_is_a_web_pages_by_its_browser_headers(headers, page):
    assert from_a_web_page(CIMultiDict(headers)) is page


def test_seldons_form_field_is_the_message_and_a_plain_body_is_kept():
    message = {"truth": {"data": {"ndarray": [1]}}, "response": {"meta": {"puid": "p"}}}
    form = "json=" + json.dumps(message).replace(" ", "+")
    request = make_mocked_request("POST", "/send-feedback")
    assert json.loads(seldon_message(request, form.encode())) == message
    body = json.dumps(message).encode()  # curl -d labels JSON as a form; Seldon reads it
    assert seldon_message(request, body) == body
    assert seldon_message(request, b"\xff\xfe") == b"\xff\xfe"
    query = make_mocked_request("GET", "/predict?json=%7B%7D")
    assert seldon_message(query, b"") == b"{}"


def test_only_a_reward_without_truth_goes_to_seldons_server():
    assert without_truth(b'{"request": {}, "response": {"meta": {}}, "reward": 1.0}')
    assert not without_truth(b'{"response": {}, "truth": {"data": {"ndarray": [1]}}}')
    assert not without_truth(b"{}")  # nothing at all: the recorder says what is missing
    assert not without_truth(b"not json")
