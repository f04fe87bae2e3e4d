"""Servers on 127.0.0.1 for the remote-reading tests, each on a port the system picks.

``RangeServer`` is a stdlib HTTP server over a directory that honours ``Range`` (one range),
``If-Match`` (412 when the ETag moved) and ``HEAD``, lists the directory as links (for fsspec's
globbing), and counts the requests per path so that tests can assert how many a read made.
The ETag changes with the file's size and modification time, as nginx's does.
"""

import collections
import email.utils
import html
import http.server
import os
import re
import threading


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _file(self):
        relative = self.path.split("?", 1)[0].lstrip("/")
        return os.path.join(self.server.root, relative), relative

    def _count(self, relative):
        with self.server.lock:
            self.server.requests[relative] += 1
            self.server.log.append((self.command, relative, self.headers.get("Range")))

    def do_HEAD(self):
        self._serve(body=False)

    def do_GET(self):
        self._serve(body=True)

    def _serve(self, body):
        path, relative = self._file()
        self._count(relative)
        if os.path.isdir(path):
            names = sorted(os.listdir(path))
            page = "".join(f'<a href="{html.escape(n)}">{html.escape(n)}</a>\n' for n in names).encode()
            return self._reply(200, page if body else b"", {"Content-Type": "text/html", "Content-Length": str(len(page))})
        try:
            status = os.stat(path)
        except FileNotFoundError:
            return self._reply(404, b"", {"Content-Length": "0"})
        etag = f'"{status.st_ino:x}-{status.st_size:x}-{status.st_mtime_ns:x}"'
        headers = {"ETag": etag, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream",
                   "Last-Modified": email.utils.formatdate(status.st_mtime, usegmt=True)}
        wanted = self.headers.get("If-Match")
        if wanted is not None and wanted != "*" and etag not in [w.strip() for w in wanted.split(",")]:
            return self._reply(412, b"", dict(headers, **{"Content-Length": "0"}))
        size = status.st_size
        start, end = 0, size
        code = 200
        requested = self.headers.get("Range")
        if requested:
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", requested.strip())
            if not match:
                return self._reply(416, b"", dict(headers, **{"Content-Length": "0"}))
            first, last = match.groups()
            if first == "":
                start, end = max(0, size - int(last)), size
            else:
                start, end = int(first), (int(last) + 1 if last else size)
            end = min(end, size)
            if start >= size:
                return self._reply(416, b"", dict(headers, **{"Content-Length": "0",
                                                             "Content-Range": f"bytes */{size}"}))
            code = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        headers["Content-Length"] = str(end - start)
        data = b""
        if body:
            with open(path, "rb") as f:
                f.seek(start)
                data = f.read(end - start)
        self._reply(code, data, headers)

    def _reply(self, code, data, headers):
        self.send_response(code)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if data:
            self.wfile.write(data)


class RangeServer:
    """Serves ``root`` at ``self.url`` until ``close()``."""

    def __init__(self, root):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.root = os.fspath(root)
        self.server.requests = collections.Counter()
        self.server.log = []
        self.server.lock = threading.Lock()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def requests(self, relative=None):
        """Requests so far, to one path or to all."""
        with self.server.lock:
            return self.server.requests[relative] if relative is not None else sum(self.server.requests.values())

    def reset(self):
        with self.server.lock:
            self.server.requests.clear()
            self.server.log.clear()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)
