"""Issue 17.7: the README's production server (gunicorn with gunicorn.conf.py) keeps answering pages while slow
clients hold connections: four that send their headers a byte at a time, four signed-in uploads that trickle in.
"""
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

from tests.live_server import http_request
from tests.test_request_hygiene import ROOT, _free_port, _server_env, _wait_listening, served_db  # noqa: F401

SLOW_HEADERS, SLOW_UPLOADS, PROBES = 4, 4, 6
PROMPT = 2.0  # seconds a probe may take
TIMEOUT = 4  # gunicorn's worker timeout for the test: the probes outlast it twice over
DRIP = 0.5  # seconds between two bytes of a slow client


def _sign_in(port: int, email: str, password: str) -> tuple[str, str]:
    """A signed-in session over HTTP: (cookie, CSRF token)."""
    _status, page, cookies = http_request(port, "GET", "/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    body = urlencode({"email": email, "password": password, "csrf_token": token})
    status, _page, cookies = http_request(port, "POST", "/login", body=body, cookie=cookies[0])
    assert status == 302, status
    _status, page, _ = http_request(port, "GET", "/imports/new", cookie=cookies[0])
    return cookies[0], re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _slow_header_client(port: int) -> tuple[socket.socket, bytes]:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"GET /login HTTP/1.1\r\n")
    return sock, b"Host: 127.0.0.1\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"


def _slow_upload(port: int, cookie: str, token: str) -> tuple[socket.socket, bytes]:
    boundary = "slowslowslow"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c.csv\"\r\n"
            f"Content-Type: text/csv\r\n\r\nEmail,Points\r\n" + "c@example.com,1\r\n" * 500
            + f"--{boundary}--\r\n").encode()
    head = (f"POST /imports/new HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\nX-CSRFToken: {token}\r\n"
            f"Origin: http://127.0.0.1:{port}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(head + body[:10])
    return sock, body[10:]


def test_slow_clients_never_stop_the_pages(served_db, owner_a, tmp_path):
    port, log = _free_port(), tmp_path / "gunicorn.log"
    gunicorn = Path(sys.executable).parent / "gunicorn"
    command = [str(gunicorn), "-c", "gunicorn.conf.py", "--timeout", str(TIMEOUT), "--workers", "2",
               "--bind", f"127.0.0.1:{port}", "wsgi:app"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=_server_env(served_db, tmp_path), stdout=out,
                                stderr=subprocess.STDOUT)
    stop = threading.Event()
    slow: list[tuple[socket.socket, bytes]] = []
    try:
        _wait_listening(port, proc, log)
        cookie, token = _sign_in(port, owner_a.email, owner_a.password)
        slow += [_slow_header_client(port) for _ in range(SLOW_HEADERS)]
        slow += [_slow_upload(port, cookie, token) for _ in range(SLOW_UPLOADS)]

        def drip():  # a byte from every slow client each DRIP seconds, until the probes are done
            offset = 0
            while not stop.wait(DRIP):
                for sock, rest in slow:
                    if offset < len(rest):
                        sock.send(rest[offset:offset + 1])
                offset += 1

        dripper = threading.Thread(target=drip, daemon=True)
        dripper.start()
        time.sleep(1)  # every slow client is in its request
        timings = []
        for _ in range(PROBES):
            started = time.monotonic()
            status, page, _ = http_request(port, "GET", "/personas", cookie=cookie)
            timings.append(time.monotonic() - started)
            assert status == 200 and "Personas" in page, (status, page[:300])
            time.sleep(2 * TIMEOUT / PROBES)
        assert max(timings) < PROMPT, timings
        assert dripper.is_alive()
    finally:
        stop.set()
        for sock, _rest in slow:
            sock.close()
        proc.terminate()
        proc.wait(10)
    text = log.read_text(errors="replace")
    assert "WORKER TIMEOUT" not in text and "Booting worker" in text, text[-3000:]
    assert text.count("Booting worker") == 2, text[-3000:]  # no worker was killed and replaced
