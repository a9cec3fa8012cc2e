#include "timeline.h"

#include <stdlib.h>
#include <string.h>

#include "flm_activity.h"
#include "flm_alloc.h"

static double frame_s(const flm_profiles *p, int32_t t)
{
    return t * (double)p->codec.samples_per_frame / p->codec.sample_rate;
}

static int count_lines(const char *s)
{
    int n = 1;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void print_summary(FILE *f, const flm_sample *s, const flm_profiles *p)
{
    fprintf(f, "sample    %s\n", s->id ? s->id : "(no id)");
    fprintf(f, "style     %-8s stage %-16s language %-4s corpus %s\n", s->style ? s->style : "-",
            s->stage ? s->stage : "-", s->language ? s->language : "-",
            s->corpus ? s->corpus : "-");
    fprintf(f, "speakers  %s\n", s->speakers ? s->speakers : "-");
    fprintf(f, "length    %d frames = %.2f s (content %.2f s)\n", s->n_frames,
            frame_s(p, s->n_frames), s->duration_s);
    int64_t counts[FLM_N_LOSS_CLASSES] = {0};
    for (size_t i = 0; i < (size_t)FLM_N_CHANNELS * (size_t)s->n_frames; i++)
        counts[s->loss_class[i]]++;
    fprintf(f, "classes  ");
    for (int c = 1; c < FLM_N_LOSS_CLASSES; c++)
        fprintf(f, " %s %lld", flm_loss_class_name(c), (long long)counts[c]);
    fprintf(f, "\n");
    if (s->n_meta) {
        fprintf(f, "metadata ");
        for (int32_t i = 0; i < s->n_meta; i++) {
            const flm_meta *m = &s->meta[i];
            if (m->type == FLM_META_INT)
                fprintf(f, " %s=%lld", m->key, (long long)m->i);
            else if (m->type == FLM_META_REAL)
                fprintf(f, " %s=%.6g", m->key, m->r);
            else if (strchr(m->s, '\n')) /* a table such as pack.layout: its size only */
                fprintf(f, " %s=<%d lines; --json shows it>", m->key, count_lines(m->s));
            else
                fprintf(f, " %s=\"%s\"", m->key, m->s);
        }
        fprintf(f, "\n");
    }
    for (int32_t i = 0; i < s->n_events; i++) {
        const flm_event *e = &s->events[i];
        fprintf(f, "event     %-12s frame %d (%.2f s), %d frames, value %.6g\n", e->kind, e->frame,
                frame_s(p, e->frame), e->n_frames, e->value);
    }
}

/* Who speaks when (flm_activity.h), when the sample carries it: rows "model" (speak side) and
 * "user" (listen side), '=' speech, 'X' both sides at once, ' ' neither. */
static void print_voices(FILE *f, const flm_sample *s, int32_t per, int width)
{
    const char *keys[2] = {FLM_ACTIVITY_SPEAK, FLM_ACTIVITY_LISTEN}, *names[2] = {"model", "user"};
    uint8_t *act = flm_calloc(2 * (size_t)s->n_frames, 1);
    int have = 0;
    for (int k = 0; act && k < 2; k++) {
        flm_error err = {0};
        int rc = flm_activity_of_sample(s, keys[k], act + (size_t)k * (size_t)s->n_frames, &err);
        if (rc < 0)
            fprintf(f, "  (%s)\n", err.msg);
        have |= rc > 0;
    }
    for (int k = 0; have && k < 2; k++) {
        const uint8_t *a = act + (size_t)k * (size_t)s->n_frames,
                      *o = act + (size_t)(1 - k) * (size_t)s->n_frames;
        fprintf(f, "  %-7s|", names[k]);
        for (int b = 0; b < width; b++) {
            int32_t t0 = b * per, t1 = t0 + per < s->n_frames ? t0 + per : s->n_frames;
            char c = ' ';
            for (int32_t t = t0; t < t1; t++)
                c = a[t] && o[t] ? 'X' : a[t] && c == ' ' ? '=' : c;
            fputc(c, f);
        }
        fprintf(f, "|\n");
    }
    flm_free(act);
}

/* One character per bucket of frames: what dominates that stretch of the channel group. */
static void print_overview(FILE *f, const flm_sample *s, const flm_profiles *p, int width)
{
    if (s->n_frames == 0)
        return;
    if (width > s->n_frames)
        width = s->n_frames;
    int32_t per = (s->n_frames + width - 1) / width;
    width = (s->n_frames + per - 1) / per;
    fprintf(
        f,
        "\noverview: 1 char = %d frames (%.2f s)   text: T mostly tokens, t some, w only <wait>   "
        "speak/listen: # speech target, - codes, . empty   model/user (who speaks): = speech, X "
        "both   "
        "events: ^\n",
        per, frame_s(p, per));
    const char *names[4] = {"text", "speak", "listen", "events"};
    for (int row = 0; row < 4; row++) {
        if (row == 1)
            print_voices(f, s, per, width);
        fprintf(f, "  %-7s|", names[row]);
        for (int b = 0; b < width; b++) {
            int32_t t0 = b * per, t1 = t0 + per < s->n_frames ? t0 + per : s->n_frames;
            char c = ' ';
            if (row == 0) {
                int32_t n_tok = 0;
                for (int32_t t = t0; t < t1; t++)
                    n_tok += FLM_TOK(s, FLM_CH_TEXT, t) != p->vocab.text_wait;
                c = n_tok == 0 ? 'w' : 2 * n_tok >= t1 - t0 ? 'T' : 't';
            } else if (row < 3) {
                int ch = row == 1 ? FLM_CH_SPEAK : FLM_CH_LISTEN;
                c = '.';
                for (int32_t t = t0; t < t1; t++) {
                    int32_t v = FLM_TOK(s, ch, t);
                    if (FLM_CLS(s, ch, t) == FLM_LOSS_SEMANTIC)
                        c = '#';
                    else if (c == '.' && v != p->codec.aud_empty && v != p->codec.aud_pad)
                        c = '-';
                }
            } else {
                for (int32_t i = 0; i < s->n_events; i++)
                    if (s->events[i].frame >= t0 && s->events[i].frame < t1)
                        c = '^';
            }
            fputc(c, f);
        }
        fprintf(f, "|\n");
    }
}

static void cell(FILE *f, const flm_sample *s, const flm_profiles *p, int ch, int32_t t,
                 int classes)
{
    static const char cls_letter[FLM_N_LOSS_CLASSES] = {'.', 's', 'a', 'm', 'w'};
    if (classes) {
        fprintf(f, " %6c", cls_letter[FLM_CLS(s, ch, t)]);
        return;
    }
    int32_t v = FLM_TOK(s, ch, t);
    if (ch == FLM_CH_TEXT && v == p->vocab.text_wait)
        fprintf(f, " %6s", "W");
    else if (ch == FLM_CH_TEXT && v == p->vocab.text_asr)
        fprintf(f, " %6s", "<asr>");
    else if (ch == FLM_CH_TEXT && v == p->vocab.text_answer)
        fprintf(f, " %6s", "<ans>");
    else if (ch != FLM_CH_TEXT && v == p->codec.aud_empty)
        fprintf(f, " %6s", ".");
    else if (ch != FLM_CH_TEXT && v == p->codec.aud_pad)
        fprintf(f, " %6s", "P");
    else
        fprintf(f, " %6d", v);
}

/* Columns a UTF-8 string takes in a terminal (East Asian wide characters take two). */
static int display_width(const char *u)
{
    int w = 0;
    for (const unsigned char *c = (const unsigned char *)u; *c; c++) {
        if ((*c & 0xc0) == 0x80)
            continue;
        uint32_t cp = *c;
        if (*c >= 0xe0 && c[1] && c[2])
            cp = (uint32_t)(*c & 0x0f) << 12 | (uint32_t)(c[1] & 0x3f) << 6 | (c[2] & 0x3f);
        w += cp >= 0x1100 && ((cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) ||
                              (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
                              (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
                              (cp >= 0xffe0 && cp <= 0xffe6))
                 ? 2
                 : 1;
    }
    return w;
}

/* One cell of the decoded-text row: the token's text (spaces shown as '_'), cut to 6 columns. */
static void piece_cell(FILE *f, const flm_tokenizer *tok, const flm_profiles *p, int32_t id)
{
    char *text = NULL, cut[64];
    size_t size = 0, cap = 0;
    flm_error err = {0};
    if (id == p->vocab.text_wait || id == p->vocab.text_asr || id == p->vocab.text_answer ||
        flm_tokenizer_decode(tok, &id, 1, FLM_TOKENIZER_LOSSY, &text, &size, &cap, &err) < 0) {
        fprintf(f, " %6s", "");
        flm_free(text);
        return;
    }
    size_t n = 0;
    int w = 0;
    for (size_t i = 0; i < size && n < sizeof cut - 4;) { /* whole characters, at most 6 columns */
        size_t len = 1;
        while (i + len < size && ((unsigned char)text[i + len] & 0xc0) == 0x80)
            len++;
        char one[8] = {0};
        memcpy(one, text + i, len < 7 ? len : 7);
        int cw = display_width(one);
        if (w + cw > 6)
            break;
        if (text[i] == ' ' || text[i] == '\n')
            cut[n++] = '_';
        else
            memcpy(cut + n, one, len), n += len;
        w += cw;
        i += len;
    }
    cut[n] = 0;
    fprintf(f, " %*s%s", 6 - w, "", cut);
    flm_free(text);
}

void timeline_print(FILE *f, const flm_sample *s, const flm_profiles *p, const timeline_opts *o)
{
    print_summary(f, s, p);
    print_overview(f, s, p, o->width > 0 ? o->width : 100);
    int32_t from = o->from < 0 ? 0 : o->from;
    if (from > s->n_frames)
        from = s->n_frames;
    int32_t to = from + (o->n_frames > 0 ? o->n_frames : 12);
    if (to > s->n_frames)
        to = s->n_frames;
    fprintf(f, "\nframes %d..%d (%s; W <wait>, . AUD_EMPTY, P AUD_PAD)\n", from, to - 1,
            o->classes ? "loss classes: s semantic, a acoustic, m monologue, w wait, . none"
                       : "token ids");
    fprintf(f, "%-9s", "time s");
    for (int32_t t = from; t < to; t++)
        fprintf(f, " %6.2f", frame_s(p, t));
    fprintf(f, "\n%-9s", "frame");
    for (int32_t t = from; t < to; t++)
        fprintf(f, " %6d", t);
    fprintf(f, "\n");
    for (int ch = 0; ch < FLM_N_CHANNELS; ch++) {
        char label[16];
        if (ch == FLM_CH_TEXT)
            snprintf(label, sizeof label, "text");
        else if (ch < FLM_CH_LISTEN)
            snprintf(label, sizeof label, "speak%d", ch - FLM_CH_SPEAK);
        else
            snprintf(label, sizeof label, "listen%d", ch - FLM_CH_LISTEN);
        fprintf(f, "%-9s", label);
        for (int32_t t = from; t < to; t++)
            cell(f, s, p, ch, t, o->classes);
        fprintf(f, "\n");
        if (ch == FLM_CH_TEXT && o->tok && !o->classes) {
            fprintf(f, "%-9s", "  (text)");
            for (int32_t t = from; t < to; t++)
                piece_cell(f, o->tok, p, FLM_TOK(s, FLM_CH_TEXT, t));
            fprintf(f, "\n");
        }
    }
    int any = 0;
    for (int32_t i = 0; i < s->n_events; i++)
        any |= s->events[i].frame >= from && s->events[i].frame < to;
    if (any) {
        fprintf(f, "%-9s", "events");
        for (int32_t t = from; t < to; t++) {
            const char *k = "";
            for (int32_t i = 0; i < s->n_events; i++)
                if (s->events[i].frame == t)
                    k = s->events[i].kind;
            fprintf(f, " %6.6s", k);
        }
        fprintf(f, "\n");
    }
}

int timeline_print_json(FILE *f, const flm_sample *s)
{
    char *txt = flm_sample_to_json(s, FLM_JSON_TOKENS);
    if (!txt)
        return -1;
    fprintf(f, "%s\n", txt);
    free(txt);
    return 0;
}
