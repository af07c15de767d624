"""A TCP proxy in front of MariaDB that a test can cut, blackhole and restore, as a network would.

It runs in its own process: the reader under test may hold its process's GIL while it waits on
the network, and a proxy in that same process could then never answer it.
Usage: python tests/tcp_proxy.py TARGET_PORT; prints its own port, then obeys lines on stdin:
"cut" (drop every connection and refuse new ones), "stall N" (forward N more bytes from the server,
then go silent: every connection, open or new, stays open and nothing more reaches either side,
like a blackholed route or a frozen server) and "restore" (new connections work again).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading


class _Server:
    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.open = True
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.budget: int | None = None  # bytes the server may still send before the blackhole; None: no limit
        self.generation = 0  # connections of an earlier generation stay blackholed after a restore
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            client, _ = self.server.accept()
            if not self.open:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            generation = self.generation
            threading.Thread(target=self._pipe, args=(client, upstream, generation, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, generation, True), daemon=True).start()

    def _forward(self, data: bytes, generation: int, from_server: bool) -> bytes:
        """What of ``data`` may pass: all of it, a part (the budget runs out), or nothing."""
        with self.lock:
            if generation != self.generation:
                return b""
            if self.budget is None:
                return data
            if not from_server:
                return data if self.budget > 0 else b""
            allowed, self.budget = data[: self.budget], max(0, self.budget - len(data))
            return allowed

    def _pipe(self, a, b, generation: int, from_server: bool):
        try:
            while data := a.recv(65536):
                # a stalled connection keeps reading and drops the bytes: open, but silent
                if passed := self._forward(data, generation, from_server):
                    b.sendall(passed)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self):
        self.open = False
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.sockets.clear()

    def stall(self, after_bytes: int):
        with self.lock:
            self.budget = after_bytes

    def restore(self):
        with self.lock:
            if self.budget is not None:
                self.generation += 1  # what stalled stays stalled; new connections flow
            self.budget = None
        self.open = True


class Proxy:
    """The test's handle on a proxy process."""

    def __init__(self, target_port: int = 3306):
        self.process = subprocess.Popen(
            [sys.executable, __file__, str(target_port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.port = int(self.process.stdout.readline())

    def _say(self, word: str) -> None:
        self.process.stdin.write(word + "\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == word

    def cut(self) -> None:
        self._say("cut")

    def stall(self, after_bytes: int = 0) -> None:
        self._say(f"stall {after_bytes}")

    def restore(self) -> None:
        self._say("restore")

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


if __name__ == "__main__":
    server = _Server(("127.0.0.1", int(sys.argv[1])))
    print(server.port, flush=True)
    for line in sys.stdin:
        word = line.strip()
        if word == "cut":
            server.cut()
        elif word.startswith("stall"):
            server.stall(int(word.split()[1]))
        elif word == "restore":
            server.restore()
        print(word, flush=True)
