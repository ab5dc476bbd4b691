/* Peer transport between the members of a cluster: raft messages (proto/raftpb.proto)
 * travel on one long-lived client-streaming gRPC call per peer, /cetcdraftpb.Raft/Send,
 * served by a second grpc_server_t on --listen-peer-urls. Lease requests a follower
 * forwards to the leader (keep-alives, TimeToLive), and the leader's answers, travel the
 * same way on a second stream per peer, /cetcdraftpb.Raft/Lease, so a slow raft stream
 * never delays a renewal behind it and vice versa.
 *
 * Sending reuses the gRPC client transport (its own I/O thread, one dedicated connection
 * per peer); the loop thread queues encoded messages per peer and wakes the I/O thread
 * with a uv_async. Received messages and failed streams come back on the loop thread.
 * Peer TLS is not implemented: an https:// peer URL is spoken in cleartext h2c (only
 * cetcd members talk to each other on this port). */
#ifndef CETCD_SERVER_PEER_H
#define CETCD_SERVER_PEER_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct peer_transport peer_transport_t;

/* What a message is: each kind has its own stream (and gRPC method) per peer. */
typedef enum peer_kind { PEER_RAFT = 0, PEER_LEASE = 1, PEER_N_KINDS } peer_kind_t;

/* Loop-thread callbacks: one encoded raft message arrived (borrowed during the call), a
 * lease message arrived (a decoded Cetcdraftpb__LeaseForward, borrowed during the call),
 * or the stream to peer id broke (messages to it may have been lost). */
typedef struct peer_cbs {
  void (*on_message)(void *ctx, const uint8_t *data, size_t len);
  void (*on_lease)(void *ctx, const ProtobufCMessage *msg);
  void (*on_unreachable)(void *ctx, uint64_t id);
  void *ctx;
} peer_cbs_t;

/* Creates the transport for peers ids[i] reachable at urls[i] (first peer URL of each;
 * the local member may be listed and is skipped by the sender). Returns NULL on failure. */
peer_transport_t *peer_new(uv_loop_t *loop, const uint64_t *ids, char *const *urls, size_t n,
                           const peer_cbs_t *cbs);
/* Binds every listen URL (scheme ignored). Returns 0 or a negative code (logged). */
int peer_listen(peer_transport_t *pt, char *const *urls, size_t n);
/* Queues one encoded raft message for peer `to` (copied). Loop thread. */
void peer_send(peer_transport_t *pt, uint64_t to, const uint8_t *data, size_t len);
/* Queues one encoded message of the given kind for peer `to` (copied). Loop thread. */
void peer_send_kind(peer_transport_t *pt, uint64_t to, peer_kind_t kind, const uint8_t *data, size_t len);
/* Wakes the sender to ship everything queued. Loop thread. */
void peer_flush(peer_transport_t *pt);
/* The peer server (after peer_listen), for more methods such as snapshot transfer. */
struct grpc_server *peer_server(peer_transport_t *pt);
/* "host:port" of peer id (borrowed from the transport), or NULL if it is unknown. */
const char *peer_address(peer_transport_t *pt, uint64_t id);
/* Stops listening and sending and frees the transport. Loop thread. */
void peer_free(peer_transport_t *pt);

#endif
