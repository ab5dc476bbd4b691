/* Durable directory changes: a new name is on disk only once its directory is fsynced. */
#ifndef CETCD_BASE_FSUTIL_H
#define CETCD_BASE_FSUTIL_H

/* fsyncs the directory dir. Returns 0 or -errno. */
int fs_sync_dir(const char *dir);

/* Creates dir and its missing parents (mode 0700), fsyncing each parent after a creation
 * so the new directories survive a power cut. Returns 0, -ENOTDIR or -errno. */
int fs_mkdir_durable(const char *dir);

#endif
