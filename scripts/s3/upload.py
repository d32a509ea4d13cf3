#!/usr/bin/env python3
"""Uploads a directory tree to s3://BUCKET/PREFIX/ with real S3 PUTs.

    upload.py --endpoint http://127.0.0.1:PORT --bucket B [--prefix P] [--threads N] DIR

Every regular file below DIR becomes the object PREFIX/<its path relative to
DIR>, sent as one PutObject, so its ETag is the MD5 of its bytes as on AWS S3
(SeaweedFS's `weed filer.copy` leaves empty ETags). Each response's ETag is
checked against the MD5 computed here. What S3 cannot hold is reported on
stderr and left out: symlinks (not followed), empty directories, other
special files. Prints one JSON line: objects, bytes, skipped, seconds.

Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. A thread pool in each
of a few worker processes (the GIL caps one process); see Putter.
"""

import argparse
import hashlib
import http.client
import json
import multiprocessing
import os
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3client  # noqa: E402


def walk(root):
    """(files, skipped): files as (relative path, absolute path)."""
    files, skipped = [], []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel_dir = os.path.relpath(dirpath, root)
        for d in list(dirnames):
            p = os.path.join(dirpath, d)
            if os.path.islink(p):
                skipped.append((os.path.normpath(os.path.join(rel_dir, d)), "symlink"))
                dirnames.remove(d)
        if not dirnames and not filenames and dirpath != root:
            skipped.append((rel_dir, "empty directory"))
        for f in filenames:
            p = os.path.join(dirpath, f)
            rel = os.path.normpath(os.path.join(rel_dir, f))
            if os.path.islink(p):
                skipped.append((rel, "symlink"))
            elif not os.path.isfile(p):
                skipped.append((rel, "not a regular file"))
            else:
                files.append((rel, p))
    return files, skipped


class Putter:
    """PUTs signed with botocore's own SigV4 signer, sent on one keep-alive
    http.client connection per thread: a tenth of boto3's per-request CPU,
    which is what bounds an upload of tens of thousands of small objects."""

    def __init__(self, endpoint):
        u = urllib.parse.urlsplit(endpoint)
        if u.scheme != "http":
            raise ValueError(f"endpoint must be http:// (loopback test bed), got {endpoint!r}")
        self.host, self.port = u.hostname, u.port or 80
        self.base = f"http://{u.netloc}"
        creds = Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
        self.auth = S3SigV4Auth(creds, "s3", os.environ.get("AWS_REGION", "us-east-1"))
        self.local = threading.local()

    def _conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            c = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        return c

    def put(self, bucket, key, body):
        """Returns the response's ETag; retries transient failures."""
        # S3's URI encoding: everything but unreserved characters and '/'.
        path = "/" + urllib.parse.quote(bucket, safe="") + "/" + urllib.parse.quote(key, safe="/-_.~")
        last = None
        for attempt in range(6):
            req = AWSRequest(
                method="PUT",
                url=self.base + path,
                data=body,
                headers={"x-amz-content-sha256": hashlib.sha256(body).hexdigest()},
            )
            self.auth.add_auth(req)
            try:
                c = self._conn()
                c.request("PUT", path, body=body, headers=dict(req.headers.items()))
                r = c.getresponse()
                data = r.read()
                if r.status == 200:
                    return (r.getheader("ETag") or "").strip('"')
                last = f"HTTP {r.status}: {data[:300]!r}"
                if r.status < 500:
                    break
            except (OSError, http.client.HTTPException) as e:
                last = repr(e)
                self.local.conn = None
            time.sleep(0.1 * 2**attempt)
        raise RuntimeError(f"PUT {key}: {last}")


_putter = None
_pool = None


def _init(endpoint, threads):
    # One Putter and one long-lived thread pool per process, so each thread
    # keeps its connection across chunks (and across the uploads of a
    # `bucket.py serve`, which calls this for each).
    global _putter, _pool
    if _putter is not None and _putter.base == endpoint.rstrip("/") and _pool._max_workers == threads:
        return
    if _pool is not None:
        _pool.shutdown(wait=False)
    _putter = Putter(endpoint)
    _pool = ThreadPoolExecutor(threads)


def _put_one(bucket, key, path):
    with open(path, "rb") as fh:
        body = fh.read()
    md5 = hashlib.md5(body).hexdigest()
    etag = _putter.put(bucket, key, body)
    if etag != md5:
        raise RuntimeError(f"{key}: ETag {etag!r} is not the MD5 of its {len(body)} bytes ({md5})")
    return len(body)


def _put_chunk(args):
    bucket, items = args
    return sum(_pool.map(lambda kp: _put_one(bucket, kp[0], kp[1]), items))


def upload_tree(endpoint, bucket, prefix, root, threads=32, processes=0):
    """Uploads `root` (see the module's doc); returns the report as a dict."""
    t0 = time.monotonic()
    files, skipped = walk(root)
    items = [(s3client.join_key(prefix, rel), path) for rel, path in files]
    procs = processes or (1 if len(items) < 2000 else 2)
    if procs == 1:
        _init(endpoint, threads)
        total = _put_chunk((bucket, items))
    else:
        chunk = 500
        chunks = [(bucket, items[i : i + chunk]) for i in range(0, len(items), chunk)]
        # Spawned, not forked: a forked worker would inherit this process's
        # `_pool` (left by an earlier small upload of `bucket.py serve`)
        # without its threads, reuse it in `_init` and wait forever.
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(procs, mp_context=spawn, initializer=_init, initargs=(endpoint, threads)) as pool:
            total = sum(pool.map(_put_chunk, chunks))
    return {
        "objects": len(items),
        "bytes": total,
        "skipped": [{"path": r, "why": w} for r, w in skipped],
        "seconds": round(time.monotonic() - t0, 3),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--prefix", default="")
    ap.add_argument("--threads", type=int, default=32, help="PUTs in flight per process")
    ap.add_argument("--processes", type=int, default=0, help="worker processes (default: 1 below 2000 files, else 2)")
    ap.add_argument("dir")
    a = ap.parse_args()
    out = upload_tree(a.endpoint, a.bucket, a.prefix, a.dir, a.threads, a.processes)
    for s in out["skipped"]:
        print(f"upload.py: skipped {s['path']}: {s['why']} (S3 cannot hold it)", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one clear line, no traceback
        print(f"upload.py: {e}", file=sys.stderr)
        sys.exit(1)
