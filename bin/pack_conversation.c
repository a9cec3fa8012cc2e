/* Conversation packing (docs/conversations.md; see pack.h): the lines of one two-channel
 * recording (consecutive lines with the same audio, one per channel, as `flm align` writes them)
 * -> for each model side: tokenize its sentences, plan the parts, then per part decode both
 * channels, augment the listen side, encode both with Mimi and pack. A conversation's samples
 * are returned together (pack_out) or not at all (a failure quarantines the conversation, keyed by
 * its first line). */
#include <string.h>

#include "flm_activity.h"
#include "flm_alloc.h"
#include "flm_audio.h"
#include "flm_conversation.h"
#include "flm_pack_input.h"
#include "flm_util.h"
#include "pack.h"

#define CONV_MAX_SIDES 2

struct conversation {
    flm_pack_utt u[CONV_MAX_SIDES];
    int n;
    char key[600]; /* the input key of its first line */
    const char *file;
};

conversation *conversation_new(void)
{
    return flm_calloc(1, sizeof(conversation));
}

static void conversation_reset(conversation *C)
{
    for (int i = 0; i < C->n; i++)
        flm_pack_utt_free(&C->u[i]);
    C->n = 0;
}

void conversation_free(conversation *C)
{
    if (C)
        conversation_reset(C);
    flm_free(C);
}

const char *conversation_audio(const conversation *C)
{
    return C->n ? C->u[0].audio : NULL;
}

/* The recording's frames from the lines' duration (as `flm align` decoded it). */
static int recording_frames(const job *J, const conversation *C, int32_t *out, flm_error *err)
{
    double d = C->u[0].duration;
    if (!(d >= 0))
        return flm_error_set(err, FLM_EINVAL,
                             "%s: no \"duration\": a conversation needs the recording's length "
                             "(flm align writes it; --no-refine without durations does not)",
                             C->u[0].id);
    int64_t n = (int64_t)(d * J->dp.sample_rate + 0.5);
    *out = (int32_t)((n + J->dp.samples_per_frame - 1) / J->dp.samples_per_frame);
    return *out > 0 ? 0 : flm_error_set(err, FLM_EINVAL, "%s: duration %g s", C->u[0].id, d);
}

static void spans_of(const flm_pack_utt *u, flm_conv_span *s)
{
    for (size_t i = 0; u && i < u->n_sents; i++)
        s[i] = (flm_conv_span){(int32_t)u->sents[i].start_frame, (int32_t)u->sents[i].end_frame,
                               u->sents[i].start, u->sents[i].end};
}

/* Reads the next n frames of both channels (interleaved in the decoder) into a (channel ca) and
 * b (channel cb); past the end of the audio, zeros. *short_by: frames missing. */
static int read_part(flm_audio_decoder *dec, int32_t nch, int32_t ca, int32_t cb, float *a,
                     float *b, int64_t n, float *buf, size_t buf_n, int64_t *missing,
                     flm_error *err)
{
    int64_t got = 0;
    while (got < n) {
        size_t want = (size_t)(n - got) < buf_n ? (size_t)(n - got) : buf_n, r = 0;
        if (flm_audio_decoder_read(dec, buf, want, &r, err) < 0)
            return -1;
        if (r == 0)
            break;
        for (size_t i = 0; i < r; i++) {
            a[got + (int64_t)i] = buf[i * (size_t)nch + (size_t)ca];
            b[got + (int64_t)i] = buf[i * (size_t)nch + (size_t)cb];
        }
        got += (int64_t)r;
    }
    for (int64_t i = got; i < n; i++)
        a[i] = b[i] = 0;
    *missing = n - got;
    return 0;
}

typedef struct side_out {
    flm_sample **samples;
    size_t n, cap;
} side_out;

