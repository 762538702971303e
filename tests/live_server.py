"""A real HTTP server for tests: the app served by werkzeug on 127.0.0.1 (a random port) from a daemon thread."""
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
