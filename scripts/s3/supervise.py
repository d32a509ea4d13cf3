#!/usr/bin/env python3
"""Runs one SeaweedFS server for a test process and cleans up after it.

    supervise.py --dir DATA --s3-port P --grpc-ports A,B,C,D -- weed server ...

Started by tests/common/s3.rs with a pipe on stdin. Waits until the S3 API
creates and deletes a probe bucket (admin credentials from the environment),
then prints `ready` (or `failed: <reason>`) on stdout. When stdin reaches
end of file -- the test process dropped its guard or exited in any way, a
panic or a Ctrl-C included -- it SIGKILLs the server by its pid, waits for
it, removes the gRPC unix sockets SeaweedFS leaves in /tmp for its own ports
(/tmp/seaweedfs-*-grpc-PORT.sock) and deletes DATA. A clean SIGTERM stop
takes SeaweedFS about 25 s; its data is scratch, so SIGKILL loses nothing.
"""

import argparse
import glob
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def wait_ready(endpoint, child, deadline):
    import s3client

    c = s3client.client(endpoint)
    last = ""
    while time.monotonic() < deadline:
        if child.poll() is not None:
            return f"weed exited with status {child.returncode}"
        try:
            c.create_bucket(Bucket="regaudit-ready-probe")
            c.delete_bucket(Bucket="regaudit-ready-probe")
            return None
        except Exception as e:  # not up yet
            last = str(e).splitlines()[0] if str(e) else repr(e)
        time.sleep(0.2)
    return f"not ready in time: {last}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--s3-port", type=int, required=True)
    ap.add_argument("--grpc-ports", default="")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    # Ctrl-C reaches the whole process group; stay alive to clean up once
    # the test process is gone.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    log = open(os.path.join(a.dir, "weed.log"), "ab")
    # glog writes its files to TMPDIR: keep them in DATA, not in /tmp.
    env = dict(os.environ, TMPDIR=os.path.join(a.dir, "tmp"))
    os.makedirs(env["TMPDIR"], exist_ok=True)
    child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)

    def cleanup():
        if child.poll() is None:
            child.kill()
        child.wait()
        for port in filter(None, a.grpc_ports.split(",")):
            for sock in glob.glob(f"/tmp/seaweedfs-*-grpc-{int(port)}.sock"):
                try:
                    os.unlink(sock)
                except OSError:
                    pass
        shutil.rmtree(a.dir, ignore_errors=True)

    # Stdin closing ends everything, even while the readiness wait runs.
    def watch_stdin():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except OSError:
            pass
        cleanup()
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    err = wait_ready(f"http://127.0.0.1:{a.s3_port}", child, time.monotonic() + a.timeout)
    print("ready" if err is None else f"failed: {err}", flush=True)
    if err is not None:
        cleanup()
        sys.exit(1)
    child.wait()
    # The server died on its own, or the watcher is stopping it: say so to
    # whoever still reads, then leave the exit to the watcher.
    try:
        print(f"exited: weed status {child.returncode}", flush=True)
    except OSError:
        pass
    threading.Event().wait()


if __name__ == "__main__":
    main()
