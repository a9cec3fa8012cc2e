/* flm_error.h - result codes and the error record every fallible call fills.
 *
 *     flm_error err = {0};
 *     flm_shard_reader *r = NULL;
 *     if (flm_shard_reader_open(&r, "a.flms", &err) < 0)
 *         fprintf(stderr, "flm: %s\n", err.msg);   // "a.flms: record 3: checksum mismatch ..."
 *
 * Fallible calls return 0 or a negative FLM_E* code and, when given a non-NULL flm_error, write
 * a message that names the file, the place (record, line, byte offset) and what was expected.
 * The error struct is plain data owned by the caller; nothing in it needs freeing.
 */
#ifndef FLM_ERROR_H
#define FLM_ERROR_H

#include <stdarg.h>

#if defined(__GNUC__)
#define FLM_API __attribute__((visibility("default")))
#define FLM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define FLM_API
#define FLM_PRINTF(a, b)
#endif

enum {
    FLM_OK = 0,
    FLM_EINVAL = -1,     /* bad argument or parameter value */
    FLM_ENOMEM = -2,     /* allocation failed */
    FLM_EIO = -3,        /* read/write/fsync/rename failed (errno in the message) */
    FLM_EFORMAT = -4,    /* input is not in the expected format (bad magic, version, syntax) */
    FLM_ECORRUPT = -5,   /* checksum mismatch or internally inconsistent data */
    FLM_ERANGE = -6,     /* index or value out of range */
    FLM_ENOTFOUND = -7,  /* file, record, key or tensor not found */
    FLM_EDB = -8,        /* SQLite error (its message is included) */
    FLM_EZSTD = -9,      /* zstd error (its message is included) */
    FLM_EAUDIO = -10,    /* FFmpeg error (its message is included) */
    FLM_EMISMATCH = -11, /* two things that must agree do not (profiles, index vs shard) */
    FLM_EBUSY = -12      /* another process holds the resource (a dataset being written) */
};

#define FLM_ERROR_MSG_SIZE 512

typedef struct flm_error {
    int code;                     /* 0 or a negative FLM_E* code */
    char msg[FLM_ERROR_MSG_SIZE]; /* human-readable, names file/place/value */
} flm_error;

/* Records code and a printf-style message in err (if non-NULL) and returns code. */
FLM_API int flm_error_set(flm_error *err, int code, const char *fmt, ...) FLM_PRINTF(3, 4);
FLM_API int flm_error_vset(flm_error *err, int code, const char *fmt, va_list ap) FLM_PRINTF(3, 0);
/* Prepends "prefix: " to an existing message (used to add a file name at a higher level). */
FLM_API int flm_error_prefix(flm_error *err, const char *fmt, ...) FLM_PRINTF(2, 3);
/* Short name of a code, e.g. "corrupt". */
FLM_API const char *flm_error_name(int code);

#endif
