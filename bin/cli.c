#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flm_index.h"
#include "flm_json.h"
#include "flm_lm.h"
#include "flm_quant.h"
#include "flm_util.h"

void cli_progress_start(cli_progress *p, const char *label, const char *unit, int64_t total)
{
    const char *env = getenv("FLM_PROGRESS");
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->start = p->last = flm_now();
    p->tty = isatty(2);
    p->enabled = !(env && strcmp(env, "0") == 0);
    p->last_decile = 0;
    p->scale = 1;
}

void cli_progress_start_scaled(cli_progress *p, const char *label, const char *unit, int64_t total,
                               double scale)
{
    cli_progress_start(p, label, unit, total);
    p->scale = scale;
}

/* "123" for counts, "1.25" for scaled amounts. */
static void fmt_amount(char *buf, size_t n, const cli_progress *p, double v)
{
    if (p->scale == 1)
        snprintf(buf, n, "%.0f", v);
    else
        snprintf(buf, n, "%.3g", v / p->scale);
}

static void fmt_time(char *buf, size_t n, double s)
{
    if (s < 0 || s > 1e7)
        snprintf(buf, n, "--:--");
    else if (s >= 3600)
        snprintf(buf, n, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
    else
        snprintf(buf, n, "%d:%02d", (int)s / 60, (int)s % 60);
}

void cli_progress_update(cli_progress *p, int64_t done)
{
    if (!p->enabled || p->total <= 0)
        return;
    double now = flm_now(), el = now - p->start;
    double rate = el > 0 ? (double)done / el : 0;
    char eta[32];
    fmt_time(eta, sizeof eta, rate > 0 ? (double)(p->total - done) / rate : -1);
    char d[32], t[32], r[32];
    fmt_amount(d, sizeof d, p, (double)done);
    fmt_amount(t, sizeof t, p, (double)p->total);
    fmt_amount(r, sizeof r, p, rate);
    if (p->scale == 1)
        snprintf(r, sizeof r, "%.1f", rate);
    if (p->tty) {
        if (now - p->last < 0.1 && done < p->total)
            return;
        p->last = now;
        int width = 30, fill = (int)(width * (double)done / (double)p->total);
        char bar[64];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = 0;
        fprintf(stderr, "\r%s [%s] %s/%s %s  %s/s  ETA %s ", p->label, bar, d, t, p->unit, r, eta);
    } else {
        int decile = (int)(10 * done / p->total);
        if (decile <= p->last_decile)
            return;
        p->last_decile = decile;
        fprintf(stderr, "%s: %s/%s %s (%d%%), %s/s, ETA %s\n", p->label, d, t, p->unit,
                (int)(100 * done / p->total), r, eta);
    }
}

void cli_progress_finish(cli_progress *p, int64_t done)
{
    if (!p->enabled || p->total <= 0)
        return;
    if (p->tty) {
        cli_progress_update(p, done);
        fputc('\n', stderr);
    }
}

const char *cli_opt(int argc, char **argv, int *i, const char *name, int *bad)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] != 0)
        return NULL;
    if (*i + 1 >= argc) {
        cli_error("option %s needs a value", name);
        *bad = 1;
        return NULL;
    }
    return argv[++*i];
}

int cli_parse_i64(const char *opt, const char *text, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max) {
        cli_error("%s: expected an integer in [%lld, %lld], got '%s'", opt, (long long)min,
                  (long long)max, text);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_fraction(const char *opt, const char *text, double *out)
{
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end || !(v >= 0 && v <= 1)) {
        cli_error("%s: expected a fraction from 0 to 1, got '%s'", opt, text);
        return -1;
    }
    *out = v;
    return 0;
}

typedef struct query_row {
    char *out;
    size_t size;
    int done;
} query_row;

static void on_first_row(void *user, int n_cols, const char *const *names,
                         const char *const *values)
{
    (void)names;
    query_row *q = user;
    if (q->done++)
        return;
    size_t k = 0;
    for (int c = 0; c < n_cols && k + 1 < q->size; c++)
        k += (size_t)snprintf(q->out + k, q->size - k, "%s%s", c ? "\t" : "",
                              values[c] ? values[c] : "");
}

int cli_query_row(struct flm_index *idx, const char *sql, char *out, size_t size,
                  struct flm_error *err)
{
    query_row q = {out, size, 0};
    out[0] = 0;
    return flm_index_query(idx, sql, on_first_row, &q, err);
}

int cli_json_value(const char *text, json_t **out)
{
    char *end;
    errno = 0;
    long long i = strtoll(text, &end, 10);
    if (*text && !*end && !errno && !isspace((unsigned char)*text)) {
        *out = json_integer(i);
        return 1;
    }
    double d = strtod(text, &end);
    if (*text && !*end && isfinite(d) && !isspace((unsigned char)*text) &&
        strspn(text, "+-0123456789.eE") == strlen(text)) {
        *out = json_real(d);
        return 2;
    }
    *out = json_string(text);
    return 0;
}

cli_model_opts cli_model_opts_default(void)
{
    return (cli_model_opts){NULL, FLM_W_F32, 0, 2};
}

int cli_model_opt(const char *cmd, int argc, char **argv, int *i, cli_model_opts *mo, int *bad)
{
    const char *v;
    if (!strcmp(argv[*i], "--mmap")) {
        mo->load_flags = FLM_LM_LOAD_MAPPED;
    } else if ((v = cli_opt(argc, argv, i, "--model", bad))) {
        mo->model = v;
    } else if ((v = cli_opt(argc, argv, i, "--weights", bad))) {
        if ((mo->wtype = flm_wtype_parse(v)) < 0) {
            cli_error("%s: --weights must be f32, bf16, q8 or q4, got '%s'", cmd, v);
            return -1;
        }
    } else if ((v = cli_opt(argc, argv, i, "--threads", bad))) {
        if (cli_parse_i64("--threads", v, 1, 64, &mo->threads) < 0)
            return -1;
    } else {
        return 0;
    }
    return 1;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "flm: %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nsee flm %s --help\n", cmd);
    return 2;
}

int cli_json_print(FILE *f, const json_t *v)
{
    int rc = flm_json_dumpf(v, f);
    fputc('\n', f);
    return rc;
}
