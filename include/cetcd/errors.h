/* cetcd error codes, shared by the server modules and the client library.
 *
 * Functions return 0 on success and a negative code on failure. Negative errno values
 * (-ENOMEM, -EIO, ...) pass through unchanged; cetcd's own codes live in a range well
 * below any errno, like LMDB's. */
#ifndef CETCD_ERRORS_H
#define CETCD_ERRORS_H

enum cetcd_error {
  CETCD_OK = 0,
  CETCD_EBASE = -40000,
  CETCD_EINVAL = -40001,          /* malformed or invalid request */
  CETCD_ENOMEM = -40002,          /* allocation failed (client library only) */
  CETCD_ECOMPACTED = -40003,      /* requested revision has been compacted */
  CETCD_EFUTUREREV = -40004,      /* requested revision is in the future */
  CETCD_EKEYNOTFOUND = -40005,    /* ignore_value/ignore_lease on a missing key */
  CETCD_ELEASENOTFOUND = -40006,  /* lease id unknown */
  CETCD_ELEASEEXISTS = -40007,    /* lease id already granted */
  CETCD_ETOOMANYOPS = -40008,     /* txn exceeds --max-txn-ops */
  CETCD_EDUPKEY = -40009,         /* txn writes the same key twice */
  CETCD_ENOSPACE = -40010,        /* backend quota exceeded */
  CETCD_ECORRUPT = -40011,        /* on-disk data failed a check */
  CETCD_ETOOLARGE = -40012,       /* request larger than allowed */
  CETCD_EKEYEMPTY = -40013,       /* key is not provided */
  CETCD_EVALUEPROVIDED = -40014,  /* value given together with ignore_value */
  CETCD_ELEASEPROVIDED = -40015,  /* lease given together with ignore_lease */
  CETCD_ESTOPPED = -40016,        /* server is stopping */
  CETCD_ETIMEOUT = -40017,        /* deadline exceeded */
  CETCD_ENOLEADER = -40018,       /* no raft leader */
  CETCD_ETTLTOOLARGE = -40019,    /* lease TTL above the maximum */
  CETCD_ECANCELED = -40020,       /* the call was canceled */
  CETCD_EUNAVAILABLE = -40021,    /* endpoint unreachable */
  CETCD_EGRPC = -40022,           /* the server answered a non-OK gRPC status */
  CETCD_ENOTLEADER = -40023,      /* this raft member is not the leader */
  CETCD_EPROPDROPPED = -40024,    /* raft dropped the proposal (leader transfer, removed member) */
  CETCD_ECONFPENDING = -40025,    /* a raft membership change is still pending */
  CETCD_ERAFTCOMPACTED = -40026,  /* raft log index already compacted */
  CETCD_ERAFTUNAVAIL = -40027,    /* raft log index not available yet */
  /* leadership (server/leadership.c, server/raft_node.c) */
  CETCD_ELEADERCHANGED = -40040,   /* the leader changed while a read waited for its index */
  CETCD_EBADTRANSFEREE = -40041,   /* MoveLeader target is not a voting member */
  CETCD_ETRANSFERTIMEOUT = -40042, /* a leadership transfer did not finish in time */
  CETCD_EPROPTIMEOUT = -40043,     /* a proposal found no leader to take it before its deadline */
  CETCD_ETIMEOUTLEADERFAIL = -40044, /* a proposal timed out after its leader failed */
  /* client concurrency recipes (cetcd/concurrency.h) */
  CETCD_ELOCKED = -40050,           /* mutex held by another session (trylock) */
  CETCD_ESESSIONEXPIRED = -40051,   /* the session's lease was lost */
  CETCD_EELECTIONNOLEADER = -40052, /* the election has no leader */
  CETCD_EELECTIONNOTLEADER = -40053, /* not the election's leader */
  /* cluster membership (etcd's membership and etcdserver errors) */
  CETCD_EMEMBERBADURLS = -40070,    /* given member URLs are invalid */
  CETCD_EMEMBERNOTFOUND = -40071,   /* member not found (or removed) */
  CETCD_EMEMBEREXISTS = -40072,     /* member ID already exists */
  CETCD_EPEERURLEXISTS = -40073,    /* a peer URL is used by another member */
  CETCD_ETOOMANYLEARNERS = -40074,  /* at most one learner */
  CETCD_EMEMBERNOTLEARNER = -40075, /* promote of a voter */
  CETCD_ELEARNERNOTREADY = -40076,  /* promote of a learner that is behind the leader */
  CETCD_ENOTENOUGHSTARTED = -40077, /* reconfiguration would leave too few started members */
  CETCD_EUNHEALTHY = -40078,        /* reconfiguration would break the active quorum */
  CETCD_ELEARNERREFUSED = -40079,   /* rpc not supported for learner */
  /* auth (etcd's auth store errors) */
  CETCD_EAUTHROOTUSER = -40080,     /* root user does not exist */
  CETCD_EAUTHROOTROLE = -40081,     /* root user does not have root role */
  CETCD_EAUTHUSEREXISTS = -40082,   /* user name already exists */
  CETCD_EAUTHUSEREMPTY = -40083,    /* user name is empty */
  CETCD_EAUTHUSERNOTFOUND = -40084, /* user name not found */
  CETCD_EAUTHROLEEXISTS = -40085,   /* role name already exists */
  CETCD_EAUTHROLENOTFOUND = -40086, /* role name not found */
  CETCD_EAUTHROLEEMPTY = -40087,    /* role name is empty */
  CETCD_EAUTHFAILED = -40088,       /* invalid user ID or password */
  CETCD_EAUTHDENIED = -40089,       /* permission denied */
  CETCD_EAUTHROLENOTGRANTED = -40090, /* role is not granted to the user */
  CETCD_EAUTHPERMNOTGRANTED = -40091, /* permission is not granted to the role */
  CETCD_EAUTHNOTENABLED = -40092,   /* authentication is not enabled */
  CETCD_EAUTHBADTOKEN = -40093,     /* invalid auth token */
  CETCD_EAUTHBADMGMT = -40094,      /* invalid auth management */
  CETCD_EAUTHOLDREV = -40095,       /* revision of auth store is old */
  CETCD_EAUTHNOPASSWORD = -40096,   /* a password was given for a no-password user */
  CETCD_ETLS = -40097,              /* TLS setup, handshake or certificate verification failed */
  CETCD_EAUTHVERIFYONLY = -40098,   /* a JWT provider with only a public key cannot sign tokens */
  CETCD_ECOMPACTEDREV = CETCD_ECOMPACTED,
  CETCD_ELAST = -40100
};

/* Returns a static English description of a cetcd code or negative errno. */
const char *cetcd_strerror(int code);

#endif
