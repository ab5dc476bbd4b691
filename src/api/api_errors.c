/* cetcd error code → gRPC status + etcd error string. */
#include "api/api_errors.h"

#include <errno.h>

#include "cetcd/errors.h"
#include "grpc/grpc_server.h"

int api_error_status(int code, const char **message) {
  switch (code) {
    case CETCD_ENOSPACE: *message = "etcdserver: mvcc: database space exceeded"; return GRPC_RESOURCE_EXHAUSTED;
    case -ENOSPC: *message = "etcdserver: no space left on device"; return GRPC_RESOURCE_EXHAUSTED;
    case CETCD_ECOMPACTED:
      *message = "etcdserver: mvcc: required revision has been compacted";
      return GRPC_OUT_OF_RANGE;
    case CETCD_EFUTUREREV:
      *message = "etcdserver: mvcc: required revision is a future revision";
      return GRPC_OUT_OF_RANGE;
    case CETCD_ELEASENOTFOUND: *message = "etcdserver: requested lease not found"; return GRPC_NOT_FOUND;
    case CETCD_ELEASEEXISTS: *message = "etcdserver: lease already exists"; return GRPC_FAILED_PRECONDITION;
    case CETCD_ETTLTOOLARGE: *message = "etcdserver: too large lease TTL"; return GRPC_OUT_OF_RANGE;
    case CETCD_ETOOMANYOPS: *message = "etcdserver: too many operations in txn request"; return GRPC_INVALID_ARGUMENT;
    case CETCD_EDUPKEY: *message = "etcdserver: duplicate key given in txn request"; return GRPC_INVALID_ARGUMENT;
    case CETCD_EKEYEMPTY: *message = "etcdserver: key is not provided"; return GRPC_INVALID_ARGUMENT;
    case CETCD_EKEYNOTFOUND: *message = "etcdserver: key not found"; return GRPC_INVALID_ARGUMENT;
    case CETCD_EVALUEPROVIDED: *message = "etcdserver: value is provided"; return GRPC_INVALID_ARGUMENT;
    case CETCD_ELEASEPROVIDED: *message = "etcdserver: lease is provided"; return GRPC_INVALID_ARGUMENT;
    case CETCD_ETOOLARGE: *message = "etcdserver: request is too large"; return GRPC_INVALID_ARGUMENT;
    case CETCD_ENOLEADER: *message = "etcdserver: no leader"; return GRPC_UNAVAILABLE;
    case CETCD_ETIMEOUT: *message = "etcdserver: request timed out"; return GRPC_UNAVAILABLE;
    case CETCD_ESTOPPED: *message = "etcdserver: server stopped"; return GRPC_UNAVAILABLE;
    case CETCD_ENOTLEADER: *message = "etcdserver: not leader"; return GRPC_FAILED_PRECONDITION;
    case CETCD_ELEADERCHANGED: *message = "etcdserver: leader changed"; return GRPC_UNAVAILABLE;
    case CETCD_EBADTRANSFEREE: *message = "etcdserver: bad leader transferee"; return GRPC_FAILED_PRECONDITION;
    case CETCD_ETRANSFERTIMEOUT: /* etcd has no gRPC mapping for it: Unknown */
      *message = "etcdserver: request timed out, leader transfer took too long";
      return GRPC_UNKNOWN;
    case CETCD_ETIMEOUTLEADERFAIL:
      *message = "etcdserver: request timed out, possibly due to previous leader failure";
      return GRPC_UNAVAILABLE;
    case CETCD_EPROPTIMEOUT: /* etcd: raft never took the proposal, the context expired */
      *message = "context deadline exceeded";
      return GRPC_UNKNOWN;
    case CETCD_ECANCELED: *message = "context canceled"; return GRPC_CANCELLED;
    case CETCD_ECORRUPT: *message = "etcdserver: corrupt cluster"; return GRPC_DATA_LOSS;
    case CETCD_EINVAL: *message = "etcdserver: invalid request"; return GRPC_INVALID_ARGUMENT;
    case CETCD_EMEMBERBADURLS:
      *message = "etcdserver: given member URLs are invalid";
      return GRPC_INVALID_ARGUMENT;
    case CETCD_EMEMBERNOTFOUND: *message = "etcdserver: member not found"; return GRPC_NOT_FOUND;
    case CETCD_EMEMBEREXISTS: *message = "etcdserver: member ID already exist"; return GRPC_FAILED_PRECONDITION;
    case CETCD_EPEERURLEXISTS: *message = "etcdserver: Peer URLs already exists"; return GRPC_FAILED_PRECONDITION;
    case CETCD_ETOOMANYLEARNERS:
      *message = "etcdserver: too many learner members in cluster";
      return GRPC_FAILED_PRECONDITION;
    case CETCD_EMEMBERNOTLEARNER:
      *message = "etcdserver: can only promote a learner member";
      return GRPC_FAILED_PRECONDITION;
    case CETCD_ELEARNERNOTREADY:
      *message = "etcdserver: can only promote a learner member which is in sync with leader";
      return GRPC_FAILED_PRECONDITION;
    case CETCD_ENOTENOUGHSTARTED:
      *message = "etcdserver: re-configuration failed due to not enough started members";
      return GRPC_FAILED_PRECONDITION;
    case CETCD_EUNHEALTHY: *message = "etcdserver: unhealthy cluster"; return GRPC_UNAVAILABLE;
    case CETCD_ELEARNERREFUSED: *message = "etcdserver: rpc not supported for learner"; return GRPC_UNAVAILABLE;
    case CETCD_ECONFPENDING: *message = "etcdserver: request timed out"; return GRPC_UNAVAILABLE;
    /* auth: rpctypes/error.go */
    case CETCD_EAUTHROOTUSER: *message = "etcdserver: root user does not exist"; return GRPC_FAILED_PRECONDITION;
    case CETCD_EAUTHROOTROLE: *message = "etcdserver: root user does not have root role"; return GRPC_FAILED_PRECONDITION;
    case CETCD_EAUTHUSEREXISTS: *message = "etcdserver: user name already exists"; return GRPC_FAILED_PRECONDITION;
    case CETCD_EAUTHUSEREMPTY: *message = "etcdserver: user name is empty"; return GRPC_INVALID_ARGUMENT;
    case CETCD_EAUTHUSERNOTFOUND: *message = "etcdserver: user name not found"; return GRPC_FAILED_PRECONDITION;
    case CETCD_EAUTHROLEEXISTS: *message = "etcdserver: role name already exists"; return GRPC_FAILED_PRECONDITION;
    case CETCD_EAUTHROLENOTFOUND: *message = "etcdserver: role name not found"; return GRPC_FAILED_PRECONDITION;
    case CETCD_EAUTHROLEEMPTY: *message = "etcdserver: role name is empty"; return GRPC_INVALID_ARGUMENT;
    case CETCD_EAUTHFAILED: *message = "etcdserver: authentication failed, invalid user ID or password"; return GRPC_INVALID_ARGUMENT;
    case CETCD_EAUTHDENIED: *message = "etcdserver: permission denied"; return GRPC_PERMISSION_DENIED;
    case CETCD_EAUTHROLENOTGRANTED: *message = "etcdserver: role is not granted to the user"; return GRPC_FAILED_PRECONDITION;
    case CETCD_EAUTHPERMNOTGRANTED: *message = "etcdserver: permission is not granted to the role"; return GRPC_FAILED_PRECONDITION;
    case CETCD_EAUTHNOTENABLED: *message = "etcdserver: authentication is not enabled"; return GRPC_FAILED_PRECONDITION;
    case CETCD_EAUTHBADTOKEN: *message = "etcdserver: invalid auth token"; return GRPC_UNAUTHENTICATED;
    case CETCD_EAUTHBADMGMT: *message = "etcdserver: invalid auth management"; return GRPC_INVALID_ARGUMENT;
    case CETCD_EAUTHOLDREV: *message = "etcdserver: revision of auth store is old"; return GRPC_INVALID_ARGUMENT;
    case CETCD_EAUTHNOPASSWORD: /* etcd has no gRPC mapping for it: Unknown, Go's text */
      *message = "auth: authentication failed, password was given for no password user";
      return GRPC_UNKNOWN;
    case CETCD_EAUTHVERIFYONLY: /* the same: etcd's auth.ErrVerifyOnly reaches the client as Unknown */
      *message = "auth: token signing attempted with verify-only key";
      return GRPC_UNKNOWN;
    default: *message = "etcdserver: internal error"; return GRPC_UNKNOWN;
  }
}
