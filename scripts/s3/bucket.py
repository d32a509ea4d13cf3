#!/usr/bin/env python3
"""Bucket chores for the S3 test bed.

    bucket.py --endpoint URL create BUCKET
    bucket.py --endpoint URL delete BUCKET        (every object, then the bucket)
    bucket.py --endpoint URL list BUCKET [PREFIX] (one JSON line per object: key, size, etag)
    bucket.py --endpoint URL put BUCKET KEY       (body from stdin; prints the HTTP status)

Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. `put` reports the
status instead of failing, for the read-only identity's 403.
"""

import argparse
import json
import os
import sys

from botocore.exceptions import ClientError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3client  # noqa: E402


def list_objects(c, bucket, prefix=""):
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("op", choices=["create", "delete", "list", "put"])
    ap.add_argument("bucket")
    ap.add_argument("arg", nargs="?", default="")
    a = ap.parse_args()
    c = s3client.client(a.endpoint)
    if a.op == "create":
        c.create_bucket(Bucket=a.bucket)
    elif a.op == "delete":
        keys = [o["Key"] for o in list_objects(c, a.bucket)]
        for i in range(0, len(keys), 1000):
            r = c.delete_objects(
                Bucket=a.bucket, Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True}
            )
            if r.get("Errors"):
                raise RuntimeError(f"delete {a.bucket}: {r['Errors'][:3]}")
        c.delete_bucket(Bucket=a.bucket)
    elif a.op == "list":
        out = sys.stdout
        for o in list_objects(c, a.bucket, a.arg):
            out.write(json.dumps({"key": o["Key"], "size": o["Size"], "etag": o.get("ETag", "").strip('"')}) + "\n")
    elif a.op == "put":
        try:
            r = c.put_object(Bucket=a.bucket, Key=a.arg, Body=sys.stdin.buffer.read())
            print(r["ResponseMetadata"]["HTTPStatusCode"])
        except ClientError as e:
            print(e.response["ResponseMetadata"]["HTTPStatusCode"])


if __name__ == "__main__":
    try:
        main()
    except Exception as e:
        print(f"bucket.py: {e}", file=sys.stderr)
        sys.exit(1)
