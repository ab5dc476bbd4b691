/* The versions cetcd reports: the etcd version (Status, /version, --version, metrics) and
 * the cluster version (/version, the snapshot's cluster/clusterVersion record). */
#ifndef CETCD_BASE_VERSION_H
#define CETCD_BASE_VERSION_H

#define CETCD_ETCD_VERSION "3.4.23"
#define CETCD_CLUSTER_VERSION "3.4.0"

#endif
