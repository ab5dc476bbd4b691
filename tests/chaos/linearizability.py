"""Checks a recorded etcd client history: linearizability, revisions and watch guarantees.

Python 3 standard library only. A history is a list of operation dicts (see `Op` fields
below), usually read from a JSON-lines file written by tests/chaos/chaos.py.

Linearizability is decided by the Wing-Gong-Lowe search with memoization of (set of
linearized operations, model state), the algorithm Porcupine uses, over a model of one key
of etcd's KV store with revisions. The KV model is P-compositional (every operation touches
one key), so the history is split per key and each key is checked alone. What a per-key
model cannot see, the store-wide revision order, is checked separately:
  * acknowledged writes carry distinct revisions;
  * if operation A returned before operation B was invoked, B's header revision is >= A's,
    and > A's when B is a write that made a new revision;
  * a read's returned mod revision is <= its header revision.

An operation that timed out or failed may or may not have happened: its return time is
infinity and its result is unknown, so the search may linearize it anywhere after its
invocation, or never.

Operation fields (all times in seconds, any monotonic clock shared by the whole history):
  id, client      unique id; the client that issued it
  t0, t1          invocation and return time; t1 None when the outcome is unknown
  type            "get" | "put" | "delete" | "txn" | "revoke_delete"
  key, value      the key; the value a put writes (unique per put) or a txn writes on success
  serializable    gets only: True for a serializable read (not checked for linearizability;
                  checked against the watch record instead)
  cmp             txn only: {"target": "value"|"mod", "expect": value or mod revision}
  rev             header revision of the response
  resp_value      get / failed txn: the value read (None: key absent)
  resp_mod        get / failed txn: the key's mod revision read (0 when absent)
  deleted         delete: the number of keys deleted
  succeeded       txn: whether the compare held

Watch records: a list of watchers, each {"start": rev, "prefix": p, "responses": [[event,
...], ...]}, one inner list per WatchResponse, event = {"type": "PUT"|"DELETE", "key",
"value", "mod": mod revision, "prev": prev_kv value or None, "has_prev": bool}.
"""

import json
import sys

UNKNOWN = -1  # a mod revision the history does not tell (a write whose reply was lost)
INF = float("inf")
FOREVER = 1e300  # return time of a write with a lost reply that the watch record shows happened


# ---------------------------------------------------------------------------------------
# The per-key model: state = (value or None, mod revision or UNKNOWN; 0 when absent)
# ---------------------------------------------------------------------------------------


def _known(op):
    """True when the operation's reply was received (its effect and result are known)."""
    return op.get("t1") is not None


def step(state, op):
    """Applies op to a key's state. Returns the new state, or None if op's result is
    impossible from this state."""
    value, mod = state
    t = op["type"]
    if t == "get":
        if op["resp_value"] != value:
            return None
        if value is None:
            return state
        if mod != UNKNOWN and op["resp_mod"] != mod:
            return None
        return (value, op["resp_mod"])  # a read teaches an unknown mod revision
    if t == "put":
        if not _known(op):
            return (op["value"], UNKNOWN)
        if mod != UNKNOWN and op["rev"] <= mod:
            return None
        return (op["value"], op["rev"])
    if t in ("delete", "revoke_delete"):
        exists = value is not None
        if _known(op) and t == "delete" and op["deleted"] != (1 if exists else 0):
            return None
        if _known(op) and exists and mod != UNKNOWN and op["rev"] <= mod:
            return None
        return (None, 0)
    if t == "txn":
        c = op["cmp"]
        if c["target"] == "value":
            holds = value == c["expect"]
        elif mod == UNKNOWN:  # only a reply can tell; without one assume it held
            holds = op["succeeded"] if _known(op) else True
        else:
            holds = mod == c["expect"]
        if not _known(op):  # not happening at all is the search leaving the op out
            return (op["value"], UNKNOWN) if holds else state
        if holds != op["succeeded"]:
            return None
        if op["succeeded"]:
            if mod != UNKNOWN and op["rev"] <= mod:
                return None
            return (op["value"], op["rev"])
        if op.get("resp_value", value) != value:
            return None
        return state
    raise ValueError("unknown operation type %r" % t)


