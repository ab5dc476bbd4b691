/* primary (stub while in progress). */
#include "ctl/printer.h"

/* primary */
static int run_primary(ctl_args_t *a) {
  (void)a;
  return 1;
}
const ctl_cmd_t ctl_cmd_primary = {"primary", "primary", "Runs a command while elected primary", run_primary, NULL, NULL, NULL};
