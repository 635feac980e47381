/*
 * limits: every bound in cairn, in one place. Values marked (etcd) match
 * etcd 3.4's behaviour; the others are cairn's own safety limits.
 */
#ifndef CN_LIMITS_H
#define CN_LIMITS_H

/* HTTP */
#define CN_MAX_REQUEST_BYTES_DEFAULT (1572864u) /* (etcd) 1.5 MiB */
/* (etcd) request line + headers: Go's DefaultMaxHeaderBytes + 4096 slop */
#define CN_HTTP_HEADER_BYTES_MAX ((1u << 20) + 4096)
#define CN_HTTP_URL_BYTES_MAX CN_HTTP_HEADER_BYTES_MAX /* (etcd) no own one */
#define CN_HTTP_IDLE_TIMEOUT_MS (5u * 60 * 1000) /* idle keep-alive client */
#define CN_HTTP_HEADER_TIMEOUT_MS (30u * 1000)   /* slow/half-open client */
#define CN_HTTP_PIPELINE_MAX (128u)              /* queued requests per conn */
#define CN_HTTP_QUEUED_BYTES_MAX (4u << 20) /* their input, per connection */
#define CN_HTTP_CONNECTIONS_MAX (65536u)

/* Store */
#define CN_STORE_HISTORY_EVENTS (1000u) /* (etcd) watch history */
#define CN_STORE_KEY_BYTES_MAX (64u * 1024)
#define CN_STORE_DEPTH_MAX (256u) /* path segments */
#define CN_STORE_WATCHERS_MAX (1000000u)
#define CN_STORE_STREAM_QUEUE_EVENTS_MAX (10000u) /* per stream watcher */
#define CN_STORE_TTL_SECONDS_MAX (315360000ll)    /* 10 years */

/* Time */
#define CN_EXPIRE_SYNC_INTERVAL_MS (500u) /* (etcd) SYNC twice a second */

/* Raft / WAL (used by later modules) */
#define CN_RAFT_ENTRIES_PER_MSG_MAX (4096u)
#define CN_RAFT_MSG_BYTES_MAX (4u * 1024 * 1024)
#define CN_WAL_SEGMENT_BYTES (64u * 1024 * 1024)
#define CN_WAL_RECORD_BYTES_MAX (64u * 1024 * 1024)

#endif
