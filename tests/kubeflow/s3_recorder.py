"""An S3-compatible endpoint (MinIO's HTTP API) stood in on 127.0.0.1 for what a pod
writes: it records each request (path, Authorization header, body) and accepts every
object (PutObject answers 200 with an ETag, as S3 and MinIO do). Nothing is stored."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class S3Recorder:
    """Records the S3 API requests it gets and accepts every object written (PutObject
    answers 200 with an ETag, as S3 and MinIO do)."""

    def __init__(self):
        self.requests: list[dict] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_PUT(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                recorder.requests.append(
                    {"method": "PUT", "path": self.path, "auth": self.headers.get("Authorization"),
                     "body": body}
                )  # fmt: skip
                self.send_response(200)
                self.send_header("ETag", '"0"')
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