# ---------------------------------------------------------------------------------------
# Wing-Gong-Lowe search with memoization (one key's sub-history)
# ---------------------------------------------------------------------------------------


def check_key(ops, init=(None, 0), max_steps=2_000_000):
    """True if ops (one key's operations) are linearizable from state init; None if the
    search gave up after max_steps (reported as undecided, never as a pass)."""
    n = len(ops)
    if n == 0:
        return True
    # entries: (time, kind, index) with calls before returns at equal times
    ev = []
    for i, op in enumerate(ops):
        ev.append((op["t0"], 0, i))
        ev.append((op["t1"] if _known(op) else INF, 1, i))
    ev.sort()
    m = len(ev)
    head = m  # nodes 0..m-1 are the entries; node m is the list head
    nxt = [k + 1 if k + 1 < m else None for k in range(m)] + [0]
    prv = [head] + list(range(m - 1)) + [None]
    ret_of = {}
    for k, (_t, kind, i) in enumerate(ev):
        if kind == 1:
            ret_of[i] = k

    def lift(k):
        r = ret_of[ev[k][2]]
        for x in (k, r):
            nxt[prv[x]] = nxt[x]
            if nxt[x] is not None:
                prv[nxt[x]] = prv[x]

    def unlift(k):
        r = ret_of[ev[k][2]]
        for x in (r, k):
            nxt[prv[x]] = x
            if nxt[x] is not None:
                prv[nxt[x]] = x

    cache = set()
    stack = []
    state = init
    linearized = 0
    entry = nxt[head]
    steps = 0
    while entry is not None:
        steps += 1
        if steps > max_steps:
            return None
        t, kind, i = ev[entry]
        if kind == 0:
            new = step(state, ops[i])
            if new is not None:
                lin2 = linearized | (1 << i)
                if (lin2, new) not in cache:
                    cache.add((lin2, new))
                    stack.append((entry, state))
                    state, linearized = new, lin2
                    lift(entry)
                    entry = nxt[head]
                    continue
            entry = nxt[entry]
        else:
            if t == INF:
                return True  # only operations with unknown outcome remain: drop them
            if not stack:
                return False
            entry, state = stack.pop()
            linearized &= ~(1 << ev[entry][2])
            unlift(entry)
            entry = nxt[entry]
    return True


def _linearizable_ops(history):
    """The operations the linearizability search takes (serializable reads and reads with
    no reply are left out: they constrain nothing)."""
    out = []
    for op in history:
        if op["type"] == "get" and (op.get("serializable") or not _known(op)):
            continue
        out.append(op)
    return out


def check_linearizable(history, max_steps=2_000_000):
    """Per-key linearizability. Returns a list of problems (empty: linearizable)."""
    by_key = {}
    for op in _linearizable_ops(history):
        by_key.setdefault(op["key"], []).append(op)
    problems = []
    for key in sorted(by_key):
        ops = by_key[key]
        r = check_key(ops, max_steps=max_steps)
        if r is False:
            problems.append("key %r: %d operations are not linearizable" % (key, len(ops)))
        elif r is None:
            problems.append("key %r: search undecided after %d steps" % (key, max_steps))
    return problems


# ---------------------------------------------------------------------------------------
# Store-wide revision order
# ---------------------------------------------------------------------------------------


def _makes_revision(op):
    """True when a known operation created a new store revision."""
    t = op["type"]
    return (t == "put" or (t == "delete" and op.get("deleted", 0) > 0)
            or (t == "txn" and op.get("succeeded")))


def _stale_reads(done):
    """A read that returns a value whose mod revision is below that of a put to the same key
    acknowledged before the read was invoked is stale, whatever else happened (a later delete
    would make the key absent, never older). A quick, sound check ahead of the search, which
    may not decide a long key history with many unknown writes."""
    problems = []
    puts = sorted((o for o in done if o["type"] == "put"), key=lambda o: o["t1"])
    reads = sorted((o for o in done if o["type"] == "get" and o["resp_value"] is not None),
                   key=lambda o: o["t0"])
    newest, i = {}, 0
    for r in reads:
        while i < len(puts) and puts[i]["t1"] < r["t0"]:
            p = puts[i]
            if p["rev"] > newest.get(p["key"], (0, None))[0]:
                newest[p["key"]] = (p["rev"], p)
            i += 1
        rev, p = newest.get(r["key"], (0, None))
        if r["resp_mod"] < rev:
            problems.append("op %s: not linearizable: stale read of %r (mod revision %d) after op %s "
                            "had put it at revision %d" % (r["id"], r["key"], r["resp_mod"], p["id"], rev))
    return problems


