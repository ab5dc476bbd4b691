/* libFuzzer target: request decoding. The first byte picks a request type; the rest is fed
 * both to protobuf-c (as a gRPC payload would be) and to the JSON gateway's decoder. A
 * decoded message is re-encoded to JSON and decoded again, which must succeed. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/pbjson.h"
#include "rpc.pb-c.h"
#include "v3election.pb-c.h"
#include "v3lock.pb-c.h"

static const ProtobufCMessageDescriptor *const types[] = {
    &etcdserverpb__range_request__descriptor,         &etcdserverpb__put_request__descriptor,
    &etcdserverpb__delete_range_request__descriptor,  &etcdserverpb__txn_request__descriptor,
    &etcdserverpb__compaction_request__descriptor,    &etcdserverpb__watch_request__descriptor,
    &etcdserverpb__lease_grant_request__descriptor,   &etcdserverpb__lease_keep_alive_request__descriptor,
    &etcdserverpb__alarm_request__descriptor,         &v3lockpb__lock_request__descriptor,
    &v3electionpb__campaign_request__descriptor,      &v3electionpb__proclaim_request__descriptor,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const ProtobufCMessageDescriptor *d = types[data[0] % (sizeof(types) / sizeof(*types))];
  data++;
  size--;
  arena_t a;
  arena_init(&a);
  ProtobufCMessage *m = protobuf_c_message_unpack(d, &a.pb, size, data);
  if (m) {
    buf_t j = {0};
    pbjson_encode(m, &j);
    char err[128];
    ProtobufCMessage *back = NULL;
    if (pbjson_decode(d, (const char *)j.data, j.len, &a, &back, err, sizeof(err)) != 0) abort();
    buf_free(&j);
  }
  char err[128];
  ProtobufCMessage *fromjson = NULL;
  pbjson_decode(d, (const char *)data, size, &a, &fromjson, err, sizeof(err));
  arena_destroy(&a);
  return 0;
}
