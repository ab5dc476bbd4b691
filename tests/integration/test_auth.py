#!/usr/bin/python3
"""Auth (users, roles, key-range permissions, simple tokens) side by side with real etcd 3.4.

Every scenario runs the same etcdctl (or gRPC) steps against real etcd and the server under
test and compares the transcripts after masking: rc, stdout and the final `Error:` line
(clientv3 retries some auth errors a varying number of times, so its retry warnings are
dropped). cetcd-only checks: auth state survives kill -9 after acknowledgement, a 3-member
cluster authenticates a user added through another member, and a snapshot written by etcd
(bcrypt hashes made by Go) boots cetcd with working passwords, and the reverse.
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import mask  # noqa: E402
import cluster_harness  # noqa: E402

ROOT = ("--user", "root:rootpw")
U1 = ("--user", "u1:p1")

# Bootstrap: root user with the root role, auth enabled.
SETUP = [
    ("user", "add", "root:rootpw"),
    ("role", "add", "root"),
    ("user", "grant-role", "root", "root"),
    ("auth", "enable"),
]

# u1 with role r1: read foo, read-write on the /p/ prefix, write-only [k1, k5).
SETUP_U1 = [
    ROOT + ("user", "add", "u1:p1"),
    ROOT + ("role", "add", "r1"),
    ROOT + ("role", "grant-permission", "r1", "read", "foo"),
    ROOT + ("role", "grant-permission", "r1", "readwrite", "/p/", "--prefix"),
    ROOT + ("role", "grant-permission", "r1", "write", "k1", "k5"),
    ROOT + ("user", "grant-role", "u1", "r1"),
]


def b64(s):
    return base64.b64encode(s.encode()).decode()


def gw(srv, path, body, token=None):
    """POST /v3/<path> on the JSON gateway: (HTTP status, decoded JSON)."""
    req = urllib.request.Request("http://%s/v3/%s" % (srv.endpoint, path), data=json.dumps(body).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    if token is not None:
        req.add_header("Authorization", token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw or b"{}")
        except ValueError:
            return e.code, {"error": raw.decode("utf-8", "replace")}


def gw_line(label, res):
    st, j = res
    if st == 200:
        return "%s: OK" % label
    return "%s: HTTP %d code=%s %s" % (label, st, j.get("code"), j.get("error") or j.get("message"))


def render(label, r):
    """rc, masked stdout and the last `Error:` line of stderr."""
    errs = [ln for ln in r.err.splitlines() if ln.startswith("Error:") or "watch was canceled" in ln]
    return "$ etcdctl %s\nrc=%s\n%s\n[error] %s\n" % (label, r.rc, mask(r.out).rstrip(),
                                                    mask(errs[-1]) if errs else "")


class AuthSideBySide(unittest.TestCase):
    def setUp(self):
        self.ref = harness.Server(binary=harness.ETCD_BIN, label="etcd")
        self.sut = harness.Server(label="sut")
        self.addCleanup(self.sut.close)
        self.addCleanup(self.ref.close)
        harness.start_servers(self.ref, self.sut)

    def run_both(self, steps, timeout=15):
        texts = []
        for srv in (self.ref, self.sut):
            parts = []
            for st in steps:
                stdin = None
                if isinstance(st, dict):
                    stdin, st = st["stdin"], st["args"]
                r = srv.ctl(*st, input=stdin, timeout=timeout, extra=["--command-timeout=3s"])
                parts.append(render(" ".join(st), r))
            texts.append("".join(parts))
        return texts

    def check(self, steps, timeout=15):
        ref, sut = self.run_both(steps, timeout)
        if os.environ.get("CETCD_TEST_VERBOSE"):
            print("\n==== %s (etcd, masked) ====\n%s" % (self.id(), ref))
        harness.assert_same(self, ref, sut)
        return ref

    def test_enable_rules_and_management_errors(self):
        """Enabling needs root with the root role; etcd's error strings for management."""
        ref = self.check([
            ("auth", "enable"),                       # root user does not exist
            ("user", "add", "root:rootpw"),
            ("user", "add", "root:again"),            # user name already exists
            ("role", "add", "root"),
            ("role", "add", "root"),                  # role name already exists
            ("user", "grant-role", "root", "nope"),   # role name not found
            ("user", "grant-role", "nobody", "root"),  # user name not found
            ("user", "grant-role", "root", "root"),
            ("user", "grant-role", "root", "root"),   # ignored, as etcd does
            ("auth", "enable"),
            ("auth", "enable"),                       # already: no error
            ("user", "list"),                         # user name is empty (no token)
            ("--user", "root:wrong", "user", "list"),  # authentication failed
            ("--user", "nobody:x", "user", "list"),   # authentication failed
            ROOT + ("user", "list"),
            ROOT + ("user", "delete", "root"),        # invalid auth management
            ROOT + ("user", "revoke-role", "root", "root"),  # invalid auth management
            ROOT + ("role", "delete", "root"),        # invalid auth management
            ROOT + ("user", "get", "nobody"),          # user name not found
            ROOT + ("role", "get", "nope"),            # role name not found
            ROOT + ("user", "add", "u2", "--no-password"),
            ("--user", "u2:x", "get", "a"),            # no-password user cannot log in
            ROOT + ("user", "add", "u3:p3"),
            ROOT + ("user", "revoke-role", "u3", "root"),  # role is not granted to the user
            ROOT + ("role", "add", "r9"),
            ROOT + ("role", "revoke-permission", "r9", "foo"),  # permission is not granted
            ROOT + ("role", "delete", "r9"),
            ROOT + ("role", "delete", "r9"),          # role name not found
            ROOT + ("user", "delete", "u3"),
            ROOT + ("user", "delete", "u3"),          # user name not found
            ROOT + ("user", "list"),
            ROOT + ("role", "list"),
            ROOT + ("auth", "disable"),
            ("user", "list"),                          # no token needed once disabled
            ("auth", "enable"),                        # enabling needs no token while disabled
            ("user", "list"),                          # user name is empty again
        ])
        for s in ("root user does not exist", "user name already exists", "role name already exists",
                  "role name not found", "user name not found", "user name is empty",
                  "authentication failed, invalid user ID or password", "invalid auth management",
                  "role is not granted to the user", "permission is not granted to the role"):
            self.assertIn(s, ref, "the scenario no longer exercises %r" % s)

    def test_roles_users_listing(self):
        """Grants, revokes and what user/role get and list show; rights of a non-root user."""
        self.check(SETUP + SETUP_U1 + [
            ROOT + ("role", "get", "r1"),
            ROOT + ("role", "grant-permission", "r1", "readwrite", "foo"),  # updates the type
            ROOT + ("role", "grant-permission", "r1", "read", "a", "--from-key"),
            ROOT + ("role", "get", "r1"),
            ROOT + ("user", "get", "u1"),
            ROOT + ("user", "get", "u1", "--detail"),
            ROOT + ("role", "list"),
            U1 + ("user", "get", "u1"),           # a user may read itself
            U1 + ("role", "get", "r1"),           # and its own roles
            U1 + ("role", "get", "root"),         # permission denied
            U1 + ("user", "list"),                # permission denied
            U1 + ("user", "add", "x:y"),          # permission denied
            U1 + ("auth", "disable"),             # permission denied
            ROOT + ("role", "revoke-permission", "r1", "a", "--from-key"),
            ROOT + ("role", "revoke-permission", "r1", "/p/", "--prefix"),
            ROOT + ("role", "get", "r1"),
            ROOT + ("user", "revoke-role", "u1", "r1"),
            ROOT + ("user", "get", "u1"),
            ROOT + ("user", "grant-role", "u1", "r1"),
            ROOT + ("role", "delete", "r1"),      # also leaves u1 without it
            ROOT + ("user", "get", "u1"),
        ])

    def test_key_permissions(self):
        """Range/Put/DeleteRange/Txn permissions per key, range and prefix."""
        self.check(SETUP + SETUP_U1 + [
            ROOT + ("put", "foo", "v"),
            ROOT + ("put", "bar", "v"),
            ROOT + ("put", "k2", "v"),
            ("get", "foo"),                            # user name is empty
            ("put", "foo", "x"),                       # user name is empty
            U1 + ("get", "foo"),                       # read: ok
            U1 + ("put", "foo", "x"),                  # read-only: denied
            U1 + ("get", "bar"),                       # denied
            U1 + ("put", "/p/a", "1"),                 # prefix: ok
            U1 + ("put", "/p/b", "2"),
            U1 + ("get", "/p/", "--prefix"),           # ok
            U1 + ("get", "/p", "--prefix"),            # wider than the prefix: denied
            U1 + ("get", "/p/a", "/p/c"),              # inside: ok
            U1 + ("get", "", "--prefix"),              # everything: denied
            U1 + ("get", "/p/a", "--from-key"),        # to the end: denied
            U1 + ("del", "/p/b"),                      # ok
            U1 + ("del", "/p/", "--prefix", "--prev-kv"),  # ok (read+write)
            U1 + ("put", "k2", "w"),                   # write-only range: ok
            U1 + ("put", "k5", "w"),                   # end excluded: denied
            U1 + ("get", "k2"),                        # write-only: denied
            U1 + ("put", "k3", "w", "--prev-kv"),      # prev-kv needs read: denied
            U1 + ("del", "k1", "k5"),                  # ok
            U1 + ("del", "k1", "k6"),                  # denied
            {"stdin": "value(\"foo\") = \"v\"\n\nput /p/t yes\n\nput /p/f no\n\n", "args": U1 + ("txn",)},
            {"stdin": "value(\"bar\") = \"v\"\n\nput /p/t yes\n\n\n", "args": U1 + ("txn",)},  # compare: denied
            {"stdin": "\nput /p/t yes\nput bar x\n\n\n", "args": U1 + ("txn",)},  # success op: denied
            {"stdin": "\nget foo\n\nget bar\n\n", "args": U1 + ("txn",)},  # failure op: denied
            {"stdin": "\nget foo\nget /p/t\n\n\n", "args": U1 + ("txn",)},  # read-only txn: ok
            ROOT + ("get", "", "--prefix"),            # root reads everything
        ])

    def test_admin_only_operations(self):
        """Defrag, snapshot, hashkv and membership need root; what etcd leaves open stays open."""
        snapdir = tempfile.mkdtemp(prefix="cetcd-auth-snap-")
        self.addCleanup(shutil.rmtree, snapdir, True)
        self.check(SETUP + SETUP_U1 + [
            U1 + ("defrag",),
            ROOT + ("defrag",),
            U1 + ("endpoint", "hashkv"),
            U1 + ("snapshot", "save", os.path.join(snapdir, "u1.db")),
            U1 + ("member", "add", "x", "--peer-urls=http://127.0.0.1:1"),
            U1 + ("member", "remove", "1234"),
            U1 + ("member", "update", "1234", "--peer-urls=http://127.0.0.1:1"),
            U1 + ("member", "promote", "1234"),
            ROOT + ("member", "promote", "1234"),
            ("defrag",),                               # user name is empty
            U1 + ("compaction", "1"),                  # etcd 3.4 does not check compaction
            U1 + ("alarm", "list"),
            U1 + ("endpoint", "health"),
        ])

    def test_lease_revoke_needs_write_on_keys(self):
        """LeaseRevoke needs write access to every attached key (etcd's checkLeasePuts)."""
        texts = []
        for srv in (self.ref, self.sut):
            out = []
            for st in SETUP + SETUP_U1:
                self.assertTrue(srv.ctl(*st).ok)
            r = srv.ctl(*ROOT, "lease", "grant", "100")
            lid = r.out.split()[1]
            r2 = srv.ctl(*U1, "lease", "grant", "100")
            lid2 = r2.out.split()[1]
            for label, args in [
                ("root put bar with lease", ROOT + ("put", "bar", "v", "--lease=" + lid)),
                ("u1 put /p/x with that lease", U1 + ("put", "/p/x", "v", "--lease=" + lid)),  # denied
                ("u1 revoke", U1 + ("lease", "revoke", lid)),                                # denied
                ("u1 put /p/y with own lease", U1 + ("put", "/p/y", "v", "--lease=" + lid2)),
                ("u1 revoke own", U1 + ("lease", "revoke", lid2)),
                ("root revoke", ROOT + ("lease", "revoke", lid)),
                ("root get", ROOT + ("get", "", "--prefix", "--keys-only")),
            ]:
                out.append(render(label, srv.ctl(*args, extra=["--command-timeout=3s"])).replace(lid, "<L>")
                           .replace(lid2, "<L2>"))
            texts.append("".join(out))
        harness.assert_same(self, texts[0], texts[1])
        self.assertIn("permission denied", texts[0])

    def test_lease_expiry_with_auth(self):
        """An expired lease is revoked (its keys deleted) while auth is enabled: the server
        revokes as root, as etcd's WithRoot."""
        texts = []
        for srv in (self.ref, self.sut):
            for st in SETUP + SETUP_U1:
                self.assertTrue(srv.ctl(*st).ok)
            lid = srv.ctl(*U1, "lease", "grant", "2").out.split()[1]
            self.assertTrue(srv.ctl(*U1, "put", "/p/ttl", "v", "--lease=" + lid).ok)
            r = None
            for _ in range(100):  # up to 10 s
                r = srv.ctl(*ROOT, "get", "/p/ttl")
                if r.ok and not r.out.strip():
                    break
                time.sleep(0.1)
            texts.append(render("get after expiry", r) + "deleted: %s\n" % (r.ok and not r.out.strip()))
        harness.assert_same(self, texts[0], texts[1])
        self.assertIn("deleted: True", texts[0])

    def test_watch_permission(self):
        """A watch on keys the user may not read is created and cancelled at once."""
        texts = []
        for srv in (self.ref, self.sut):
            for st in SETUP + SETUP_U1:
                self.assertTrue(srv.ctl(*st).ok)
            r = srv.ctl(*U1, "watch", "bar", timeout=10)
            r2 = srv.ctl(*U1, "watch", "/p/", "--prefix", "--rev=1", timeout=4)  # allowed: keeps running
            texts.append(render("watch bar", r) + "watch /p/ allowed: %s\n" % (r2.rc == "timeout"))
        harness.assert_same(self, texts[0], texts[1])
        self.assertIn("canceled by the server", texts[0])

    def test_lock_and_election_as_caller(self):
        """Lock and Election act as the caller: allowed under /p/, denied elsewhere."""
        texts = []
        for srv in (self.ref, self.sut):
            for st in SETUP + SETUP_U1:
                self.assertTrue(srv.ctl(*st).ok)
            out = []
            for label, args, t in [
                ("lock /p/lk", U1 + ("lock", "/p/lk", "echo", "locked"), 15),
                ("lock other", U1 + ("lock", "other", "echo", "locked"), 15),
                ("elect other", U1 + ("elect", "other", "v"), 15),
                ("elect -l other", U1 + ("elect", "-l", "other"), 15),
                ("root get", ROOT + ("get", "", "--prefix", "--keys-only"), 15),
            ]:
                r = srv.ctl(*args, timeout=t, extra=["--command-timeout=3s"])
                out.append(render(label, r))
            r = srv.ctl(*U1, "elect", "/p/e", "v", timeout=4)  # the leader keeps campaigning
            lines = r.out.splitlines()
            out.append("elect /p/e: rc=%s first line under /p/e/: %s\n" % (r.rc, bool(lines) and lines[0].startswith("/p/e/")))
            texts.append("".join(out))
        harness.assert_same(self, texts[0], texts[1])
        self.assertIn("locked", texts[0])
        self.assertIn("permission denied", texts[0])

    def test_enable_without_root_role(self):
        """AuthEnable while root lacks the root role (etcdctl would grant it), and empty names."""
        texts = []
        for srv in (self.ref, self.sut):
            self.assertTrue(srv.ctl("user", "add", "root:rootpw").ok)
            out = []
            for label, path, body in [
                ("enable", "auth/enable", {}),
                ("role add ''", "auth/role/add", {"name": ""}),
                ("user add ''", "auth/user/add", {"name": "", "password": "x"}),
                ("grant to root", "auth/user/grant", {"user": "root", "role": "root"}),
                ("enable", "auth/enable", {}),
                ("get without token", "kv/range", {"key": b64("a")}),
            ]:
                out.append(gw_line(label, gw(srv, path, body)))
            texts.append("\n".join(out) + "\n")
        harness.assert_same(self, texts[0], texts[1])
        self.assertIn("root user does not have root role", texts[0])

    def test_token_refusal(self):
        """Tokens (through the JSON gateway's Authorization header): missing, bogus, still
        valid after a permission change, refused after the user's password changed or the
        user was deleted (etcd drops its tokens), refused once auth is disabled."""
        texts = []
        for srv in (self.ref, self.sut):
            for st in SETUP + SETUP_U1:
                self.assertTrue(srv.ctl(*st).ok)
            out = []

            def call(label, path, body, tok):
                out.append(gw_line(label, gw(srv, path, body, tok)))

            def token(name, pw):
                st, j = gw(srv, "auth/authenticate", {"name": name, "password": pw})
                if st != 200:
                    out.append(gw_line("authenticate " + name, (st, j)))
                    return None
                return j["token"]

            get = {"key": b64("foo")}
            put = {"key": b64("foo"), "value": b64("x")}
            t1 = token("u1", "p1")
            out.append("token shape ok: %s" % (t1.count(".") == 1))
            call("no token", "kv/range", get, None)
            call("bogus token", "kv/range", get, "bogus.1")
            call("u1 get foo", "kv/range", get, t1)
            call("u1 put foo", "kv/put", put, t1)
            self.assertTrue(srv.ctl(*ROOT, "role", "grant-permission", "r1", "readwrite", "foo").ok)
            call("u1 put foo after a grant", "kv/put", put, t1)
            self.assertTrue(srv.ctl(*ROOT, "user", "passwd", "u1", "--interactive=false", input="p2\n").ok)
            call("old token after passwd", "kv/range", get, t1)
            token("u1", "p1")
            t2 = token("u1", "p2")
            call("new token", "kv/range", get, t2)
            self.assertTrue(srv.ctl(*ROOT, "user", "delete", "u1").ok)
            call("token of a deleted user", "kv/range", get, t2)
            tr = token("root", "rootpw")
            call("user list as root", "auth/user/list", {}, tr)
            call("user list without token", "auth/user/list", {}, None)
            call("hashkv without token", "maintenance/hash", {}, None)
            self.assertTrue(srv.ctl(*ROOT, "auth", "disable").ok)
            call("root token after disable", "kv/range", get, tr)
            call("no token after disable", "kv/range", get, None)
            call("authenticate when disabled", "auth/authenticate", {"name": "root", "password": "rootpw"}, None)
            texts.append("\n".join(out) + "\n")
        harness.assert_same(self, texts[0], texts[1])
        self.assertIn("invalid auth token", texts[0])