def check_revisions(history):
    """Global revision checks across keys (see the module comment). Returns problems."""
    problems = []
    done = [op for op in _linearizable_ops(history) if _known(op) and op["type"] != "revoke_delete"]
    seen = {}
    for op in done:
        if op["type"] == "get" and op["resp_value"] is not None and op["resp_mod"] > op["rev"]:
            problems.append("op %s: read mod revision %d above its header revision %d"
                            % (op["id"], op["resp_mod"], op["rev"]))
        if _makes_revision(op):
            other = seen.get(op["rev"])
            if other is not None:
                problems.append("ops %s and %s: two acknowledged writes at revision %d"
                                % (other["id"], op["id"], op["rev"]))
            seen[op["rev"]] = op
    problems += _stale_reads(done)
    by_ret = sorted(done, key=lambda o: o["t1"])
    by_call = sorted(done, key=lambda o: o["t0"])
    j, best, best_op = 0, 0, None
    for op in by_call:
        while j < len(by_ret) and by_ret[j]["t1"] < op["t0"]:
            if by_ret[j]["rev"] > best:
                best, best_op = by_ret[j]["rev"], by_ret[j]
            j += 1
        if best_op is None:
            continue
        if _makes_revision(op) and op["rev"] <= best:
            problems.append("op %s (%s) wrote at revision %d after op %s had returned revision %d"
                            % (op["id"], op["type"], op["rev"], best_op["id"], best))
        elif op["rev"] < best:
            problems.append("op %s (%s) saw revision %d after op %s had returned revision %d"
                            % (op["id"], op["type"], op["rev"], best_op["id"], best))
    return problems


# ---------------------------------------------------------------------------------------
# Watches
# ---------------------------------------------------------------------------------------


def check_watches(watchers, history=(), compacted=0):
    """Watch guarantees over every watcher's record, and acknowledged writes against the
    merged event record. `compacted`: revisions at or below it may be missing from a
    watcher that started there. Returns (problems, reference) where reference maps
    (revision, key) -> event for every event any watcher saw."""
    problems = []
    ref = {}
    for w_i, w in enumerate(watchers):
        last = (0, "")
        seen = set()
        for r_i, resp in enumerate(w["responses"]):
            revs_here = set()
            for ev in resp:
                at = (ev["mod"], ev["key"])
                if at in seen:
                    problems.append("watcher %d: event %s duplicated" % (w_i, at))
                    continue
                if ev["mod"] < last[0]:
                    problems.append("watcher %d: event %s after revision %d (out of order)"
                                    % (w_i, at, last[0]))
                if ev["mod"] < w["start"]:
                    problems.append("watcher %d: event %s below its start revision %d"
                                    % (w_i, at, w["start"]))
                seen.add(at)
                last = (ev["mod"], ev["key"])
                revs_here.add(ev["mod"])
                old = ref.get(at)
                body = (ev["type"], ev.get("value"))
                if old is not None and (old["type"], old.get("value")) != body:
                    problems.append("watcher %d: event %s is %s, another watcher saw %s"
                                    % (w_i, at, body, (old["type"], old.get("value"))))
                ref.setdefault(at, ev)
            for rv in revs_here:
                if r_i > 0 and any(e["mod"] == rv for e in w["responses"][r_i - 1]):
                    problems.append("watcher %d: revision %d split across responses" % (w_i, rv))
    # reliability: each watcher has every event of the merged record in its covered range
    for w_i, w in enumerate(watchers):
        evs = [e for resp in w["responses"] for e in resp]
        if not evs:
            continue
        hi = evs[-1]["mod"]
        lo = max(w["start"], compacted + 1)
        have = {(e["mod"], e["key"]) for e in evs}
        for at in ref:
            if lo <= at[0] <= hi and at[1].startswith(w["prefix"]) and at not in have:
                problems.append("watcher %d: missed event %s (gap)" % (w_i, at))
                break
    # prev_kv: the previous event on the same key, when the record covers it
    by_key = {}
    for (rv, key), ev in sorted(ref.items()):
        by_key.setdefault(key, []).append(ev)
    full_from = min([w["start"] for w in watchers] or [0])
    for key, evs in by_key.items():
        for a, b in zip(evs, evs[1:]):
            if full_from > 1:
                continue
            want = a.get("value") if a["type"] == "PUT" else None
            if b.get("prev") != want:
                problems.append("event (%d, %r): prev_kv %r, previous event says %r"
                                % (b["mod"], key, b.get("prev"), want))
    # acknowledged writes appear in the record at their revision
    if ref:
        top = max(rv for rv, _k in ref)
        for op in history:
            if not _known(op) or not _makes_revision(op) or op["rev"] > top:
                continue
            if op["rev"] < full_from or op["rev"] <= compacted:
                continue
            ev = ref.get((op["rev"], op["key"]))
            want = ("DELETE", None) if op["type"] == "delete" else ("PUT", op["value"])
            if ev is None or (ev["type"], ev.get("value") if ev["type"] == "PUT" else None) != want:
                problems.append("op %s: acknowledged %s of %r at revision %d is not in the watch "
                                "record (lost write)" % (op["id"], op["type"], op["key"], op["rev"]))
    return problems, ref


