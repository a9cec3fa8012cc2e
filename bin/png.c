/* png.c - the timeline of one sample as a PNG image (flm inspect --png): lanes (text, speak,
 * listen, events; model and user speech when the sample carries them) with their labels, event names placed so that they never overlap, a time axis
 * in seconds, at a readable width (PLOT_W columns of frames whatever the sample's length),
 * compressed by FFmpeg's PNG encoder and written whole or not at all (cli_out). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <libavutil/opt.h>

#include "cli.h"
#include "flm_activity.h"
#include "flm_alloc.h"
#include "flm_util.h"
#include "html.h"

/* Layout, in pixels. Text is a 5x7 font drawn SCALE times larger. */
enum {
    SCALE = 2,
    GW = 6 * SCALE, /* glyph advance */
    GH = 7 * SCALE, /* glyph height */
    LABEL_W = 84,   /* lane names */
    PLOT_W = 1200,  /* the sample's frames */
    RIGHT = 28,
    TOP = 10,
    LANE_H = 22,
    GAP = 8,
    EV_ROWS = 3, /* rows of event names under the events lane */
    EV_ROW_H = GH + 4,
    AXIS_H = 6 + GH + 8,
    W = LABEL_W + PLOT_W + RIGHT,
    MAX_LANES = 5, /* text, model, user, speak, listen (events apart) */
};
enum {
    BG = 0xffffff,
    INK = 0x333333,
    RULE = 0xdddddd,
    TEXT_TOK = 0x3a7bd5,
    TEXT_WAIT = 0xe8e8e8,
    SPEAK_TARGET = 0x2e9e5b,
    CODES = 0x9bd1ae,
    EVENT = 0xc0392b,
    MODEL_VOICE = 0x1f6f8b,
    USER_VOICE = 0x8e44ad,
    OVERLAP = 0xe67e22,
};

static const char font_chars[] = "0123456789abcdefghijklmnopqrstuvwxyz.:-_()/+";
/* 5x7 glyphs, one byte per row (bit 4 = leftmost column), in font_chars order */
static const uint8_t font_rows[][7] = {
    {0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e}, /* 0 */
    {0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e}, /* 1 */
    {0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f}, /* 2 */
    {0x1e, 0x01, 0x01, 0x0e, 0x01, 0x01, 0x1e}, /* 3 */
    {0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02}, /* 4 */
    {0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e}, /* 5 */
    {0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e}, /* 6 */
    {0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}, /* 7 */
    {0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e}, /* 8 */
    {0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c}, /* 9 */
    {0x00, 0x00, 0x0e, 0x01, 0x0f, 0x11, 0x0f}, /* a */
    {0x10, 0x10, 0x1e, 0x11, 0x11, 0x11, 0x1e}, /* b */
    {0x00, 0x00, 0x0e, 0x10, 0x10, 0x11, 0x0e}, /* c */
    {0x01, 0x01, 0x0f, 0x11, 0x11, 0x11, 0x0f}, /* d */
    {0x00, 0x00, 0x0e, 0x11, 0x1f, 0x10, 0x0e}, /* e */
    {0x06, 0x09, 0x08, 0x1c, 0x08, 0x08, 0x08}, /* f */
    {0x00, 0x0f, 0x11, 0x11, 0x0f, 0x01, 0x0e}, /* g */
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11}, /* h */
    {0x04, 0x00, 0x0c, 0x04, 0x04, 0x04, 0x0e}, /* i */
    {0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0c}, /* j */
    {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12}, /* k */
    {0x0c, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e}, /* l */
    {0x00, 0x00, 0x1a, 0x15, 0x15, 0x11, 0x11}, /* m */
    {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11}, /* n */
    {0x00, 0x00, 0x0e, 0x11, 0x11, 0x11, 0x0e}, /* o */
    {0x00, 0x00, 0x1e, 0x11, 0x1e, 0x10, 0x10}, /* p */
    {0x00, 0x00, 0x0f, 0x11, 0x0f, 0x01, 0x01}, /* q */
    {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10}, /* r */
    {0x00, 0x00, 0x0f, 0x10, 0x0e, 0x01, 0x1e}, /* s */
    {0x08, 0x08, 0x1c, 0x08, 0x08, 0x09, 0x06}, /* t */
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0d}, /* u */
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x0a, 0x04}, /* v */
    {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0a}, /* w */
    {0x00, 0x00, 0x11, 0x0a, 0x04, 0x0a, 0x11}, /* x */
    {0x00, 0x00, 0x11, 0x11, 0x0f, 0x01, 0x0e}, /* y */
    {0x00, 0x00, 0x1f, 0x02, 0x04, 0x08, 0x1f}, /* z */
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c}, /* . */
    {0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00}, /* : */
    {0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00}, /* - */
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1f}, /* _ */
    {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}, /* ( */
    {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}, /* ) */
    {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}, /* / */
    {0x00, 0x04, 0x04, 0x1f, 0x04, 0x04, 0x00}, /* + */
};

