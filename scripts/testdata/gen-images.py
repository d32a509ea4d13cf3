#!/usr/bin/env python3
"""Generate small, deterministic container images for regaudit's test data.

Usage: gen-images.py OUTDIR

Writes an OCI image layout at OUTDIR/layout (index.json entries carry
org.opencontainers.image.ref.name = the image name below, so skopeo can use
"oci:OUTDIR/layout:<name>"), plus OUTDIR/images.json describing every image
(digests and sizes of the OCI manifest, the equivalent Docker schema2 manifest,
config and layers) for the curl-based pushes.

Everything is deterministic: fixed file contents, fixed tar metadata, gzip
mtime 0 and no file name in the gzip header, fixed timestamps in configs, and
compact JSON with a fixed key order.  Only python3's standard library is used.
"""
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
D_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
D_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
D_CONFIG = "application/vnd.docker.container.image.v1+json"
D_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

TAR_MTIME = 1704164645  # 2024-01-02T03:04:05Z
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Layout:
    def __init__(self, root):
        self.root = root
        self.blobdir = os.path.join(root, "blobs", "sha256")
        os.makedirs(self.blobdir, exist_ok=True)
        self.index = []

    def put(self, data):
        d = sha256(data)
        path = os.path.join(self.blobdir, d.split(":", 1)[1])
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(data)
        return d

    def ref(self, name, media_type, data):
        self.index.append({
            "mediaType": media_type,
            "digest": self.put(data),
            "size": len(data),
            "annotations": {"org.opencontainers.image.ref.name": name},
        })

    def finish(self):
        with open(os.path.join(self.root, "oci-layout"), "wb") as f:
            f.write(dumps({"imageLayoutVersion": "1.0.0"}))
        with open(os.path.join(self.root, "index.json"), "wb") as f:
            f.write(dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                           "manifests": self.index}))


