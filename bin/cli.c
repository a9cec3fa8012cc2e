#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flm_alloc.h"
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

/* The entry whose name (or one of its comma-separated aliases) is a[0..n). */
static const cli_option *find_option(const cli_command *c, const char *a, size_t n)
{
    for (const cli_option *const *t = c->opts; t && *t; t++)
        for (const cli_option *o = *t; o->name; o++)
            for (const char *p = o->name; *p;) {
                size_t k = strcspn(p, ",");
                if (k == n && !strncmp(p, a, n))
                    return o;
                p += k;
                p += strspn(p, ", ");
            }
    return NULL;
}

/* A value for o; a list holds at most argc values. */
static int take_value(const cli_command *c, const cli_option *o, const char *v, int argc)
{
    if (o->list) {
        if (!o->list->v && !(o->list->v = flm_calloc((size_t)argc, sizeof *o->list->v)))
            return cli_usage(c->name, "out of memory");
        o->list->v[o->list->n++] = v;
    } else if (o->value) {
        *o->value = v;
    }
    return CLI_PARSED;
}

int cli_parse(const cli_command *c, int argc, char **argv, const char **args, int *n_args)
{
    int n = 0, options = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!options || a[0] != '-' || !a[1]) {
            if (n == c->max_args)
                return cli_usage(c->name, "unexpected argument '%s'", a);
            args[n++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            options = 0;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cli_help(c, stdout);
            return 0;
        }
        const char *eq = a[1] == '-' ? strchr(a, '=') : NULL;
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const cli_option *o = find_option(c, a, len);
        if (!o)
            return cli_usage(c->name, "unknown option '%.*s'", (int)len, a);
        if (!o->arg) {
            if (eq)
                return cli_usage(c->name, "option %.*s takes no value", (int)len, a);
            if (o->flag)
                *o->flag = 1;
            continue;
        }
        if (!eq && i + 1 >= argc)
            return cli_usage(c->name, "option %s needs a value (%s)", a, o->arg);
        int rc = take_value(c, o, eq ? eq + 1 : argv[++i], argc);
        if (rc != CLI_PARSED)
            return rc;
    }
    *n_args = n;
    return CLI_PARSED;
}

