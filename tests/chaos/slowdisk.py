"""Slow-disk fault for chaos runs (see tests/tools/slowdisk.c).

A server started after `attach(server)` runs under the LD_PRELOAD shim from the beginning
(cetcd as its dynamically linked twin, harness.preloadable),
with no delay. `set_delay(server, ms)` makes every later fsync, fdatasync and msync(MS_SYNC)
of the running process sleep `ms` milliseconds first (the shim re-reads its control file at
most every 20 ms); `set_delay(server, 0)` ends the fault. `delayed(server)` is what the shim
reports: (delayed calls, delayed milliseconds) since the process started (the shim
zeroes its report when it is loaded).
"""

import os

import harness

LIB = os.environ.get("CETCD_SLOWDISK_LIB") or os.path.join(
    os.path.dirname(os.path.abspath(harness.cetcd_bin())), "tests", "libcetcd_slowdisk.so")
CHECK_S = 0.02  # the shim's re-read interval (CHECK_MS)


def attach(srv):
    """Makes srv start under the shim, with no delay. The control and report files live in
    srv.root, beside (not in) the data dir, so they survive a wiped data dir."""
    if not os.path.exists(LIB):
        raise FileNotFoundError("slow-disk shim %s not built (make build, or set CETCD_SLOWDISK_LIB)" % LIB)
    srv.binary = harness.preloadable(srv.binary)
    srv.slowdisk_ctl = os.path.join(srv.root, "slowdisk.ctl")
    srv.slowdisk_report = os.path.join(srv.root, "slowdisk.report")
    set_delay(srv, 0)
    srv.extra_env.update({"LD_PRELOAD": LIB, "CETCD_SLOWDISK_CTL": srv.slowdisk_ctl,
                          "CETCD_SLOWDISK_REPORT": srv.slowdisk_report})


def set_delay(srv, ms):
    """Every sync of srv waits ms milliseconds from the shim's next check on (0: none)."""
    tmp = srv.slowdisk_ctl + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % ms)
    os.replace(tmp, srv.slowdisk_ctl)


def delayed(srv):
    """(calls, milliseconds) the shim in srv's current or last process has delayed."""
    try:
        with open(srv.slowdisk_report) as f:
            calls, ms = f.read().split()
        return int(calls), int(ms)
    except (OSError, ValueError):
        return 0, 0
