#include "flm_activity.h"
#include "flm_alloc.h"
#include "html.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern const char flm_asset_flm_css[];
extern const char flm_asset_timeline_js[];

void html_escape(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '&':
            fputs("&amp;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        default:
            fputc(*s, f);
        }
    }
}

/* Runs of equal state over the frames: [[start, length, state], ...]. */
static json_t *runs(const flm_sample *s,
                    const char *(*state)(const flm_sample *, const flm_profiles *, int32_t),
                    const flm_profiles *p)
{
    json_t *a = json_array();
    int32_t start = 0;
    for (int32_t t = 1; t <= s->n_frames; t++) {
        if (t < s->n_frames && strcmp(state(s, p, t), state(s, p, start)) == 0)
            continue;
        json_array_append_new(
            a, json_pack("[i,i,s]", (int)start, (int)(t - start), state(s, p, start)));
        start = t;
    }
    return a;
}

static const char *speak_state(const flm_sample *s, const flm_profiles *p, int32_t t)
{
    int32_t v = FLM_TOK(s, FLM_CH_SPEAK, t);
    if (FLM_CLS(s, FLM_CH_SPEAK, t) == FLM_LOSS_SEMANTIC)
        return "target";
    return v == p->codec.aud_empty || v == p->codec.aud_pad ? "empty" : "codes";
}

static const char *listen_state(const flm_sample *s, const flm_profiles *p, int32_t t)
{
    int32_t v = FLM_TOK(s, FLM_CH_LISTEN, t);
    return v == p->codec.aud_empty || v == p->codec.aud_pad ? "empty" : "codes";
}

/* Who speaks when (flm_activity.h), when the sample carries it: {"model": [[start, length],
 * ...], "user": [...]} (speak and listen side); NULL when it does not (or it does not parse). */
static json_t *voices(const flm_sample *s)
{
    const char *keys[2] = {FLM_ACTIVITY_SPEAK, FLM_ACTIVITY_LISTEN}, *names[2] = {"model", "user"};
    const flm_meta *m[2] = {flm_sample_meta_get(s, keys[0]), flm_sample_meta_get(s, keys[1])};
    if (!m[0] && !m[1])
        return NULL;
    uint8_t *act = flm_calloc((size_t)s->n_frames + 1, 1);
    json_t *o = json_object();
    for (int k = 0; act && k < 2; k++) {
        if (m[k] && (m[k]->type != FLM_META_TEXT ||
                     flm_activity_parse(m[k]->s, s->n_frames, act, NULL) < 0))
            memset(act, 0, (size_t)s->n_frames);
        json_t *a = json_array();
        for (int32_t t = 0; m[k] && t < s->n_frames;) {
            int32_t u = t;
            while (u < s->n_frames && act[u] == act[t])
                u++;
            if (act[t])
                json_array_append_new(a, json_pack("[i,i]", (int)t, (int)(u - t)));
            t = u;
        }
        json_object_set_new(o, names[k], a);
    }
    flm_free(act);
    return o;
}

/* The page data: the sample, its text tokens, <wait> runs and activity runs. */
static json_t *timeline_object(const flm_sample *s, const flm_profiles *p, const flm_tokenizer *tok)
{
    char *sj = flm_sample_to_json(s, 0);
    json_t *sample = sj ? json_loads(sj, 0, NULL) : NULL;
    free(sj);
    if (!sample)
        return NULL;
    json_t *text = json_array(), *waits = json_array();
    int32_t wait_at = -1;
    for (int32_t t = 0; t <= s->n_frames; t++) {
        int32_t v = t < s->n_frames ? FLM_TOK(s, FLM_CH_TEXT, t) : -1;
        int is_wait = t < s->n_frames && v == p->vocab.text_wait;
        if (is_wait && wait_at < 0)
            wait_at = t;
        if (!is_wait && wait_at >= 0) {
            json_array_append_new(waits, json_pack("[i,i]", (int)wait_at, (int)(t - wait_at)));
            wait_at = -1;
        }
        if (t < s->n_frames && !is_wait) {
            const char *kind = v == p->vocab.text_asr      ? "asr"
                               : v == p->vocab.text_answer ? "answer"
                                                           : "tok";
            char *piece = NULL;
            size_t size = 0, cap = 0;
            json_t *pj = json_null();
            if (tok && !strcmp(kind, "tok") &&
                flm_tokenizer_decode(tok, &v, 1, FLM_TOKENIZER_LOSSY, &piece, &size, &cap, NULL) ==
                    0)
                pj = json_stringn(piece, size);
            flm_free(piece);
            json_array_append_new(text, json_pack("[i,i,s,o]", (int)t, (int)v, kind, pj));
        }
    }
    json_t *o = json_pack(
        "{s:o,s:i,s:f,s:o,s:o,s:o,s:o}", "sample", sample, "n_frames", (int)s->n_frames, "frame_s",
        (double)p->codec.samples_per_frame / p->codec.sample_rate, "text", text, "wait_runs", waits,
        "speak", runs(s, speak_state, p), "listen", runs(s, listen_state, p));
    json_t *v = voices(s);
    if (o && v)
        json_object_set_new(o, "voices", v);
    return o;
}

