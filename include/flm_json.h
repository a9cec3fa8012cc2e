/* flm_json.h - JSON text as flmstream writes it: compact, every float as the shortest text of
 * 15 to 17 significant digits that reads back as the same double ("0.42", not
 * "0.41999999999999998"), a float that happens to be integral still a float ("2.0"), non-finite
 * floats as null. What `--json` prints, what `flm inspect --json` and the index's metadata hold.
 *
 *     char *txt = flm_json_dumps(obj);          // free() it; NULL when out of memory
 *     flm_json_dumpf(obj, stdout);              // 0, or -1 on a write error
 *
 * Keys and strings are written by jansson (escaped, UTF-8). Reading: flm_json_unknown_key, the
 * check every strict parser of the project makes (an unknown key is an error, never ignored: a
 * typo must not silently drop a field). Ownership: v is only read.
 */
#ifndef FLM_JSON_H
#define FLM_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "flm_error.h"

/* Strict reading: the first key of obj that allowed (NULL-terminated) does not list, or NULL
 * when every key is allowed (or obj is not an object). Callers word the error (file, line, key
 * path) their way. */
FLM_API const char *flm_json_unknown_key(const json_t *obj, const char *const *allowed);

/* The shortest of %.15g, %.16g, %.17g that reads back as v; "null" when v is not finite. */
FLM_API void flm_json_fmt_double(char *buf, size_t size, double v);
FLM_API int flm_json_dumpf(const json_t *v, FILE *f);
FLM_API char *flm_json_dumps(const json_t *v);

#endif
