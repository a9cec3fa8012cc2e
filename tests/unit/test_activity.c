/* Voice activity (flm_activity.h): exact frames on tone bursts at known places, the gap and
 * minimum-run rules, level independence, silence and noise, the text form round trip over random
 * patterns, and bad text with its messages. */
#include <math.h>
#include <string.h>

#include "flm_activity.h"
#include "flm_alloc.h"
#include "flm_rng.h"
#include "flm_stream.h"
#include "tap.h"

enum { SPF = 1920, T = 120 };

/* bursts of a 200 Hz tone at gain g over frames [a, b) of a silent signal */
static void burst(float *x, int a, int b, double g)
{
    for (int64_t i = (int64_t)a * SPF; i < (int64_t)b * SPF; i++)
        x[i] = (float)(g * sin(2 * M_PI * 200.0 * (double)i / 24000.0));
}

static void expect(const float *x, int64_t n, const char *want, const char *what)
{
    uint8_t act[T];
    flm_activity_frames(x, n, SPF, T, act);
    char *got = flm_activity_format(act, T);
    TAP_EQ_STR(got, want, what);
    flm_free(got);
}

int main(void)
{
    int64_t n = (int64_t)T * SPF;
    float *x = flm_calloc((size_t)n, sizeof *x);
    for (int k = 0; k < 2; k++) {
        double g = k ? 0.003 : 0.5; /* -10 dBFS and -53 dBFS peaks: only relative levels matter */
        memset(x, 0, (size_t)n * sizeof *x);
        burst(x, 10, 30, g);
        burst(x, 33, 40, g);         /* a 3-frame pause: joined to the run before */
        burst(x, 50, 51, g);         /* 1 frame: dropped */
        burst(x, 60, 70, g);         /* a 4-frame pause after: kept apart */
        burst(x, 74, 80, g * 0.1);   /* 20 dB quieter than the loudest: still speech */
        burst(x, 90, 95, g * 0.005); /* 46 dB quieter: below the range */
        expect(x, n, k ? "" : "10+30,60+10,74+6",
               k ? "a side whose loudest frame is under the -50 dBFS floor has no speech"
                 : "tone bursts: exact frames, pauses of 3 frames joined, 1-frame runs dropped");
    }
    memset(x, 0, (size_t)n * sizeof *x);
    expect(x, n, "", "digital silence: no speech");
    burst(x, 0, T, 0.1);
    expect(x, n, "0+120", "speech everywhere: one run");
    expect(x, n - SPF / 2, "0+120", "the last frame partly past the signal still counts");
    flm_rng rng;
    flm_rng_init(&rng, 7, "noise", "activity");
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(0.001 * (flm_rng_uniform(&rng) - 0.5)); /* -71 dBFS */
    burst(x, 40, 60, 0.3);
    expect(x, n, "40+20", "speech over low noise: the noise is not speech");

    /* text form: round trip over random patterns */
    int ok = 1;
    for (int seed = 0; seed < 200 && ok; seed++) {
        uint8_t a[T], b[T];
        flm_rng_init(&rng, (uint64_t)seed, "pattern", "activity");
        double p = flm_rng_uniform(&rng);
        for (int t = 0; t < T; t++)
            a[t] = flm_rng_uniform(&rng) < p;
        char *s = flm_activity_format(a, T);
        flm_error err = {0};
        ok = s && flm_activity_parse(s, T, b, &err) == 0 && memcmp(a, b, T) == 0;
        if (!ok)
            tap_diag("seed %d: %s (%s)", seed, s ? s : "(null)", err.msg);
        flm_free(s);
    }
    TAP_OK(ok, "format then parse gives the frames back (200 random patterns)");

    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"5+3,x", "at character 4: expected START+LENGTH"},
        {"5", "at character 0: expected START+LENGTH"},
        {"5+0", "expected START+LENGTH"},
        {"-1+3", "expected START+LENGTH"},
        {"5+3,8+2", "run 8+2 does not come after the previous one"},
        {"9+2,5+1", "run 5+1 does not come after the previous one"},
        {"118+3", "run 118+3 ends past the sample's 120 frames"},
        {"5+3,", "ends with a comma"},
        {"5+3;7+1", "expected START+LENGTH"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint8_t a[T];
        flm_error err = {0};
        TAP_EQ_INT(flm_activity_parse(bad[i].text, T, a, &err), FLM_EFORMAT, bad[i].text);
        TAP_CONTAINS(err.msg, bad[i].msg, "says where and why");
    }
    /* the stored form on a sample: found, absent, not text, bad runs (named) */
    flm_sample *smp = NULL;
    flm_error err = {0};
    uint8_t act[T];
    if (flm_sample_create(&smp, T, &err) == 0 && flm_sample_set_id(smp, "dlg/7") == 0 &&
        flm_sample_meta_set_text(smp, FLM_ACTIVITY_SPEAK, "3+4") == 0 &&
        flm_sample_meta_set_int(smp, FLM_ACTIVITY_LISTEN, 5) == 0) {
        TAP_EQ_INT(flm_activity_of_sample(smp, FLM_ACTIVITY_SPEAK, act, &err), 1, "stored: 1");
        TAP_OK(act[2] == 0 && act[3] && act[6] && !act[7], "stored runs read back");
        TAP_EQ_INT(flm_activity_of_sample(smp, "activity.other", act, &err), 0, "absent: 0");
        TAP_EQ_INT(flm_activity_of_sample(smp, FLM_ACTIVITY_LISTEN, act, &err), FLM_EFORMAT,
                   "a number where the runs belong");
        TAP_CONTAINS(err.msg, "dlg/7: activity.listen: not text", "names the sample and the key");
        flm_sample_meta_set_text(smp, FLM_ACTIVITY_SPEAK, "3+400");
        TAP_EQ_INT(flm_activity_of_sample(smp, FLM_ACTIVITY_SPEAK, act, &err), FLM_EFORMAT,
                   "runs past the sample");
        TAP_CONTAINS(err.msg, "dlg/7: activity.speak: activity \"3+400\"", "names them");
    } else {
        TAP_OK(0, "sample for the stored form (%s)", err.msg);
    }
    flm_sample_destroy(&smp);
    flm_free(x);
    return tap_done();
}
