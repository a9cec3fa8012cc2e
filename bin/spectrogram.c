/* spectrogram.c - the spectrogram lanes of flm inspect --html --codec (html.h): per side, two
 * columns per 80 ms frame (hop 960 samples at 24 kHz), each a 1024-point Hann-windowed FFT centred
 * on the column (zero outside the signal), its power in 64 mel-spaced bands from 50 Hz to 12 kHz
 * (a band takes the largest power of the FFT bins from floor(lower edge / bin width) to
 * ceil(upper edge / bin width)), in dB, mapped to 0..255 over the 80 dB below the side's loudest
 * band. tests/html/check_pages.py recomputes it with numpy from `flm render`'s audio. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "flm_alloc.h"
#include "html.h"

enum { N = 1024 };

/* In-place radix-2 FFT of re/im (length N); tw: cos and sin of -2 pi k / N, k < N / 2. */
static void fft(double *re, double *im, const double *tw)
{
    for (int i = 1, j = 0; i < N; i++) { /* bit reversal */
        int bit = N >> 1;
        for (; j & bit; bit >>= 1)
            j ^= bit;
        j ^= bit;
        if (i < j) {
            double t = re[i];
            re[i] = re[j], re[j] = t;
            t = im[i], im[i] = im[j], im[j] = t;
        }
    }
    for (int len = 2; len <= N; len <<= 1) {
        for (int i = 0; i < N; i += len)
            for (int k = 0; k < len / 2; k++) {
                double wr = tw[2 * (k * (N / len))], wi = tw[2 * (k * (N / len)) + 1];
                double *ur = &re[i + k], *ui = &im[i + k], *vr = &re[i + k + len / 2],
                       *vi = &im[i + k + len / 2];
                double tr = *vr * wr - *vi * wi, ti = *vr * wi + *vi * wr;
                *vr = *ur - tr, *vi = *ui - ti;
                *ur += tr, *ui += ti;
            }
    }
}

static double mel(double hz)
{
    return 2595 * log10(1 + hz / 700);
}

static double hz(double m)
{
    return 700 * (pow(10, m / 2595) - 1);
}

int spectrogram(const float *x, int64_t n, int32_t rate, int32_t n_frames, int32_t spf,
                uint8_t *out)
{
    const int hop = spf / HTML_SPEC_PER_FRAME, cols = n_frames * HTML_SPEC_PER_FRAME;
    double *re = flm_malloc(4 * N * sizeof *re),
           *db = flm_malloc((size_t)cols * HTML_SPEC_BANDS * sizeof *db);
    if (!re || !db) {
        flm_free(re), flm_free(db);
        return -1;
    }
    double *im = re + N, *win = re + 2 * N, *tw = re + 3 * N; /* window, twiddles */
    double df = (double)rate / N, lo = mel(50), hi = mel(12000), top = -INFINITY;
    for (int i = 0; i < N; i++)
        win[i] = 0.5 - 0.5 * cos(2 * M_PI * i / N);
    for (int k = 0; k < N / 2; k++)
        tw[2 * k] = cos(-2 * M_PI * k / N), tw[2 * k + 1] = sin(-2 * M_PI * k / N);
    int k0[HTML_SPEC_BANDS], k1[HTML_SPEC_BANDS];
    for (int b = 0; b < HTML_SPEC_BANDS; b++) {
        k0[b] = (int)floor(hz(lo + (hi - lo) * b / HTML_SPEC_BANDS) / df);
        k1[b] = (int)ceil(hz(lo + (hi - lo) * (b + 1) / HTML_SPEC_BANDS) / df);
        k1[b] = k1[b] > N / 2 ? N / 2 : k1[b];
    }
    for (int c = 0; c < cols; c++) {
        int64_t start = (int64_t)c * hop + hop / 2 - N / 2;
        for (int i = 0; i < N; i++) {
            int64_t j = start + i;
            re[i] = j >= 0 && j < n ? x[j] * win[i] : 0;
            im[i] = 0;
        }
        fft(re, im, tw);
        for (int b = 0; b < HTML_SPEC_BANDS; b++) {
            double p = 0;
            for (int k = k0[b]; k <= k1[b]; k++)
                p = fmax(p, re[k] * re[k] + im[k] * im[k]);
            double v = 10 * log10(p + 1e-12);
            db[(size_t)c * HTML_SPEC_BANDS + b] = v;
            top = fmax(top, v);
        }
    }
    for (size_t i = 0; i < (size_t)cols * HTML_SPEC_BANDS; i++) {
        double v = (db[i] - (top - 80)) / 80 * 255;
        out[i] = (uint8_t)lrint(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    flm_free(re), flm_free(db);
    return 0;
}
