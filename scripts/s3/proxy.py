#!/usr/bin/env python3
"""An HTTP proxy to put between an S3 client and the test bed's store.

    proxy.py --upstream 127.0.0.1:PORT --record FILE [faults...] [--port N]

Prints `listening PORT` on stdout once it accepts connections (port 0, the
default, picks a free one). Give the client http://127.0.0.1:PORT as its
endpoint: every request is forwarded with its Host header and all other
headers unchanged, so SigV4 signatures (which cover Host) stay valid.

Records one JSON line per request in FILE: method, path, query (raw), the
status the client got (0 when it got none) and the fault injected (null
when none). Stdlib only.

Faults, each counted over the requests that match --match (a regular
expression searched in "METHOD PATH?QUERY"; all requests by default), at
most --max-faults in all (unlimited by default):

  --slowdown-every N    every Nth request: 503 SlowDown (S3 XML body)
  --error500-every N    every Nth request: 500 InternalError (S3 XML body)
  --reset-every N       every Nth request: the connection is reset (RST), no answer
  --stall-every N       every Nth request: no answer for --stall-seconds (default 30), then closed
  --truncate-every N    every Nth request: forwarded, but only half the body sent
                        under the full Content-Length, then the connection closed
  --list-page-fail M    the first M listing requests that ask for a later page
                        (continuation-token, marker, start-after,
                        key-marker, upload-id-marker) get 500: the
                        first page is fine, the listing fails mid-way
Faults are decided before forwarding (except truncation), so the store
never sees a request that was answered with a fault.
"""

import argparse
import http.client
import http.server
import json
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}

S3_ERROR = """<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>{code}</Code><Message>{message}</Message><Resource>{resource}</Resource><RequestId>proxy-{n}</RequestId></Error>"""

LATER_PAGE = ("continuation-token", "marker", "start-after", "key-marker", "upload-id-marker", "part-number-marker")


class Faults:
    def __init__(self, a):
        self.a = a
        self.match = re.compile(a.match) if a.match else None
        self.lock = threading.Lock()
        self.count = 0  # matching requests seen
        self.injected = 0
        self.later_pages_failed = 0

    def decide(self, method, path, query):
        """The fault for this request, or None."""
        a = self.a
        with self.lock:
            if self.match and not self.match.search(f"{method} {path}?{query}"):
                return None
            if a.max_faults is not None and self.injected >= a.max_faults:
                return None
            params = urllib.parse.parse_qs(query, keep_blank_values=True)
            listing = method == "GET" and ("list-type" in params or "uploads" in params or path.rstrip("/").count("/") == 1)
            if a.list_page_fail and listing and any(k in params for k in LATER_PAGE):
                if self.later_pages_failed < a.list_page_fail:
                    self.later_pages_failed += 1
                    self.injected += 1
                    return "list-page"
            self.count += 1
            n = self.count
            for name, every in (
                ("slowdown", a.slowdown_every),
                ("error500", a.error500_every),
                ("reset", a.reset_every),
                ("stall", a.stall_every),
                ("truncate", a.truncate_every),
            ):
                if every and n % every == 0:
                    self.injected += 1
                    return name
            return None


class Recorder:
    def __init__(self, path):
        self.fh = open(path, "a", buffering=1) if path else None
        self.lock = threading.Lock()

    def record(self, method, path, query, status, fault):
        if not self.fh:
            return
        line = json.dumps({"method": method, "path": path, "query": query, "status": status, "fault": fault})
        with self.lock:
            self.fh.write(line + "\n")
            self.fh.flush()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "regaudit-s3-proxy"

    def log_message(self, fmt, *args):  # quiet: the record file says it all
        pass

    def setup(self):
        super().setup()
        self.upstream = None

    def _upstream(self):
        if self.upstream is None:
            host, port = self.server.upstream
            self.upstream = http.client.HTTPConnection(host, port, timeout=self.server.timeout_s)
        return self.upstream

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks), True
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return (self.rfile.read(n) if n else b""), False

    def _error(self, status, code, message, fault):
        body = S3_ERROR.format(code=code, message=message, resource=self.path, n=self.server.faults.count).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        if status == 503:
            self.send_header("Retry-After", "1")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return status

    def _reset(self):
        # SO_LINGER with a zero timeout: close() sends RST, not FIN.
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def handle_one(self):
        path, _, query = self.path.partition("?")
        body, chunked = self._read_body()
        fault = self.server.faults.decide(self.command, path, query)
        status = 0
        try:
            if fault == "slowdown":
                status = self._error(503, "SlowDown", "Please reduce your request rate.", fault)
            elif fault in ("error500", "list-page"):
                status = self._error(500, "InternalError", "We encountered an internal error. Please try again.", fault)
            elif fault == "reset":
                self._reset()
            elif fault == "stall":
                time.sleep(self.server.stall_seconds)
                self.close_connection = True
            else:
                status = self._forward(body, chunked, truncate=fault == "truncate")
        finally:
            self.server.recorder.record(self.command, path, query, status, fault)

    def _forward(self, body, chunked, truncate):
        for attempt in (0, 1):
            try:
                c = self._upstream()
                c.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in self.headers.items():
                    if k.lower() in HOP_BY_HOP or k.lower() == "content-length":
                        continue
                    c.putheader(k, v)
                if chunked:
                    c.putheader("Transfer-Encoding", "chunked")
                elif body or self.headers.get("Content-Length") is not None:
                    c.putheader("Content-Length", str(len(body)))
                c.endheaders()
                if chunked:
                    if body:
                        c.send(b"%x\r\n%s\r\n" % (len(body), body))
                    c.send(b"0\r\n\r\n")
                elif body:
                    c.send(body)
                r = c.getresponse()
                data = r.read()
                break
            except (OSError, http.client.HTTPException):
                # A kept-alive upstream connection closed under us: once more
                # on a fresh one, then give up (the client sees a reset).
                self.upstream = None
                if attempt:
                    self._reset()
                    return 0
        self.send_response(r.status, r.reason)
        length = r.getheader("Content-Length")
        for k, v in r.getheaders():
            if k.lower() in HOP_BY_HOP or k.lower() == "content-length":
                continue
            self.send_header(k, v)
        if self.command == "HEAD":
            # The store's length of the object, not of an (absent) body.
            self.send_header("Content-Length", length if length is not None else "0")
            self.end_headers()
            return r.status
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if truncate and data:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return 0
        self.wfile.write(data)
        return r.status

    def do_GET(self):
        self.handle_one()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = do_GET


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client gone mid-answer (a reset, a truncation) is expected here.
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upstream", required=True, help="HOST:PORT of the store")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--record", help="file to append one JSON line per request to")
    ap.add_argument("--match", help="regex: only matching requests count for faults")
    ap.add_argument("--max-faults", type=int)
    ap.add_argument("--slowdown-every", type=int, default=0)
    ap.add_argument("--error500-every", type=int, default=0)
    ap.add_argument("--reset-every", type=int, default=0)
    ap.add_argument("--stall-every", type=int, default=0)
    ap.add_argument("--stall-seconds", type=float, default=30)
    ap.add_argument("--truncate-every", type=int, default=0)
    ap.add_argument("--list-page-fail", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=120, help="seconds to wait for the store")
    a = ap.parse_args()
    host, _, port = a.upstream.rpartition(":")
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.upstream = (host, int(port))
    srv.timeout_s = a.timeout
    srv.stall_seconds = a.stall_seconds
    srv.faults = Faults(a)
    srv.recorder = Recorder(a.record)
    print(f"listening {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