def check_serializable_reads(history, ref, full_from=1):
    """A serializable read at header revision h must return the key's value at h in the
    merged watch record (which must cover revisions from full_from up to h)."""
    problems = []
    by_key = {}
    for (rv, key), ev in sorted(ref.items()):
        by_key.setdefault(key, []).append(ev)
    top = max([rv for rv, _k in ref] or [0])
    for op in history:
        if op["type"] != "get" or not op.get("serializable") or not _known(op) or op["rev"] > top:
            continue
        if full_from > 1:
            continue
        val, mod = None, 0
        for ev in by_key.get(op["key"], []):
            if ev["mod"] > op["rev"]:
                break
            val, mod = (ev["value"], ev["mod"]) if ev["type"] == "PUT" else (None, 0)
        if (op["resp_value"], op["resp_mod"] if op["resp_value"] is not None else 0) != (val, mod):
            problems.append("op %s: serializable read of %r at revision %d returned %r@%d, the "
                            "record says %r@%d" % (op["id"], op["key"], op["rev"], op["resp_value"],
                                                   op["resp_mod"], val, mod))
    return problems


def resolve_unknown(history, ref):
    """Puts and txns with a lost reply, decided by a complete watch record (as etcd's
    robustness tests do): every put writes a unique value, so the write happened iff its
    value is in the record, at that revision. One that happened must be linearized (its
    return time becomes FOREVER, after every known return); one that did not is dropped.
    Deletes with a lost reply stay undecided."""
    at = {(ev["key"], ev["value"]): rv for (rv, _k), ev in ref.items() if ev["type"] == "PUT"}
    out = []
    for op in history:
        if _known(op) or op["type"] not in ("put", "txn"):
            out.append(op)
            continue
        rv = at.get((op["key"], op["value"]))
        if rv is not None:
            out.append(dict(op, t1=FOREVER, rev=rv, succeeded=True))
    return out


def check_all(history, watchers=(), compacted=0):
    """Every check; returns a list of problems (empty: the history passes)."""
    problems = []
    if watchers:
        wp, ref = check_watches(watchers, history, compacted)
        problems += wp
        full_from = min(w["start"] for w in watchers)
        problems += check_serializable_reads(history, ref, full_from)
        if full_from <= 1 and not wp:
            history = resolve_unknown(history, ref)
    return check_linearizable(history) + check_revisions(history) + problems


def main(argv):
    """Usage: linearizability.py RECORD.json  (a {"history": [...], "watchers": [...]} file)."""
    if len(argv) != 2:
        sys.stderr.write("usage: %s RECORD.json\n" % argv[0])
        return 2
    with open(argv[1]) as f:
        rec = json.load(f)
    problems = check_all(rec["history"], rec.get("watchers", []), rec.get("compacted", 0))
    for p in problems:
        print(p)
    print("%d operations, %d problems" % (len(rec["history"]), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
