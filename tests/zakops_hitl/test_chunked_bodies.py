"""A body sent with `Transfer-Encoding: chunked` (no Content-Length) is read as the body it
is, within the endpoint's limit: a real server (granian) called with http.client, and the
WSGI application with a stream that counts what is read from it."""

import http.client
import io
import json
import threading
from urllib.parse import urlsplit

import pytest

from accounts.services import api_token_create, service_account_ensure
from common.parsers import DEFAULT_MAX_BODY_BYTES
from tests.servers import app_server, production_env
from tests.zakops_hitl.wsgi_calls import call, server_environ


def chunked_post(base_url: str, path: str, body: bytes, token: str, chunk: int = 64 * 1024):
    """POST `body` in chunks of `chunk` bytes with http.client, reading the answer while
    sending: a server refusing the body answers (and closes) before it has all been sent."""
    url = urlsplit(base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    connection.putrequest("POST", path)
    for name, value in (("Authorization", f"Bearer {token}"), ("Content-Type", "application/json"),
                        ("Transfer-Encoding", "chunked")):
        connection.putheader(name, value)
    connection.endheaders()

    def send():
        try:
            for start in range(0, len(body), chunk):
                piece = body[start:start + chunk]
                connection.send(b"%X\r\n%s\r\n" % (len(piece), piece))
            connection.send(b"0\r\n\r\n")
        except OSError:
            pass  # the server answered and closed the connection first

    sender = threading.Thread(target=send)
    sender.start()
    try:
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        sender.join(timeout=60)
        connection.close()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_server_reads_a_chunked_body_and_refuses_one_over_the_limit(tmp_path, static_root):
    token = api_token_create(user=service_account_ensure(name="action-engine"), name="chunked")[1]
    assess = json.dumps({"action_type": "COMMUNICATION.SEND_EMAIL", "action_data": {"to": "cfo@seller.example"}}).encode()
    request = json.dumps({"action_id": "ACT-CHUNKED-1", "action_type": "DOCUMENT.GENERATE_LOI",
                          "inputs": {"note": "x" * 200_000}}).encode()
    huge = json.dumps({"action_type": "DEAL.GET_DETAILS", "action_data": {"pad": "x" * (3 * 1024 * 1024)}}).encode()
    with app_server(production_env(static_root), tmp_path / "server.log", workers=1) as server:
        status, content_type, body = chunked_post(server.base_url, "/api/hitl/assess-risk", assess, token, chunk=7)
        assert (status, content_type) == (200, "application/json"), body[:300]
        assert json.loads(body)["level"] == "critical"
        status, _, body = chunked_post(server.base_url, "/api/hitl/approval-requests", request, token)
        assert status == 201, body[:300]
        assert json.loads(body)["action_id"] == "ACT-CHUNKED-1"
        status, content_type, body = chunked_post(server.base_url, "/api/hitl/assess-risk", huge, token)
        assert (status, content_type) == (413, "application/json"), body[:300]
        assert "limit" in json.loads(body)["detail"]


class CountingStream(io.BytesIO):
    """A server's wsgi.input that remembers how much was read from it."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.taken = 0

    def read(self, size=-1):
        chunk = super().read(size)
        self.taken += len(chunk)
        return chunk


def chunked_environ(path: str, body: bytes, token: str, *, terminated: bool = True) -> tuple[dict, CountingStream]:
    stream = CountingStream(body)
    environ = server_environ("POST", path, body=b"", HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_TRANSFER_ENCODING="chunked")
    environ.pop("CONTENT_LENGTH", None)
    environ.update({"wsgi.input": stream, "wsgi.input_terminated": terminated, "CONTENT_TYPE": "application/json"})
    return environ, stream


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/hitl/assess-risk", "/api/hitl/approval-requests"])
def test_over_the_limit_no_more_than_the_limit_and_one_byte_is_read(service_token, path):
    environ, stream = chunked_environ(path, b"[" + b" " * (3 * 1024 * 1024) + b"]", service_token)
    answer = call(environ)
    assert (answer.status, answer.headers["Content-Type"]) == (413, "application/json")
    assert answer.json()["detail"] == f"Request body is over the limit of {DEFAULT_MAX_BODY_BYTES} bytes."
    assert stream.taken == DEFAULT_MAX_BODY_BYTES + 1


@pytest.mark.django_db
def test_a_chunked_body_within_the_limit_is_the_body(service_token):
    body = json.dumps({"action_type": "DEAL.GET_DETAILS"}).encode()
    environ, _ = chunked_environ("/api/hitl/assess-risk", body, service_token)
    answer = call(environ)
    assert (answer.status, answer.json().get("level")) == (200, "low"), answer.body


@pytest.mark.django_db
def test_a_chunked_body_from_a_server_that_can_not_end_it_is_a_411(service_token):
    """Without `wsgi.input_terminated` the stream has no end the app can see (PEP 3333)."""
    environ, stream = chunked_environ("/api/hitl/assess-risk", b'{"action_type": "X"}', service_token, terminated=False)
    answer = call(environ)
    assert (answer.status, answer.headers["Content-Type"]) == (411, "application/json")
    assert "Content-Length" in answer.json()["detail"] and stream.taken == 0


@pytest.mark.django_db
def test_an_anonymous_chunked_call_is_a_401_without_reading_the_body(api):
    environ, stream = chunked_environ("/api/hitl/approval-requests", b"{}" * 1000, "not-a-token")
    environ.pop("HTTP_AUTHORIZATION")
    answer = call(environ)
    assert answer.status == 401 and stream.taken == 0
