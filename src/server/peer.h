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

#include "client/transport/grpc_client.h"
#include "client/transport/grpc_client_tls.h"
#include "net/tls.h"
#include "raftpb.pb-c.h"

typedef struct peer_transport peer_transport_t;

/* What a message is: each kind has its own stream (and gRPC method) per peer. */
typedef enum peer_kind { PEER_RAFT = 0, PEER_LEASE = 1, PEER_N_KINDS } peer_kind_t;

/* The status message a member gets when it sends to a cluster that removed it (etcd's
 * rafthttp errMemberRemoved). */
#define PEER_REMOVED_MESSAGE "the member has been permanently removed from the cluster"

/* Loop-thread callbacks: one decoded raft message arrived (borrowed during the call; a
 * nonzero return means its sender was removed from the cluster: its stream is ended with
 * PEER_REMOVED_MESSAGE), a lease message arrived (a decoded Cetcdraftpb__LeaseForward,
 * borrowed during the call), the stream to peer id broke (messages to it may have been
 * lost), or a peer ended our stream because this member was removed (on_removed, may be
 * NULL). */
typedef struct peer_cbs {
  int (*on_message)(void *ctx, const Cetcdraftpb__Message *msg);
  void (*on_lease)(void *ctx, const ProtobufCMessage *msg);
  void (*on_unreachable)(void *ctx, uint64_t id);
  void (*on_removed)(void *ctx);
  void *ctx;
} peer_cbs_t;

/* Creates the transport for peers ids[i] reachable at urls[i] (first peer URL of each;
 * the local member may be listed and is skipped by the sender). Returns NULL on failure. */
peer_transport_t *peer_new(uv_loop_t *loop, const uint64_t *ids, char *const *urls, size_t n,
                           const peer_cbs_t *cbs);
/* Sets the client context used for https peer URLs (owned from here on; the previous one
 * is freed; NULL: https peers cannot be reached). Loop thread, before peers are dialed. */
void peer_set_dialer_tls(grpc_tls_ctx_t *ctx);
/* Fills a peer client's TLS settings (the context above). */
void peer_client_tls(grpc_client_config_t *cfg);
/* Binds every listen URL; the https ones speak TLS with tls (owned by the transport from
 * here on, may be NULL when no URL is https). Returns 0 or a negative code (logged). */
int peer_listen(peer_transport_t *pt, char *const *urls, size_t n, tls_ctx_t *tls);
/* Queues one encoded raft message for peer `to` (copied). Loop thread. */
void peer_send(peer_transport_t *pt, uint64_t to, const uint8_t *data, size_t len);
/* Queues one encoded message of the given kind for peer `to` (copied). Loop thread. */
void peer_send_kind(peer_transport_t *pt, uint64_t to, peer_kind_t kind, const uint8_t *data, size_t len);
/* Wakes the sender to ship everything queued. Loop thread. */
void peer_flush(peer_transport_t *pt);
/* Replaces the set of peers (membership changed): ids[i] at urls[i]. Messages still
 * queued for the old set are dropped (raft resends). Returns 0 or a negative code. */
int peer_set_peers(peer_transport_t *pt, const uint64_t *ids, char *const *urls, size_t n);
/* The gRPC server on the peer port (after peer_listen), for more methods such as snapshot
 * transfer and the Cluster methods (borrowed). */
struct grpc_server *peer_server(peer_transport_t *pt);
/* "host:port" of peer id (borrowed from the transport), or NULL if it is unknown. */
const char *peer_address(peer_transport_t *pt, uint64_t id);
/* A blocking unary call to the first of urls (peer URLs) that answers: path, encoded
 * request req. On success *resp (owned, free()) holds the response. Any thread but a
 * transport's I/O thread. Returns 0, CETCD_EUNAVAILABLE (nobody answered) or CETCD_EGRPC
 * (an error status: *status and msg, msglen bytes, get it; status/msg may be NULL). */
int peer_call_status(char *const *urls, size_t n, const char *path, const uint8_t *req, size_t req_len,
                     uint8_t **resp, size_t *resp_len, int *status, char *msg, size_t msglen);
/* peer_call_status without the status. */
int peer_call(char *const *urls, size_t n, const char *path, const uint8_t *req, size_t req_len,
              uint8_t **resp, size_t *resp_len);
/* Stops listening and sending and frees the transport. Loop thread. */
void peer_free(peer_transport_t *pt);

#endif
