/* Fine-tuning packing (DESIGN 3.3-3.5, 5; docs/dialogs.md; see pack.h): one dialog line -> decode
 * and tokenize its turns, plan the timeline (format drawn by the recipe, interruptions), render
 * both tracks, augment the listen track, encode both with Mimi, pack one sample (returned in a
 * pack_out, or the line quarantined there). */
#include <string.h>

#include "flm_activity.h"
#include "flm_alloc.h"
#include "flm_audio.h"
#include "flm_util.h"
#include "pack.h"

/* One dialog line -> one sample: decode and tokenize each turn, plan the timeline (format drawn
 * by the recipe's shares, interruptions), render both tracks, augment the listen track, encode
 * both with Mimi, pack. */
int dialog_line(const pack_ctx *X, const pack_line *L, pack_out *out, flm_error *fatal)
{
    const job *J = X->J;
    flm_token_buf *tb = X->tb;
    flm_dialog d;
    flm_dialog_plan plan;
    flm_augment_result res;
    flm_error err = {0};
    float *audio[FLM_DIALOG_MAX_TURNS] = {0}, *listen = NULL, *speak = NULL;
    char *voice[2] = {NULL, NULL}; /* who speaks when: speak, listen (before augmentation) */
    int32_t *tok[FLM_DIALOG_MAX_TURNS] = {0}, n_tok[FLM_DIALOG_MAX_TURNS] = {0};
    int32_t *scodes = NULL, *lcodes = NULL;
    int64_t n_samples[FLM_DIALOG_MAX_TURNS] = {0};
    flm_sample *smp = NULL;
    memset(&d, 0, sizeof d);
    memset(&res, 0, sizeof res);
    int stage = ST_PARSE, ret = 0;
    int rc = flm_dialog_parse(&d, L->text, L->len, L->file, (int32_t)L->line_no, L->dir, &err);
    if (rc == 0 && X->sample_exists(X->user, d.id))
        rc = flm_error_set(&err, FLM_EINVAL, "dialog id \"%s\" is already in the dataset", d.id);
    for (int32_t k = 0; k < d.n_turns && rc == 0; k++) {
        flm_audio_params ap = flm_audio_default_params();
        int32_t nch = 0;
        double t0 = flm_now();
        stage = ST_AUDIO;
        rc = flm_audio_read_file(d.turns[k].audio, &ap, &audio[k], &n_samples[k], &nch, &err);
        double t1 = flm_now();
        out->t_decode += t1 - t0;
        if (rc < 0)
            break;
        stage = ST_TOKENIZE;
        if (rc == 0 && (rc = flm_tokenizer_encode(J->tok, d.turns[k].text, strlen(d.turns[k].text),
                                                  tb, &err)) == 0) {
            if (tb->n_ids == 0)
                rc = flm_error_set(&err, FLM_EFORMAT, "turn %d: no tokens in \"%s\"", k,
                                   d.turns[k].text);
            else if (!(tok[k] = flm_malloc(tb->n_ids * sizeof *tok[k])))
                rc = flm_error_set(&err, FLM_ENOMEM, "out of memory");
            else
                memcpy(tok[k], tb->ids, tb->n_ids * sizeof *tok[k]), n_tok[k] = (int32_t)tb->n_ids;
        }
        out->t_tokenize += flm_now() - t1;
    }
    int64_t n = 0;
    double t0 = flm_now();
    if (rc == 0) {
        stage = ST_PACK;
        int fmt = flm_dialog_pick_format(&J->recipe, J->recipe.seed, d.id);
        rc = flm_dialog_plan_make(&plan, &J->dp, fmt, &d, n_samples, n_tok, J->recipe.seed, d.id,
                                  &err);
    }
    if (rc == 0) {
        n = (int64_t)plan.n_frames * J->dp.samples_per_frame;
        listen = flm_calloc((size_t)n, sizeof *listen);
        speak = flm_calloc((size_t)n, sizeof *speak);
        rc = listen && speak ? flm_dialog_render(&plan, &J->dp, (const float *const *)audio,
                                                 n_samples, listen, speak, n, &err)
                             : flm_error_set(&err, FLM_ENOMEM, "out of memory");
    }
    out->t_pack += flm_now() - t0;
    if (rc == 0) {
        int64_t st[FLM_DIALOG_MAX_TURNS], en[FLM_DIALOG_MAX_TURNS];
        flm_augment_span spans[FLM_DIALOG_MAX_TURNS];
        int32_t ns = flm_dialog_user_spans(&plan, J->dp.samples_per_frame, st, en);
        for (int32_t k = 0; k < ns; k++)
            spans[k] = (flm_augment_span){st[k], en[k]};
        t0 = flm_now();
        stage = ST_AUGMENT;
        voice[0] = flm_activity_text(speak, n, J->dp.samples_per_frame, plan.n_frames);
        voice[1] = flm_activity_text(listen, n, J->dp.samples_per_frame, plan.n_frames);
        rc = voice[0] && voice[1] ? flm_augment_apply(&J->ap, J->recipe.seed, d.id, listen, n,
                                                      spans, ns, speak, n, J->pool, &res, &err)
                                  : flm_error_set(&err, FLM_ENOMEM, "out of memory");
        out->t_augment += flm_now() - t0;
    }
    if (rc == 0) {
        t0 = flm_now();
        stage = ST_AUDIO;
        scodes = flm_malloc((size_t)plan.n_frames * FLM_N_CODEBOOKS * sizeof *scodes);
        lcodes = flm_malloc((size_t)plan.n_frames * FLM_N_CODEBOOKS * sizeof *lcodes);
        if (!scodes || !lcodes)
            rc = flm_error_set(&err, FLM_ENOMEM, "out of memory");
        flm_mimi *mimi = NULL;
        if (rc == 0 && (rc = X->codec(X->user, &mimi, NULL, &err)) == 0 &&
            (rc = flm_mimi_encode(mimi, speak, n, scodes, &err)) == 0)
            rc = flm_mimi_encode(mimi, listen, n, lcodes, &err);
        out->t_encode += flm_now() - t0;
    }
    if (rc == 0) {
        t0 = flm_now();
        stage = ST_PACK;
        rc = flm_dialog_pack(&smp, &J->prof, &plan, (const int32_t *const *)tok, n_tok, scodes,
                             lcodes, plan.n_frames, d.id, &err);
        if (rc == 0 &&
            ((rc = flm_augment_result_to_meta(&res, smp, &err)) < 0 ||
             flm_sample_set_stage(smp, J->recipe.stage) || flm_sample_set_corpus(smp, d.corpus) ||
             flm_sample_set_language(smp, d.language) ||
             flm_sample_meta_set_text(smp, FLM_ACTIVITY_SPEAK, voice[0]) ||
             flm_sample_meta_set_text(smp, FLM_ACTIVITY_LISTEN, voice[1])))
            rc = rc < 0 ? rc : flm_error_set(&err, FLM_ENOMEM, "out of memory");
        out->t_pack += flm_now() - t0;
    }
    if (rc == 0) {
        out->utts++;
        out->sentences += d.n_turns;
        ret = pack_out_sample(out, smp, fatal);
        smp = NULL;
    } else if (rc == FLM_ENOMEM) {
        *fatal = err;
        ret = -1;
    } else {
        char msg[FLM_ERROR_MSG_SIZE + 64];
        snprintf(msg, sizeof msg, "%s%s%s", d.id ? d.id : "", d.id ? ": " : "", err.msg);
        ret = pack_out_quarantine(out, L->key, L->file, stage, msg, fatal);
    }
    flm_sample_destroy(&smp);
    for (int k = 0; k < FLM_DIALOG_MAX_TURNS; k++)
        flm_free(audio[k]), flm_free(tok[k]);
    flm_free(listen), flm_free(speak), flm_free(scodes), flm_free(lcodes);
    flm_free(voice[0]), flm_free(voice[1]);
    flm_augment_result_clear(&res);
    flm_dialog_clear(&d);
    return ret;
}
