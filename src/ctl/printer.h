/* cetcdctl output printers: one per -w format (simple, json, fields, table), mirroring
 * etcdctl 3.4's printers. An entry left NULL means the format does not support that
 * output ("<fmt> not supported as output format", exit 4). */
#ifndef CETCD_CTL_PRINTER_H
#define CETCD_CTL_PRINTER_H

#include "ctl/ctl.h"

/* Result of one endpoint health check. */
typedef struct ep_health {
  const char *ep;
  bool health;
  char took[48];
  char error[512];
} ep_health_t;

/* Status of one endpoint. */
typedef struct ep_status {
  const char *ep;
  cetcd_status_t *st;
} ep_status_t;

/* HashKV of one endpoint. */
typedef struct ep_hashkv {
  const char *ep;
  cetcd_header_t header;
  uint32_t hash;
  int64_t compact_revision;
} ep_hashkv_t;

/* `snapshot status` of a file. */
typedef struct db_status {
  uint32_t hash;
  int64_t revision;
  int64_t total_key;
  int64_t total_size;
} db_status_t;

typedef struct ctl_printer {
  void (*get)(const cetcd_get_result_t *r);
  void (*put)(const cetcd_put_result_t *r);
  void (*del)(const cetcd_delete_result_t *r);
  void (*txn)(const cetcd_txn_result_t *r);
  void (*watch)(const cetcd_watch_event_batch_t *b);
  void (*grant)(const cetcd_header_t *h, int64_t id, int64_t ttl);
  void (*revoke)(const cetcd_header_t *h, int64_t id);
  void (*keepalive)(const cetcd_header_t *h, int64_t id, int64_t ttl);
  void (*timetolive)(const cetcd_lease_ttl_t *r, bool keys);
  void (*leases)(const cetcd_header_t *h, const int64_t *ids, size_t n);
  void (*member_list)(const cetcd_member_list_t *l);
  void (*ep_health)(const ep_health_t *hs, size_t n);
  void (*ep_status)(const ep_status_t *s, size_t n);
  void (*ep_hashkv)(const ep_hashkv_t *h, size_t n);
  void (*alarm)(const cetcd_alarm_t *a, size_t n);
  void (*db_status)(const db_status_t *s);
} ctl_printer_t;

extern const ctl_printer_t ctl_printer_simple, ctl_printer_json, ctl_printer_fields, ctl_printer_table;

/* The printer of the selected -w format. */
const ctl_printer_t *ctl_printer(void);

/* Simple-format options: --hex (global) and get's --print-value-only. */
extern bool ctl_value_only;

/* Simple printer's key-value lines (used by lock/elect, which print a get response). */
void ctl_print_kv_simple(const cetcd_kv_t *kv);
/* Name of an alarm type as Go prints the enum ("NOSPACE"). */
const char *ctl_alarm_name(int a);

/* Rows shared by simple and table output. */
typedef struct ctl_table {
  size_t ncols, nrows;
  const char *const *hdr;
  char ***rows; /* nrows x ncols malloc'd strings */
} ctl_table_t;
void ctl_table_free(ctl_table_t *t);
void ctl_table_member_list(const cetcd_member_list_t *l, ctl_table_t *t);
void ctl_table_ep_health(const ep_health_t *hs, size_t n, ctl_table_t *t);
void ctl_table_ep_status(const ep_status_t *s, size_t n, ctl_table_t *t);
void ctl_table_ep_hashkv(const ep_hashkv_t *h, size_t n, ctl_table_t *t);
void ctl_table_db_status(const db_status_t *s, ctl_table_t *t);
/* Renders t like olekukonko/tablewriter with right-aligned cells. */
void ctl_table_render(FILE *f, const ctl_table_t *t);

#endif
