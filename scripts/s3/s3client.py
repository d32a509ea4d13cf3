"""One boto3 S3 client for the test bed's scripts (upload.py, bucket.py).

The endpoint is a plain http:// URL on loopback (SeaweedFS); path-style
addressing, SigV4, region us-east-1. Credentials come from the standard
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY variables, never from arguments,
so that they appear in no process listing.
"""

import os

import boto3
from botocore.config import Config


def client(endpoint, pool=10, access_key=None, secret_key=None):
    # A CA bundle is meaningless for http:// and botocore would still try to
    # load it; the registry's own driver panics on it (docs/s3.md).
    os.environ.pop("AWS_CA_BUNDLE", None)
    cfg = Config(
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        max_pool_connections=pool,
        retries={"max_attempts": 5, "mode": "standard"},
        # Newer botocore adds CRC checksums (aws-chunked trailers) to every
        # PUT; plain PUTs are what the registry's driver sends.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key or os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=secret_key or os.environ["AWS_SECRET_ACCESS_KEY"],
        config=cfg,
    )


def join_key(prefix, rel):
    prefix = prefix.strip("/")
    return f"{prefix}/{rel}" if prefix else rel