typedef struct canvas {
    uint8_t *px; /* [h][w][3] */
    int w, h;
} canvas;

static void rect(canvas *c, int x0, int y0, int x1, int y1, uint32_t color)
{
    x0 = x0 < 0 ? 0 : x0, y0 = y0 < 0 ? 0 : y0;
    x1 = x1 > c->w ? c->w : x1, y1 = y1 > c->h ? c->h : y1;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            uint8_t *p = c->px + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
            p[0] = (uint8_t)(color >> 16), p[1] = (uint8_t)(color >> 8), p[2] = (uint8_t)color;
        }
}

static int text_width(const char *s)
{
    return (int)strlen(s) * GW - SCALE;
}

/* Lower-case letters, digits and ".:-_()/+"; upper case is drawn as lower case, anything else as
 * a space. (x, y): the top left corner. */
static void text(canvas *c, int x, int y, const char *s, uint32_t color)
{
    for (; *s; s++, x += GW) {
        char ch = *s >= 'A' && *s <= 'Z' ? (char)(*s - 'A' + 'a') : *s;
        const char *f = ch ? strchr(font_chars, ch) : NULL;
        if (!f)
            continue;
        const uint8_t *rows = font_rows[f - font_chars];
        for (int r = 0; r < 7; r++)
            for (int k = 0; k < 5; k++)
                if (rows[r] >> (4 - k) & 1)
                    rect(c, x + k * SCALE, y + r * SCALE, x + (k + 1) * SCALE, y + (r + 1) * SCALE,
                         color);
    }
}

/* Column x of the plot shows frames [t0, t1) (at least one frame). */
static void column_frames(int x, int32_t n, int32_t *t0, int32_t *t1)
{
    *t0 = (int32_t)((int64_t)x * n / PLOT_W);
    *t1 = (int32_t)((int64_t)(x + 1) * n / PLOT_W);
    if (*t1 <= *t0)
        *t1 = *t0 + 1;
}

static int frame_x(int64_t t, int32_t n)
{
    return LABEL_W + (int)((t * PLOT_W + n - 1) / n);
}

/* One lane: its name and the color of each of the PLOT_W columns. */
typedef struct lane {
    const char *name;
    uint32_t col[PLOT_W];
} lane;

/* The lanes of s: text, then (when stored) model and user speech with their overlaps, the speak
 * and listen codes, and the events lane (drawn by events()). Returns how many, or an error. */
