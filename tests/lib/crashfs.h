/*
 * crashfs: an in-memory struct cn_fs that models durability, for tests.
 *
 * Fault model (the one cairn's WAL is written against, docs/wal-format.md):
 * - every file has durable contents (as of its last sync) and a log of the
 *   pwrite / allocate / truncate calls made since; every directory has
 *   durable entries and a log of the creates / renames / unlinks / mkdirs
 *   since its last sync_dir;
 * - a crash keeps the durable state and, per file and per directory, a
 *   part of the unsynced log chosen by the reboot mode and the seed:
 *     CRASHFS_LOSE     nothing unsynced,
 *     CRASHFS_KEEP     everything,
 *     CRASHFS_PREFIX   a prefix of the calls, the last write cut at a byte,
 *     CRASHFS_TORN     file writes: each 512-byte sector of each unsynced
 *                      write independently kept, lost, or (rarely) turned
 *                      into garbage; directories: a prefix,
 *     CRASHFS_RANDOM   one of the above per file and per directory;
 * - synced data is never damaged by a crash; tests damage it on purpose
 *   with crashfs_poke and expect CN_ECORRUPT.
 *
 * Crashes: crashfs_crash_arm(c, n, bytes) makes the nth mutating call from
 * now (create, pwrite, sync, allocate, truncate, rename, unlink, mkdir,
 * sync_dir) the moment of the crash: a pwrite applies its first `bytes`
 * bytes first (bytes < 0: none), and that call and every later call fail
 * with CN_EIO as if the process died. crashfs_reboot() then computes what
 * survived; every handle opened before it is stale (close still frees it).
 *
 * Faults: crashfs_fault_arm(c, kinds, n, err) fails the nth call of the
 * given kinds with err, without effect; later calls work again.
 *
 * Single-threaded. Memory comes from malloc, not cn_malloc, so allocation
 * fault loops count only the code under test.
 */
#ifndef CN_TESTS_CRASHFS_H
#define CN_TESTS_CRASHFS_H

#include <stddef.h>
#include <stdint.h>

#include "base/cn_fs.h"

struct crashfs;

enum crashfs_mode {
    CRASHFS_LOSE = 0,
    CRASHFS_KEEP = 1,
    CRASHFS_PREFIX = 2,
    CRASHFS_TORN = 3,
    CRASHFS_RANDOM = 4,
};

/* Kinds of calls for fault injection (a bit mask). */
enum {
    CRASHFS_F_WRITE = 1 << 0, /* pwrite */
    CRASHFS_F_SYNC = 1 << 1,  /* sync, sync_dir */
    CRASHFS_F_ALLOC = 1 << 2, /* allocate, truncate */
    CRASHFS_F_OPEN = 1 << 3,  /* open, lock */
    CRASHFS_F_META = 1 << 4,  /* rename, unlink, mkdir */
    CRASHFS_F_READ = 1 << 5,  /* pread, size, list, stat */
    CRASHFS_F_ALL = 0x3f,
};

/* A file system holding only "/" (durable). Aborts on out of memory. */
struct crashfs *crashfs_new(uint64_t seed);
/* Frees everything, including handles still open. */
void crashfs_free(struct crashfs *c);
/* The cn_fs table; valid until crashfs_free. */
const struct cn_fs *crashfs_fs(struct crashfs *c);

/* Mutating calls performed so far (the unit of crashfs_crash_arm). */
long crashfs_op_count(const struct crashfs *c);
void crashfs_crash_arm(struct crashfs *c, long nth, long bytes);
/* 1 once the armed crash has happened. */
int crashfs_crashed(const struct crashfs *c);
/* 1 if the crash happened in a pwrite (so `bytes` mattered). */
int crashfs_crashed_in_write(const struct crashfs *c);
/* Power cut now (or after an armed crash): keeps what mode and seed choose,
 * makes every open handle stale, disarms crash and faults. */
void crashfs_reboot(struct crashfs *c, enum crashfs_mode mode, uint64_t seed);

void crashfs_fault_arm(struct crashfs *c, int kinds, long nth, int err);
/* Disarms; returns 1 if the armed fault fired. */
int crashfs_fault_disarm(struct crashfs *c);

/* Test helpers acting on current and durable state at once (no crash
 * semantics): overwrite bytes of a file, cut it, remove it, read it. Each
 * returns 0 or CN_ENOTFOUND. crashfs_read_file's *data is malloc'ed. */
int crashfs_poke(struct crashfs *c, const char *path, uint64_t off,
                 const void *bytes, size_t n);
int crashfs_cut(struct crashfs *c, const char *path, uint64_t size);
int crashfs_remove(struct crashfs *c, const char *path);
int crashfs_read_file(struct crashfs *c, const char *path, uint8_t **data,
                      size_t *size);
/* Count of open handles (to check for leaks). */
long crashfs_open_handles(const struct crashfs *c);

#endif
