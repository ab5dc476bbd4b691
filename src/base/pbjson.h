/* Conversion between protobuf-c messages and JSON the way etcd's gRPC gateway does it
 * (grpc-gateway's jsonpb with original field names): bytes as base64, 64-bit integers as
 * strings, enums by name, fields with default values omitted. Decoding accepts both the
 * original (snake_case) and lowerCamelCase field names, numbers or strings for integers,
 * and enum names or numbers. */
#ifndef CETCD_BASE_PBJSON_H
#define CETCD_BASE_PBJSON_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "base/arena.h"
#include "base/buf.h"

/* Decodes `json` (len bytes) into a new message of type `desc` allocated in `arena`.
 * Returns 0 and sets *out, or CETCD_EINVAL with a message in err. */
int pbjson_decode(const ProtobufCMessageDescriptor *desc, const char *json, size_t len, arena_t *arena,
                  ProtobufCMessage **out, char *err, size_t errlen);

/* Appends the JSON encoding of msg (borrowed) to out. */
void pbjson_encode(const ProtobufCMessage *msg, buf_t *out);

/* Appends s as a JSON string literal (quoted, escaped). */
void pbjson_string(buf_t *out, const char *s, size_t len);

#endif
