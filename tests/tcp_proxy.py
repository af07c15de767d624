"""A TCP proxy in front of MariaDB that a test can cut and restore, as a network outage would.

It runs in its own process: the reader under test may hold its process's GIL while it waits on
the network, and a proxy in that same process could then never answer it.
Usage: python tests/tcp_proxy.py TARGET_PORT; prints its own port, then obeys lines on stdin:
"cut" (drop every connection and refuse new ones) and "restore".
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
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
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
        elif word == "restore":
            server.open = True
        print(word, flush=True)
