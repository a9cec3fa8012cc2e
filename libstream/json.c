/* JSON text with shortest round-trip floats. See flm_json.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flm_json.h"

const char *flm_json_unknown_key(const json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        const char *const *a = allowed;
        while (*a && strcmp(*a, key))
            a++;
        if (!*a)
            return key;
    }
    return NULL;
}

void flm_json_fmt_double(char *buf, size_t size, double v)
{
    if (!isfinite(v)) {
        snprintf(buf, size, "null");
        return;
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, v);
        if (prec == 17 || strtod(buf, NULL) == v)
            break;
    }
}

int flm_json_dumpf(const json_t *v, FILE *f)
{
    char num[40];
    if (!v) { /* a json_pack that failed (a string that is not UTF-8) */
        fputs("null", f);
        return ferror(f) ? -1 : 0;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *m;
        int first = 1;
        fputc('{', f);
        json_object_foreach((json_t *)v, key, m)
        {
            json_t *k = json_string(key);
            if (!first)
                fputc(',', f);
            first = 0;
            json_dumpf(k, f, JSON_ENCODE_ANY);
            json_decref(k);
            fputc(':', f);
            flm_json_dumpf(m, f);
        }
        fputc('}', f);
        break;
    }
    case JSON_ARRAY:
        fputc('[', f);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                fputc(',', f);
            flm_json_dumpf(json_array_get(v, i), f);
        }
        fputc(']', f);
        break;
    case JSON_REAL:
        flm_json_fmt_double(num, sizeof num, json_real_value(v));
        fputs(num, f);
        if (!strpbrk(num, ".eEn")) /* integral: stays a float */
            fputs(".0", f);
        break;
    default:
        json_dumpf(v, f, JSON_ENCODE_ANY);
    }
    return ferror(f) ? -1 : 0;
}

char *flm_json_dumps(const json_t *v)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return NULL;
    int rc = flm_json_dumpf(v, f);
    if (fclose(f) != 0 || rc < 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