static int make_lanes(const flm_sample *s, const flm_profiles *p, lane *L, flm_error *err)
{
    int32_t n = s->n_frames;
    uint8_t *act = flm_calloc(2 * (size_t)(n > 0 ? n : 1), 1);
    if (!act)
        return flm_error_set(err, FLM_ENOMEM, "PNG: out of memory");
    int rc, have[2] = {0, 0};
    const char *keys[2] = {FLM_ACTIVITY_SPEAK, FLM_ACTIVITY_LISTEN};
    for (int k = 0; k < 2; k++)
        if ((rc = have[k] = flm_activity_of_sample(s, keys[k], act + (size_t)k * (size_t)n, err)) <
            0) {
            flm_free(act);
            return rc;
        }
    int n_lanes = 0, voices = have[0] || have[1];
    lane *text = &L[n_lanes++], *model = voices ? &L[n_lanes++] : NULL;
    lane *user = voices ? &L[n_lanes++] : NULL, *speak = &L[n_lanes++], *listen = &L[n_lanes++];
    text->name = "text", speak->name = "speak", listen->name = "listen";
    if (voices)
        model->name = "model", user->name = "user";
    for (int x = 0; x < PLOT_W; x++) {
        int32_t t0, t1;
        column_frames(x, n > 0 ? n : 1, &t0, &t1);
        int tok = 0, target = 0, codes = 0, heard = 0, vm = 0, vu = 0, both = 0;
        for (int32_t t = t0; t < t1 && t < n; t++) {
            tok |= FLM_TOK(s, FLM_CH_TEXT, t) != p->vocab.text_wait;
            target |= FLM_CLS(s, FLM_CH_SPEAK, t) == FLM_LOSS_SEMANTIC;
            int32_t v = FLM_TOK(s, FLM_CH_SPEAK, t), l = FLM_TOK(s, FLM_CH_LISTEN, t);
            codes |= v != p->codec.aud_empty && v != p->codec.aud_pad;
            heard |= l != p->codec.aud_empty && l != p->codec.aud_pad;
            vm |= act[t], vu |= act[(size_t)n + (size_t)t];
            both |= act[t] && act[(size_t)n + (size_t)t];
        }
        text->col[x] = tok ? TEXT_TOK : TEXT_WAIT;
        speak->col[x] = target ? SPEAK_TARGET : codes ? CODES : BG;
        listen->col[x] = heard ? CODES : BG;
        if (voices) {
            model->col[x] = both ? OVERLAP : vm ? MODEL_VOICE : BG;
            user->col[x] = both ? OVERLAP : vu ? USER_VOICE : BG;
        }
    }
    flm_free(act);
    return n_lanes;
}

/* Lanes from y, each named on the left; the events lane (empty here) last. */
static void draw_lanes(canvas *c, const lane *L, int n_lanes, int y)
{
    for (int i = 0; i <= n_lanes; i++) {
        int ly = y + i * (LANE_H + GAP);
        const char *name = i < n_lanes ? L[i].name : "events";
        text(c, LABEL_W - 8 - text_width(name), ly + (LANE_H - GH) / 2, name, INK);
        rect(c, LABEL_W - 1, ly - 1, LABEL_W + PLOT_W + 1, ly + LANE_H + 1, RULE);
        rect(c, LABEL_W, ly, LABEL_W + PLOT_W, ly + LANE_H, BG);
        for (int x = 0; i < n_lanes && x < PLOT_W; x++)
            rect(c, LABEL_W + x, ly, LABEL_W + x + 1, ly + LANE_H, L[i].col[x]);
    }
}

/* Each event: a mark over its frames in the events lane and its name in the first of EV_ROWS
 * rows below where it does not touch the previous name (names that fit nowhere are left out and
 * counted in the last row's "+N"). Returns the names left out. */
static int events(canvas *c, const flm_sample *s, int y_lane)
{
    int32_t n = s->n_frames;
    int row_end[EV_ROWS], left_out = 0;
    for (int r = 0; r < EV_ROWS; r++)
        row_end[r] = -GW;
    int y_names = y_lane + LANE_H + 4;
    for (int32_t i = 0; i < s->n_events && n > 0; i++) {
        const flm_event *e = &s->events[i];
        int32_t f = e->frame < 0 ? 0 : e->frame >= n ? n - 1 : e->frame;
        int32_t len = e->n_frames > 1 ? e->n_frames : 1;
        int x0 = frame_x(f, n), x1 = frame_x((int64_t)f + len, n);
        rect(c, x0, y_lane, x1 > x0 + 2 ? x1 : x0 + 2, y_lane + LANE_H, EVENT);
        int tw = text_width(e->kind), tx = x0;
        if (tx + tw > W - 2)
            tx = W - 2 - tw;
        int r = 0;
        while (r < EV_ROWS && tx < row_end[r] + GW)
            r++;
        if (r == EV_ROWS) {
            left_out++;
            continue;
        }
        text(c, tx, y_names + r * EV_ROW_H, e->kind, EVENT);
        row_end[r] = tx + tw;
    }
    return left_out;
}

