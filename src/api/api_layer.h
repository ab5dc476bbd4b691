/* The api layer as the server sees it: the hooks main installs with server_start. */
#ifndef CETCD_API_LAYER_H
#define CETCD_API_LAYER_H

#include "api/api_ctx.h"
#include "server/server.h"

/* Zeroes api and fills layer with the api layer's hooks, api as their context. Both must
 * outlive the server they are passed to. */
void api_server_layer(api_ctx_t *api, server_layer_t *layer);

#endif
