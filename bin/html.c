#include "cli.h"
#include "flm_activity.h"
#include "flm_alloc.h"
#include "flm_audio.h"
#include "flm_util.h"
#include "html.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
 * ...], "user": [...]} (speak and listen side); NULL when it does not (a side that does not parse
 * is shown silent). */
static json_t *voices(const flm_sample *s)
{
    const char *keys[2] = {FLM_ACTIVITY_SPEAK, FLM_ACTIVITY_LISTEN}, *names[2] = {"model", "user"};
    if (!flm_sample_meta_get(s, keys[0]) && !flm_sample_meta_get(s, keys[1]))
        return NULL;
    uint8_t *act = flm_calloc((size_t)s->n_frames + 1, 1);
    json_t *o = json_object();
    for (int k = 0; act && k < 2; k++) {
        int have = flm_activity_of_sample(s, keys[k], act, NULL);
        if (have < 0)
            memset(act, 0, (size_t)s->n_frames);
        json_t *a = json_array();
        for (int32_t t = 0; have && t < s->n_frames;) {
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

/* data as base64 (caller frees with flm_free), NULL when out of memory. */
static char *base64(const uint8_t *data, size_t n)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = flm_malloc((n + 2) / 3 * 4 + 1), *q = out;
    for (size_t i = 0; out && i < n; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < n ? (uint32_t)data[i + 1] << 8 : 0) |
                     (i + 2 < n ? data[i + 2] : 0);
        *q++ = b64[v >> 18];
        *q++ = b64[v >> 12 & 63];
        *q++ = i + 1 < n ? b64[v >> 6 & 63] : '=';
        *q++ = i + 2 < n ? b64[v & 63] : '=';
    }
    if (out)
        *q = 0;
    return out;
}

/* x ([n][n_ch], 24 kHz) as an Ogg Opus data URI (FLM_AUDIO_OPUS_BITRATE per channel: the page
 * stays small), encoded through a temporary file. */
static int opus_data_uri(FILE *f, const float *x, int64_t n, int n_ch, int rate, flm_error *err)
{
    const char *dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char path[4096];
    snprintf(path, sizeof path, "%s/flm-page-audio-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0)
        return flm_error_set(err, FLM_EIO, "%s: cannot create a temporary file: %s", path,
                             strerror(errno));
    close(fd);
    char *data = NULL;
    size_t size = 0;
    int rc = flm_audio_write_file(path, FLM_AUDIO_OPUS, x, n, n_ch, rate, err);
    if (rc == 0)
        rc = flm_read_file(path, &data, &size, (size_t)1 << 30, err);
    unlink(path);
    if (rc < 0)
        return rc;
    char *b64 = base64((const uint8_t *)data, size);
    flm_free(data);
    if (!b64)
        return flm_error_set(err, FLM_ENOMEM, "page audio: out of memory");
    fprintf(f, "data:audio/ogg;base64,%s", b64);
    flm_free(b64);
    return 0;
}

/* The players: listen, speak, and both (listen left, speak right), one of them the timeline's
 * (the last one played: its position is the playhead). */
static int players(FILE *f, const html_audio *a, int rate, flm_error *err)
{
    float *both = flm_malloc((size_t)a->n_samples * 2 * sizeof *both);
    if (!both)
        return flm_error_set(err, FLM_ENOMEM, "page audio: out of memory");
    for (int64_t i = 0; i < a->n_samples; i++)
        both[2 * i] = a->listen[i], both[2 * i + 1] = a->speak[i];
    const char *name[3] = {"mixed", "listen", "speak"};
    const float *x[3] = {both, a->listen, a->speak};
    int rc = 0;
    fprintf(f, "<div id=\"players\">");
    for (int k = 0; k < 3 && rc == 0; k++) {
        fprintf(
            f,
            "<span class=\"player\">%s%s <audio controls preload=\"auto\" id=\"audio-%s\" src=\"",
            name[k], k ? "" : " (listen left, speak right)", name[k]);
        rc = opus_data_uri(f, x[k], a->n_samples, k ? 1 : 2, rate, err);
        fprintf(f, "\"></audio></span>\n");
    }
    fprintf(f, "<button id=\"play-selection\" disabled>play selection</button> <span "
               "id=\"selection\" class=\"muted\">(drag on the time axis to select; click a lane "
               "to seek)</span></div>\n");
    flm_free(both);
    return rc;
}

/* What a metadata key means (docs/dialogs.md, conversations.md, audio.md, packing.md, views.md),
 * shown on hover; NULL for a key not listed (its group's title is shown). */
static const char *meta_help(const char *key)
{
    static const char *const help[][2] = {
        {"dialog.format",
         "the stream layout: arrt (ASR-Response-TTS), rtts (Response-TTS), rtts-free"},
        {"dialog.turns", "turns in the dialog"},
        {"dialog.user_turns", "user turns"},
        {"dialog.model_turns", "model turns"},
        {"dialog.eligible", "model turns followed by a user turn (may be interrupted)"},
        {"dialog.interrupts", "user turns moved into the model's speech that made it stop"},
        {"dialog.backchannels", "user sounds shorter than the reaction time: the model spoke on"},
        {"dialog.dropped_tokens", "response tokens after a cut, replaced by <wait>"},
        {"dialog.conflicts", "text that could not be placed where the timing asked"},
        {"dialog.reaction_frames", "frames from the user's onset to the model's cut"},
        {"dialog.timing", "where turn times came from: the manifest or drawn gaps"},
        {"conversation.model_side", "the recording's channel the model speaks on"},
        {"conversation.model_channel", "its index in the file"},
        {"conversation.user_id", "the other side's sentences' line id"},
        {"conversation.part", "this part of the recording (cut at the model's pauses)"},
        {"conversation.parts", "parts the recording was cut into"},
        {"conversation.start_frame", "where this part starts in the recording"},
        {"conversation.short_leads", "sentences whose text could not lead their speech fully"},
        {"conversation.split_user", "1 if a user sentence runs across the cut"},
        {"conversation.overlaps", "overlaps of the two sides in this part"},
        {"aug.gain", "1 if the user gain was applied"},
        {"aug.gain_db", "the drawn user gain, dB"},
        {"aug.noise", "1 if noise was added to the listen side"},
        {"aug.noise_plan", "noise segments: start+n:clip@offset:level dB"},
        {"aug.echo", "1 if the model's speech leaks into the listen side"},
        {"aug.echo_gain", "the echo's gain"},
        {"aug.echo_delay_s", "the echo's delay, s"},
        {"aug.floor_raised", "utterances raised to the loudness floor"},
        {"aug.peak", "peak after augmentation (before clipping protection)"},
        {"aug.clipped_samples", "samples the clipping protection changed"},
        {FLM_ACTIVITY_SPEAK, "the model's speech runs START+LENGTH (frames), before encoding"},
        {FLM_ACTIVITY_LISTEN, "the user's speech runs START+LENGTH (frames), before augmentation"},
        {"pack.pairs", "(speech, sentence) pairs packed"},
        {"pack.speech_frames", "frames of speech in the sample"},
        {"pack.text_overruns", "sentences whose text ran past the next speech"},
        {"pack.words", "words placed (word-level layouts)"},
        {"pack.words_shifted", "words moved later to free their frame"},
        {"pack.word_lag", "frames a word's text trails its speech"},
        {"pack.layout", "the sample's layout, one line per pair"},
    };
    for (size_t i = 0; i < sizeof help / sizeof *help; i++)
        if (!strcmp(help[i][0], key))
            return help[i][1];
    return NULL;
}

/* Metadata keys by their prefix: what the packer, the dialog timeline or the augmentation
 * recorded; each group folded, each key explained on hover. */
static void metadata(FILE *f, const flm_sample *s)
{
    static const struct {
        const char *prefix, *title;
    } groups[] = {{"dialog.", "dialog (timeline, turns, interruptions)"},
                  {"conversation.", "conversation (recorded two-channel call)"},
                  {"aug.", "augmentation of the listen side"},
                  {"activity.", "who speaks when (frame runs START+LENGTH)"},
                  {"pack.", "packing"},
                  {"", "other"}};
    int done[4096] = {0};
    for (size_t g = 0; g < sizeof groups / sizeof *groups; g++) {
        int n = 0;
        for (int32_t i = 0; i < s->n_meta && i < 4096; i++) {
            const flm_meta *m = &s->meta[i];
            if (done[i] || strncmp(m->key, groups[g].prefix, strlen(groups[g].prefix)) != 0)
                continue;
            if (n++ == 0)
                fprintf(f, "<details class=\"meta\"><summary>%s</summary>\n<table>\n",
                        groups[g].title);
            done[i] = 1;
            const char *h = meta_help(m->key);
            fprintf(f, "<tr title=\"");
            html_escape(f, h ? h : groups[g].title);
            fprintf(f, "\"><th>");
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
        if (n)
            fprintf(f, "</table></details>\n");
    }
}

/* "spec": both sides' spectrograms (spectrogram.c) as base64 bytes [column][band]. */
static int add_spectrograms(json_t *o, const html_audio *a, const flm_sample *s,
                            const flm_profiles *p)
{
    size_t size = (size_t)s->n_frames * HTML_SPEC_PER_FRAME * HTML_SPEC_BANDS;
    uint8_t *bytes = flm_malloc(size ? size : 1);
    json_t *spec =
        json_pack("{s:i,s:i}", "per_frame", HTML_SPEC_PER_FRAME, "bands", HTML_SPEC_BANDS);
    const char *name[2] = {"listen", "speak"};
    const float *x[2] = {a->listen, a->speak};
    int rc = bytes && spec ? 0 : -1;
    for (int k = 0; k < 2 && rc == 0; k++) {
        char *b64 = NULL;
        rc = spectrogram(x[k], a->n_samples, p->codec.sample_rate, s->n_frames,
                         p->codec.samples_per_frame, bytes) == 0 &&
                     (b64 = base64(bytes, size)) != NULL
                 ? json_object_set_new(spec, name[k], json_string(b64))
                 : -1;
        flm_free(b64);
    }
    flm_free(bytes);
    if (rc == 0)
        return json_object_set_new(o, "spec", spec);
    json_decref(spec);
    return -1;
}

int html_timeline(FILE *f, const flm_sample *s, const flm_profiles *p, const char *source,
                  const flm_tokenizer *tok, const html_audio *audio)
{
    flm_error e = {0}, *err = &e;
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
    if (audio && audio->listen && audio->speak && add_spectrograms(o, audio, s, p) < 0) {
        json_decref(o);
        return -1;
    }
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
    fprintf(f, " &middot; %d frames, %.2f s</p>\n", s->n_frames, s->n_frames * frame_s);
    int rc = 0;
    if (audio && audio->listen && audio->speak) {
        double secs = (double)audio->n_samples / p->codec.sample_rate;
        if (secs <= HTML_MAX_AUDIO_S)
            rc = players(f, audio, p->codec.sample_rate, err);
        else
            fprintf(f,
                    "<p class=\"muted\">%.0f s is too long to embed players (limit %d s): "
                    "listen with <code>flm render</code>.</p>\n",
                    secs, HTML_MAX_AUDIO_S);
    }
    fprintf(f, "<div class=\"controls\"><button id=\"zoom-out\">&minus;</button> "
               "<button id=\"zoom-in\">+</button> <span id=\"zoom\"></span> <span class=\"muted\">"
               "(ctrl + wheel zooms; scroll sideways; hover for details)</span></div>\n"
               "<div id=\"scroller\"><div id=\"canvas\"></div></div>\n");
    fprintf(f, "<details class=\"meta\" open><summary>sample</summary>\n<table id=\"summary\">\n");
    const char *keys[5] = {"style", "stage", "language", "corpus", "speakers"};
    const char *vals[5] = {s->style, s->stage, s->language, s->corpus, s->speakers};
    for (int i = 0; i < 5; i++) {
        fprintf(f, "<tr><th>%s</th><td>", keys[i]);
        html_escape(f, vals[i] ? vals[i] : "-");
        fprintf(f, "</td></tr>\n");
    }
    fprintf(f, "</table></details>\n");
    metadata(f, s);
    fprintf(f, "<script type=\"application/json\" id=\"flm-data\">%s</script>\n", data);
    fprintf(f, "<script>\n%s</script>\n</body></html>\n", flm_asset_timeline_js);
    free(data);
    if (rc < 0)
        cli_error("%s: %s", s->id, err->msg);
    return rc < 0 || ferror(f) ? -1 : 0;
}
