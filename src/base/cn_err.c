/* cn_err: names and messages for the error table in cn_err.h. */
#include "cn_err.h"

#include <errno.h>

const char *cn_strerror(int rc)
{
    switch (rc) {
    case CN_OK:
        return "success";
#define CN_ERR_MSG_(name, val, msg)                                            \
    case CN_##name:                                                            \
        return msg;
        CN_ERR_MAP(CN_ERR_MSG_)
#undef CN_ERR_MSG_
    }
    return "unknown error";
}

const char *cn_errname(int rc)
{
    switch (rc) {
    case CN_OK:
        return "CN_OK";
#define CN_ERR_NAME_(name, val, msg)                                           \
    case CN_##name:                                                            \
        return "CN_" #name;
        CN_ERR_MAP(CN_ERR_NAME_)
#undef CN_ERR_NAME_
    }
    return "CN_E?";
}

int cn_err_from_errno(int errnum)
{
    switch (errnum) {
    case 0:
        return CN_OK;
    case ENOMEM:
        return CN_ENOMEM;
    case ENOSPC:
    case EDQUOT:
        return CN_ENOSPC;
    case ENOENT:
        return CN_ENOTFOUND;
    case EEXIST:
        return CN_EEXIST;
    case EINVAL:
        return CN_EINVAL;
    case EAGAIN:
        return CN_EAGAIN;
    case EACCES:
    case EPERM:
    case EROFS:
        return CN_EACCES;
    case EBUSY:
        return CN_EBUSY;
    case ETIMEDOUT:
        return CN_ETIMEDOUT;
    case ECONNREFUSED:
        return CN_ECONNREFUSED;
    case EFBIG:
    case E2BIG:
        return CN_ETOOBIG;
    default:
        return CN_EIO;
    }
}
