/* The one apply loop of both write paths: a single member's durable entries
 * (server/pipeline.c) and a cluster member's committed raft entries (server/raft_node.c)
 * are applied here, in log order, in one mvcc batch per call, and only then answered. */
#ifndef CETCD_SERVER_APPLY_H
#define CETCD_SERVER_APPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "raft/raft.h"
#include "server/server.h"

/* One logged entry to apply (borrowed for the call). */
typedef struct apply_entry {
  uint64_t index;
  bool conf; /* a raft membership change (cluster members only) */
  const uint8_t *data;
  size_t len;
} apply_entry_t;

/* Where the answers go: the path that logged the entries keeps its proposers. */
typedef struct apply_sink {
  /* Called for each decoded request: the arena its response goes to (the proposer's), and
   * through *token what answer() gets back; NULL if nobody here waits for this entry (its
   * response then goes to a scratch arena and is dropped). */
  arena_t *(*claim)(void *ctx, uint64_t index, uint64_t req_id, void **token);
  /* Called after the batch is committed, in log order, for every claimed entry; res and the
   * decoded request stay valid during the call only. */
  void (*answer)(void *ctx, void *token, const apply_result_t *res);
  /* Optional: a membership change entry was applied (err 0), or refused as no longer valid
   * or undecodable (err < 0: it changed nothing); cc borrowed during the call. */
  void (*conf_applied)(void *ctx, uint64_t index, const raft_conf_change_t *cc, int err);
  void *ctx;
} apply_sink_t;

/* Applies the entries above the applied index, in order, in one mvcc batch (backend space
 * reserved per entry; a durable entry that cannot get space stops the process), commits
 * the batch (a failed commit aborts: the WAL replays), then answers the claimed entries. */
void apply_entries(server_t *srv, const apply_entry_t *ents, size_t n, const apply_sink_t *sink);

/* Decodes and applies one logged entry inside the caller's open batch (WAL replay at
 * start). */
void apply_replayed(server_t *srv, uint64_t index, const uint8_t *data, size_t len);

#endif
