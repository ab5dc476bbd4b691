"""Power-cut simulation for integration tests (see tests/tools/powercut.c).

A server started with `attach(server)` runs under the LD_PRELOAD shim, which keeps, beside
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


def rollback(data_dir, shadow):
    """Replaces data_dir by its durable image under shadow. Returns (files, dirs)."""
    with open(os.path.join(shadow, "root")) as f:
        root = f.read().strip()
    new = data_dir + ".powercut"
    shutil.rmtree(new, ignore_errors=True)
    counts = _build(shadow, root, new, {})
    shutil.rmtree(data_dir)
    os.rename(new, data_dir)
    shutil.rmtree(shadow)
    return counts


def cut(srv):
    """SIGKILL, then roll srv's data dir back to what was synced."""
    srv.kill9()
    return rollback(srv.data_dir, srv.powercut_shadow)
