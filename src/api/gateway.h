/* etcd's JSON gateway on the client port: POST /v3/<service>/<method> (and the /v3beta/
 * and /v3alpha/ prefixes) with a JSON body; the request is decoded into the gRPC request
 * message, run through the same handler as a gRPC call, and the response encoded back. */
#ifndef CETCD_API_GATEWAY_H
#define CETCD_API_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "grpc/grpc_server.h"

/* Maps a gateway URL path (e.g. "/v3/kv/put") to a gRPC method path
 * ("/etcdserverpb.KV/Put"). Returns NULL when the path is not a gateway path. */
const char *gateway_grpc_path(const char *url_path);

/* The gateway of one server. Like etcd's, whose gateway reaches the gRPC server over one
 * HTTP/2 connection, it runs at most max_streams calls at once (--max-concurrent-streams;
 * 0 = no limit); further requests wait, in arrival order, until a call ends or their
 * client goes away. */
typedef struct gateway gateway_t;

/* A gateway running its calls through g (borrowed). */
gateway_t *gateway_new(grpc_server_t *g, uint32_t max_streams);
/* Frees gw; requests still waiting are answered (their clients are gone by then). */
void gateway_free(gateway_t *gw);

/* Handles a gateway request: decodes `body` as JSON, runs the method, and answers `req`
 * with the JSON response or etcd's gateway error object; waits first if every stream is
 * taken. */
void gateway_handle(gateway_t *gw, grpc_http_req_t *req, const char *grpc_path, const uint8_t *body,
                    size_t len);

#endif
