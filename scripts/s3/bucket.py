#!/usr/bin/env python3
"""Bucket chores for the S3 test bed.

    bucket.py --endpoint URL create BUCKET
    bucket.py --endpoint URL delete BUCKET        (every object, then the bucket)
    bucket.py --endpoint URL list BUCKET [PREFIX] (one JSON line per object: key, size, etag)
    bucket.py --endpoint URL put BUCKET KEY       (body from stdin; prints the HTTP status)
    bucket.py --endpoint URL serve                (the same, as JSON requests on stdin)

Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. `put` reports the
status instead of failing, for the read-only identity's 403.

`serve` keeps one process (and its boto3 import, a second of CPU on a busy
machine) for a whole test binary: each stdin line is a JSON request
{"op", "bucket", "prefix", "key", "body" (text), "dir", "access_key",
"secret_key"}, each answer one JSON line {"ok": result} or {"error": text}.
Ops: create, delete, list (result: a list of {key, size, etag}),
put (result: the status), put_file (the same with the bytes of "file"),
delete_keys (the objects "keys", a list), upload (result: upload.py's report).
"""

import argparse
import json
import os
import sys

from botocore.exceptions import ClientError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3client  # noqa: E402


def list_objects(c, bucket, prefix=""):
    out = []
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out.append({"key": o["Key"], "size": o["Size"], "etag": o.get("ETag", "").strip('"')})
    return out


def delete_bucket(c, bucket):
    keys = [o["key"] for o in list_objects(c, bucket)]
    for i in range(0, len(keys), 1000):
        r = c.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True})
        if r.get("Errors"):
            raise RuntimeError(f"delete {bucket}: {r['Errors'][:3]}")
    c.delete_bucket(Bucket=bucket)


def delete_keys(c, bucket, keys):
    for i in range(0, len(keys), 1000):
        r = c.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True})
        if r.get("Errors"):
            raise RuntimeError(f"delete keys in {bucket}: {r['Errors'][:3]}")


def put(c, bucket, key, body):
    try:
        r = c.put_object(Bucket=bucket, Key=key, Body=body)
        return r["ResponseMetadata"]["HTTPStatusCode"]
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"]


def serve(endpoint):
    import upload

    clients = {}
    # The environment's identity (uploads always use it); a request may name another.
    default = (os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])

    def client(req):
        who = (req.get("access_key"), req.get("secret_key")) if req.get("access_key") else default
        if who not in clients:
            clients[who] = s3client.client(endpoint, access_key=who[0], secret_key=who[1])
        return clients[who]

    for line in sys.stdin:
        try:
            req = json.loads(line)
            op, bucket = req["op"], req.get("bucket", "")
            c = client(req)
            if op == "create":
                result = c.create_bucket(Bucket=bucket) and None
            elif op == "delete":
                result = delete_bucket(c, bucket)
            elif op == "list":
                result = list_objects(c, bucket, req.get("prefix", ""))
            elif op == "put":
                result = put(c, bucket, req["key"], req.get("body", "").encode())
            elif op == "delete_keys":
                result = delete_keys(c, bucket, req["keys"])
            elif op == "put_file":
                with open(req["file"], "rb") as f:
                    result = put(c, bucket, req["key"], f.read())
            elif op == "upload":
                result = upload.upload_tree(endpoint, bucket, req.get("prefix", ""), req["dir"])
            else:
                raise ValueError(f"unknown op {op!r}")
            answer = {"ok": result}
        except Exception as e:
            answer = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("op", choices=["create", "delete", "list", "put", "serve"])
    ap.add_argument("bucket", nargs="?", default="")
    ap.add_argument("arg", nargs="?", default="")
    a = ap.parse_args()
    if a.op == "serve":
        return serve(a.endpoint)
    c = s3client.client(a.endpoint)
    if a.op == "create":
        c.create_bucket(Bucket=a.bucket)
    elif a.op == "delete":
        delete_bucket(c, a.bucket)
    elif a.op == "list":
        for o in list_objects(c, a.bucket, a.arg):
            sys.stdout.write(json.dumps(o) + "\n")
    elif a.op == "put":
        print(put(c, a.bucket, a.arg, sys.stdin.buffer.read()))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:
        print(f"bucket.py: {e}", file=sys.stderr)
        sys.exit(1)