/* One model side: its samples appended to out, its times to times. */
static int pack_side(const pack_ctx *X, const flm_pack_utt *model, const flm_pack_utt *user,
                     int32_t model_ch, int32_t user_ch, int32_t nch, int32_t n_frames,
                     const char *side_name, side_out *out, pack_out *times, int *stage,
                     flm_error *err)
{
    const job *J = X->J;
    flm_token_buf *tb = X->tb;
    const int32_t spf = J->dp.samples_per_frame;
    const int32_t n_model = (int32_t)model->n_sents, n_user = user ? (int32_t)user->n_sents : 0;
    flm_conv_span *ms = flm_calloc((size_t)n_model, sizeof *ms);
    flm_conv_span *us = flm_calloc((size_t)n_user + 1, sizeof *us);
    int32_t **tok = flm_calloc((size_t)n_model, sizeof *tok);
    int32_t *n_tok = flm_calloc((size_t)n_model, sizeof *n_tok);
    int64_t *st = flm_calloc((size_t)n_user + 1, sizeof *st);
    int64_t *en = flm_calloc((size_t)n_user + 1, sizeof *en);
    flm_conv_plan plan;
    memset(&plan, 0, sizeof plan);
    flm_audio_decoder *dec = NULL;
    float *speak = NULL, *listen = NULL, *buf = NULL;
    char *voice[2] = {NULL, NULL}; /* who speaks when: speak, listen (before augmentation) */
    int32_t *scodes = NULL, *lcodes = NULL;
    flm_augment_result res;
    memset(&res, 0, sizeof res);
    int rc =
        ms && us && tok && n_tok && st && en ? 0 : flm_error_set(err, FLM_ENOMEM, "out of memory");
    spans_of(model, ms);
    spans_of(user, us);
    *stage = ST_TOKENIZE;
    double t0 = flm_now();
    for (int32_t i = 0; i < n_model && rc == 0; i++) {
        const char *text = model->sents[i].text;
        if ((rc = flm_tokenizer_encode(J->tok, text, strlen(text), tb, err)) < 0)
            break;
        if (tb->n_ids == 0)
            rc = flm_error_set(err, FLM_EFORMAT, "%s: sentence %d: no tokens in \"%s\"", model->id,
                               i, text);
        else if (!(tok[i] = flm_malloc(tb->n_ids * sizeof *tok[i])))
            rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
        else
            memcpy(tok[i], tb->ids, tb->n_ids * sizeof *tok[i]), n_tok[i] = (int32_t)tb->n_ids;
    }
    times->t_tokenize += flm_now() - t0;
    t0 = flm_now();
    *stage = ST_PACK;
    if (rc == 0) {
        flm_conv_params cp = flm_conv_params_from_recipe(&J->recipe, &J->prof);
        rc = flm_conv_plan_make(&plan, &cp, ms, n_tok, n_model, us, n_user, n_frames, model->id,
                                err);
    }
    times->t_pack += flm_now() - t0;
    const size_t buf_n = 4096;
    if (rc == 0) {
        flm_audio_params ap = flm_audio_default_params();
        ap.mode = FLM_AUDIO_PER_CHANNEL;
        *stage = ST_AUDIO;
        rc = flm_audio_decoder_open(&dec, model->audio, &ap, err);
        if (rc == 0 && !(buf = flm_malloc(buf_n * (size_t)nch * sizeof *buf)))
            rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
    }
    for (int32_t k = 0; k < plan.n_parts && rc == 0; k++) {
        const flm_conv_part *P = &plan.parts[k];
        const int32_t len = P->end - P->start;
        const int64_t n = (int64_t)len * spf;
        char id[700];
        snprintf(id, sizeof id, "%s.part%d", model->id, k);
        if (X->sample_exists(X->user, id)) {
            rc = flm_error_set(err, FLM_EINVAL, "sample id \"%s\" is already in the dataset", id);
            break;
        }
        flm_free(speak), flm_free(listen), flm_free(scodes), flm_free(lcodes);
        speak = flm_malloc((size_t)n * sizeof *speak);
        listen = flm_malloc((size_t)n * sizeof *listen);
        scodes = flm_malloc((size_t)len * FLM_N_CODEBOOKS * sizeof *scodes);
        lcodes = flm_malloc((size_t)len * FLM_N_CODEBOOKS * sizeof *lcodes);
        if (!speak || !listen || !scodes || !lcodes) {
            rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
            break;
        }
        int64_t missing = 0;
        t0 = flm_now();
        *stage = ST_AUDIO;
        rc = read_part(dec, nch, model_ch, user_ch, speak, listen, n, buf, buf_n, &missing, err);
        times->t_decode += flm_now() - t0;
        /* past the recording's end only the last part's trailing text may reach (zeros there);
         * the audio may end within one frame of its duration */
        int64_t allowed = (int64_t)(P->end > n_frames ? P->end - n_frames + 1 : 1) * spf;
        if (rc == 0 && missing > allowed) {
            rc = flm_error_set(err, FLM_EFORMAT,
                               "%s: the audio ends %.2f s before its duration (%.2f s): the "
                               "file changed since it was aligned?",
                               model->audio, (double)(missing - allowed + spf) / J->dp.sample_rate,
                               model->duration);
            break;
        }
        if (rc < 0)
            break;
        int32_t ns = flm_conv_user_spans(&plan, k, us, spf, st, en);
        flm_augment_span *spans = flm_calloc((size_t)ns + 1, sizeof *spans);
        if (!spans) {
            rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
            break;
        }
        for (int32_t q = 0; q < ns; q++)
            spans[q] = (flm_augment_span){st[q], en[q]};
        t0 = flm_now();
        *stage = ST_AUGMENT;
        flm_augment_result_clear(&res);
        flm_free(voice[0]), flm_free(voice[1]);
        voice[0] = flm_activity_text(speak, n, spf, len);
        voice[1] = flm_activity_text(listen, n, spf, len);
        rc = voice[0] && voice[1] ? flm_augment_apply(&J->ap, J->recipe.seed, id, listen, n, spans,
                                                      ns, speak, n, J->pool, &res, err)
                                  : flm_error_set(err, FLM_ENOMEM, "out of memory");
        flm_free(spans);
        times->t_augment += flm_now() - t0;
        if (rc < 0)
            break;
        t0 = flm_now();
        *stage = ST_AUDIO;
        flm_mimi *mimi = NULL;
        if ((rc = X->codec(X->user, &mimi, NULL, err)) == 0 &&
            (rc = flm_mimi_encode(mimi, speak, n, scodes, err)) == 0)
            rc = flm_mimi_encode(mimi, listen, n, lcodes, err);
        times->t_encode += flm_now() - t0;
        if (rc < 0)
            break;
        t0 = flm_now();
        *stage = ST_PACK;
        flm_sample *s = NULL;
        rc = flm_conv_pack(&s, &J->prof, &plan, k, (const int32_t *const *)tok, scodes, lcodes, len,
                           id, err);
        if (rc == 0 &&
            ((rc = flm_augment_result_to_meta(&res, s, err)) < 0 ||
             flm_sample_set_stage(s, J->recipe.stage) || flm_sample_set_corpus(s, model->corpus) ||
             flm_sample_set_language(s, model->language) ||
             flm_sample_meta_set_text(s, "conversation.model_side", side_name) ||
             flm_sample_meta_set_int(s, "conversation.model_channel", model_ch) ||
             flm_sample_meta_set_text(s, "conversation.user_id", user ? user->id : "") ||
             flm_sample_meta_set_text(s, FLM_ACTIVITY_SPEAK, voice[0]) ||
             flm_sample_meta_set_text(s, FLM_ACTIVITY_LISTEN, voice[1]) ||
             flm_grow((void **)&out->samples, &out->cap, out->n + 1, sizeof *out->samples) < 0))
            rc = rc < 0 ? rc : flm_error_set(err, FLM_ENOMEM, "out of memory");
        if (rc == 0)
            out->samples[out->n++] = s;
        else
            flm_sample_destroy(&s);
        times->t_pack += flm_now() - t0;
    }
    flm_audio_decoder_destroy(&dec);
    flm_augment_result_clear(&res);
    for (int32_t i = 0; tok && i < n_model; i++)
        flm_free(tok[i]);
    flm_free(tok), flm_free(n_tok), flm_free(ms), flm_free(us), flm_free(st), flm_free(en);
    flm_free(speak), flm_free(listen), flm_free(scodes), flm_free(lcodes), flm_free(buf);
    flm_free(voice[0]), flm_free(voice[1]);
    flm_conv_plan_free(&plan);
    return rc;
}

