/* SFT dialog formats: one packed sample from a plan, the tracks' codes and the turns' tokens.
 * See flm_dialog.h. */

#include "duplex.h"
#include "flm_dialog.h"

/* Text position j of turn k's span: ARRT [<asr> user tokens <answer>] response, else response. */
static int32_t token_at(const flm_dialog_plan *plan, const flm_profiles *p, int32_t k, int32_t j,
                        const int32_t *const *tokens, const int32_t *n_tokens)
{
    const flm_dialog_turn_plan *t = &plan->turns[k];
    if (plan->format == FLM_FORMAT_ARRT) {
        int32_t a = t->asr_turn;
        if (a >= 0) {
            if (j == 0)
                return p->vocab.text_asr;
            if (j <= n_tokens[a])
                return tokens[a][j - 1];
            if (j == n_tokens[a] + 1)
                return p->vocab.text_answer;
            j -= n_tokens[a] + 2;
        } else {
            if (j == 0)
                return p->vocab.text_answer;
            j -= 1;
        }
    }
    return tokens[k][j];
}

static int check_inputs(const flm_profiles *p, const flm_dialog_plan *plan,
                        const int32_t *const *tokens, const int32_t *n_tokens,
                        const int32_t *speak_codes, const int32_t *listen_codes, int32_t n_frames,
                        const char *sample_id, flm_error *err)
{
    if (n_frames != plan->n_frames)
        return flm_error_set(err, FLM_EINVAL, "dialog %s: codes of %d frames, the plan has %d",
                             sample_id, n_frames, plan->n_frames);
    for (int32_t k = 0; k < plan->n_turns; k++) {
        if (n_tokens[k] != plan->turns[k].n_tokens)
            return flm_error_set(err, FLM_EINVAL, "dialog %s: turn %d: %d tokens, planned with %d",
                                 sample_id, k, n_tokens[k], plan->turns[k].n_tokens);
        for (int32_t j = 0; j < n_tokens[k]; j++) {
            int32_t v = tokens[k][j];
            if (!duplex_text_token_ok(p, v))
                return flm_error_set(err, FLM_EINVAL,
                                     "dialog %s: turn %d: text token %d is %d (out of the "
                                     "vocabulary or a control token)",
                                     sample_id, k, j, v);
        }
    }
    return duplex_check_codes(p, speak_codes, listen_codes, n_frames, "dialog", sample_id, err);
}

int flm_dialog_pack(flm_sample **out, const flm_profiles *p, const flm_dialog_plan *plan,
                    const int32_t *const *tokens, const int32_t *n_tokens,
                    const int32_t *speak_codes, const int32_t *listen_codes, int32_t n_frames,
                    const char *sample_id, flm_error *err)
{
    *out = NULL;
    int rc = check_inputs(p, plan, tokens, n_tokens, speak_codes, listen_codes, n_frames, sample_id,
                          err);
    if (rc < 0)
        return rc;
    flm_sample *s = NULL;
    if ((rc = duplex_sample_new(&s, p, speak_codes, listen_codes, n_frames, err)) < 0)
        return rc;
    int32_t n_user = 0, n_model = 0;
    for (int32_t k = 0; k < plan->n_turns; k++) {
        const flm_dialog_turn_plan *t = &plan->turns[k];
        if (t->role == FLM_DIALOG_USER)
            n_user++;
        else
            n_model++;
        for (int32_t j = 0; j < t->n_text_kept; j++)
            FLM_TOK(s, FLM_CH_TEXT, t->text_at + j) = token_at(plan, p, k, j, tokens, n_tokens);
    }
    flm_sample_default_classes(s, p->vocab.text_wait, p->codec.aud_empty, p->codec.aud_pad);
    s->duration_s = n_frames * (double)p->codec.samples_per_frame / p->codec.sample_rate;
    const char *style = flm_recipe_format_name(plan->format);
    int bad =
        flm_sample_set_id(s, sample_id) || flm_sample_set_style(s, style) ||
        flm_sample_meta_set_text(s, "dialog.format", style) ||
        flm_sample_meta_set_int(s, "dialog.turns", plan->n_turns) ||
        flm_sample_meta_set_int(s, "dialog.user_turns", n_user) ||
        flm_sample_meta_set_int(s, "dialog.model_turns", n_model) ||
        flm_sample_meta_set_int(s, "dialog.eligible", plan->n_eligible) ||
        flm_sample_meta_set_int(s, "dialog.interrupts", plan->n_interrupts) ||
        flm_sample_meta_set_int(s, "dialog.backchannels", plan->n_backchannels) ||
        flm_sample_meta_set_int(s, "dialog.dropped_tokens", plan->n_dropped_tokens) ||
        flm_sample_meta_set_int(s, "dialog.conflicts", plan->n_conflicts) ||
        flm_sample_meta_set_int(s, "dialog.reaction_frames", plan->reaction_frames) ||
        flm_sample_meta_set_text(s, "dialog.timing", plan->manifest_timing ? "manifest" : "drawn");
    for (int32_t e = 0; e < plan->n_events && !bad; e++)
        bad = flm_sample_add_event(s, plan->events[e].kind, plan->events[e].frame,
                                   plan->events[e].n_frames, plan->events[e].value) != 0;
    if (bad) {
        flm_sample_destroy(&s);
        return flm_error_set(err, FLM_ENOMEM, "out of memory packing %s", sample_id);
    }
    *out = s;
    return 0;
}
