/* The dataset report page: aggregates computed in SQL (fast on million-sample indexes), embedded
 * as JSON, drawn as SVG charts (each bar's numbers in its tooltip) with their tables folded under
 * them; histogram bins chosen from the data; the dialog figures of flm index stats; a sample
 * browser linking to timeline pages. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"

extern const char flm_asset_flm_css[];

typedef struct rows {
    json_t *arr;
    int as_numbers; /* numeric-looking values become JSON numbers */
} rows;

static void on_row(void *user, int n, const char *const *names, const char *const *vals)
{
    rows *r = user;
    json_t *row = json_array();
    for (int i = 0; i < n; i++) {
        const char *v = vals[i];
        char *end = NULL;
        double d = v ? strtod(v, &end) : 0;
        if (!v)
            json_array_append_new(row, json_null());
        else if (r->as_numbers && end && *end == 0 && end != v)
            json_array_append_new(row, json_real(d));
        else
            json_array_append_new(row, json_string(v));
    }
    (void)names;
    json_array_append_new(r->arr, row);
}

static json_t *query(flm_index *idx, const char *sql, int numbers, flm_error *err, int *rc)
{
    rows r = {json_array(), numbers};
    if (*rc == 0)
        *rc = flm_index_query(idx, sql, on_row, &r, err);
    return r.arr;
}

static void cell(FILE *f, json_t *v)
{
    if (json_is_string(v)) {
        fputs("<td>", f);
        html_escape(f, json_string_value(v));
    } else if (json_is_number(v)) {
        double d = json_number_value(v);
        if (d == (double)(long long)d)
            fprintf(f, "<td class=\"num\">%lld", (long long)d);
        else
            fprintf(f, "<td class=\"num\">%.4g", d);
    } else {
        fputs("<td class=\"muted\">-", f);
    }
    fputs("</td>", f);
}

