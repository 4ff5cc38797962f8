#!/usr/bin/env python3
"""The tables of make profile (scripts/profile.sh): CPU a request, system
calls a request and where the CPU goes, per target.

Usage: profile_split.py DIR ROUNDS TARGET...

DIR holds, per target T and round R, T.R.stat (perf stat -x, of task-clock
and system call counts) and T.R.wrk (wrk's output), and T.script (perf
script -F comm,tid,ip,sym,dso of a perf record -g). Each sample of T.script
goes in one row by its call chain: a kernel sample by the system call it is
in, a user sample by the function it is in.
"""
import re
import statistics
import sys

ROWS = [
    ("kwrite", "kernel: write/send (TCP out, loopback delivery, waking the receiver)"),
    ("kread", "kernel: read/recv"),
    ("kepoll", "kernel: epoll"),
    ("ksleep", "kernel: futex, nanosleep, sched_yield (threads sleeping and waking)"),
    ("kother_sys", "kernel: other system calls, entry/exit, rescheduling on return"),
    ("gosched", "Go runtime: scheduler, netpoll, sysmon, timers, locks"),
    ("gosys", "Go syscall wrappers, internal/poll, net"),
    ("gogc", "Go GC and allocation"),
    ("own", "proxy code (halb: tunnel, parse, route, log; HAProxy: all its own code)"),
    ("libc", "libc/vDSO (clock reads, syscall stubs)"),
    ("other", "other (softirq outside a system call, page faults, unknown)"),
]

SYSCALL_ROW = {
    "write": "kwrite", "writev": "kwrite", "sendto": "kwrite", "sendmsg": "kwrite", "sendmmsg": "kwrite",
    "read": "kread", "readv": "kread", "recvfrom": "kread", "recvmsg": "kread", "recvmmsg": "kread",
    "epoll_wait": "kepoll", "epoll_pwait": "kepoll", "epoll_pwait2": "kepoll", "epoll_ctl": "kepoll",
    "futex": "ksleep", "nanosleep": "ksleep", "clock_nanosleep": "ksleep", "sched_yield": "ksleep",
}

GC = re.compile(r"^runtime\.(mallocgc|newobject|makeslice|growslice|gc|scanobject|greyobject|"
                r"markroot|sweepone|mspan|mcache|mcentral|mheap|memclr|heapBits|findObject|"
                r"wbBuf|bulkBarrier|typePointers|tryDeferToSpanScan|\(\*mspan\)|\(\*mcache\)|"
                r"\(\*mcentral\)|\(\*mheap\)|\(\*gcWork\)|\(\*gcControllerState\)|\(\*sweepLocked\))")
GOSYS = re.compile(r"^(syscall\.|internal/poll\.|net\.|internal/runtime/syscall[./]|golang\.org/x/sys/|os\.)")


def classify(frames, own_dso):
    """frames: (sym, dso) leaf first. Returns a row key."""
    if not frames:
        return "other"
    sym, dso = frames[0]
    if dso.startswith("[kernel"):
        for s, d in frames:
            if not d.startswith("[kernel"):
                break
            # The system call's own function, or the first helper of it
            # that this kernel does not inline.
            m = re.match(r"^(?:__(?:x64|se)_sys_|ksys_|__sys_|do_)(\w+?)(?:\.part\.\d+|\.isra\.\d+)?$", s)
            if m and (s.startswith("__x64_sys_") or s.startswith("__se_sys_") or m.group(1) in SYSCALL_ROW
                      or m.group(1) in ("epoll_pwait", "futex", "nanosleep", "sched_yield")):
                return SYSCALL_ROW.get(m.group(1), "kother_sys")
        # Kernel code with no system call frame: entry/exit work or an
        # interrupt taken in user space.
        for s, d in frames:
            if "syscall" in s.lower():  # entry_SYSCALL_64, do_syscall_64
                return "kother_sys"
        return "other"
    if "libc" in dso or dso == "[vdso]" or "ld-linux" in dso:
        return "libc"
    if sym.startswith("runtime.") or sym.startswith("internal/runtime/") or sym.startswith("runtime/internal"):
        if sym.startswith(("internal/runtime/syscall.", "internal/runtime/syscall/")):
            # The system call stub (linux.Syscall6): a sample here is
            # mostly the return from the kernel.
            return "gosys"
        if GC.match(sym):
            return "gogc"
        return "gosched"
    if GOSYS.match(sym):
        return "gosys"
    # The proxy's binary: for halbd, its own packages and the other Go
    # packages it calls (sync, time, strconv, ...): code it runs per
    # request.
    if own_dso in dso:
        return "own"
    return "other"


def read_script(path):
    """Yields each sample's frames (sym, dso), leaf first."""
    frames = []
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                if frames:
                    yield frames
                frames = []
                continue
            if not line.startswith(("\t", " ")):
                if frames:
                    yield frames
                frames = []
                continue
            m = re.match(r"^\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)$", line)
            if m:
                sym = re.sub(r"\+0x[0-9a-f]+$", "", m.group(1))
                frames.append((sym, m.group(2)))
    if frames:
        yield frames


def stat(path):
    """perf stat -x, output: {event: count}."""
    out = {}
    with open(path) as f:
        for line in f:
            parts = line.strip().split(",")
            if len(parts) < 3 or line.startswith("#"):
                continue
            try:
                v = float(parts[0])
            except ValueError:
                continue
            out[parts[2]] = v
    return out


def requests(path):
    with open(path) as f:
        m = re.search(r"(\d+) requests in", f.read())
    return int(m.group(1)) if m else 0


def main():
    d, rounds, targets = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    per = {}
    calls = {}
    for t in targets:
        runs = []
        for r in range(1, rounds + 1):
            s, n = stat(f"{d}/{t}.{r}.stat"), requests(f"{d}/{t}.{r}.wrk")
            if n == 0 or "task-clock" not in s:
                continue
            runs.append((s["task-clock"] * 1000 / n, {k: v / n for k, v in s.items() if k != "task-clock"}))
        runs.sort(key=lambda x: x[0])
        if not runs:
            sys.exit(f"profile: no usable run of {t}")
        per[t] = (statistics.median(x[0] for x in runs), runs[0][0], runs[-1][0])
        calls[t] = runs[len(runs) // 2][1]

    print("CPU µs a request (perf stat task-clock / wrk requests; median (min-max) of %d rounds)" % rounds)
    print()
    print("| row | " + " | ".join(targets) + " |")
    print("|---|" + "---|" * len(targets))
    print("| **total** | " + " | ".join("**%.1f** (%.1f-%.1f)" % per[t] for t in targets) + " |")
    split = {}
    for t in targets:
        counts = {k: 0 for k, _ in ROWS}
        own = "halbd" if t.startswith("halb") else "haproxy"
        n = 0
        for frames in read_script(f"{d}/{t}.script"):
            counts[classify(frames, own)] += 1
            n += 1
        split[t] = {k: (per[t][0] * v / n if n else 0) for k, v in counts.items()}
    for k, label in ROWS:
        print("| %s | " % label + " | ".join("%.1f" % split[t][k] for t in targets) + " |")
    print()
    print("System calls a request (perf stat, the median round)")
    print()
    names = sorted({k for t in targets for k, v in calls[t].items() if v >= 0.005})
    print("| call | " + " | ".join(targets) + " |")
    print("|---|" + "---|" * len(targets))
    for name in names:
        label = name.replace("syscalls:sys_enter_", "").replace("raw_syscalls:sys_enter", "**all**")
        print("| %s | " % label + " | ".join("%.2f" % calls[t].get(name, 0) for t in targets) + " |")


if __name__ == "__main__":
    main()
