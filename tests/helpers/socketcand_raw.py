"""A bare socketcand TCP client that speaks the protocol by hand, for the server tests."""

from __future__ import annotations

import socket


class RawClient:
    """One TCP connection to a socketcand server; reads ``< ... >`` elements one at a time."""

    def __init__(self, address: tuple[str, int], *, rcvbuf: int | None = None, timeout: float = 5.0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            # Before connect, so the TCP window stays small (a stalled peer buffers little).
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(address)
        self.buffer = ""

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode("latin-1"))

    def read(self) -> str:
        """Next ``< ... >`` element from the server."""
        while ">" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError(f"closed by server, buffer {self.buffer!r}")
            self.buffer += data.decode("ascii")
        start = self.buffer.index("<")
        end = self.buffer.index(">", start)
        element, self.buffer = self.buffer[start : end + 1], self.buffer[end + 1 :]
        return element

    def ask(self, text: str) -> str:
        self.send(text)
        return self.read()

    def open_raw(self) -> None:
        assert self.read() == "< hi >"
        assert self.ask("< open can0 >") == "< ok >"
        assert self.ask("< rawmode >") == "< ok >"

    def closed_by_server(self) -> bool:
        """True once the server has hung up (after whatever it still had to say)."""
        try:
            return self.sock.recv(65536) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()
