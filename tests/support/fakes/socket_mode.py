"""A fake of Slack's Socket Mode server (https://api.slack.com/apis/socket-mode) on 127.0.0.1: a plain WebSocket
endpoint (RFC 6455, no TLS, no extensions), written on the standard library so the tests need no websocket
package. ``FakeSlack.attach_socket_mode`` makes ``apps.connections.open`` hand out its ``ws://`` URL.

What it does, as Slack does:

- answers the client's handshake (``101 Switching Protocols`` with ``Sec-WebSocket-Accept``) and sends
  ``{"type": "hello", "num_connections": 1, ...}``;
- sends the envelopes a test gives to :meth:`FakeSocketMode.send` (``{"envelope_id", "type": "interactive" |
  "events_api" | "slash_commands", "payload", "accepts_response_payload"}``) as text frames;
- records every text frame the client sends back (the acknowledgements, ``{"envelope_id", "payload"?}``) in
  :attr:`received`; answers pings with pongs carrying the same data; answers a close with a close.

Example::

    with FakeSlack() as slack, FakeSocketMode() as socket:
        slack.attach_socket_mode(socket.url, app_token="xapp-test")
        ...  # start the app with SLACK_APP_TOKEN=xapp-test
        socket.wait_connected()
        envelope_id = socket.send_interactive(block_action(...))
        socket.wait_for_ack(envelope_id)
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import threading
import time
import uuid
from typing import Any

__all__ = ["FakeSocketMode"]

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TEXT, _CLOSE, _PING, _PONG = 0x1, 0x8, 0x9, 0xA


def _frame(opcode: int, data: bytes) -> bytes:
    """One unmasked frame, as a server sends it."""
    head = bytes([0x80 | opcode])
    if len(data) < 126:
        head += bytes([len(data)])
    elif len(data) < 1 << 16:
        head += bytes([126]) + struct.pack("!H", len(data))
    else:
        head += bytes([127]) + struct.pack("!Q", len(data))
    return head + data


def _read_exactly(conn: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            raise ConnectionError("client went away")
        data += chunk
    return data


def _read_frame(conn: socket.socket) -> tuple[int, bytes]:
    """One frame from the client (masked, as RFC 6455 requires); fragments are not expected from slack_sdk."""
    first, second = _read_exactly(conn, 2)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", _read_exactly(conn, 2))[0]
    elif length == 127:
        length = struct.unpack("!Q", _read_exactly(conn, 8))[0]
    mask = _read_exactly(conn, 4) if second & 0x80 else b"\0\0\0\0"
    data = bytes(b ^ mask[i % 4] for i, b in enumerate(_read_exactly(conn, length)))
    return first & 0x0F, data


class FakeSocketMode:
    """A Socket Mode WebSocket server on loopback (see the module docstring)."""

    def __init__(self) -> None:
        self._server: socket.socket | None = None
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []
        self._connected = threading.Event()
        self._stopping = threading.Event()
        self.received: list[dict[str, Any]] = []
        self.handshakes: list[str] = []  # the request line of each handshake (its path carries the ticket)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeSocketMode:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.settimeout(0.2)
        self._server = server
        threading.Thread(target=self._accept, name="FakeSocketMode-accept", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            try:
                conn.close()
            except OSError:
                pass
        if self._server is not None:
            self._server.close()
            self._server = None

    def __enter__(self) -> FakeSocketMode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """What ``apps.connections.open`` answers: ``ws://127.0.0.1:<port>/link/?ticket=…``."""
        assert self._server is not None, "FakeSocketMode is not started"
        return f"ws://127.0.0.1:{self._server.getsockname()[1]}/link/?ticket={uuid.uuid4()}&app_id=A1"

    # ------------------------------------------------------------------ test helpers
    def wait_connected(self, timeout: float = 10.0) -> None:
        if not self._connected.wait(timeout):
            raise AssertionError("no Socket Mode client connected")

    def send(self, envelope_type: str, payload: dict[str, Any], *, accepts_response_payload: bool = False) -> str:
        """Send one envelope to the client connected last; returns its envelope id."""
        envelope_id = str(uuid.uuid4())
        message = {"envelope_id": envelope_id, "type": envelope_type, "payload": payload,
                   "accepts_response_payload": accepts_response_payload}
        with self._lock:
            if not self._connections:
                raise AssertionError("no Socket Mode client connected")
            self._connections[-1].sendall(_frame(_TEXT, json.dumps(message).encode()))
        return envelope_id

    def send_interactive(self, payload: dict[str, Any]) -> str:
        """A button click or modal submission (``type: interactive``), as Slack sends it over the socket."""
        return self.send("interactive", payload, accepts_response_payload=payload.get("type") == "view_submission")

    def acks(self) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.received if "envelope_id" in m]

    def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((m for m in self.acks() if m["envelope_id"] == envelope_id), None)
            if found is not None:
                return found
            time.sleep(0.02)
        raise AssertionError(f"envelope {envelope_id} was not acknowledged; received: {self.received}")

    # ------------------------------------------------------------------ plumbing
    def _accept(self) -> None:
        while not self._stopping.is_set() and self._server is not None:
            try:
                conn, _ = self._server.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve, args=(conn,), name="FakeSocketMode-conn", daemon=True).start()

    def _handshake(self, conn: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                raise ConnectionError("client went away during the handshake")
            request += chunk
        lines = request.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        key = headers.get("sec-websocket-key", "")
        accept = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
        conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        with self._lock:
            self.handshakes.append(lines[0])

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._handshake(conn)
            hello = {"type": "hello", "num_connections": 1, "debug_info": {"host": "fake-socket-mode"},
                     "connection_info": {"app_id": "A1"}}
            with self._lock:
                conn.sendall(_frame(_TEXT, json.dumps(hello).encode()))
                self._connections.append(conn)
            self._connected.set()
            while not self._stopping.is_set():
                opcode, data = _read_frame(conn)
                if opcode == _TEXT:
                    with self._lock:
                        self.received.append(json.loads(data.decode("utf-8")))
                elif opcode == _PING:
                    with self._lock:
                        conn.sendall(_frame(_PONG, data))
                elif opcode == _CLOSE:
                    with self._lock:
                        conn.sendall(_frame(_CLOSE, data[:2]))
                    return
        except (ConnectionError, OSError, ValueError):
            return
        finally:
            with self._lock:
                if conn in self._connections:
                    self._connections.remove(conn)
            try:
                conn.close()
            except OSError:
                pass
