/*
 * cn_err: the one error-code space of cairn.
 *
 * Every fallible function returns 0 on success or a negative CN_E* code;
 * results travel through out-parameters. Codes, names and messages come from
 * the single X-macro table below, so a new code is one line.
 */
#ifndef CN_ERR_H
#define CN_ERR_H

#define CN_ERR_MAP(X)                                                          \
    X(ENOMEM, -1, "out of memory")                                             \
    X(EIO, -2, "input/output error")                                           \
    X(ENOSPC, -3, "no space left on device")                                   \
    X(ECORRUPT, -4, "data is corrupt")                                         \
    X(EINVAL, -5, "invalid argument")                                          \
    X(ENOTFOUND, -6, "not found")                                              \
    X(EEXIST, -7, "already exists")                                            \
    X(ETOOBIG, -8, "too big")                                                  \
    X(EAGAIN, -9, "try again")                                                 \
    X(ECLOSED, -10, "closed")                                                  \
    X(EBUSY, -11, "busy")                                                      \
    X(ENOTLEADER, -12, "not the leader")                                       \
    X(ESHUTDOWN, -13, "shutting down")                                         \
    X(ETIMEDOUT, -14, "timed out")                                             \
    X(EVERSION, -15, "unsupported version")                                    \
    X(EACCES, -16, "permission denied")                                        \
    X(ELOCKED, -17, "locked by another process")                               \
    X(ESTOPPED, -18, "stopped after an earlier failure")                       \
    X(EPROTO, -19, "protocol error")                                           \
    X(ECONNREFUSED, -20, "connection refused")

enum cn_err {
    CN_OK = 0,
#define CN_ERR_ENUM_(name, val, msg) CN_##name = (val),
    CN_ERR_MAP(CN_ERR_ENUM_)
#undef CN_ERR_ENUM_
};

/* Size of the errmsg buffers that I/O-facing objects carry. */
#define CN_ERRMSG_SIZE 256

/* The message of code rc ("out of memory"); "unknown error" for others.
 * Returns a static string. */
const char *cn_strerror(int rc);

/* The symbolic name of rc ("CN_ENOMEM"). Returns a static string. */
const char *cn_errname(int rc);

/* Maps an errno value (positive) to a CN_E* code. */
int cn_err_from_errno(int errnum);

#endif
