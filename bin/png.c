/* A minimal PNG writer (8-bit RGB, zlib stream of stored deflate blocks: no compression library
 * needed) and the timeline image drawn with it. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flm_alloc.h"
#include "html.h"

static uint32_t crc_table[256];

static void crc_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[n] = c;
    }
}

static uint32_t crc(uint32_t c, const uint8_t *p, size_t n)
{
    c ^= 0xFFFFFFFFu;
    while (n--)
        c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static void be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static int chunk(FILE *f, const char *type, const uint8_t *data, uint32_t n)
{
    uint8_t h[8];
    be32(h, n);
    memcpy(h + 4, type, 4);
    uint32_t c = crc(crc(0, (const uint8_t *)type, 4), data ? data : (const uint8_t *)"", n);
    uint8_t t[4];
    be32(t, c);
    int ok = fwrite(h, 1, 8, f) == 8 && (n == 0 || fwrite(data, 1, n, f) == n) &&
             fwrite(t, 1, 4, f) == 4;
    return ok ? 0 : -1;
}

/* rgb: [h][w][3]. */
static int png_write(const char *path, const uint8_t *rgb, int w, int h)
{
    crc_init();
    size_t raw = (size_t)h * (1 + 3 * (size_t)w); /* each row: filter byte 0 + pixels */
    size_t n_blocks = raw / 65535 + 1;
    size_t zsize = 2 + raw + 5 * n_blocks + 4;
    uint8_t *z = flm_malloc(zsize), *q = z;
    if (!z)
        return -1;
    *q++ = 0x78;
    *q++ = 0x01;
    uint32_t a = 1, b = 0; /* adler32 */
    size_t left = raw, row_pos = 0;
    int y = 0;
    while (left > 0) { /* raw > 0: at least one row */
        size_t n = left < 65535 ? left : 65535;
        *q++ = left == n ? 1 : 0; /* BFINAL, BTYPE 00 */
        q[0] = (uint8_t)n;
        q[1] = (uint8_t)(n >> 8);
        q[2] = (uint8_t)~n;
        q[3] = (uint8_t)(~n >> 8);
        q += 4;
        for (size_t i = 0; i < n; i++) {
            uint8_t v = row_pos == 0 ? 0 : rgb[(size_t)y * 3 * (size_t)w + row_pos - 1];
            if (++row_pos == 1 + 3 * (size_t)w) {
                row_pos = 0;
                y++;
            }
            *q++ = v;
            a = (a + v) % 65521;
            b = (b + a) % 65521;
        }
        left -= n;
    }
    be32(q, b << 16 | a);
    q += 4;
    FILE *f = fopen(path, "wb");
    uint8_t ihdr[13];
    be32(ihdr, (uint32_t)w);
    be32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8;  /* bit depth */
    ihdr[9] = 2;  /* RGB */
    ihdr[10] = 0; /* deflate */
    ihdr[11] = 0; /* filter */
    ihdr[12] = 0; /* no interlace */
    int rc = f && fwrite("\x89PNG\r\n\x1a\n", 1, 8, f) == 8 && chunk(f, "IHDR", ihdr, 13) == 0 &&
                     chunk(f, "IDAT", z, (uint32_t)(q - z)) == 0 && chunk(f, "IEND", NULL, 0) == 0
                 ? 0
                 : -1;
    if (f && fclose(f) != 0)
        rc = -1;
    flm_free(z);
    return rc;
}

enum { LANE_H = 16, GAP = 4, AXIS_H = 6, MAX_W = 1600 };

static void fill(uint8_t *img, int w, int x, int y0, int y1, uint32_t color)
{
    for (int y = y0; y < y1; y++) {
        uint8_t *p = img + ((size_t)y * (size_t)w + (size_t)x) * 3;
        p[0] = (uint8_t)(color >> 16);
        p[1] = (uint8_t)(color >> 8);
        p[2] = (uint8_t)color;
    }
}

int png_timeline(const char *path, const flm_sample *s, const flm_profiles *p, flm_error *err)
{
    int32_t n = s->n_frames > 0 ? s->n_frames : 1;
    int32_t per = (n + MAX_W - 1) / MAX_W; /* frames per column */
    int w = (int)((n + per - 1) / per), h = 4 * (LANE_H + GAP) + AXIS_H;
    uint8_t *img = flm_malloc((size_t)w * (size_t)h * 3);
    if (!img)
        return flm_error_set(err, FLM_ENOMEM, "%s: out of memory", path);
    memset(img, 0xFF, (size_t)w * (size_t)h * 3);
    int32_t tick = (int32_t)(10.0 * p->codec.sample_rate / p->codec.samples_per_frame); /* 10 s */
    for (int x = 0; x < w; x++) {
        int32_t t0 = x * per, t1 = t0 + per < s->n_frames ? t0 + per : s->n_frames;
        int tok = 0, target = 0, codes = 0, heard = 0, event = 0;
        for (int32_t t = t0; t < t1; t++) {
            tok |= FLM_TOK(s, FLM_CH_TEXT, t) != p->vocab.text_wait;
            target |= FLM_CLS(s, FLM_CH_SPEAK, t) == FLM_LOSS_SEMANTIC;
            int32_t v = FLM_TOK(s, FLM_CH_SPEAK, t), l = FLM_TOK(s, FLM_CH_LISTEN, t);
            codes |= v != p->codec.aud_empty && v != p->codec.aud_pad;
            heard |= l != p->codec.aud_empty && l != p->codec.aud_pad;
        }
        for (int32_t i = 0; i < s->n_events; i++)
            event |= s->events[i].frame >= t0 && s->events[i].frame < t1;
        int y = 0;
        fill(img, w, x, y, y + LANE_H, tok ? 0x3a7bd5 : 0xe8e8e8); /* text: tokens / <wait> */
        y += LANE_H + GAP;
        fill(img, w, x, y, y + LANE_H, target ? 0x2e9e5b : codes ? 0x9bd1ae : 0xffffff);
        y += LANE_H + GAP;
        fill(img, w, x, y, y + LANE_H, heard ? 0x9bd1ae : 0xffffff);
        y += LANE_H + GAP;
        if (event)
            fill(img, w, x, y, y + LANE_H, 0xc0392b);
        y += LANE_H + GAP;
        if (t0 / tick != (t1 > t0 ? t1 - 1 : t0) / tick || t0 == 0)
            fill(img, w, x, y, y + AXIS_H, 0x555555); /* a tick every 10 s */
    }
    int rc = png_write(path, img, w, h);
    flm_free(img);
    if (rc < 0)
        return flm_error_set(err, FLM_EIO, "%s: cannot write: %s", path, strerror(errno));
    return 0;
}
