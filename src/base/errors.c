/* Descriptions of cetcd error codes. */
#include "cetcd/errors.h"

#include <string.h>

/* Returns a static English description of a cetcd code or negative errno. */
const char *cetcd_strerror(int code) {
  switch (code) {
    case CETCD_OK: return "success";
    case CETCD_EINVAL: return "invalid request";
    case CETCD_ENOMEM: return "out of memory";
    case CETCD_ECOMPACTED: return "required revision has been compacted";
    case CETCD_EFUTUREREV: return "required revision is a future revision";
    case CETCD_EKEYNOTFOUND: return "key not found";
    case CETCD_ELEASENOTFOUND: return "requested lease not found";
    case CETCD_ELEASEEXISTS: return "lease already exists";
    case CETCD_ETOOMANYOPS: return "too many operations in txn request";
    case CETCD_EDUPKEY: return "duplicate key given in txn request";
    case CETCD_ENOSPACE: return "database space exceeded";
    case CETCD_ECORRUPT: return "data corrupted";
    case CETCD_ETOOLARGE: return "request is too large";
    case CETCD_EKEYEMPTY: return "key is not provided";
    case CETCD_EVALUEPROVIDED: return "value is provided";
    case CETCD_ELEASEPROVIDED: return "lease is provided";
    case CETCD_ESTOPPED: return "server stopped";
    case CETCD_ETIMEOUT: return "request timed out";
    case CETCD_ENOLEADER: return "no leader";
    case CETCD_ETTLTOOLARGE: return "too large lease TTL";
    case CETCD_ECANCELED: return "canceled";
    case CETCD_EUNAVAILABLE: return "unavailable";
    case CETCD_EGRPC: return "server returned an error status";
    case CETCD_ENOTLEADER: return "not the raft leader";
    case CETCD_EPROPDROPPED: return "raft proposal dropped";
    case CETCD_ECONFPENDING: return "a membership change is still pending";
    case CETCD_ERAFTCOMPACTED: return "raft log index already compacted";
    case CETCD_ERAFTUNAVAIL: return "raft log index not available yet";
    case CETCD_ELEADERCHANGED: return "the raft leader changed";
    case CETCD_EBADTRANSFEREE: return "bad leader transferee";
    case CETCD_ETRANSFERTIMEOUT: return "leader transfer took too long";
    case CETCD_EPROPTIMEOUT: return "no raft leader took the proposal before its deadline";
    case CETCD_ETIMEOUTLEADERFAIL: return "request timed out after a leader failure";
    case CETCD_EMEMBERBADURLS: return "given member URLs are invalid";
    case CETCD_EMEMBERNOTFOUND: return "member not found";
    case CETCD_EMEMBEREXISTS: return "member ID already exist";
    case CETCD_EPEERURLEXISTS: return "Peer URLs already exists";
    case CETCD_ETOOMANYLEARNERS: return "too many learner members in cluster";
    case CETCD_EMEMBERNOTLEARNER: return "can only promote a learner member";
    case CETCD_ELEARNERNOTREADY: return "can only promote a learner member which is in sync with leader";
    case CETCD_ENOTENOUGHSTARTED: return "re-configuration failed due to not enough started members";
    case CETCD_EUNHEALTHY: return "unhealthy cluster";
    case CETCD_ELEARNERREFUSED: return "rpc not supported for learner";
    case CETCD_ETLS: return "TLS failure";
    case CETCD_EAUTHVERIFYONLY: return "token signing attempted with verify-only key";
    case CETCD_ELOCKED: return "mutex: Locked by another session";
    case CETCD_ESESSIONEXPIRED: return "session: lease expired";
    case CETCD_EELECTIONNOLEADER: return "election: no leader";
    case CETCD_EELECTIONNOTLEADER: return "election: not leader";
    case CETCD_EAUTHROOTUSER: return "root user does not exist";
    case CETCD_EAUTHROOTROLE: return "root user does not have root role";
    case CETCD_EAUTHUSEREXISTS: return "user name already exists";
    case CETCD_EAUTHUSEREMPTY: return "user name is empty";
    case CETCD_EAUTHUSERNOTFOUND: return "user name not found";
    case CETCD_EAUTHROLEEXISTS: return "role name already exists";
    case CETCD_EAUTHROLENOTFOUND: return "role name not found";
    case CETCD_EAUTHROLEEMPTY: return "role name is empty";
    case CETCD_EAUTHFAILED: return "authentication failed, invalid user ID or password";
    case CETCD_EAUTHDENIED: return "permission denied";
    case CETCD_EAUTHROLENOTGRANTED: return "role is not granted to the user";
    case CETCD_EAUTHPERMNOTGRANTED: return "permission is not granted to the role";
    case CETCD_EAUTHNOTENABLED: return "authentication is not enabled";
    case CETCD_EAUTHBADTOKEN: return "invalid auth token";
    case CETCD_EAUTHBADMGMT: return "invalid auth management";
    case CETCD_EAUTHOLDREV: return "revision of auth store is old";
    case CETCD_EAUTHNOPASSWORD: return "password was given for no password user";
    default:
      if (code < 0 && code > -4096) return strerror(-code);
      return "unknown error";
  }
}
