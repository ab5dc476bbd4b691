/* Translation of cetcd error codes into gRPC status codes and etcd's exact error strings
 * (COMPAT §3). This is the only place that knows those strings. */
#ifndef CETCD_API_ERRORS_H
#define CETCD_API_ERRORS_H

/* Maps a negative CETCD_E* code (or -errno) to a gRPC status code and sets *message to
 * etcd's error string (static). */
int api_error_status(int code, const char **message);

#endif