/* Peak |x| per frame, 0..100 relative to the side's loudest frame. */
static json_t *peaks(const float *x, int64_t n, int32_t n_frames, int32_t spf)
{
    json_t *a = json_array();
    float top = 1e-9f;
    for (int64_t i = 0; i < n; i++)
        top = fabsf(x[i]) > top ? fabsf(x[i]) : top;
    for (int32_t t = 0; t < n_frames; t++) {
        float m = 0;
        for (int64_t i = (int64_t)t * spf; i < (int64_t)(t + 1) * spf && i < n; i++)
            m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
        json_array_append_new(a, json_integer((json_int_t)lrintf(100.0f * m / top)));
    }
    return a;
}

/* A 16-bit mono WAV of x as a base64 data URI, written straight to f. */
static void wav_data_uri(FILE *f, const float *x, int64_t n, int rate)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint32_t data = (uint32_t)(2 * n);
    uint8_t h[44] = {'R', 'I', 'F', 'F', 0,  0, 0,   0,   'W', 'A', 'V', 'E', 'f', 'm', 't',
                     ' ', 16,  0,   0,   0,  1, 0,   1,   0,   0,   0,   0,   0,   0,   0,
                     0,   0,   2,   0,   16, 0, 'd', 'a', 't', 'a', 0,   0,   0,   0};
    uint32_t vals[4] = {36 + data, (uint32_t)rate, (uint32_t)rate * 2, data};
    int at[4] = {4, 24, 28, 40};
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 4; i++)
            h[at[k] + i] = (uint8_t)(vals[k] >> (8 * i));
    fputs("data:audio/wav;base64,", f);
    uint8_t tri[3];
    int fill = 0;
    for (int64_t i = -22; i < n; i++) { /* 22 two-byte units of header, then samples */
        uint8_t b2[2];
        if (i < 0) {
            b2[0] = h[2 * (i + 22)];
            b2[1] = h[2 * (i + 22) + 1];
        } else {
            float v = x[i] > 1 ? 1 : x[i] < -1 ? -1 : x[i];
            int16_t q = (int16_t)lrintf(v * 32767.0f);
            b2[0] = (uint8_t)q;
            b2[1] = (uint8_t)((uint16_t)q >> 8);
        }
        for (int k = 0; k < 2; k++) {
            tri[fill++] = b2[k];
            if (fill == 3) {
                fputc(b64[tri[0] >> 2], f);
                fputc(b64[(tri[0] & 3) << 4 | tri[1] >> 4], f);
                fputc(b64[(tri[1] & 15) << 2 | tri[2] >> 6], f);
                fputc(b64[tri[2] & 63], f);
                fill = 0;
            }
        }
    }
    if (fill) {
        if (fill == 1)
            tri[1] = 0;
        tri[2] = 0;
        fputc(b64[tri[0] >> 2], f);
        fputc(b64[(tri[0] & 3) << 4 | tri[1] >> 4], f);
        fputc(fill == 2 ? b64[(tri[1] & 15) << 2] : '=', f);
        fputc('=', f);
    }
}

