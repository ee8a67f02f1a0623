#!/usr/bin/env python3
"""Paired rounds of whole processes on one file (BENCHMARKS.md, issue 8 and 9).

Usage: loadtest/paired.py FILE [ROUNDS]
  RECVAULT         the recvault binary to time (default: recvault on PATH)
  RECVAULT_BEFORE  optional second binary (e.g. a build of an earlier commit), timed alongside

Each round runs, one after the other: `recvault probe FILE`, `recvault probe --read-every-packet
FILE`, the optional earlier binary, the naive sequence (ffprobe -show_packets, ffmpeg
decoding the audio to 16 kHz mono, b3sum), and the naive sequence with `openssl dgst -sha256`
(the same facts recvault prints). One untimed warm-up round first (page cache warm).
Wall time from this process; CPU = user + system of the waited-for children (getrusage).
"""
import os, resource, statistics, subprocess, sys, time

if len(sys.argv) < 2:
    sys.exit(__doc__)
F = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
R = os.environ.get("RECVAULT", "recvault")
cmds = {
    "probe": [[R, "probe", F]],
    "probe --read-every-packet": [[R, "probe", "--read-every-packet", F]],
    "naive": [
        ["ffprobe", "-v", "error", "-show_packets", F],
        ["ffmpeg", "-v", "error", "-nostdin", "-i", F, "-vn", "-ac", "1", "-ar", "16000", "-f", "s16le", "-"],
        ["b3sum", F],
    ],
}
# The same facts as `recvault probe` prints: the naive sequence does not compute the SHA-256 the
# archive needs (station claims, bag manifests); `openssl dgst` is the fastest SHA-256 tool a
# Debian machine has (SHA-NI; coreutils' sha256sum has none and takes 6x as long).
cmds["naive + openssl sha256"] = cmds["naive"] + [["openssl", "dgst", "-sha256", F]]
if os.environ.get("RECVAULT_BEFORE"):
    cmds["probe (RECVAULT_BEFORE)"] = [[os.environ["RECVAULT_BEFORE"], "probe", F]]


def run(seq):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    for c in seq:
        subprocess.run(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    t1 = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return t1 - t0, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


res = {k: ([], []) for k in cmds}
for k in cmds:
    run(cmds[k])
for _ in range(rounds):
    for k in cmds:
        w, c = run(cmds[k])
        res[k][0].append(w)
        res[k][1].append(c)
md = statistics.median
with open("/proc/loadavg") as f:
    load = f.read().split()[0]
print(f"file {F} ({os.path.getsize(F) / 1e6:.1f} MB), {rounds} paired rounds, loadavg {load}")
for k, (w, c) in res.items():
    print(f"{k:28s} wall median {md(w):.3f} s (min {min(w):.3f})  cpu median {md(c):.3f} s (min {min(c):.3f})")
n, p, b = res["naive"], res["probe"], res["probe --read-every-packet"]
print(f"naive/probe wall {md(n[0]) / md(p[0]):.2f}x  probe/naive cpu {md(p[1]) / md(n[1]):.2f}x")
s = res["naive + openssl sha256"]
print(f"same facts: (naive + sha256)/probe wall {md(s[0]) / md(p[0]):.2f}x  probe/(naive + sha256) cpu {md(p[1]) / md(s[1]):.2f}x")
print(f"read-every-packet/probe wall {md(b[0]) / md(p[0]):.2f}x  cpu {md(b[1]) / md(p[1]):.2f}x")
if "probe (RECVAULT_BEFORE)" in res:
    v = res["probe (RECVAULT_BEFORE)"]
    print(f"probe/before wall {md(p[0]) / md(v[0]):.3f}x  cpu {md(p[1]) / md(v[1]):.3f}x")
