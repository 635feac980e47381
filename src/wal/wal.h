/*
 * wal: cairn's write-ahead log, snapshots and crash recovery, pure over
 * struct cn_fs (docs/wal-format.md has the byte layout and the rules).
 *
 * Layout of a data dir:
 *   <data-dir>/LOCK                        flock'ed by wal_lock
 *   <data-dir>/member/wal/SEQ-INDEX.wal    segments (or --wal-dir)
 *   <data-dir>/member/snap/TERM-INDEX.snap snapshots
 *
 * The log is a sequence of records: raft entries (index, term, opaque
 * payload), hard states (term, vote, commit) and snapshot markers (index,
 * term). Appending an entry whose index is not last+1 replaces the log
 * suffix from that index (a raft conflict); readers keep the last write.
 *
 * Appending and syncing are split so that a driver can do the disk work on
 * a thread pool and commit many records with one fsync (group commit):
 *
 *   main thread                     worker thread
 *   -----------                     -------------
 *   wal_append_*() ... (no I/O,
 *     only encoding into memory)
 *   wal_batch_begin(w, &b)  ----->  wal_batch_run(b)   (pwrite, fdatasync,
 *   wal_append_*() ... (go on;                         new segments; touches
 *     they join the next batch)                        only b and the fs)
 *   wal_batch_end(w, b, &pos) <---  done
 *   -> everything at or before pos is durable: acknowledge it now.
 *
 * Rules of the contract:
 * - every function except wal_batch_run and wal_snap_save is called from one
 *   thread (the driver's loop); wal_batch_run touches only the batch and the
 *   cn_fs; wal_snap_save only the fs and w's constant paths;
 * - at most one batch is in flight; wal_batch_begin returns CN_EBUSY while
 *   one is, and the appends made meanwhile form the next batch;
 * - nothing appended may be acknowledged (to a client, or to raft as
 *   persisted) before a wal_batch_end or wal_sync whose returned position
 *   covers it;
 * - a failed write or sync is sticky: the batch's error is returned once
 *   and every later append, batch or sync returns CN_ESTOPPED; wal_errmsg
 *   says why. The driver stops taking writes (it never retries: after a
 *   failed fsync the kernel may have dropped the dirty pages);
 * - CN_ENOMEM from an append or wal_batch_begin leaves the wal unchanged
 *   and is not sticky.
 */
#ifndef CN_WAL_H
#define CN_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "base/cn_fs.h"

/* Version written into segment headers and snapshots. */
#define WAL_FORMAT_VERSION 1u

struct wal;
struct wal_batch;

struct wal_hard_state {
    uint64_t term;   /* current term */
    uint64_t vote;   /* member voted for in term (0: none) */
    uint64_t commit; /* commit index */
};

struct wal_config {
    const struct cn_fs *fs; /* borrowed; kept until wal_close */
    const char *data_dir;   /* copied */
    const char *wal_dir;    /* copied; NULL or "": <data_dir>/member/wal */
    uint64_t segment_bytes; /* preallocated segment size; 0: the default
                               CN_WAL_SEGMENT_BYTES */
    unsigned max_snapshots; /* snapshots kept by wal_purge; 0: all */
    unsigned max_wals;      /* segments kept by wal_purge; 0: all */
    uint64_t cluster_id;    /* written in segment headers (0: unknown) */
    uint64_t member_id;     /* idem */
    uint64_t seed;          /* seeds the per-segment salts */
};

/* A position in the log: after the record with ordinal seq (records are
 * numbered from 1 since wal_open), the log ends at last_index/last_term. */
struct wal_pos {
    uint64_t seq;        /* records appended since open; 0: none */
    uint64_t last_index; /* index of the last entry (or snapshot) */
    uint64_t last_term;  /* its term */
};

struct wal_entry {
    uint64_t index;
    uint64_t term;
    char *data; /* owned by the wal_recovery */
    size_t len; /* bytes */
};

/* What wal_open found. Fill with wal_open, free with wal_recovery_close. */
/* Bytes with the function that frees them (NULL: cn_free). A snapshot is
 * mapped from its file when the file system can (cn_fs.map), so that a
 * restart reads it from the page cache instead of copying it. */
struct wal_bytes {
    char *data;
    size_t len;
    void (*release)(void *data, size_t len);
};

/* Frees b's bytes (with its release) and empties it. */
void wal_bytes_close(struct wal_bytes *b);

