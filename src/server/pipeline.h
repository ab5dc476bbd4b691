/* The write pipeline of a single member (server/pipeline.c): the loop-side ends of its WAL
 * (durability reports, failure) for the server that owns the WAL. */
#ifndef CETCD_SERVER_PIPELINE_H
#define CETCD_SERVER_PIPELINE_H

#include <stdint.h>

#include "server/server.h"

/* The WAL made every entry up to `durable` durable: applies them (apply_entries) and
 * answers their proposers in log order. */
void server_on_durable(server_t *srv, uint64_t durable);

/* Fails every proposal that is still waiting (the WAL broke or the server stops). */
void server_fail_pending(server_t *srv, int err);

#endif