void cli_help(const cli_command *c, FILE *f)
{
    if (c->usage)
        c->usage(f);
    if (c->text)
        fputs(c->text, f);
    int width = 0, any = 0; /* heads longer than 22 go on a line of their own */
    for (const cli_option *const *t = c->opts; t && *t; t++)
        for (const cli_option *o = *t; o->name; o++, any = 1) {
            int w = (int)strlen(o->name) + (o->arg ? 1 + (int)strlen(o->arg) : 0);
            if (w <= 22 && w > width)
                width = w;
        }
    if (!any)
        return;
    fprintf(f, "\noptions:\n");
    for (const cli_option *const *t = c->opts; t && *t; t++)
        for (const cli_option *o = *t; o->name; o++) {
            char head[128];
            snprintf(head, sizeof head, "%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
            if ((int)strlen(head) > width)
                fprintf(f, "  %s\n%*s", head, width + 4, "");
            else
                fprintf(f, "  %-*s  ", width, head);
            /* the help's own line breaks continue under its first line */
            for (const char *p = o->help; *p;) {
                size_t k = strcspn(p, "\n");
                fprintf(f, "%.*s\n", (int)k, p);
                p += k;
                if (*p && *++p)
                    fprintf(f, "%*s", width + 4, "");
            }
            if (!*o->help)
                fputc('\n', f);
        }
}

int cli_dispatch(const char *cmd, void (*usage)(FILE *f), const cli_subcommand *subs, int argc,
                 char **argv)
{
    if (argc < 2) { /* a usage mistake like any other: one line, the choices in it */
        char names[256] = "";
        size_t len = 0;
        for (const cli_subcommand *s = subs; s->name && len < sizeof names; s++)
            len +=
                (size_t)snprintf(names + len, sizeof names - len, "%s%s", len ? ", " : "", s->name);
        return cli_usage(cmd, "missing subcommand (one of: %s)", names);
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(stdout);
        return 0;
    }
    for (const cli_subcommand *s = subs; s->name; s++)
        if (!strcmp(argv[1], s->name))
            return s->fn(argc - 1, argv + 1);
    return cli_usage(cmd, "unknown subcommand '%s'", argv[1]);
}

int cli_i64(const char *cmd, const char *opt, const char *text, int64_t min, int64_t max,
            int64_t *out)
{
    char *end;
    if (!text)
        return 0;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return cli_usage(cmd, "%s: expected an integer in [%lld, %lld], got '%s'", opt,
                         (long long)min, (long long)max, text);
    *out = v;
    return 0;
}

int cli_fraction(const char *cmd, const char *opt, const char *text, double *out)
{
    char *end;
    if (!text)
        return 0;
    double v = strtod(text, &end);
    if (end == text || *end || !(v >= 0 && v <= 1))
        return cli_usage(cmd, "%s: expected a fraction from 0 to 1, got '%s'", opt, text);
    *out = v;
    return 0;
}

int cli_choice(const char *cmd, const char *opt, const char *text, const char *const *names,
               int *out)
{
    char list[256] = "";
    if (!text)
        return 0;
    for (int i = 0; names[i]; i++) {
        if (!strcmp(text, names[i])) {
            *out = i;
            return 0;
        }
        size_t k = strlen(list);
        snprintf(list + k, sizeof list - k, "%s%s", i ? (names[i + 1] ? ", " : " or ") : "",
                 names[i]);
    }
    return cli_usage(cmd, "%s: expected %s, got '%s'", opt, list, text);
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
    return (cli_model_opts){.wtype = FLM_W_F32, .threads = 2};
}

int cli_model_opts_finish(const char *cmd, cli_model_opts *mo)
{
    if (mo->weights_text && (mo->wtype = flm_wtype_parse(mo->weights_text)) < 0)
        return cli_usage(cmd, "--weights must be f32, bf16, q8 or q4, got '%s'", mo->weights_text);
    if (mo->mmap)
        mo->load_flags = FLM_LM_LOAD_MAPPED;
    return cli_i64(cmd, "--threads", mo->threads_text, 1, 1024, &mo->threads);
}

int cli_parse_model(const char *cmd, void (*usage)(FILE *f), const cli_option *own,
                    cli_model_opts *mo, int argc, char **argv)
{
    const cli_option model[] = {CLI_MODEL_OPTIONS(mo, "the FLM-Audio checkpoint directory"), {0}};
    const cli_option *const tables[] = {model, own, NULL};
    const cli_command c = {cmd, usage, tables, 0, NULL};
    int n, rc = cli_parse(&c, argc, argv, NULL, &n);
    return rc != CLI_PARSED ? rc : cli_model_opts_finish(cmd, mo) ? 2 : CLI_PARSED;
}

FILE *cli_out_open(cli_out *o, const char *path)
{
    o->path = path;
    if ((size_t)snprintf(o->tmp, sizeof o->tmp, "%s.tmp-%ld", path, (long)getpid()) >=
        sizeof o->tmp) {
        errno = ENAMETOOLONG;
        return o->f = NULL;
    }
    return o->f = fopen(o->tmp, "w");
}

int cli_out_close(cli_out *o, int ok)
{
    if (!o->f)
        return -1;
    ok = !ferror(o->f) && ok;
    int e = ok ? 0 : EIO;
    if (fclose(o->f) != 0 && ok)
        ok = 0, e = errno;
    o->f = NULL;
    if (ok && rename(o->tmp, o->path) == 0)
        return 0;
    e = ok ? errno : e;
    unlink(o->tmp);
    errno = e;
    return -1;
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
