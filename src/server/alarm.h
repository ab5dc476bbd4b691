/* Alarms (etcd's v3alarm store and the alarm part of its applier): a set of (member id,
 * alarm type) pairs, persisted in the backend's `alarm` bucket with etcd's layout (key =
 * the marshaled AlarmMember, empty value), restored at start, changed only by applying
 * an AlarmRequest from the log.
 *
 * While NOSPACE is raised, apply refuses Put, writing Txn and LeaseGrant with
 * CETCD_ENOSPACE (etcd's capped applier); while CORRUPT is raised it refuses every KV and
 * lease change with CETCD_ECORRUPT. Loop thread only. */
#ifndef CETCD_SERVER_ALARM_H
#define CETCD_SERVER_ALARM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "internal.pb-c.h"
#include "rpc.pb-c.h"

typedef struct mvcc_store mvcc_store_t;
typedef struct alarm_store alarm_store_t;

/* Creates the store over mvcc (borrowed; must outlive it) and loads the persisted alarms.
 * *out is owned by the caller (alarm_store_free). Returns 0, CETCD_ECORRUPT for an
 * undecodable record, or a backend code. */
int alarm_store_open(mvcc_store_t *mvcc, alarm_store_t **out);
/* Frees the store (NULL is fine). Persisted alarms stay in the backend. */
void alarm_store_free(alarm_store_t *as);

/* Applies req inside the open mvcc batch (etcd's applier Alarm): GET lists the alarms of
 * req->alarm (NONE = all); ACTIVATE raises (member, type) and lists it; DEACTIVATE clears
 * it and lists it if it was raised. Logs "alarm raised"/"alarm disarmed" when the first
 * alarm of a type appears or the last disappears. *resp is allocated in arena (header
 * unset). Returns 0 or a backend code. */
int alarm_apply(alarm_store_t *as, const Etcdserverpb__AlarmRequest *req, arena_t *arena,
                Etcdserverpb__AlarmResponse **resp);

/* Raises (member, type) and persists it (in the open batch or a batch of its own).
 * *added (optional) tells whether it was new. Returns 0 or a backend code. */
int alarm_activate(alarm_store_t *as, uint64_t member, int type, bool *added);
/* Clears (member, type). *removed (optional) tells whether it was raised. Returns 0 or a
 * backend code. */
int alarm_deactivate(alarm_store_t *as, uint64_t member, int type, bool *removed);

/* Number of raised alarms of `type` (ETCDSERVERPB__ALARM_TYPE__NONE = of any type). */
size_t alarm_count(const alarm_store_t *as, int type);
/* True if (member, type) is raised. */
bool alarm_is_raised(const alarm_store_t *as, uint64_t member, int type);
/* The i-th raised alarm (in (type, member) order), i < alarm_count(as, NONE). */
void alarm_get(const alarm_store_t *as, size_t i, uint64_t *member, int *type);

/* etcd's alarm type names: "NONE", "NOSPACE", "CORRUPT", or the number as text. buf
 * (>= 12 bytes) is used only for unknown types. */
const char *alarm_type_name(int type, char *buf);
/* Writes an AlarmMember as etcd's compact text form, e.g. "memberID:10276657743932975437
 * alarm:NOSPACE " (zero fields left out, each field followed by a space), into buf.
 * Returns the length it needs (snprintf semantics). */
int alarm_member_string(uint64_t member, int type, char *buf, size_t n);

/* The apply-time gate: CETCD_ENOSPACE if NOSPACE is raised and req is a Put, a Txn that
 * writes or a LeaseGrant; CETCD_ECORRUPT if CORRUPT is raised and req changes KV or lease
 * state; otherwise 0. as may be NULL (no alarms). */
int alarm_apply_gate(const alarm_store_t *as, const Cetcdinternal__InternalRequest *req);

#endif
