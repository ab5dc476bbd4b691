/* libcetcd: a C11 client for etcd v3 servers (cetcd or etcd 3.4+).
 *
 * Include this header to get the whole API:
 *   client.h       client creation, endpoints, timeouts, errors, common types
 *   kv.h           get/put/delete/compact and the Txn builder
 *   watch.h        watches with a callback or a pollable handle
 *   lease.h        leases and automatic keep-alive
 *   maintenance.h  status, members, alarms, defragment, hashkv, snapshot
 *   auth.h         authentication on/off, users, roles, permissions (login: client.h)
 *
 * Conventions (all headers):
 * - Functions return 0 on success or a negative CETCD_E* code (cetcd/errors.h);
 *   cetcd_strerror() describes a code. When the server answered with a non-OK gRPC
 *   status, cetcd_client_last_error() gives the gRPC status code and message.
 * - Keys and values are byte strings (pointer + length) and may contain NULs. Strings
 *   returned by the library are also NUL-terminated (the NUL is not counted in a length).
 * - Pointer parameters are borrowed for the duration of the call unless a comment says
 *   otherwise. Result objects returned through `**out` are owned by the caller and freed
 *   with the matching *_free() function (all of which accept NULL).
 * - Thread safety: a client may be used from any number of threads at once. Each client
 *   runs one internal I/O thread; callbacks (watch events, keep-alive loss) run on that
 *   thread and must not block or call blocking client functions (those return
 *   CETCD_EINVAL when called from a callback). Result objects are not shared: one thread
 *   at a time may use one result, txn builder or watch handle's next().
 * - Never aborts on allocation failure: functions return CETCD_ENOMEM and leak nothing. */
#ifndef CETCD_CETCD_H
#define CETCD_CETCD_H

#include "cetcd/client.h"
#include "cetcd/errors.h"
#include "cetcd/kv.h"
#include "cetcd/lease.h"
#include "cetcd/maintenance.h"
#include "cetcd/watch.h"
#include "cetcd/concurrency.h"
#include "cetcd/auth.h"

#endif
