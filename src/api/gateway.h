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

/* Handles a gateway request: decodes `body` as JSON, runs the method through `g`, and
 * answers `req` with the JSON response or etcd's gateway error object. */
void gateway_handle(grpc_server_t *g, grpc_http_req_t *req, const char *grpc_path, const uint8_t *body,
                    size_t len);

#endif