struct wal_recovery {
    int created;         /* 1: new data dir; nothing else is set */
    uint64_t snap_index; /* snapshot to restore (0: none) */
    uint64_t snap_term;
    struct wal_bytes snap_data; /* its payload (owned; may be taken) */
    int hard_state_set;         /* 1 if a hard state was found */
    struct wal_hard_state hard_state;
    struct wal_entry *entries; /* owned; indexes snap_index+1, +2, ... */
    size_t entry_count;
    uint64_t cluster_id; /* from the first segment header */
    uint64_t member_id;
    uint64_t torn_bytes;    /* unsynced tail bytes dropped (0: none) */
    unsigned snaps_skipped; /* newer snapshot files that were unusable */
    char notes[2 * CN_ERRMSG_SIZE]; /* what was dropped or skipped, for
                                       the driver to log ("" if nothing) */
};

/* Takes the exclusive lock <data_dir>/LOCK, creating data_dir if needed.
 * *lock is kept until wal_unlock. CN_ELOCKED if another process (or handle)
 * holds it; CN_EIO, CN_EACCES. errmsg: CN_ERRMSG_SIZE bytes or NULL. */
int wal_lock(const struct cn_fs *fs, const char *data_dir,
             struct cn_fs_file **lock, char *errmsg);
void wal_unlock(const struct cn_fs *fs, struct cn_fs_file *lock);

/* Opens the log of cfg->data_dir for appending, recovering its state into
 * *rec (which the caller then owns): a new data dir is initialised
 * (rec->created = 1); otherwise the newest valid snapshot whose marker the
 * log holds is loaded (older ones are tried if it is damaged), the log after
 * it is replayed, and a torn unsynced tail is cut off (rec->torn_bytes).
 * The caller must hold wal_lock. *out is owned by the caller until
 * wal_close.
 * Errors: CN_ECORRUPT (damage that a crash cannot explain: a bad record
 * followed by records written after it was synced, a bad record in a
 * segment that is not the last, a missing segment, an index gap, no usable
 * snapshot where one is needed), CN_EVERSION, CN_EIO, CN_ENOSPC,
 * CN_ENOMEM; errmsg (CN_ERRMSG_SIZE bytes) names the file and byte offset
 * and how to recover. Nothing is left allocated on error. */
int wal_open(const struct wal_config *cfg, struct wal **out,
             struct wal_recovery *rec, char *errmsg);

/* Closes the files and frees w. No batch may be in flight. Appends not yet
 * synced are lost. */
void wal_close(struct wal *w);

/* Frees what rec owns; rec is zeroed. */
void wal_recovery_close(struct wal_recovery *rec);

/* Why the wal stopped ("" while healthy). Valid until wal_close. */
const char *wal_errmsg(const struct wal *w);

/* Appends (in memory) an entry. payload is borrowed during the call and
 * copied. index must satisfy marker < index <= last_index + 1 where marker
 * is the newest snapshot marker; an index <= last_index replaces the suffix
 * from index. CN_EINVAL (index), CN_ETOOBIG (payload > record limit),
 * CN_ESTOPPED, CN_ENOMEM. */
int wal_append_entry(struct wal *w, uint64_t index, uint64_t term,
                     struct cn_slice payload);
/* Appends a hard state (hs borrowed). CN_ESTOPPED, CN_ENOMEM. */
int wal_append_hard_state(struct wal *w, const struct wal_hard_state *hs);
/* Appends a snapshot marker: the snapshot (index, term) has been saved by
 * wal_snap_save. If index > last_index the log restarts after it (a
 * snapshot from the leader). CN_EINVAL (index 0 or below the previous
 * marker), CN_ESTOPPED, CN_ENOMEM. */
int wal_append_snapshot(struct wal *w, uint64_t index, uint64_t term);

/* Position after everything appended so far / after the last sync. */
void wal_appended(const struct wal *w, struct wal_pos *pos);
void wal_durable(const struct wal *w, struct wal_pos *pos);
/* Bytes appended but not yet handed to a batch. */
uint64_t wal_pending_bytes(const struct wal *w);

/* Main thread: hands everything appended so far to a new batch. *b is NULL
 * when nothing is pending (then there is nothing to run). The batch is
 * owned by the wal; pass it to wal_batch_run then wal_batch_end.
 * CN_EBUSY (a batch is in flight), CN_ESTOPPED, CN_ENOMEM (unchanged). */
