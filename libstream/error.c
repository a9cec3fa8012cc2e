#include "flm_error.h"

#include <stdio.h>
#include <string.h>

int flm_error_vset(flm_error *err, int code, const char *fmt, va_list ap)
{
    if (err) {
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    }
    return code;
}

int flm_error_set(flm_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    flm_error_vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

int flm_error_prefix(flm_error *err, const char *fmt, ...)
{
    if (!err)
        return 0;
    char prefix[FLM_ERROR_MSG_SIZE], old[FLM_ERROR_MSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
    return err->code;
}

const char *flm_error_name(int code)
{
    switch (code) {
    case FLM_OK:
        return "ok";
    case FLM_EINVAL:
        return "invalid argument";
    case FLM_ENOMEM:
        return "out of memory";
    case FLM_EIO:
        return "I/O error";
    case FLM_EFORMAT:
        return "format error";
    case FLM_ECORRUPT:
        return "corrupt data";
    case FLM_ERANGE:
        return "out of range";
    case FLM_ENOTFOUND:
        return "not found";
    case FLM_EDB:
        return "database error";
    case FLM_EZSTD:
        return "zstd error";
    case FLM_EAUDIO:
        return "audio error";
    case FLM_EMISMATCH:
        return "mismatch";
    case FLM_EBUSY:
        return "busy";
    }
    return "unknown error";
}