/* Ticks at a round number of seconds, at most about 12 of them, labelled "Ns". */
static void axis(canvas *c, const flm_sample *s, const flm_profiles *p, int y)
{
    static const int steps[] = {1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600};
    double fps = (double)p->codec.sample_rate / p->codec.samples_per_frame;
    double dur = s->n_frames / fps;
    int step = steps[0];
    for (size_t i = 0; i < sizeof steps / sizeof *steps && dur / step > 12; i++)
        step = steps[i];
    rect(c, LABEL_W, y, LABEL_W + PLOT_W, y + 1, INK);
    for (int sec = 0; sec <= dur + 1e-9 && s->n_frames > 0; sec += step) {
        int x = frame_x((int64_t)(sec * fps + 0.5), s->n_frames);
        rect(c, x, y, x + 1, y + 6, INK);
        char label[24];
        snprintf(label, sizeof label, "%ds", sec);
        int tx = x - text_width(label) / 2;
        text(c, tx < 0 ? 0 : tx, y + 8, label, INK);
    }
}

/* The image through FFmpeg's PNG encoder (every row filtered the better of the PNG filters). */
static int encode(const canvas *c, AVPacket *pkt, flm_error *err, const char *path)
{
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_PNG);
    if (!codec)
        return flm_error_set(err, FLM_EIO, "%s: this FFmpeg has no PNG encoder", path);
    AVCodecContext *ctx = avcodec_alloc_context3(codec);
    AVFrame *f = av_frame_alloc();
    int rc = FLM_ENOMEM;
    if (!ctx || !f)
        goto done;
    ctx->width = f->width = c->w;
    ctx->height = f->height = c->h;
    ctx->pix_fmt = AV_PIX_FMT_RGB24;
    f->format = AV_PIX_FMT_RGB24;
    ctx->time_base = (AVRational){1, 25};
    av_opt_set(ctx->priv_data, "pred", "mixed", 0);
    if (avcodec_open2(ctx, codec, NULL) < 0 || av_frame_get_buffer(f, 0) < 0)
        goto done;
    for (int y = 0; y < c->h; y++)
        memcpy(f->data[0] + (size_t)y * (size_t)f->linesize[0],
               c->px + (size_t)y * (size_t)c->w * 3, (size_t)c->w * 3);
    rc = avcodec_send_frame(ctx, f) < 0 || avcodec_send_frame(ctx, NULL) < 0 ||
                 avcodec_receive_packet(ctx, pkt) < 0
             ? FLM_EIO
             : 0;
done:
    av_frame_free(&f);
    avcodec_free_context(&ctx);
    return rc ? flm_error_set(err, rc, "%s: PNG encoding failed", path) : 0;
}

int png_timeline(const char *path, const flm_sample *s, const flm_profiles *p, flm_error *err)
{
    lane *L = flm_malloc(MAX_LANES * sizeof *L);
    AVPacket *pkt = av_packet_alloc();
    canvas c = {NULL, W, 0};
    int rc, n_lanes = 0;
    if (!L || !pkt) {
        rc = flm_error_set(err, FLM_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    if ((rc = n_lanes = make_lanes(s, p, L, err)) < 0)
        goto done;
    int y_lanes = TOP, y_events = y_lanes + n_lanes * (LANE_H + GAP);
    int y_axis = y_events + LANE_H + 4 + EV_ROWS * EV_ROW_H + 4;
    c.h = y_axis + AXIS_H;
    if (!(c.px = flm_malloc((size_t)c.w * (size_t)c.h * 3))) {
        rc = flm_error_set(err, FLM_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    memset(c.px, 0xff, (size_t)c.w * (size_t)c.h * 3);
    draw_lanes(&c, L, n_lanes, y_lanes);
    int left_out = events(&c, s, y_events);
    if (left_out > 0) {
        char more[24];
        snprintf(more, sizeof more, "+%d", left_out);
        text(&c, LABEL_W - 8 - text_width(more), y_events + LANE_H + 4 + (EV_ROWS - 1) * EV_ROW_H,
             more, EVENT);
    }
    axis(&c, s, p, y_axis);
    cli_out o; /* written whole or not at all */
    FILE *f = NULL;
    if ((rc = encode(&c, pkt, err, path)) == 0 &&
        (!(f = cli_out_open(&o, path)) ||
         cli_out_close(&o, fwrite(pkt->data, 1, (size_t)pkt->size, f) == (size_t)pkt->size) < 0))
        rc = flm_error_set(err, errno == ENOENT ? FLM_ENOTFOUND : FLM_EIO, "%s: cannot write: %s",
                           path, strerror(errno));
done:
    av_packet_free(&pkt);
    flm_free(c.px);
    flm_free(L);
    return rc;
}
