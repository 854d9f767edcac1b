"""A TCP link that can be cut: real network faults between a service and the real server behind it."""

import socket
import threading
from collections.abc import Callable
from contextlib import suppress
from urllib.parse import urlsplit, urlunsplit


class CuttableLink:
    """A TCP relay in front of a real server; `cut()` drops every connection through it, `restore()` heals it.

    It stands in for a network fault between the orchestrator and one dependency, which the orchestrator then
    meets for real (no mocks): connections reset, reconnects refused. With `record`, it is also a tap: `seen()` is
    everything clients sent through it.
    """

    def __init__(self, target_host: str, target_port: int, *, record: bool = False) -> None:
        self._target = (target_host, target_port)
        self._record = record
        self._seen = bytearray()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        self._closed = False
        threading.Thread(target=self._accept, name="cuttable-link", daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            sockets, self._open = self._open, set()
        for sock in sockets:
            _close(sock)

    def seen(self) -> bytes:
        with self._lock:
            return bytes(self._seen)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        _close(self._listener)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:  # checked under the lock, so a connection accepted during cut() cannot slip through
                refused = self._cut
                if not refused:
                    self._open.update((client, upstream))
            if refused:
                _close(client)
                _close(upstream)
                continue
            tap = self._note if self._record else None
            for source, sink, heard in ((client, upstream, tap), (upstream, client, None)):
                threading.Thread(target=_pump, args=(source, sink, heard), daemon=True).start()

    def _note(self, data: bytes) -> None:
        with self._lock:
            self._seen += data


def _pump(source: socket.socket, sink: socket.socket, heard: Callable[[bytes], None] | None = None) -> None:
    try:
        while data := source.recv(65536):
            if heard is not None:
                heard(data)
            sink.sendall(data)
    except OSError:
        pass
    finally:
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def link_to(url: str) -> tuple[CuttableLink, str]:
    """A CuttableLink in front of the server of `url`, and the URL that goes through it."""
    parts = urlsplit(url)
    assert parts.hostname and parts.port, f"{url} needs an explicit host and port"
    link = CuttableLink(parts.hostname, parts.port)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{link.port}" if userinfo else f"127.0.0.1:{link.port}"
    return link, urlunsplit(parts._replace(netloc=netloc))