int html_timeline(FILE *f, const flm_sample *s, const flm_profiles *p, const char *source,
                  const flm_tokenizer *tok, const html_audio *audio)
{
    json_t *o = timeline_object(s, p, tok);
    if (!o)
        return -1;
    if (audio && audio->listen && audio->speak) /* the waveform peaks of both sides */
        json_object_set_new(
            o, "waves",
            json_pack(
                "{s:o,s:o}", "listen",
                peaks(audio->listen, audio->n_samples, s->n_frames, p->codec.samples_per_frame),
                "speak",
                peaks(audio->speak, audio->n_samples, s->n_frames, p->codec.samples_per_frame)));
    char *data = json_dumps(o, JSON_COMPACT | JSON_ESCAPE_SLASH);
    json_decref(o);
    if (!data)
        return -1;
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>");
    html_escape(f, s->id);
    fprintf(f, " - flm inspect</title>\n<style>\n%s</style></head>\n<body>\n<h1>",
            flm_asset_flm_css);
    html_escape(f, s->id);
    fprintf(f, "</h1>\n<p class=\"muted\">");
    html_escape(f, source);
    double frame_s = (double)p->codec.samples_per_frame / p->codec.sample_rate;
    fprintf(f, "</p>\n<table id=\"summary\">\n");
    const char *keys[5] = {"style", "stage", "language", "corpus", "speakers"};
    const char *vals[5] = {s->style, s->stage, s->language, s->corpus, s->speakers};
    for (int i = 0; i < 5; i++) {
        fprintf(f, "<tr><th>%s</th><td>", keys[i]);
        html_escape(f, vals[i] ? vals[i] : "-");
        fprintf(f, "</td></tr>\n");
    }
    fprintf(f, "<tr><th>length</th><td>%d frames, %.2f s</td></tr>\n</table>\n", s->n_frames,
            s->n_frames * frame_s);
    if (s->n_meta) {
        fprintf(f, "<h2>metadata</h2>\n<table id=\"metadata\">\n");
        for (int32_t i = 0; i < s->n_meta; i++) {
            const flm_meta *m = &s->meta[i];
            fprintf(f, "<tr><th>");
            html_escape(f, m->key);
            fprintf(f, "</th><td>");
            if (m->type == FLM_META_INT)
                fprintf(f, "%lld", (long long)m->i);
            else if (m->type == FLM_META_REAL)
                fprintf(f, "%.6g", m->r);
            else
                html_escape(f, m->s);
            fprintf(f, "</td></tr>\n");
        }
        fprintf(f, "</table>\n");
    }
    if (audio && audio->listen && audio->speak) {
        double secs = (double)audio->n_samples / p->codec.sample_rate;
        fprintf(f, "<h2>audio (decoded by the codec)</h2>\n");
        if (secs <= 120) {
            const char *name[2] = {"listen", "speak"};
            const float *x[2] = {audio->listen, audio->speak};
            for (int k = 0; k < 2; k++) {
                fprintf(f, "<p>%s: <audio controls id=\"audio-%s\" src=\"", name[k], name[k]);
                wav_data_uri(f, x[k], audio->n_samples, p->codec.sample_rate);
                fprintf(f, "\"></audio></p>\n");
            }
        } else {
            fprintf(f,
                    "<p class=\"muted\">%.0f s is too long to embed players (limit 120 s): "
                    "listen with <code>flm render</code>.</p>\n",
                    secs);
        }
    }
    fprintf(f,
            "<h2>timeline</h2>\n<div class=\"controls\"><button id=\"zoom-out\">&minus;</button> "
            "<button id=\"zoom-in\">+</button> <span id=\"zoom\"></span> <span class=\"muted\">"
            "(ctrl + wheel zooms; scroll sideways; hover for details)</span></div>\n"
            "<div id=\"scroller\"><div id=\"canvas\"></div></div>\n");
    fprintf(f, "<script type=\"application/json\" id=\"flm-data\">%s</script>\n", data);
    fprintf(f, "<script>\n%s</script>\n</body></html>\n", flm_asset_timeline_js);
    free(data);
    return ferror(f) ? -1 : 0;
}
