/* Symbol visibility for libcetcd. The shared library is built with -fvisibility=hidden;
 * every public function carries CETCD_EXPORT so it alone is exported. */
#ifndef CETCD_EXPORT_H
#define CETCD_EXPORT_H

#if defined(CETCD_BUILDING_LIB) && defined(__GNUC__)
#define CETCD_EXPORT __attribute__((visibility("default")))
#else
#define CETCD_EXPORT
#endif

#endif
