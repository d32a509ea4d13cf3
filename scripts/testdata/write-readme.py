#!/usr/bin/env python3
"""Write testdata/README.md from README.md.in.

Usage: write-readme.py TESTDATA TEMPLATE OBSERVATIONS BROKEN-NOTES PROBES

Placeholders in the template:
  @@TREE:<name>@@      a listing of testdata/trees/<name> (repos, tags, revisions)
  @@OBSERVATIONS@@     what make-testdata saw the real registry do
  @@BROKEN@@           make-broken's description of every variant
  @@PROBES@@           what the real registry and its GC did on each tree
  @@SIZE@@             size of testdata/
"""
import json
import os
import sys


def kind_of(data):
    try:
        m = json.loads(data)
    except ValueError:
        return "unparseable JSON"
    if not isinstance(m, dict):
        return "not a JSON object"
    if m.get("schemaVersion") == 1:
        return "schema1" + (" (signed)" if "signatures" in m else " (no signatures)")
    mt = m.get("mediaType")
    names = {
        "application/vnd.docker.distribution.manifest.v2+json": "Docker schema2",
        "application/vnd.docker.distribution.manifest.list.v2+json": "Docker manifest list",
        "application/vnd.oci.image.manifest.v1+json": "OCI manifest",
        "application/vnd.oci.image.index.v1+json": "OCI index",
    }
    if mt is None:
        return ("OCI index (no mediaType field)" if "manifests" in m
                else "OCI manifest (no mediaType field)")
    k = names.get(mt, "unknown mediaType " + mt)
    if "manifests" in m:
        plats = []
        for c in m["manifests"]:
            p = c.get("platform", {})
            plats.append("/".join(x for x in (p.get("os"), p.get("architecture"),
                                              p.get("variant")) if x))
        k += " [" + ", ".join(plats) + "]"
    if m.get("artifactType"):
        k += ", artifactType " + m["artifactType"]
    if m.get("subject"):
        k += ", subject " + m["subject"]["digest"][:19] + "…"
    return k


def read(path):
    with open(path, "rb") as f:
        return f.read()


def blob(v2, digest):
    alg, hexd = digest.split(":", 1)
    p = os.path.join(v2, "blobs", alg, hexd[:2], hexd, "data")
    return read(p) if os.path.isfile(p) else None


def find_repos(base, prefix=""):
    out = []
    for e in sorted(os.listdir(base)):
        p = os.path.join(base, e)
        if e.startswith("_") or not os.path.isdir(p) or os.path.islink(p):
            continue
        name = prefix + e
        if any(os.path.isdir(os.path.join(p, m)) for m in ("_layers", "_manifests")):
            out.append((name, p))
        out.extend(find_repos(p, name + "/"))
    return out


def listing(tree):
    v2 = os.path.join(tree, "docker", "registry", "v2")
    lines = []
    nblobs = sum(len(fs) for _, _, fs in os.walk(os.path.join(v2, "blobs")))
    nfiles = sum(len(fs) for _, _, fs in os.walk(tree))
    lines.append("%d files, %d blobs. `scheduler-state.json`: %s." % (
        nfiles, nblobs,
        "present" if os.path.exists(os.path.join(tree, "scheduler-state.json"))
        else "absent"))
    lines.append("")
    lines.append("| repository | tag / revision | digest | kind | notes |")
    lines.append("|---|---|---|---|---|")
    for name, p in find_repos(os.path.join(v2, "repositories")):
        tags_dir = os.path.join(p, "_manifests", "tags")
        tagged = set()
        for t in sorted(os.listdir(tags_dir)) if os.path.isdir(tags_dir) else []:
            cur = os.path.join(tags_dir, t, "current", "link")
            d = read(cur).decode() if os.path.isfile(cur) else "(no current/link)"
            tagged.add(d)
            hist = []
            idx = os.path.join(tags_dir, t, "index")
            for alg in sorted(os.listdir(idx)) if os.path.isdir(idx) else []:
                hist += [alg + ":" + h for h in sorted(os.listdir(os.path.join(idx, alg)))]
            b = blob(v2, d) if d.startswith("sha256:") else None
            note = "tag history: %d entr%s" % (len(hist), "y" if len(hist) == 1 else "ies")
            if len(hist) > 1:
                note += " (" + ", ".join("`%s…`" % h[:19] for h in hist) + ")"
            lines.append("| `%s` | tag `%s` | `%s` | %s | %s |" % (
                name, t, d, kind_of(b) if b is not None else "(no blob)", note))
        rev = os.path.join(p, "_manifests", "revisions")
        for alg in sorted(os.listdir(rev)) if os.path.isdir(rev) else []:
            for h in sorted(os.listdir(os.path.join(rev, alg))):
                d = alg + ":" + h
                if d in tagged:
                    continue
                link = os.path.join(rev, alg, h, "link")
                b = blob(v2, d)
                lines.append("| `%s` | untagged revision | `%s` | %s | %s |" % (
                    name, d, kind_of(b) if b is not None else "(no blob)",
                    "" if os.path.isfile(link) else "no link file"))
        nl = 0
        lay = os.path.join(p, "_layers")
        for alg in os.listdir(lay) if os.path.isdir(lay) else []:
            nl += len(os.listdir(os.path.join(lay, alg)))
        up = os.path.join(p, "_uploads")
        ups = sorted(os.listdir(up)) if os.path.isdir(up) else []
        extra = "%d `_layers` links" % nl
        if ups:
            extra += "; uploads: " + ", ".join("`%s`" % u for u in ups)
        lines.append("| `%s` | | | | %s |" % (name, extra))
    return "\n".join(lines)


def main():
    td, tmpl, obs, notes, probes = sys.argv[1:6]
    text = read(tmpl).decode()
    for name in sorted(os.listdir(os.path.join(td, "trees"))):
        text = text.replace("@@TREE:%s@@" % name,
                            listing(os.path.join(td, "trees", name)))
    text = text.replace("@@OBSERVATIONS@@", read(obs).decode().rstrip())
    text = text.replace("@@BROKEN@@", read(notes).decode().strip())
    text = text.replace("@@PROBES@@", read(probes).decode().strip())
    size = nfiles = 0
    for dp, dn, fs in os.walk(td):
        for f in fs:
            p = os.path.join(dp, f)
            if os.path.islink(p) or p == os.path.join(td, "README.md"):
                continue
            size += os.path.getsize(p)
            nfiles += 1
    text = text.replace("@@SIZE@@", "%d files, %.1f KiB of file content" % (
        nfiles, size / 1024))
    if "@@" in text:
        sys.exit("write-readme: unfilled placeholder in " + tmpl)
    with open(os.path.join(td, "README.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
