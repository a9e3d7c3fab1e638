"""uvicorn's HTTP protocols with the one error they answer themselves in the common error shape.

A request uvicorn's HTTP parser cannot read (e.g. ``Content-Length: abc`` or ``-1``, a bad
header byte) never reaches the app: uvicorn answers it with a plain-text ``400 Invalid HTTP
request received.``. These subclasses answer the same 400 (and close the connection, as
uvicorn does) with ``{"error": {"type": "bad_request", ...}}``. Pass one as uvicorn's ``http``
option: ``uvicorn.run(app, http=JsonHttpToolsProtocol)`` (httptools is what ``http="auto"``
picks; it comes with ``uvicorn[standard]``, a dependency) or ``JsonH11Protocol``.
"""

from __future__ import annotations

import asyncio
import json

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from api.errors import error_body

MESSAGE = "the request is not valid HTTP (malformed request line or headers, e.g. Content-Length)"


def _send_json_400(transport: asyncio.Transport, state: ServerState) -> None:
    body = json.dumps(error_body("bad_request", MESSAGE)).encode("ascii")
    head = [b"HTTP/1.1 400 Bad Request\r\n"]
    head += [name + b": " + value + b"\r\n" for name, value in state.default_headers]
    head += [b"content-type: application/json\r\ncontent-length: ", str(len(body)).encode("ascii"), b"\r\nconnection: close\r\n\r\n"]
    # Written raw, as uvicorn's own 400 is: the parser's state is unusable after the failure.
    transport.write(b"".join(head) + body)
    transport.close()


class JsonHttpToolsProtocol(HttpToolsProtocol):
    """httptools (uvicorn's default) with a JSON 400 for unparsable requests."""

    def send_400_response(self, msg: str) -> None:
        _send_json_400(self.transport, self.server_state)


class JsonH11Protocol(H11Protocol):
    """h11 with a JSON 400 for unparsable requests."""

    def send_400_response(self, msg: str) -> None:
        _send_json_400(self.transport, self.server_state)
