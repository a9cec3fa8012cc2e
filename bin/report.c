/* The dataset report page: aggregates computed in SQL (fast on million-sample indexes), embedded
 * as JSON, rendered as tables and bar histograms; a sample browser links to timeline pages. */
#include <jansson.h>
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

static void table(FILE *f, const char *id, const char *const *head, json_t *rows_, int bar_col,
                  double bar_max)
{
    fprintf(f, "<table id=\"%s\"><tr>", id);
    for (const char *const *h = head; *h; h++)
        fprintf(f, "<th>%s</th>", *h);
    if (bar_col >= 0)
        fputs("<th></th>", f);
    fputs("</tr>\n", f);
    size_t i;
    json_t *row;
    json_array_foreach(rows_, i, row)
    {
        fputs("<tr>", f);
        size_t j;
        json_t *v;
        json_array_foreach(row, j, v) cell(f, v);
        if (bar_col >= 0) {
            double x = json_number_value(json_array_get(row, (size_t)bar_col));
            fprintf(f, "<td><span class=\"bar\" style=\"width:%.0fpx\"></span></td>",
                    bar_max > 0 ? 300.0 * x / bar_max : 0);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

static double col_max(json_t *rows_, size_t col)
{
    double m = 0;
    size_t i;
    json_t *row;
    json_array_foreach(rows_, i, row)
    {
        double x = json_number_value(json_array_get(row, col));
        m = x > m ? x : m;
    }
    return m;
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
    json_object_set_new(d, "duration_hist",
                        query(idx,
                              "SELECT CAST(duration_s / 30 AS INT) * 30, count(*) FROM samples "
                              "GROUP BY 1 ORDER BY 1",
                              1, err, &rc));
    json_object_set_new(d, "token_rate_hist",
                        query(idx,
                              "SELECT CAST(n_monologue / duration_s * 2 AS INT) / 2.0, count(*) "
                              "FROM samples WHERE duration_s > 0 AND n_monologue IS NOT NULL "
                              "GROUP BY 1 ORDER BY 1",
                              1, err, &rc));
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
        fprintf(f, "<h2>by %s</h2>\n", groups[g]);
        json_t *rws = json_object_get(by, groups[g]);
        table(f, id, gh, rws, 2, col_max(rws, 2));
    }
    static const char *dh[] = {"duration from (s)", "samples", NULL};
    static const char *th[] = {"monologue tokens / s from", "samples", NULL};
    json_t *h1 = json_object_get(d, "duration_hist"), *h2 = json_object_get(d, "token_rate_hist");
    fputs("<h2>sample durations (30 s bins)</h2>\n", f);
    table(f, "duration-hist", dh, h1, 1, col_max(h1, 1));
    fputs("<h2>monologue token rate (0.5 tokens/s bins)</h2>\n", f);
    table(f, "token-rate-hist", th, h2, 1, col_max(h2, 1));
    static const char *eh[] = {"event", "count", "samples", "mean frames", "mean value", NULL};
    fputs("<h2>events (interruptions, cuts, back-channels, ...)</h2>\n", f);
    table(f, "events", eh, json_object_get(d, "events"), -1, 0);
    static const char *mh[] = {"metadata key", "samples", "mean", NULL};
    fputs("<h2>metadata keys (augmentation and packing parameters)</h2>\n", f);
    table(f, "metadata-keys", mh, json_object_get(d, "metadata_keys"), -1, 0);
    static const char *qh[] = {"input", "path", "stage", "error", NULL};
    fputs("<h2>quarantined inputs</h2>\n", f);
    table(f, "quarantine", qh, json_object_get(d, "quarantine"), -1, 0);
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