def make_keys(tmp):
    """PEM key pairs made with the openssl CLI: RSA (RS256/PS256) and P-256 (ES256)."""
    keys = {}
    for kind, gen in (("rsa", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]),
                      ("ec", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])):
        priv, pub = os.path.join(tmp, kind + ".key"), os.path.join(tmp, kind + ".pub")
        subprocess.run(["openssl"] + gen + ["-out", priv], check=True, capture_output=True, timeout=60)
        subprocess.run(["openssl", "pkey", "-in", priv, "-pubout", "-out", pub], check=True, capture_output=True,
                       timeout=60)
        keys[kind] = (priv, pub)
    return keys


class AuthJWT(unittest.TestCase):
    """--auth-token jwt side by side: tokens carry the auth revision, so a token from before
    an auth change is refused ("revision of auth store is old"); and a token signed by etcd
    verifies on cetcd (same key, same claims)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="cetcd-auth-jwt-")
        cls.keys = make_keys(cls.tmp)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def pair(self, method, kind):
        priv, pub = self.keys[kind]
        arg = "--auth-token=jwt,pub-key=%s,priv-key=%s,sign-method=%s" % (pub, priv, method)
        ref = harness.Server(binary=harness.ETCD_BIN, label="etcd", extra_args=[arg])
        sut = harness.Server(label="sut", extra_args=[arg])
        self.addCleanup(sut.close)
        self.addCleanup(ref.close)
        harness.start_servers(ref, sut)
        return ref, sut

    def scenario(self, method, kind):
        ref, sut = self.pair(method, kind)
        texts, tokens = [], []
        for srv in (ref, sut):
            for st in SETUP + SETUP_U1:
                r = srv.ctl(*st)
                self.assertTrue(r.ok, r)
            out = []
            st, j = gw(srv, "auth/authenticate", {"name": "u1", "password": "p1"})
            tok = j.get("token", "")
            tokens.append(tok)
            out.append("token parts: %d" % len(tok.split(".")))
            get = {"key": b64("foo")}
            out.append(gw_line("u1 get foo", gw(srv, "kv/range", get, tok)))
            out.append(gw_line("u1 get bar", gw(srv, "kv/range", {"key": b64("bar")}, tok)))
            out.append(gw_line("tampered", gw(srv, "kv/range", get, tok[:-4] + ("AAAA" if tok[-4:] != "AAAA" else "BBBB"))))
            self.assertTrue(srv.ctl(*ROOT, "role", "grant-permission", "r1", "readwrite", "bar").ok)
            out.append(gw_line("old token after a grant", gw(srv, "kv/range", get, tok)))
            out.append(gw_line("old token put", gw(srv, "kv/put", {"key": b64("/p/x"), "value": b64("v")}, tok)))
            out.append(render("etcdctl as u1 re-authenticates", srv.ctl(*U1, "get", "bar")))
            texts.append("\n".join(out) + "\n")
        harness.assert_same(self, texts[0], texts[1])
        self.assertIn("revision of auth store is old", texts[0])
        # etcd's token (now one revision old) verifies on cetcd: same refusal, not "invalid"
        res = gw_line("etcd's token on cetcd", gw(sut, "kv/range", {"key": b64("foo")}, tokens[0]))
        self.assertIn("revision of auth store is old", res)
        st, j = gw(ref, "auth/authenticate", {"name": "u1", "password": "p1"})
        res = gw_line("fresh etcd token on cetcd", gw(sut, "kv/range", {"key": b64("bar")}, j["token"]))
        self.assertEqual(res, "fresh etcd token on cetcd: OK")

    def test_verify_only(self):
        """pub-key without priv-key: Authenticate fails as etcd's ErrVerifyOnly (gRPC Unknown,
        `auth: token signing attempted with verify-only key`), and tokens signed by a member
        holding the private key are accepted (etcd and cetcd in the verify-only role, a real
        etcd signing)."""
        priv, pub = self.keys["rsa"]
        full = "--auth-token=jwt,pub-key=%s,priv-key=%s,sign-method=RS256" % (pub, priv)
        vo = "--auth-token=jwt,pub-key=%s,sign-method=RS256" % pub
        signer = harness.Server(binary=harness.ETCD_BIN, label="signer", extra_args=[full])
        ref = harness.Server(binary=harness.ETCD_BIN, label="etcd", extra_args=[vo])
        sut = harness.Server(label="sut", extra_args=[vo])
        for s in (signer, ref, sut):
            self.addCleanup(s.close)
        harness.start_servers(signer, ref, sut)
        # users and roles first (no token can be had on a verify-only member once enabled)
        steps = [st[len(ROOT):] for st in SETUP_U1] + SETUP
        for srv in (signer, ref, sut):
            for st in steps:
                r = srv.ctl(*st)
                self.assertTrue(r.ok, (srv.label, st, r))
        st, j = gw(signer, "auth/authenticate", {"name": "u1", "password": "p1"})
        self.assertEqual(st, 200, j)
        tok = j["token"]
        texts = []
        for srv in (ref, sut):
            out = [render("--user u1:p1 get foo", srv.ctl(*U1, "get", "foo", extra=["--command-timeout=3s"])),
                   gw_line("authenticate", gw(srv, "auth/authenticate", {"name": "u1", "password": "p1"})),
                   gw_line("wrong password", gw(srv, "auth/authenticate", {"name": "u1", "password": "x"})),
                   gw_line("signer's token get foo", gw(srv, "kv/range", {"key": b64("foo")}, tok)),
                   gw_line("signer's token get bar", gw(srv, "kv/range", {"key": b64("bar")}, tok)),
                   gw_line("signer's token put /p/x", gw(srv, "kv/put", {"key": b64("/p/x"), "value": b64("v")}, tok)),
                   gw_line("tampered", gw(srv, "kv/range", {"key": b64("foo")}, tok[:-4] + (
                       "AAAA" if tok[-4:] != "AAAA" else "BBBB")))]
            texts.append("\n".join(out) + "\n")
        if os.environ.get("CETCD_TEST_VERBOSE"):
            print("\n==== %s (etcd, masked) ====\n%s" % (self.id(), texts[0]))
        harness.assert_same(self, texts[0], texts[1])
        self.assertIn("code = Unknown desc = auth: token signing attempted with verify-only key", texts[0])
        self.assertIn("authenticate: HTTP 500 code=2 auth: token signing attempted with verify-only key", texts[0])
        self.assertIn("signer's token get foo: OK", texts[0])
        self.assertIn("signer's token put /p/x: OK", texts[0])

    def test_rs256(self):
        self.scenario("RS256", "rsa")

    def test_ps256(self):
        self.scenario("PS256", "rsa")

    def test_es256(self):
        self.scenario("ES256", "ec")


class AuthCetcd(unittest.TestCase):
    """cetcd on its own: durability, clusters, snapshots carrying etcd's bcrypt hashes."""

    def server(self, **kw):
        s = harness.Server(**kw)
        self.addCleanup(s.close)
        return s

    def test_survives_kill9(self):
        """Acknowledged auth changes survive kill -9; passwords and permissions still hold."""
        sut = self.server(label="sut")
        sut.start()
        for st in SETUP + SETUP_U1:
            r = sut.ctl(*st)
            self.assertTrue(r.ok, r)
        sut.kill9()
        sut.start()
        r = sut.ctl(*ROOT, "user", "list")
        self.assertEqual(r.out.split(), ["root", "u1"], r)
        self.assertTrue(sut.ctl(*U1, "put", "/p/x", "1").ok)
        r = sut.ctl(*U1, "put", "bar", "1", extra=["--command-timeout=3s"])
        self.assertIn("permission denied", r.err)
        r = sut.ctl("get", "foo", extra=["--command-timeout=3s"])
        self.assertIn("user name is empty", r.err)
        # once more, after a clean stop (the backend committed, the WAL released)
        self.assertTrue(sut.ctl(*ROOT, "user", "passwd", "u1", "--interactive=false", input="p9\n").ok)
        sut.restart()
        self.assertTrue(sut.ctl("--user", "u1:p9", "get", "foo").ok)
        r = sut.ctl(*U1, "get", "foo", extra=["--command-timeout=3s"])
        self.assertIn("authentication failed", r.err)

    def test_cluster_user_added_elsewhere(self):
        """A user added through one member authenticates on the others."""
        c = cluster_harness.Cluster(n=3)
        self.addCleanup(c.close)
        c.start()
        m0, m1, m2 = c.members
        for st in SETUP + SETUP_U1:
            r = m0.ctl(*st)
            self.assertTrue(r.ok, r)
        for m in (m1, m2):
            r = None
            for _ in range(50):
                r = m.ctl(*U1, "put", "/p/" + m.name, "v", extra=["--command-timeout=3s"])
                if r.ok:
                    break
                time.sleep(0.1)
            self.assertTrue(r.ok, r)
            r = m.ctl(*U1, "get", "bar", extra=["--command-timeout=3s"])
            self.assertIn("permission denied", r.err)
        r = m2.ctl(*ROOT, "get", "/p/", "--prefix", "--keys-only")
        self.assertEqual(r.out.split(), ["/p/m1", "/p/m2"], r)

    def _snapshot_boot(self, src_bin, dst_bin):
        src = self.server(binary=src_bin, label="src")
        src.start()
        for st in SETUP + SETUP_U1:
            r = src.ctl(*st)
            self.assertTrue(r.ok, r)
        tmp = tempfile.mkdtemp(prefix="cetcd-auth-snap-")
        self.addCleanup(shutil.rmtree, tmp, True)
        snap = os.path.join(tmp, "s.db")
        r = src.ctl(*ROOT, "snapshot", "save", snap)
        self.assertTrue(r.ok, r)
        dst = self.server(binary=dst_bin, label="dst", name="restored")
        p = harness.snapshot_restore(snap, dst)
        self.assertEqual(p.returncode, 0, p.stderr)
        dst.start()
        r = dst.ctl(*ROOT, "user", "list")
        self.assertEqual(r.out.split(), ["root", "u1"], r)
        self.assertTrue(dst.ctl(*U1, "put", "/p/x", "1").ok)
        r = dst.ctl(*U1, "get", "bar", extra=["--command-timeout=3s"])
        self.assertIn("permission denied", r.err)
        r = dst.ctl("--user", "u1:wrong", "get", "foo", extra=["--command-timeout=3s"])
        self.assertIn("authentication failed", r.err)

    def test_boots_from_etcd_snapshot(self):
        """etcd's buckets and Go bcrypt hashes ($2a$) work in cetcd."""
        self._snapshot_boot(harness.ETCD_BIN, harness.cetcd_bin())

    def test_etcd_boots_from_cetcd_snapshot(self):
        """cetcd's auth buckets and libcrypt hashes ($2b$) work in etcd."""
        self._snapshot_boot(harness.cetcd_bin(), harness.ETCD_BIN)


if __name__ == "__main__":
    harness.run_tests()
