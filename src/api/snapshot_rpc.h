/* Maintenance.Snapshot (etcd 3.4's maintenance server): the backend's bbolt image
 * (snapshot/snapshot.h) built on a libuv worker thread into an unlinked temp file, then
 * streamed in 32 KiB chunks with backpressure, and its sha256 last. */
#ifndef CETCD_API_SNAPSHOT_RPC_H
#define CETCD_API_SNAPSHOT_RPC_H

#include <protobuf-c/protobuf-c.h>

#include "api/api_ctx.h"
#include "grpc/grpc_server.h"

/* Maintenance.Snapshot handler (GRPC_SERVER_STREAM) and its cancel hook: builds the image
 * on a worker thread into an unlinked temp file, then streams it with backpressure. */
void snapshot_rpc_on_message(grpc_call_t *call, ProtobufCMessage *msg);
void snapshot_rpc_on_cancel(grpc_call_t *call);
/* Cancels api's snapshot builds in progress and waits until their worker threads let go of
 * the store (call on the loop thread before closing it). */
void snapshot_rpc_shutdown(api_ctx_t *api);

#endif
