"""A real HTTP server for tests (the app served by werkzeug from a daemon thread), and a raw client that holds a body."""
import http.client
import re
import socket
import threading

from werkzeug.serving import make_server


class LiveServer:
    """A WSGI app served by werkzeug on host:<random port> from a daemon thread."""

    def __init__(self, app, host: str = "127.0.0.1"):
        self.app = app
        self.server = make_server(host, 0, app, threaded=True)
        self.port = self.server.server_port
        self.url = f"http://{host}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name=f"live-{self.port}", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def held_post(url: str, path: str, cookie: str, token: str, body: bytes) -> socket.socket:
    """Send a form post's headers only; returns the socket to send the body on."""
    host, port = re.match(r"http://([^:]+):(\d+)", url).groups()
    sock = socket.create_connection((host, int(port)), timeout=30)
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: session={cookie}\r\nX-CSRFToken: {token}\r\n"
            f"HX-Request: true\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    sock.sendall(head.encode())
    return sock


def response_of(sock: socket.socket) -> tuple[int, str]:
    """The status code and body of the response on sock (read to its end)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def http_request(port: int, method: str, path: str, body: str | None = None, headers: dict | None = None,
                 cookie: str | None = None) -> tuple[int, str, list[str]]:
    """One request to a server on 127.0.0.1:port: its status, its page and the cookies it set (name=value)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    all_headers = {**(headers or {}), **({"Cookie": cookie} if cookie else {})}
    if body is not None:
        all_headers["Content-Type"] = "application/x-www-form-urlencoded"
    connection.request(method, path, body=body, headers=all_headers)
    response = connection.getresponse()
    page = response.read().decode(errors="replace")
    cookies = [h.split(";")[0] for k, h in response.getheaders() if k.lower() == "set-cookie" and "=;" not in h]
    connection.close()
    return response.status, page, cookies