int wal_batch_begin(struct wal *w, struct wal_batch **b);
/* Any thread, once: writes the batch (creating new segments as needed) and
 * makes it durable. Returns 0 or the I/O error; touches no wal state. */
int wal_batch_run(struct wal_batch *b);
/* Main thread, after wal_batch_run returned: installs the result and frees
 * b. On success *pos (may be NULL) is the new durable position. Returns the
 * run's error (then the wal is stopped and later calls get CN_ESTOPPED). */
int wal_batch_end(struct wal *w, struct wal_batch *b, struct wal_pos *pos);

/* begin + run + end on the calling thread: makes everything appended so
 * far durable. *pos (may be NULL) receives the durable position.
 * CN_EBUSY, CN_ESTOPPED, CN_ENOMEM, CN_EIO, CN_ENOSPC. */
int wal_sync(struct wal *w, struct wal_pos *pos);

/* Writes snapshot (index, term) with payload data (borrowed during the
 * call) atomically to the snap dir: temp file, fsync, rename, fsync dir.
 * May run on a worker thread concurrently with the main thread's use of w.
 * Afterwards the driver appends the marker (wal_append_snapshot), syncs,
 * then calls wal_purge. Not sticky: a failure leaves the previous snapshots
 * as they were. CN_EIO, CN_ENOSPC, CN_ENOMEM; errmsg as above. */
int wal_snap_save(const struct wal *w, uint64_t index, uint64_t term,
                  struct cn_slice data, char *errmsg);

struct wal_purge_result {
    unsigned snaps_removed;
    unsigned segments_removed;
};

/* Main thread, after a snapshot's marker is durable: keeps the newest
 * max_snapshots snapshots, then removes the oldest segments that lie wholly
 * before the oldest kept snapshot while more than max_wals segments remain.
 * res may be NULL. Not sticky. CN_EIO, CN_ENOMEM (an error leaves extra
 * files, never removes needed ones); errmsg as above. */
int wal_purge(struct wal *w, struct wal_purge_result *res, char *errmsg);

struct wal_backup_config {
    const struct cn_fs *fs;     /* borrowed: cn_fs_posix() */
    const char *data_dir;       /* the member to copy */
    const char *wal_dir;        /* its log; NULL or "": inside data_dir */
    const char *backup_dir;     /* the new data dir */
    const char *backup_wal_dir; /* its log; NULL or "": inside backup_dir */
    uint64_t segment_bytes;     /* of the copy; 0: CN_WAL_SEGMENT_BYTES */
};

struct wal_backup_result {
    uint64_t snap_index;  /* snapshot copied (0: none) */
    uint64_t entry_count; /* log entries copied after it */
    uint64_t last_index;  /* index of the last entry copied */
    uint64_t torn_bytes;  /* unsynced tail of the source left out */
};

/* Backup (etcdctl v2 `backup`): copies the newest usable snapshot of the
 * member in cfg->data_dir and every durable log entry after it into a new
 * data dir, cfg->backup_dir, from which a new single-node cairn can start.
 * The copy carries no member or cluster id, so that node takes new ones
 * from its flags. Holds data_dir's lock while it reads (a running cairn:
 * CN_ELOCKED); the source is read with the checks of recovery and never
 * changed (a torn unsynced tail is left out of the copy, damage fails with
 * CN_ECORRUPT). cfg and its strings are borrowed; res may be NULL.
 * Errors: CN_EINVAL (same dir), CN_ENOTFOUND (no log in the source),
 * CN_ELOCKED, CN_EEXIST (backup_dir already holds a data dir), CN_ECORRUPT,
 * CN_EVERSION, CN_EIO, CN_ENOSPC, CN_EACCES, CN_ENOMEM; errmsg
 * (CN_ERRMSG_SIZE bytes or NULL) says why. After a failure while writing,
 * backup_dir may hold a partial copy: remove it before trying again. */
int wal_backup(const struct wal_backup_config *cfg,
               struct wal_backup_result *res, char *errmsg);

/* Path helpers for tests and tools: the segment and snapshot file names
 * ("%016x-%016x.wal" seq-first_index, "%016x-%016x.snap" term-index). */
void wal_segment_name(uint64_t seq, uint64_t first_index, char *out,
                      size_t cap);
void wal_snap_name(uint64_t term, uint64_t index, char *out, size_t cap);
/* The directories w uses (valid until wal_close). */
const char *wal_dir_path(const struct wal *w);
const char *wal_snap_dir_path(const struct wal *w);

#endif