/* The held conversation -> its samples (all returned, or none and a quarantine). */
int conversation_pack(const pack_ctx *X, conversation *C, pack_out *out, flm_error *fatal)
{
    if (!C->n)
        return 0;
    const job *J = X->J;
    flm_error err = {0};
    side_out sides = {0};
    int stage = ST_PARSE, rc = 0, ret = 0;
    const flm_pack_utt *by_ch[CONV_MAX_SIDES] = {0};
    int32_t ch[CONV_MAX_SIDES] = {-1, -1}, nch = 0, n_frames = 0;
    for (int i = 0; i < C->n && rc == 0; i++)
        if (!C->u[i].audio)
            rc = flm_error_set(&err, FLM_EINVAL,
                               "%s: a conversation needs its audio (\"codes\" alone are not "
                               "enough: the listen side is augmented, then encoded)",
                               C->u[i].id);
        else if (C->u[i].channel < 0)
            rc = flm_error_set(&err, FLM_EINVAL,
                               "%s: channel -1 (a mono mixdown) cannot be one side of a "
                               "conversation: align each channel (\"channel\": 0 and 1)",
                               C->u[i].id);
    if (rc == 0 && C->n == 2 && C->u[0].channel == C->u[1].channel)
        rc = flm_error_set(&err, FLM_EINVAL, "%s and %s: both are channel %d of %s", C->u[0].id,
                           C->u[1].id, C->u[0].channel, C->u[0].audio);
    if (rc == 0) { /* the file's channels: left is the lower one */
        flm_audio_params ap = flm_audio_default_params();
        ap.mode = FLM_AUDIO_PER_CHANNEL;
        flm_audio_decoder *dec = NULL;
        stage = ST_AUDIO;
        if ((rc = flm_audio_decoder_open(&dec, C->u[0].audio, &ap, &err)) == 0)
            nch = flm_audio_decoder_info(dec)->n_channels;
        flm_audio_decoder_destroy(&dec);
    }
    if (rc == 0) {
        stage = ST_PARSE;
        if (C->n == 2) {
            int lo = C->u[0].channel > C->u[1].channel;
            ch[0] = C->u[lo].channel, ch[1] = C->u[!lo].channel;
            by_ch[0] = &C->u[lo], by_ch[1] = &C->u[!lo];
        } else if (nch == 2) {
            int c = C->u[0].channel;
            ch[0] = 0, ch[1] = 1;
            by_ch[c] = &C->u[0];
        } else {
            rc = flm_error_set(&err, FLM_EINVAL,
                               "%s: %d channels and one aligned side (channel %d): the other side "
                               "is ambiguous",
                               C->u[0].audio, nch, C->u[0].channel);
        }
        for (int s = 0; s < 2 && rc == 0; s++)
            if (ch[s] >= nch)
                rc = flm_error_set(&err, FLM_EINVAL, "%s: channel %d, the file has %d",
                                   C->u[0].audio, ch[s], nch);
    }
    if (rc == 0)
        rc = recording_frames(J, C, &n_frames, &err);
    static const char *const side_names[2] = {"left", "right"};
    int packed_sides = 0;
    for (int s = 0; s < 2 && rc == 0; s++) {
        if (J->model_side != 2 && J->model_side != s)
            continue;
        if (!by_ch[s]) {
            if (J->model_side == 2)
                continue; /* --model-side both: a side with no sentences gives no samples */
            rc = flm_error_set(&err, FLM_EINVAL,
                               "%s: no aligned sentences on the %s channel (%d), the model side",
                               C->u[0].audio, side_names[s], ch[s]);
            break;
        }
        rc = pack_side(X, by_ch[s], by_ch[!s], ch[s], ch[!s], nch, n_frames, side_names[s], &sides,
                       out, &stage, &err);
        packed_sides++;
        if (rc == 0)
            out->sentences += (int64_t)by_ch[s]->n_sents;
    }
    if (rc == 0) {
        out->utts++;
        out->conv_sides += packed_sides;
        for (size_t i = 0; i < sides.n && ret == 0; i++) {
            ret = pack_out_sample(out, sides.samples[i], fatal);
            sides.samples[i] = NULL;
        }
    } else if (rc == FLM_ENOMEM) {
        *fatal = err;
        ret = -1;
    } else {
        ret = pack_out_quarantine(out, C->key, C->file, stage, err.msg, fatal);
    }
    for (size_t i = 0; i < sides.n; i++)
        flm_sample_destroy(&sides.samples[i]);
    flm_free(sides.samples);
    conversation_reset(C);
    return ret;
}

int conversation_line(const pack_ctx *X, conversation *C, const pack_line *L, pack_out *out,
                      flm_error *fatal)
{
    flm_pack_utt u;
    flm_error err = {0};
    if (flm_pack_utt_parse(L->text, L->len, L->file, L->line_no, L->dir, &u, &err) < 0)
        return pack_out_quarantine(out, L->key, L->file, ST_PARSE, err.msg, fatal);
    int ret = 0;
    if (C->n && (!u.audio || strcmp(u.audio, C->u[0].audio)))
        ret = conversation_pack(X, C, out, fatal); /* a new recording: the previous is complete */
    if (ret < 0) {
        flm_pack_utt_free(&u);
        return ret;
    }
    if (C->n == CONV_MAX_SIDES) {
        ret = pack_out_quarantine(out, L->key, L->file, ST_PARSE,
                                  "a third line for the same recording (a conversation has two "
                                  "sides, one line per channel)",
                                  fatal);
        flm_pack_utt_free(&u);
        return ret;
    }
    if (!C->n) {
        snprintf(C->key, sizeof C->key, "%s", L->key);
        C->file = L->file;
    }
    C->u[C->n++] = u;
    return ret;
}
