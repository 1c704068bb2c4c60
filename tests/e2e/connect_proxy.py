"""A loopback HTTP CONNECT proxy: it records every CONNECT target and tunnels bytes both ways,
or refuses every CONNECT with 403 (`refuse=True`), as a corporate proxy that does not allow the
destination would. Anything other than CONNECT gets 405: waggle must always tunnel.
"""

import select
import socket
import threading


class ConnectProxy:
    def __init__(self, refuse=False):
        self.refuse = refuse
        self.targets = []  # "host:port" of every CONNECT received
        self.other_requests = []  # request lines that were not CONNECT
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.2)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.listener.getsockname()[1]

    def connects(self):
        with self.lock:
            return list(self.targets)

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=5)
        self.listener.close()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        client.settimeout(10)
        try:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 16384:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            method, _, rest = request_line.partition(" ")
            target = rest.split(" ", 1)[0]
            if method != "CONNECT":
                with self.lock:
                    self.other_requests.append(request_line)
                client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            with self.lock:
                self.targets.append(target)
            if self.refuse:
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            host, _, port = target.rpartition(":")
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self._pipe(client, upstream)
        except OSError:
            pass
        finally:
            client.close()

    def _pipe(self, client, upstream):
        sockets = [client, upstream]
        try:
            while not self.stopping.is_set():
                readable, _, _ = select.select(sockets, [], [], 0.5)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is client else client).sendall(data)
        finally:
            upstream.close()