def make_tar(files):
    """files: list of (path, content-bytes or None for a directory, mode)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path, content, mode in files:
            ti = tarfile.TarInfo(path)
            ti.mtime = TAR_MTIME
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            ti.mode = mode
            if content is None:
                ti.type = tarfile.DIRTYPE
                tar.addfile(ti)
            else:
                ti.size = len(content)
                tar.addfile(ti, io.BytesIO(content))
    return buf.getvalue()


def gz(data):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0,
                       compresslevel=9) as f:
        f.write(data)
    return buf.getvalue()


# ---------------------------------------------------------------------------
# Layers.  Each is a tiny tar; "base" is shared by several images, as a real
# distribution base layer would be.

def layer_files(name):
    if name == "base":
        return [
            ("bin/", None, 0o755),
            ("etc/", None, 0o755),
            ("etc/os-release", b'NAME="Regaudit Test Linux"\nID=regaudit\n'
             b'VERSION_ID=1.0\nPRETTY_NAME="Regaudit Test Linux 1.0"\n', 0o644),
            ("etc/hostname", b"regaudit\n", 0o644),
            ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644),
            ("root/", None, 0o700),
            ("tmp/", None, 0o1777),
        ]
    return [
        ("opt/", None, 0o755),
        ("opt/%s/" % name, None, 0o755),
        ("opt/%s/README" % name,
         ("layer %s of the regaudit test images\n" % name).encode(), 0o644),
        ("opt/%s/run.sh" % name,
         ("#!/bin/sh\necho 'hello from %s'\n" % name).encode(), 0o755),
    ]


_layers = {}


def layer(name):
    if name not in _layers:
        raw = make_tar(layer_files(name))
        _layers[name] = (gz(raw), sha256(raw))
    return _layers[name]


# ---------------------------------------------------------------------------
# Images.  steps: list of ("layer", name, created_by) or ("empty", created_by)

def ts(n):
    return "2024-01-02T03:%02d:%02dZ" % (4 + n // 60, n % 60)


IMAGES = {}


def image(name, steps, arch="amd64", os_="linux", variant=None, labels=None,
          cmd=None, entry_offset=0):
    IMAGES[name] = dict(steps=steps, arch=arch, os=os_, variant=variant,
                        labels=labels or {}, cmd=cmd or ["/bin/sh"],
                        offset=entry_offset)


ADD_BASE = ("layer", "base",
            "/bin/sh -c #(nop) ADD file:4a6f1c0e9b8d7a65 in / ")


def app_steps(app, empty=True):
    s = [ADD_BASE]
    if empty:
        s.append(("empty", '/bin/sh -c #(nop)  LABEL org.example.app=%s' % app))
    s.append(("layer", app, "/bin/sh -c install-%s /opt/%s" % (app, app)))
    if empty:
        s.append(("empty", '/bin/sh -c #(nop)  CMD ["/opt/%s/run.sh"]' % app))
    return s


def define_images():
    L = lambda case: {"org.opencontainers.image.title": "regaudit-" + case,
                      "org.opencontainers.image.version": "1.0",
                      "org.example.regaudit.case": case}
    image("schema2-a", app_steps("alpha"), labels=L("schema2-a"), entry_offset=0)
    image("schema2-b", app_steps("bravo"), labels=L("schema2-b"), entry_offset=5)
    image("noempty", app_steps("charlie", empty=False), labels=L("noempty"),
          entry_offset=10)
    image("oci-app", app_steps("delta"), labels=L("oci-app"), entry_offset=15)
    image("artifact-base", app_steps("echo"), labels=L("artifact-base"),
          entry_offset=20)
    image("legacy", app_steps("foxtrot"), labels=L("legacy"), entry_offset=25)
    image("idx-amd64", app_steps("golf"), labels=L("idx-amd64"), entry_offset=30)
    image("idx-arm64", app_steps("golf-arm"), arch="arm64", variant="v8",
          labels=L("idx-arm64"), entry_offset=30)
    image("list-amd64", app_steps("hotel"), labels=L("list-amd64"),
          entry_offset=35)
    image("list-arm64", app_steps("hotel-arm", empty=False), arch="arm64",
          variant="v8", labels=L("list-arm64"), entry_offset=35)
    image("noamd-arm64", app_steps("india-arm"), arch="arm64", variant="v8",
          labels=L("noamd-arm64"), entry_offset=40)
    image("noamd-s390x", app_steps("india-s390x"), arch="s390x",
          labels=L("noamd-s390x"), entry_offset=40)
    image("nomt-amd64", app_steps("juliet"), labels=L("nomt-amd64"),
          entry_offset=45)
    image("nomt-arm64", app_steps("juliet-arm"), arch="arm64", variant="v8",
          labels=L("nomt-arm64"), entry_offset=45)
    image("keep", app_steps("kilo"), labels=L("keep"), entry_offset=50)
    image("gone", app_steps("lima"), labels=L("gone"), entry_offset=55)
    image("untagged", app_steps("mike"), labels=L("untagged"), entry_offset=60)
    image("nested-a", app_steps("november"), labels=L("nested-a"),
          entry_offset=65)
    image("nested-ab", app_steps("oscar"), labels=L("nested-ab"),
          entry_offset=70)
    image("pending", app_steps("papa"), labels=L("pending"), entry_offset=75)
    image("minimal", app_steps("quebec"), labels=L("minimal"), entry_offset=80)
    image("mm-amd64", app_steps("romeo"), labels=L("mm-amd64"), entry_offset=85)
    image("mm-arm64", app_steps("romeo-arm"), arch="arm64", variant="v8",
          labels=L("mm-arm64"), entry_offset=85)


def build_image(lay, name, spec):
    diff_ids, layers, history = [], [], []
    for i, step in enumerate(spec["steps"]):
        created = ts(spec["offset"] + i)
        if step[0] == "layer":
            blob, diff_id = layer(step[1])
            d = lay.put(blob)
            layers.append((d, len(blob)))
            diff_ids.append(diff_id)
            history.append({"created": created, "created_by": step[2]})
        else:
            history.append({"created": created, "created_by": step[1],
                            "empty_layer": True})
    cfg = {"architecture": spec["arch"]}
    if spec["variant"]:
        cfg["variant"] = spec["variant"]
    cfg["os"] = spec["os"]
    cfg["created"] = history[-1]["created"]
    cfg["config"] = {"Env": [PATH_ENV], "Cmd": spec["cmd"],
                     "WorkingDir": "/", "Labels": spec["labels"]}
    cfg["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
    cfg["history"] = history
    cfg_bytes = dumps(cfg)
    cfg_d = lay.put(cfg_bytes)

    def manifest(mt, cmt, lmt):
        # Docker tools write descriptors as mediaType, size, digest; OCI
        # tools as mediaType, digest, size.
        def desc(m, d, s):
            if mt == D_MANIFEST:
                return {"mediaType": m, "size": s, "digest": d}
            return {"mediaType": m, "digest": d, "size": s}
        return dumps({
            "schemaVersion": 2, "mediaType": mt,
            "config": desc(cmt, cfg_d, len(cfg_bytes)),
            "layers": [desc(lmt, d, s) for d, s in layers],
        })

    oci = manifest(OCI_MANIFEST, OCI_CONFIG, OCI_LAYER)
    docker = manifest(D_MANIFEST, D_CONFIG, D_LAYER)
    lay.ref(name, OCI_MANIFEST, oci)
    lay.put(docker)
    platform = {"architecture": spec["arch"], "os": spec["os"]}
    if spec["variant"]:
        platform["variant"] = spec["variant"]
    return {
        "oci": {"digest": sha256(oci), "size": len(oci)},
        "docker": {"digest": sha256(docker), "size": len(docker)},
        "config": {"digest": cfg_d, "size": len(cfg_bytes)},
        "layers": [{"digest": d, "size": s} for d, s in layers],
        "platform": platform,
        "empty_layer": any(s[0] == "empty" for s in spec["steps"]),
    }


def index_body(info, children, mt, kind, with_media_type=True):
    body = {"schemaVersion": 2}
    if with_media_type:
        body["mediaType"] = mt
    body["manifests"] = [
        {"mediaType": OCI_MANIFEST if kind == "oci" else D_MANIFEST,
         "digest": info[c][kind]["digest"], "size": info[c][kind]["size"],
         "platform": info[c]["platform"]} for c in children]
    return dumps(body)


def main():
    out = sys.argv[1]
    lay = Layout(os.path.join(out, "layout"))
    define_images()
    info = {n: build_image(lay, n, s) for n, s in IMAGES.items()}

    extra = {}
    # OCI index for multi/oci-index (skopeo copies it with --all).
    idx = index_body(info, ["idx-amd64", "idx-arm64"], OCI_INDEX, "oci")
    lay.ref("oci-index", OCI_INDEX, idx)
    extra["oci-index"] = {"digest": sha256(idx), "size": len(idx)}
    # OCI index for multi/docker-list and multi/no-amd64 (skopeo converts
    # the index and its children with --all --format v2s2).
    idx = index_body(info, ["list-amd64", "list-arm64"], OCI_INDEX, "oci")
    lay.ref("docker-list", OCI_INDEX, idx)
    idx = index_body(info, ["noamd-arm64", "noamd-s390x"], OCI_INDEX, "oci")
    lay.ref("no-amd64", OCI_INDEX, idx)
    idx = index_body(info, ["mm-amd64", "mm-arm64"], OCI_INDEX, "oci")
    lay.ref("minimal-multi", OCI_INDEX, idx)

    # Raw bodies pushed with curl.
    raw = os.path.join(out, "raw")
    os.makedirs(raw, exist_ok=True)

    def write_raw(name, data):
        with open(os.path.join(raw, name), "wb") as f:
            f.write(data)
        lay.put(data)
        extra[name] = {"digest": sha256(data), "size": len(data)}

    # OCI index without a mediaType field (children are OCI manifests).
    write_raw("index-nomediatype.json",
              index_body(info, ["nomt-amd64", "nomt-arm64"], OCI_INDEX, "oci",
                         with_media_type=False))
    # An artifact (SBOM-like) whose subject is artifact-base's OCI manifest.
    empty_cfg = b"{}"
    lay.put(empty_cfg)
    sbom = dumps({"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT",
                  "name": "regaudit-artifact-base",
                  "dataLicense": "CC0-1.0",
                  "creationInfo": {"created": "2024-01-02T03:30:00Z",
                                   "creators": ["Tool: regaudit-testdata"]},
                  "packages": []}) + b"\n"
    sbom_d = lay.put(sbom)
    extra["sbom"] = {"digest": sbom_d, "size": len(sbom)}
    extra["empty-config"] = {"digest": sha256(empty_cfg), "size": 2}
    art = dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "artifactType": "application/spdx+json",
        "config": {"mediaType": OCI_EMPTY, "digest": sha256(empty_cfg),
                   "size": 2, "data": "e30="},
        "layers": [{"mediaType": "application/spdx+json", "digest": sbom_d,
                    "size": len(sbom),
                    "annotations": {"org.opencontainers.image.title":
                                    "sbom.spdx.json"}}],
        "subject": {"mediaType": OCI_MANIFEST,
                    "digest": info["artifact-base"]["oci"]["digest"],
                    "size": info["artifact-base"]["oci"]["size"]},
        "annotations": {"org.opencontainers.image.created":
                        "2024-01-02T03:30:00Z"},
    })
    write_raw("artifact.json", art)

    lay.finish()
    with open(os.path.join(out, "images.json"), "w") as f:
        json.dump({"images": info, "extra": extra}, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
