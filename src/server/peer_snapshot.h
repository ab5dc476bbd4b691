/* Shipping a raft snapshot (the leader's whole backend) to a follower over the peer port,
 * on its own bidirectional gRPC method /cetcdraftpb.Raft/Snapshot (proto/raftsnap.proto),
 * as etcd sends snapshots on their own /raft/snapshot path.
 *
 * Sender: one connection and I/O thread of its own per transfer (a transfer is rare and
 * may be long; raft messages keep flowing on the peer streams meanwhile). The image is
 * read from a file in 1 MiB chunks; at most 4 MiB may be unacknowledged (the receiver
 * acknowledges each chunk once written), on top of HTTP/2's flow-control windows. The
 * first chunk carries the MsgSnap raft message and the size, the last the SHA-256.
 *
 * Receiver (loop thread, on the peer server): writes the chunks to
 * <snap dir>/<index>.db.tmp beside the live backend, checks size and SHA-256, syncs it and
 * hands it to the install callback, which swaps it in and steps the message into raft.
 * Anything that goes wrong (a broken stream, a bad checksum, a failed install) removes the
 * temporary file and leaves the live backend as it was; the leader retries.
 *
 * Test hook: CETCD_TEST_SNAPSHOT_SEND_FAILURES=n makes the first n transfers sent by this
 * process break midway (odd ones carry a corrupted byte, even ones are cancelled after
 * their first chunk). */
#ifndef CETCD_SERVER_PEER_SNAPSHOT_H
#define CETCD_SERVER_PEER_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "grpc/grpc_server.h"

#define PSNAP_CHUNK_BYTES (1u << 20)
#define PSNAP_WINDOW_BYTES (4u << 20)

/* Installs a verified, synced image (loop thread): replaces the backend with the file at
 * image and steps msg (an encoded RAFT_MSG_SNAP) into raft. Returns 0 or a negative code
 * (the live backend is then unchanged). */
typedef int (*psnap_install_fn)(void *ctx, const char *image, const uint8_t *msg, size_t len);

/* Registers the receiving method on the peer server; images go to dir (borrowed, must
 * outlive the server). Leftover *.db.tmp files in dir (a crash mid-transfer) are removed. */
void psnap_register(grpc_server_t *srv, const char *dir, psnap_install_fn install, void *ctx);
/* Forgets the install callback (the raft node is stopping): transfers then fail. */
void psnap_unregister(void);

typedef struct psnap_send psnap_send_t;

/* Runs on the loop thread once a transfer ended: err 0 when the receiver installed it. */
typedef void (*psnap_done_fn)(void *ctx, uint64_t to, int err);

/* Starts sending the image file at path (size bytes, digest sha256 of them) and msg
 * (copied) to member to at peer_url. done runs once on loop unless psnap_cancel ran first.
 * Returns 0 with *out set, or a negative code (done does not run). */
int psnap_send_start(uv_loop_t *loop, const char *peer_url, uint64_t to, const char *path, uint64_t size,
                     const uint8_t sha256[32], const uint8_t *msg, size_t len, psnap_done_fn done, void *ctx,
                     psnap_send_t **out);
/* Stops a transfer and frees it; done will not run. Loop thread. */
void psnap_cancel(psnap_send_t *ps);

#endif
