/* libcetcd concurrency: the distributed mutex.
 *
 * The lock is the first-created key under "<prefix>/"; each contender's key is
 * "<prefix>/<lease hex>", attached to its session's lease. Lock creates the key in one
 * txn that also reads the owner; a waiter watches only the last key created before its
 * own until it is deleted, then looks again. TryLock reads the owner first and writes
 * only when the lock looks free. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/concurrency/conc_int.h"

struct cetcd_mutex {
  cetcd_session_t *s;
  char *pfx; /* "<prefix>/" */
  size_t pfxlen;
  char *key; /* "<prefix>/<lease hex>" */
  size_t keylen;
  int64_t rev; /* create revision while locked, else 0 */
  int cancel_fd;
};

int cetcd_mutex_new(cetcd_session_t *s, const char *prefix, cetcd_mutex_t **out) {
  if (!out) return CETCD_EINVAL;
  *out = NULL;
  if (!s || !prefix) return CETCD_EINVAL;
  cetcd_mutex_t *m = calloc(1, sizeof *m);
  if (!m) return CETCD_ENOMEM;
  int rc = conc_keys(prefix, s->lease, &m->pfx, &m->pfxlen, &m->key, &m->keylen);
  if (rc) {
    free(m);
    return rc;
  }
  m->cancel_fd = conc_eventfd();
  if (m->cancel_fd < 0) {
    rc = m->cancel_fd;
    free(m->pfx);
    free(m->key);
    free(m);
    return rc;
  }
  m->s = s;
  *out = m;
  return 0;
}

void cetcd_mutex_free(cetcd_mutex_t *m) {
  if (!m) return;
  close(m->cancel_fd);
  free(m->pfx);
  free(m->key);
  free(m);
}

/* One txn: create my key if absent, and read the first-created key under the prefix.
 * Sets *myrev (my key's create revision), *owner (mine is first) and *created. */
static int acquire(cetcd_mutex_t *m, int64_t *myrev, bool *owner, bool *created) {
  cetcd_txn_t *t = NULL;
  int rc = cetcd_txn_new(&t);
  if (rc) return rc;
  cetcd_put_opts_t po = {.lease = m->s->lease};
  cetcd_get_opts_t first;
  conc_first_created_opts(&first);
  first.keys_only = true;
  cetcd_txn_cmp_create(t, m->key, m->keylen, CETCD_CMP_EQUAL, 0);
  cetcd_txn_then_put(t, m->key, m->keylen, "", 0, &po);
  cetcd_txn_then_get(t, m->pfx, m->pfxlen, &first);
  cetcd_txn_else_get(t, m->key, m->keylen, NULL);
  cetcd_txn_else_get(t, m->pfx, m->pfxlen, &first);
  cetcd_txn_result_t *r = NULL;
  rc = cetcd_txn_commit(m->s->client, t, &r);
  cetcd_txn_free(t);
  if (rc) return rc;
  if (r->n_results != 2 || !r->results[1].get ||
      (!r->succeeded && (!r->results[0].get || !r->results[0].get->n_kvs))) {
    cetcd_txn_result_free(r);
    return CETCD_EGRPC; /* malformed answer */
  }
  *created = r->succeeded;
  *myrev = r->succeeded ? r->header.revision : r->results[0].get->kvs[0].create_revision;
  const cetcd_get_result_t *g = r->results[1].get;
  *owner = g->n_kvs == 0 || g->kvs[0].create_revision == *myrev;
  cetcd_txn_result_free(r);
  return 0;
}

int cetcd_mutex_lock(cetcd_mutex_t *m, int timeout_ms) {
  if (!m) return CETCD_EINVAL;
  int64_t deadline = conc_deadline(timeout_ms);
  conc_drain(m->cancel_fd);
  m->rev = 0;
  int64_t myrev = 0;
  bool owner = false, created = false;
  int rc = acquire(m, &myrev, &owner, &created);
  if (rc) return rc;
  if (!owner) {
    rc = conc_wait_deletes(m->s, m->pfx, m->pfxlen, myrev - 1, deadline, m->cancel_fd);
    if (!rc) rc = conc_check_key(m->s->client, m->key, m->keylen, myrev);
    if (rc) {
      cetcd_delete(m->s->client, m->key, m->keylen, NULL, NULL); /* give up my place */
      return rc;
    }
  }
  m->rev = myrev;
  return 0;
}

