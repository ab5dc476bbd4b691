#!/usr/bin/python3
"""A full disk: cetcd refuses writes with a clear error instead of dying, keeps serving
reads, still lets deletes and compaction through, writes again by itself once space is
freed, and loses nothing it acknowledged (checked across a SIGKILL and across a restart on
a full disk).

The data dir lives on a small tmpfs mounted for the test (mounting needs root, which CI
has); without it the test fails and says why. The SIGBUS safety net (the backend is
written through a memory map) is checked by sending the signal.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import pb_decode, pb_field  # noqa: E402

MOUNT_MB = 100     # the WAL's 4 MiB segments, the backend, and the filler
FILLER_MB = 8      # freed later to show that writes resume by themselves
VALUE_BYTES = 8192
MAX_PUTS = 20000   # bound on the fill loop (about 2,000 puts fill the disk)
FILL_SECONDS = 120
NO_SPACE = "etcdserver: no space left on device"


def value_of(i):
    """A value that names its key, so a wrong or torn value is caught."""
    stem = ("value-of-%05d|" % i).encode()
    return (stem * (VALUE_BYTES // len(stem) + 1))[:VALUE_BYTES]


class TmpfsDataDir(unittest.TestCase):
    """A server whose data dir is on a fresh tmpfs of MOUNT_MB with a FILLER_MB file."""
    ENV = {}

    def setUp(self):
        for k, v in self.ENV.items():
            os.environ[k] = v
            self.addCleanup(os.environ.pop, k, None)
        self.mnt = tempfile.mkdtemp(prefix="cetcd-fulldisk-")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % MOUNT_MB, "tmpfs", self.mnt],
                           capture_output=True, text=True)
        if r.returncode != 0:
            os.rmdir(self.mnt)
            self.fail("cannot mount a tmpfs for the data dir (needs root): " + r.stderr.strip())
        self.addCleanup(self._unmount)
        self.filler = os.path.join(self.mnt, "filler")
        with open(self.filler, "wb") as f:
            f.write(b"\0" * (FILLER_MB << 20))
        self.srv = harness.Server(label="sut")
        self.srv.data_dir = os.path.join(self.mnt, "data")
        self.addCleanup(self.srv.close)
        self.srv.start()
        self._connect()

    def _unmount(self):
        subprocess.run(["umount", "-l", self.mnt], capture_output=True)
        os.rmdir(self.mnt)

    def _connect(self):
        """A new channel with its own connection (grpc shares them between channels by
        default, and a shared one may still point at the killed process)."""
        if getattr(self, "ch", None):
            self.ch.close()
        self.ch = grpc.insecure_channel(self.srv.endpoint,
                                        options=[("grpc.max_receive_message_length", 256 << 20),
                                                 ("grpc.use_local_subchannel_pool", 1)])
        self.addCleanup(self.ch.close)
        self.put_rpc = self.ch.unary_unary("/etcdserverpb.KV/Put")
        self.range_rpc = self.ch.unary_unary("/etcdserverpb.KV/Range")
        self.del_rpc = self.ch.unary_unary("/etcdserverpb.KV/DeleteRange")
        self.compact_rpc = self.ch.unary_unary("/etcdserverpb.KV/Compact")

    def put(self, i):
        return self.put_rpc(pb_field(1, b"k%05d" % i) + pb_field(2, value_of(i)), timeout=10)

    def header_rev(self, resp):
        hdr = [v for f, _, v in pb_decode(resp) if f == 1][0]
        return [v for f, _, v in pb_decode(hdr) if f == 3][0]

    def keyspace(self):
        """{index: value} of every k* key (one Range)."""
        resp = self.range_rpc(pb_field(1, b"k") + pb_field(2, b"l"), timeout=30)
        out = {}
        for f, _, kv in pb_decode(resp):
            if f != 2:
                continue
            fields = {ff: vv for ff, _, vv in pb_decode(kv)}
            out[int(fields[1][1:])] = fields.get(5, b"")
        return out

    def assert_refused(self, i):
        with self.assertRaises(grpc.RpcError) as cm:
            self.put(i)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertEqual(cm.exception.details(), NO_SPACE)

    def fill(self, first):
        """Puts until the server refuses; returns the indexes it acknowledged."""
        acked = []
        t0 = time.monotonic()
        for i in range(first, first + MAX_PUTS):
            self.assertLess(time.monotonic() - t0, FILL_SECONDS, "the disk never filled up")
            try:
                self.put(i)
            except grpc.RpcError as e:
                self.assertEqual(e.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, e.details())
                self.assertEqual(e.details(), NO_SPACE)
                return acked
            acked.append(i)
        self.fail("no refusal after %d puts" % MAX_PUTS)

    def put_when_space(self, i):
        """put(i), retried for 10 s while it is refused for want of space (the WAL writer
        tries to make its next segment once a second)."""
        for _ in range(100):
            try:
                return self.put(i)
            except grpc.RpcError as e:
                self.assertEqual(e.details(), NO_SPACE)
                time.sleep(0.1)
        self.fail("writes did not resume after space was freed")

    def fill_for_good(self, first, rounds=12):
        """fill(), again after each release of WAL segments (the backend sync frees the
        space of sealed segments within a second), until a fill after the release is
        refused at once: the disk stays full. Each round fills about half of what the one
        before did (measured: 1563, 594, 265, 157, 77 puts, then none), so 12 bound it
        with room to spare. Returns every acknowledged index."""
        acked = self.fill(first)
        for _ in range(rounds):
            self.assertTrue(self.wait_wal_segments(1), "the WAL kept its old segments")
            more = self.fill(first + len(acked))
            if not more:
                return acked
            acked += more
        self.fail("space kept appearing after %d rounds" % rounds)

    def check_keys(self, expected):
        got = self.keyspace()
        self.assertEqual(sorted(got), sorted(expected), "acknowledged keys missing or extra keys")
        for i in expected:
            self.assertEqual(got[i], value_of(i), "value of k%05d" % i)

    def wal_segments(self):
        wal = os.path.join(self.srv.data_dir, "member", "wal")
        return [n for n in os.listdir(wal) if n.endswith(".wal")]

    def wait_wal_segments(self, n, timeout=10):
        """Waits (at most timeout s) until the WAL holds at most n segments."""
        deadline = time.monotonic() + timeout
        while len(self.wal_segments()) > n:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def take_all_space(self, name):
        """Fills what is left of the tmpfs with one more file."""
        fd = os.open(os.path.join(self.mnt, name), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for _ in range(MOUNT_MB * 16):
                os.write(fd, b"\0" * 65536)
        except OSError:
            pass  # full
        finally:
            os.close(fd)


class FullDisk(TmpfsDataDir):
    """The disk fills up under writes with the default WAL segments (4 MiB): the backend's
    reserve for new writes runs out (the WAL's room may too)."""

    def test_refuses_then_recovers_without_loss(self):
        acked = self.fill_for_good(0)
        self.assertGreater(len(acked), 100)
        self.assertTrue(self.srv.running(), "the server died on a full disk")
        log = self.srv._current_log()
        self.assertIn('msg="refusing writes: no space for the backend"', log)
        self.assertIn("fix=", log)
        self.assert_refused(len(acked) + 1)          # still refused, still alive
        self.check_keys(acked)                       # reads keep working

        # deletes and compaction free space and are let through
        self.del_rpc(pb_field(1, b"k00000") + pb_field(2, b"k00100"), timeout=10)
        rev = self.header_rev(self.range_rpc(pb_field(1, b"k99999"), timeout=10))
        self.compact_rpc(pb_field(1, rev) + pb_field(2, 1), timeout=30)
        kept = [i for i in acked if i >= 100]
        self.check_keys(kept)

        # space freed outside cetcd: writes resume with no operator action (within a second
        # or two if the WAL was the one out of room: its writer retries once a second)
        os.unlink(self.filler)
        self.put_when_space(50000)
        more = [50000]
        for i in range(50001, 50020):
            self.put(i)
            more.append(i)
        self.check_keys(kept + more)

        # nothing acknowledged is lost across a SIGKILL
        self.srv.kill9()
        self.srv.start()
        self._connect()
        self.check_keys(kept + more)
        self.put(60000)

    def test_restart_on_a_full_disk(self):
        acked = self.fill_for_good(0)
        self.srv.stop()
        self.take_all_space("filler2")  # the rest of the file system is taken too
        self.srv.start()
        self._connect()
        self.check_keys(acked)
        self.assert_refused(90000)
        self.assertTrue(self.srv.running())


class WalFullDisk(TmpfsDataDir):
    """The WAL runs out first: small segments (a test-only knob), and the disk filled up by
    something else while the backend still has the space it reserved ahead."""
    ENV = {"CETCD_TEST_WAL_SEGMENT_BYTES": str(256 << 10)}

    def test_no_room_for_a_new_segment(self):
        acked = []
        for i in range(50):
            self.put(i)
            acked.append(i)
        # The backend reserves twice a proposal's size ahead: after one 1.4 MiB put it holds
        # about 1 MiB more than the next small puts need, far more than the WAL's room (half
        # of a 256 KiB segment, less what is kept for deletes), so the WAL is what runs out.
        self.put_rpc(pb_field(1, b"big") + pb_field(2, b"x" * (1400 << 10)), timeout=10)
        os.unlink(self.filler)
        self.take_all_space("filler2")
        acked += self.fill(50)                       # ends within one segment's room
        self.assertTrue(self.srv.running(), "the server died on a full disk")
        log = self.srv._current_log()
        self.assertIn("wal: no space for a new segment", log)
        self.assertIn('msg="refusing writes: no space for the WAL"', log)
        with urllib.request.urlopen(self.srv.client_url + "/health", timeout=5) as r:
            self.assertIn(b'"health":"true"', r.read())  # refusing writes, not broken
        self.check_keys(acked)
        # the room new writes leave in the segment lets deletes and compaction through
        self.del_rpc(pb_field(1, b"k00000"), timeout=10)
        rev = self.header_rev(self.range_rpc(pb_field(1, b"k99999"), timeout=10))
        self.compact_rpc(pb_field(1, rev), timeout=30)
        self.assert_refused(69999)
        acked.remove(0)
        self.check_keys(acked)

        os.unlink(os.path.join(self.mnt, "filler2"))
        self.put_when_space(70000)
        self.assertIn("wal: space for a new segment again", self.srv._current_log())
        acked.append(70000)
        for i in range(70001, 72000):                 # several more segments
            self.put(i)
            acked.append(i)

        self.srv.kill9()
        self.srv.start()
        self._connect()
        self.check_keys(acked)


class BusErrorSafetyNet(unittest.TestCase):
    def test_sigbus_says_what_happened(self):
        srv = harness.Server(label="sut")
        self.addCleanup(srv.close)
        srv.start()
        os.kill(srv.pid, signal.SIGBUS)
        srv.proc.wait(10)
        self.assertEqual(srv.proc.returncode, 1)
        log = srv._current_log()
        self.assertIn("bus error writing the backend's memory map", log)
        self.assertIn("free disk space and start cetcd again", log)


if __name__ == "__main__":
    harness.run_tests()
