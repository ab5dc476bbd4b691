"""The slow-disk shim (tests/tools/slowdisk.c, driven by slowdisk.py) on a running cetcd.

A single cetcd started under the shim with no delay: puts are not delayed. Then the control
file asks for 150 ms: each put (acknowledged after the WAL's fdatasync) takes at least that,
and the shim reports the delayed syncs. Back to 0 without restarting: the count stops.
"""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
import harness  # noqa: E402
import slowdisk  # noqa: E402

DELAY_MS = 150


def timed_puts(client, n, tag):
    """Seconds each of n puts took."""
    out = []
    for i in range(n):
        t = time.monotonic()
        client.put("slow/%s/%d" % (tag, i), "v")
        out.append(time.monotonic() - t)
    return out


class SlowDiskTest(unittest.TestCase):
    def test_delay_switches_on_and_off_at_run_time(self):
        with harness.Server(binary=harness.cetcd_bin()) as srv:
            slowdisk.attach(srv)
            srv.start()
            pid = srv.pid
            c = srv.etcd3_client()
            timed_puts(c, 3, "warm")
            self.assertEqual(slowdisk.delayed(srv), (0, 0), "delayed with no delay set")

            slowdisk.set_delay(srv, DELAY_MS)
            time.sleep(slowdisk.CHECK_S * 2)
            slow = timed_puts(c, 4, "slow")
            calls, ms = slowdisk.delayed(srv)
            self.assertTrue(all(t >= DELAY_MS / 1000.0 for t in slow), slow)
            self.assertGreaterEqual(calls, 4)
            self.assertEqual(ms, calls * DELAY_MS)

            slowdisk.set_delay(srv, 0)
            time.sleep(slowdisk.CHECK_S * 2 + DELAY_MS / 1000.0)
            after = slowdisk.delayed(srv)
            timed_puts(c, 5, "fast")
            self.assertEqual(slowdisk.delayed(srv), after, "syncs still delayed after the delay was cleared")
            self.assertEqual(srv.pid, pid, "the server restarted")
            self.assertEqual(c.get("slow/slow/3")[0], b"v")
            c.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
