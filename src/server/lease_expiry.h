/* The lease expiry driver: a timer on the server's loop that asks the lessor (lease/) for
 * expired leases and proposes a LeaseRevoke for each through the log (only a primary
 * lessor finds any: the leader's; a single member always is). The decision uses the
 * lessor's clock; applying the revoke does not. It lives in server/ because it proposes,
 * as the compactor does; lease/ knows nothing of the server. */
#ifndef CETCD_SERVER_LEASE_EXPIRY_H
#define CETCD_SERVER_LEASE_EXPIRY_H

typedef struct server server_t;

/* Starts a timer on srv's loop that proposes a LeaseRevoke for every expired lease of
 * srv->lessor (at most LEASE_REVOKE_RATE per second, never twice while one is in flight).
 * Returns 0. */
int lease_expiry_start(server_t *srv);
/* Stops and closes the timer (the loop can then end). Safe to call twice. */
void lease_expiry_stop(server_t *srv);

#endif
