/* get/put/del argument parsing shared by the kv commands and txn's request lines. */
#ifndef CETCD_CTL_KVOP_H
#define CETCD_CTL_KVOP_H

#include "ctl/ctl.h"

/* One parsed get, put or delete. Strings are borrowed from the arguments. */
typedef struct ctl_kvop {
  int type; /* CETCD_OP_GET, CETCD_OP_PUT or CETCD_OP_DELETE */
  const char *key;
  size_t klen;
  const char *value;
  size_t vlen;
  bool value_only;
  cetcd_get_opts_t get;
  cetcd_put_opts_t put;
  cetcd_delete_opts_t del;
} ctl_kvop_t;

/* The flag table of the get, put or delete command (by CETCD_OP_* type). */
const ctl_flag_t *ctl_kvop_flags(int type);
/* Resets the kv flag variables to their defaults (before parsing). */
void ctl_kvop_reset(void);
/* Build an op from parsed arguments; exit like etcdctl on bad arguments. */
void ctl_kvop_get(ctl_args_t *a, ctl_kvop_t *op);
void ctl_kvop_put(ctl_args_t *a, ctl_kvop_t *op);
void ctl_kvop_del(ctl_args_t *a, ctl_kvop_t *op);

#endif
