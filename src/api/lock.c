/* lock service handlers: not implemented yet (the table is empty, so every method answers
 * UNIMPLEMENTED through api_register_all). */
#include "api/api.h"

const grpc_method_t api_lock_methods[] = {{0}};
const size_t api_lock_methods_len = 0;
