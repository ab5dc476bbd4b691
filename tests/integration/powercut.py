"""Power-cut simulation for integration tests (see tests/tools/powercut.c).

A server started with `attach(server)` runs under the LD_PRELOAD shim (cetcd as its
dynamically linked twin, harness.preloadable), which keeps, beside
the data dir, the image of what has been made durable: each file's content and size at its
last fsync/fdatasync/msync, each directory's names at its last fsync. After the server is
SIGKILLed, `cut(server)` replaces the data dir by that image: bytes written but not synced,
files created, renamed or removed in a directory that was not fsynced since, all revert.
"""

import os
import shutil

import harness

LIB = os.environ.get("CETCD_POWERCUT_LIB") or os.path.join(
    os.path.dirname(os.path.abspath(harness.server_bin())), "tests", "libcetcd_powercut.so")


def attach(srv):
    """Makes srv start under the shim (its data dir is created here if missing)."""
    if not os.path.exists(LIB):
        raise FileNotFoundError("power-cut shim %s not built (make build, or set CETCD_POWERCUT_LIB)" % LIB)
    os.makedirs(srv.data_dir, exist_ok=True)
    srv.binary = harness.preloadable(srv.binary)
    srv.powercut_shadow = os.path.join(srv.root, "powercut-image")
    srv.extra_env.update({"LD_PRELOAD": LIB, "CETCD_POWERCUT_DIR": srv.data_dir,
                          "CETCD_POWERCUT_SHADOW": srv.powercut_shadow})


def _listing(shadow, key):
    """[(kind, key, name)] of a directory image; none if it was never fsynced."""
    path = os.path.join(shadow, "dirs", key)
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for line in f.read().splitlines():
            kind, k, name = line.split(" ", 2)
            out.append((kind, k, name))
    return out


def _build(shadow, key, dst, placed, depth=0):
    """Makes dst the durable image of directory key. Returns (files, dirs) restored."""
    assert depth < 64, "directory image too deep (a cycle?)"
    os.mkdir(dst, 0o700)
    files = dirs = 0
    for kind, k, name in _listing(shadow, key):
        p = os.path.join(dst, name)
        if kind == "d":
            f, d = _build(shadow, k, p, placed, depth + 1)
            files, dirs = files + f, dirs + d + 1
            continue
        src = os.path.join(shadow, "files", k)
        if k in placed:
            os.link(placed[k], p)  # a second name of the same file
        elif os.path.exists(src):
            os.rename(src, p)
        else:
            open(p, "wb").close()  # named durably, content never synced
        placed[k] = p
        files += 1
    return files, dirs


def _extents(fd, size):
    """The data extents [(start, end)] of an open file."""
    out, off = [], 0
    while off < size:
        try:
            d = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:
            break
        h = min(os.lseek(fd, d, os.SEEK_HOLE), size)
        out.append((d, h))
        off = h
    return out


def _writeback(data_dir, shadow, rng):
    """Lets a random half of the unsynced 4 KiB pages reach the image, as the kernel's
    writeback may have done before the cut, in no particular order. Returns pages kept."""
    live = {}
    for dirpath, _, names in os.walk(data_dir):
        for n in names:
            p = os.path.join(dirpath, n)
            live[os.lstat(p).st_ino] = p
    kept = 0
    for key in os.listdir(os.path.join(shadow, "files")):
        ino = int(key.split(".")[0])
        if ino not in live:
            continue
        img_path = os.path.join(shadow, "files", key)
        with open(live[ino], "rb") as cur, open(img_path, "r+b") as img:
            size = min(os.fstat(cur.fileno()).st_size, os.fstat(img.fileno()).st_size)
            for lo, hi in _extents(cur.fileno(), size):
                for off in range(lo - lo % 4096, hi, 4096):
                    a = os.pread(cur.fileno(), 4096, off)
                    b = os.pread(img.fileno(), len(a), off)
                    if a != b and rng.random() < 0.5:
                        os.pwrite(img.fileno(), a, off)
                        kept += 1
    return kept


def rollback(data_dir, shadow, writeback=None):
    """Replaces data_dir by its durable image under shadow; with writeback (a
    random.Random) some unsynced pages survive too. Returns (files, dirs)."""
    with open(os.path.join(shadow, "root")) as f:
        root = f.read().strip()
    if writeback is not None:
        _writeback(data_dir, shadow, writeback)
    new = data_dir + ".powercut"
    shutil.rmtree(new, ignore_errors=True)
    counts = _build(shadow, root, new, {})
    shutil.rmtree(data_dir)
    os.rename(new, data_dir)
    shutil.rmtree(shadow)
    return counts


def cut(srv, writeback=None):
    """SIGKILL, then roll srv's data dir back to what was synced."""
    srv.kill9()
    return rollback(srv.data_dir, srv.powercut_shadow, writeback)
