/*
 * base: what every cairn module may use. Errors (cn_err.h), allocation with
 * fault injection (cn_mem.h), slices and buffers (cn_buf.h), logging
 * (cn_log.h), a seeded PRNG (cn_prng.h), CRC-32C (cn_crc32c.h), assertions
 * (cn_assert.h), limits (limits.h) and the file-system seam (cn_fs.h).
 */
#ifndef CN_BASE_H
#define CN_BASE_H

#include "cn_assert.h"
#include "cn_buf.h"
#include "cn_crc32c.h"
#include "cn_err.h"
#include "cn_fs.h"
#include "cn_log.h"
#include "cn_mem.h"
#include "cn_prng.h"
#include "limits.h"

#endif