int cetcd_mutex_trylock(cetcd_mutex_t *m) {
  if (!m) return CETCD_EINVAL;
  m->rev = 0;
  /* 1. Read the owner: no write at all when someone else holds the lock. */
  cetcd_get_opts_t first;
  conc_first_created_opts(&first);
  first.keys_only = true;
  cetcd_get_result_t *g = NULL;
  int rc = cetcd_get(m->s->client, m->pfx, m->pfxlen, &first, &g);
  if (rc) return rc;
  if (g->n_kvs) {
    const cetcd_kv_t *kv = &g->kvs[0];
    bool mine = kv->key_len == m->keylen && !memcmp(kv->key, m->key, m->keylen);
    int64_t rev = kv->create_revision;
    cetcd_get_result_free(g);
    if (!mine) return CETCD_ELOCKED;
    m->rev = rev; /* this session already holds it */
    return 0;
  }
  cetcd_get_result_free(g);
  /* 2. Looks free: take it like Lock; undo if another session won the race. */
  int64_t myrev = 0;
  bool owner = false, created = false;
  rc = acquire(m, &myrev, &owner, &created);
  if (rc) return rc;
  if (owner) {
    m->rev = myrev;
    return 0;
  }
  if (created) cetcd_delete(m->s->client, m->key, m->keylen, NULL, NULL);
  return CETCD_ELOCKED;
}

int cetcd_mutex_unlock(cetcd_mutex_t *m) {
  if (!m) return CETCD_EINVAL;
  int rc = cetcd_delete(m->s->client, m->key, m->keylen, NULL, NULL);
  if (!rc) m->rev = 0;
  return rc;
}

int cetcd_mutex_cancel(cetcd_mutex_t *m) {
  if (m) conc_signal(m->cancel_fd);
  return 0;
}

int cetcd_mutex_is_owner(cetcd_mutex_t *m, bool *owner) {
  if (!m || !owner) return CETCD_EINVAL;
  *owner = false;
  if (!m->rev) return 0;
  cetcd_txn_t *t = NULL;
  int rc = cetcd_txn_new(&t);
  if (rc) return rc;
  cetcd_get_opts_t first;
  conc_first_created_opts(&first);
  first.keys_only = true;
  cetcd_txn_cmp_create(t, m->key, m->keylen, CETCD_CMP_EQUAL, m->rev);
  cetcd_txn_then_get(t, m->pfx, m->pfxlen, &first);
  cetcd_txn_result_t *r = NULL;
  rc = cetcd_txn_commit(m->s->client, t, &r);
  cetcd_txn_free(t);
  if (rc) return rc;
  if (r->succeeded && r->n_results == 1 && r->results[0].get && r->results[0].get->n_kvs) {
    const cetcd_kv_t *kv = &r->results[0].get->kvs[0];
    *owner = kv->create_revision == m->rev && kv->key_len == m->keylen && !memcmp(kv->key, m->key, m->keylen);
  }
  cetcd_txn_result_free(r);
  return 0;
}

const char *cetcd_mutex_key(const cetcd_mutex_t *m) { return m ? m->key : NULL; }

int64_t cetcd_mutex_rev(const cetcd_mutex_t *m) { return m ? m->rev : 0; }

int cetcd_mutex_guard(const cetcd_mutex_t *m, cetcd_txn_t *txn) {
  if (!m || !txn || !m->rev) return CETCD_EINVAL;
  return cetcd_txn_cmp_create(txn, m->key, m->keylen, CETCD_CMP_EQUAL, m->rev);
}
