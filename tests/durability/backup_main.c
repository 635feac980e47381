/*
 * cairn-backup-test: a test-only driver of wal_backup() for the process
 * tests (tests/durability/test_backup.py), making the call `cairnctl
 * backup` makes:
 *
 *   cairn-backup-test --data-dir D --backup-dir B [--wal-dir W]
 *                     [--backup-wal-dir BW]
 *
 * Exit 0 with one summary line on stdout, or 1 with "backup: <why>" on
 * stderr (2 for bad arguments).
 */
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "wal/wal.h"

int main(int argc, char **argv)
{
    struct wal_backup_config bc;
    memset(&bc, 0, sizeof(bc));
    bc.fs = cn_fs_posix();
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--data-dir") == 0)
            bc.data_dir = argv[i + 1];
        else if (strcmp(argv[i], "--wal-dir") == 0)
            bc.wal_dir = argv[i + 1];
        else if (strcmp(argv[i], "--backup-dir") == 0)
            bc.backup_dir = argv[i + 1];
        else if (strcmp(argv[i], "--backup-wal-dir") == 0)
            bc.backup_wal_dir = argv[i + 1];
        else
            bc.data_dir = NULL;
    }
    if (argc % 2 != 1 || bc.data_dir == NULL || bc.backup_dir == NULL) {
        fprintf(stderr,
                "usage: %s --data-dir D --backup-dir B [--wal-dir W] "
                "[--backup-wal-dir BW]\n",
                argv[0]);
        return 2;
    }
    struct wal_backup_result res;
    char err[CN_ERRMSG_SIZE] = "";
    int rc = wal_backup(&bc, &res, err);
    if (rc != CN_OK) {
        fprintf(stderr, "backup: %s (%s)\n", err, cn_errname(rc));
        return 1;
    }
    printf(
        "backup: snapshot_index=%llu entries=%llu last_index=%llu "
        "torn_bytes=%llu\n",
        (unsigned long long)res.snap_index, (unsigned long long)res.entry_count,
        (unsigned long long)res.last_index, (unsigned long long)res.torn_bytes);
    return 0;
}