static void table(FILE *f, const char *id, const char *const *head, json_t *rows_)
{
    fprintf(f, "<table id=\"%s\"><tr>", id);
    for (const char *const *h = head; *h; h++)
        fprintf(f, "<th>%s</th>", *h);
    fputs("</tr>\n", f);
    size_t i;
    json_t *row;
    json_array_foreach(rows_, i, row)
    {
        fputs("<tr>", f);
        size_t j;
        json_t *v;
        json_array_foreach(row, j, v) cell(f, v);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

/* A horizontal bar chart of rows (label column lc, value column vc); each bar's tooltip gives
 * its label, value (fmt) and, when nc >= 0, the sample count of column nc. */
static void hbars(FILE *f, const char *id, json_t *rows_, size_t lc, size_t vc, int nc,
                  const char *unit)
{
    size_t n = json_array_size(rows_), i;
    double top = 0;
    json_t *row;
    json_array_foreach(rows_, i, row) top = fmax(top, json_number_value(json_array_get(row, vc)));
    int h = 20 * (int)n + 4;
    fprintf(f, "<svg class=\"chart\" id=\"%s\" width=\"640\" height=\"%d\" role=\"img\">\n", id, h);
    json_array_foreach(rows_, i, row)
    {
        json_t *l = json_array_get(row, lc);
        double v = json_number_value(json_array_get(row, vc));
        double w = top > 0 ? 360.0 * v / top : 0;
        fputs("<g class=\"bar\"><title>", f);
        html_escape(f, json_is_string(l) ? json_string_value(l) : "-");
        fprintf(f, ": %.6g %s", v, unit);
        if (nc >= 0)
            fprintf(f, " (%lld samples)",
                    (long long)json_number_value(json_array_get(row, (size_t)nc)));
        fprintf(f, "</title><text x=\"206\" y=\"%zu\" text-anchor=\"end\">", 20 * i + 15);
        html_escape(f, json_is_string(l) ? json_string_value(l) : "-");
        fprintf(f,
                "</text><rect x=\"212\" y=\"%zu\" width=\"%.1f\" height=\"15\"/>"
                "<text x=\"%.1f\" y=\"%zu\">%.4g</text></g>\n",
                20 * i + 3, w, 216 + w, 20 * i + 15, v);
    }
    fputs("</svg>\n", f);
}

/* A column chart of a histogram: rows [bin start, count], bins of width step; each column's
 * tooltip gives its range and count. */
static void columns(FILE *f, const char *id, json_t *rows_, double step, const char *unit)
{
    size_t n = json_array_size(rows_), i;
    double top = 0, a0 = json_number_value(json_array_get(json_array_get(rows_, 0), 0));
    json_t *row;
    json_array_foreach(rows_, i, row) top = fmax(top, json_number_value(json_array_get(row, 1)));
    /* empty bins between the first and the last are drawn empty: position by bin index */
    double last = n ? json_number_value(json_array_get(json_array_get(rows_, n - 1), 0)) : a0;
    long n_bins = n ? lround((last - a0) / step) + 1 : 0;
    double cw = n_bins ? fmin(40.0, 600.0 / (double)n_bins) : 40;
    long every = (long)fmax(1, ceil(60 / cw));
    fprintf(f, "<svg class=\"chart\" id=\"%s\" width=\"%.0f\" height=\"150\" role=\"img\">\n", id,
            cw * (double)n_bins + 40);
    json_array_foreach(rows_, i, row)
    {
        double a = json_number_value(json_array_get(row, 0)),
               c = json_number_value(json_array_get(row, 1));
        double h = top > 0 ? 110.0 * c / top : 0, x = 4 + cw * (double)lround((a - a0) / step);
        fprintf(f,
                "<g class=\"bar\"><title>%.6g to %.6g %s: %lld samples</title>"
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/></g>\n",
                a, a + step, unit, (long long)c, x, 120 - h, fmax(1, cw - 2), h);
    }
    for (long k = 0; k < n_bins; k += every)
        fprintf(f, "<text x=\"%.1f\" y=\"136\">%.4g</text>\n", 4 + cw * (double)k,
                a0 + (double)k * step);
    fprintf(f, "<text x=\"4\" y=\"149\">%s (bins of %.4g)</text></svg>\n", unit, step);
}

/* A round bin width (1, 2 or 5 times a power of ten) giving about 20 bins over [lo, hi]. */
static double nice_step(double lo, double hi)
{
    double raw = (hi > lo ? hi - lo : fmax(fabs(lo), 1.0)) / 20; /* one value: bins of ~5 % */
    double p = pow(10, floor(log10(raw)));
    return raw <= p ? p : raw <= 2 * p ? 2 * p : raw <= 5 * p ? 5 * p : 10 * p;
}

/* The histogram of a numeric SQL expression over samples (WHERE cond) with bins from the data:
 * {"step": w, "bins": [[start, count], ...]}. */
static json_t *histogram(flm_index *idx, const char *expr, const char *cond, flm_error *err,
                         int *rc)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT min(%s), max(%s) FROM samples WHERE %s", expr, expr, cond);
    json_t *mm = query(idx, sql, 1, err, rc), *r0 = json_array_get(mm, 0);
    double lo = json_number_value(json_array_get(r0, 0)),
           hi = json_number_value(json_array_get(r0, 1));
    json_decref(mm);
    double step = nice_step(lo, hi), base = floor(lo / step) * step;
    snprintf(sql, sizeof sql,
             "SELECT %.17g + CAST((%s - %.17g) / %.17g AS INT) * %.17g, count(*) FROM samples "
             "WHERE %s GROUP BY 1 ORDER BY 1",
             base, expr, base, step, step, cond);
    return json_pack("{s:f,s:o}", "step", step, "bins", query(idx, sql, 1, err, rc));
}

/* The dialog figures of flm index stats as chart rows: [name, value, samples]. */
static json_t *dialog_figures(const flm_index_dialog_report *r)
{
    double aug = r->n_augmented > 0 ? (double)r->n_augmented : 1;
    int64_t moved = r->n_interrupts + r->n_backchannels;
    json_t *rates =
        json_pack("[[s,f,I],[s,f,I],[s,f,I],[s,f,I],[s,f,I]]", "interruption rate",
                  r->interruption_rate, (json_int_t)r->n_dialogs, "back-channels of moved turns",
                  moved ? (double)r->n_backchannels / (double)moved : 0.0, (json_int_t)r->n_dialogs,
                  "noise share", (double)r->n_noise / aug, (json_int_t)r->n_augmented, "gain share",
                  (double)r->n_gain / aug, (json_int_t)r->n_augmented, "echo share",
                  (double)r->n_echo / aug, (json_int_t)r->n_augmented);
    json_t *reactions = json_array();
    for (int32_t i = 0; i < r->n_reactions; i++) {
        char label[32];
        snprintf(label, sizeof label, "%.3g s", r->reaction_s[i]);
        json_array_append_new(reactions,
                              json_pack("[s,I]", label, (json_int_t)r->reaction_count[i]));
    }
    return json_pack("{s:o,s:o,s:I,s:I,s:I,s:I,s:f}", "rates", rates, "reactions", reactions,
                     "interrupts", (json_int_t)r->n_interrupts, "backchannels",
                     (json_int_t)r->n_backchannels, "cuts", (json_int_t)r->n_cuts, "overlaps",
                     (json_int_t)r->n_overlaps, "mean_overlap_s", r->mean_overlap_s);
}

int html_report(FILE *f, flm_index *idx, const char *pages_dir, int n_pages, flm_error *err)
{
    int rc = 0;
    json_t *d = json_object();
    json_object_set_new(d, "dataset", json_string(flm_index_path(idx)));
    json_object_set_new(
        d, "totals",
        query(idx,
              "SELECT (SELECT count(*) FROM samples), "
              "round(coalesce((SELECT sum(duration_s) FROM samples), 0) / 3600.0, 3), "
              "coalesce((SELECT sum(n_frames) FROM samples), 0), (SELECT count(*) FROM shards), "
              "(SELECT count(*) FROM inputs WHERE status = 'quarantined')",
              1, err, &rc));
    static const char *groups[] = {"corpus", "language", "style", "stage"};
    json_t *by = json_object();
    for (int g = 0; g < 4; g++) {
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT coalesce(%s, '-'), count(*), round(sum(duration_s) / 3600.0, 3) "
                 "FROM samples GROUP BY 1 ORDER BY 3 DESC, 1",
                 groups[g]);
        json_object_set_new(by, groups[g], query(idx, sql, 1, err, &rc));
    }
    json_object_set_new(d, "by", by);
    json_object_set_new(d, "duration_hist", histogram(idx, "duration_s", "1", err, &rc));
    json_object_set_new(d, "token_rate_hist",
                        histogram(idx, "n_monologue / duration_s",
                                  "duration_s > 0 AND n_monologue IS NOT NULL", err, &rc));
    flm_index_dialog_report dr;
    if (rc == 0 && (rc = flm_index_dialog_stats(idx, &dr, err)) == 0 && dr.n_dialogs > 0)
        json_object_set_new(d, "dialogs", dialog_figures(&dr));
    json_object_set_new(d, "events",
                        query(idx,
                              "SELECT kind, count(*), count(DISTINCT sample_id), "
                              "round(avg(n_frames), 2), round(avg(value), 4) FROM events "
                              "GROUP BY kind ORDER BY 2 DESC",
                              1, err, &rc));
    json_object_set_new(
        d, "metadata_keys",
        query(idx,
              "SELECT j.key, count(*), round(avg(CASE WHEN j.type IN ('integer', "
              "'real') THEN j.value END), 4) FROM samples, json_each(samples.metadata)"
              " AS j GROUP BY j.key ORDER BY j.key LIMIT 200",
              1, err, &rc));
    json_object_set_new(d, "quarantine",
                        query(idx,
                              "SELECT key, path, stage, error FROM inputs WHERE status = "
                              "'quarantined' ORDER BY key LIMIT 1000",
                              0, err, &rc));
    json_object_set_new(d, "samples",
                        query(idx,
                              "SELECT s.sample_key, s.corpus, s.style, s.language, "
                              "round(s.duration_s, 2), sh.path, s.record FROM samples s JOIN "
                              "shards sh ON sh.id = s.shard_id ORDER BY s.id LIMIT 1000",
                              0, err, &rc));
    if (rc < 0) {
        json_decref(d);
        return rc;
    }
    json_t *tot = json_array_get(json_object_get(d, "totals"), 0);
    fprintf(f,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
            "<title>flmstream dataset report</title>\n<style>\n%s</style></head>\n<body>\n"
            "<h1>Dataset report</h1>\n<p class=\"muted\">",
            flm_asset_flm_css);
    html_escape(f, flm_index_path(idx));
    fprintf(f, "</p>\n<table id=\"totals\"><tr><th>samples</th><th>hours</th><th>frames</th>"
               "<th>shards</th><th>quarantined inputs</th></tr>\n<tr>");
    size_t j;
    json_t *v;
    json_array_foreach(tot, j, v) cell(f, v);
    fputs("</tr></table>\n", f);
    static const char *gh[] = {"value", "samples", "hours", NULL};
    for (int g = 0; g < 4; g++) {
        char id[32];
        snprintf(id, sizeof id, "by-%s", groups[g]);
        fprintf(f, "<h2>hours by %s</h2>\n", groups[g]);
        json_t *rws = json_object_get(by, groups[g]);
        char cid[40];
        snprintf(cid, sizeof cid, "chart-%s", groups[g]);
        hbars(f, cid, rws, 0, 2, 1, "h");
        fputs("<details><summary>numbers</summary>\n", f);
        table(f, id, gh, rws);
        fputs("</details>\n", f);
    }
    json_t *dg = json_object_get(d, "dialogs");
    if (dg) {
        fprintf(f,
                "<h2>dialogs</h2>\n<p class=\"muted\">%lld interruptions, %lld back-channels, "
                "%lld cuts, %lld overlaps; mean overlap %.3g s</p>\n",
                (long long)json_integer_value(json_object_get(dg, "interrupts")),
                (long long)json_integer_value(json_object_get(dg, "backchannels")),
                (long long)json_integer_value(json_object_get(dg, "cuts")),
                (long long)json_integer_value(json_object_get(dg, "overlaps")),
                json_number_value(json_object_get(dg, "mean_overlap_s")));
        hbars(f, "chart-dialog-rates", json_object_get(dg, "rates"), 0, 1, 2, "");
        fputs("<h3>reaction delays (interruptions)</h3>\n", f);
        hbars(f, "chart-reactions", json_object_get(dg, "reactions"), 0, 1, -1, "interruptions");
    }
    static const char *dh[] = {"duration from (s)", "samples", NULL};
    static const char *th[] = {"monologue tokens / s from", "samples", NULL};
    json_t *h1 = json_object_get(d, "duration_hist"), *h2 = json_object_get(d, "token_rate_hist");
    fputs("<h2>sample durations</h2>\n", f);
    columns(f, "chart-duration", json_object_get(h1, "bins"),
            json_number_value(json_object_get(h1, "step")), "seconds");
    fputs("<details><summary>numbers</summary>\n", f);
    table(f, "duration-hist", dh, json_object_get(h1, "bins"));
    fputs("</details>\n<h2>monologue token rate</h2>\n", f);
    columns(f, "chart-token-rate", json_object_get(h2, "bins"),
            json_number_value(json_object_get(h2, "step")), "tokens/s");
    fputs("<details><summary>numbers</summary>\n", f);
    table(f, "token-rate-hist", th, json_object_get(h2, "bins"));
    fputs("</details>\n", f);
    static const char *eh[] = {"event", "count", "samples", "mean frames", "mean value", NULL};
    fputs("<h2>events (interruptions, cuts, back-channels, ...)</h2>\n", f);
    table(f, "events", eh, json_object_get(d, "events"));
    static const char *mh[] = {"metadata key", "samples", "mean", NULL};
    fputs("<h2>metadata keys (augmentation and packing parameters)</h2>\n", f);
    table(f, "metadata-keys", mh, json_object_get(d, "metadata_keys"));
    static const char *qh[] = {"input", "path", "stage", "error", NULL};
    fputs("<h2>quarantined inputs</h2>\n", f);
    table(f, "quarantine", qh, json_object_get(d, "quarantine"));
    fputs("<h2>samples</h2>\n<p class=\"muted\">The first 1000 samples; filter: <input "
          "id=\"filter\" placeholder=\"key, corpus or style\"></p>\n<table id=\"samples\"><tr>"
          "<th>sample</th><th>corpus</th><th>style</th><th>language</th><th>seconds</th>"
          "<th>shard</th><th>record</th></tr>\n",
          f);
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(d, "samples"), i, row)
    {
        fputs("<tr>", f);
        if (pages_dir && (int)i < n_pages) {
            fprintf(f, "<td><a href=\"%s/%zu.html\">", pages_dir, i);
            html_escape(f, json_string_value(json_array_get(row, 0)));
            fputs("</a></td>", f);
        } else {
            cell(f, json_array_get(row, 0));
        }
        for (size_t k = 1; k < json_array_size(row); k++)
            cell(f, json_array_get(row, k));
        fputs("</tr>\n", f);
    }
    char *data = json_dumps(d, JSON_COMPACT | JSON_ESCAPE_SLASH);
    fprintf(f, "</table>\n<script type=\"application/json\" id=\"flm-data\">%s</script>\n",
            data ? data : "{}");
    fputs("<script>\n"
          "document.getElementById('filter').addEventListener('input', function (e) {\n"
          "  const q = e.target.value.toLowerCase();\n"
          "  for (const tr of document.querySelectorAll('#samples tr:not(:first-child)'))\n"
          "    tr.style.display = tr.textContent.toLowerCase().includes(q) ? '' : 'none';\n"
          "});\n</script>\n</body></html>\n",
          f);
    free(data);
    json_decref(d);
    return ferror(f) ? flm_error_set(err, FLM_EIO, "cannot write the report") : 0;
}
