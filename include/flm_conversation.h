/* flm_conversation.h - recorded two-channel conversations -> full-duplex fine-tuning samples
 * (recipe format "conversation"; docs/conversations.md).
 *
 * A conversation is one recording with one speaker per channel (a call-centre or Fisher-style
 * corpus, moshi-finetune's stereo wavs) and each side's sentences with their frames, as
 * `flm align` writes them. One side is the model: its speech goes on the speak channels and its
 * sentences' tokens on the text channel; the other side's speech goes on the listen channels.
 * Nothing is moved in time: the recording is the timeline.
 *
 *     flm_conv_params cp = flm_conv_params_from_recipe(&recipe, &profiles);
 *     flm_conv_plan plan;
 *     flm_conv_plan_make(&plan, &cp, model, n_tokens, n_model, user, n_user, n_frames, id, &err);
 *     for (int32_t k = 0; k < plan.n_parts; k++) {
 *         // frames [parts[k].start, parts[k].end) of both channels: augment the listen side
 *         // (flm_conv_user_spans), Mimi-encode both
 *         flm_conv_pack(&s, &profiles, &plan, k, tokens, speak_codes, listen_codes, len, id, &err);
 *     }
 *     flm_conv_plan_free(&plan);
 *
 * Time is in frames of the recording (80 ms), spans are [start, end).
 *
 * Text. Model sentence i's tokens are contiguous from text_at[i] =
 * max(start_i - lead, text_at[i-1] + n_tokens[i-1], 0): the recipe's lead where the previous
 * sentence's tokens allow, otherwise as early as possible (a "short lead": counted, and the lead
 * may then be 0 or negative). Every other text position holds <wait>.
 *
 * Parts. A model sentence is active from min(text_at, start) to max(end, text_at + n_tokens);
 * overlapping activities form blocks. A sample never cuts a block. Parts tile the recording from
 * frame 0: each ends in the pause after the last block that fits in sample_frames, at the first
 * frame of that pause where no user sentence is going on (a cut at c is inside [s, e) when
 * s < c < e); when every such frame is inside a user sentence, at the block's end ("split_user").
 * A pause longer than a sample is cut at the last frame that fits outside user sentences. The
 * last part ends at the recording's end (or at the end of the last model text, if later). A block
 * longer than sample_frames is FLM_ERANGE.
 *
 * Events (the synthetic dialogs' kinds, flm_dialog.h), from the two sides' sentence frames
 * (`flm align` trims them to the speech, so sentences said in one breath may show a frame or
 * two between them). A side's sentences form one stretch of speech until a pause of
 * FLM_CONV_STRETCH_GAP frames (0.24 s) or more. A stretch's length len is t1 - t0 of
 * its sentences' seconds (the `start` and `end` flm align writes; frames * frame_s when a line has
 * none). For each user stretch U = [u0, u1) that starts inside a model stretch M = [m0, m1)
 * (m0 <= u0 < m1):
 *   "backchannel" len(U) < reaction_s and m1 > u1 (the model goes on):
 *                 frame u0, n_frames u1 - u0, value len(U) in seconds
 *   "interrupt"   len(U) >= reaction_s, m1 - u0 <= yield_frames and the model's next stretch
 *                 starts no earlier than u1 (the model yields the floor):
 *                 frame u0, n_frames min(u1, m1) - u0, value (m1 - u0) frames in seconds (the
 *                 reaction)
 *   "overlap"     otherwise (both go on talking): frame u0, n_frames the overlap, value the
 *                 overlap in seconds
 * and for each model stretch starting inside a user stretch (u0 < m0 < u1): "overlap" at m0.
 * An event belongs to the part its frame is in; its n_frames stop at the part's end.
 * Metadata "dialog.*" as the synthetic dialogs (format "conversation", turns, user_turns,
 * model_turns, eligible = model turns followed by a user turn, interrupts, backchannels,
 * dropped_tokens = 0, conflicts = 0, reaction_frames, timing "recording"), so `flm index stats`
 * reports them, and "conversation.*": part, parts, start_frame (of the part in the recording),
 * sentences (model), user_sentences, short_leads, overlaps, split_user.
 *
 * Ownership: plans own their arrays (flm_conv_plan_free); inputs are borrowed; the packed sample
 * is the caller's.
 */
#ifndef FLM_CONVERSATION_H
#define FLM_CONVERSATION_H

#include <stdint.h>

#include "flm_error.h"
#include "flm_profile.h"
#include "flm_recipe.h"
#include "flm_stream.h"

/* A pause of this many frames or more ends a stretch of speech (see Events above). */
#define FLM_CONV_STRETCH_GAP 3

typedef struct flm_conv_span {
    int32_t start, end; /* [start, end) frames of the recording */
    double t0, t1;      /* the speech in seconds (t1 < 0: unknown, the frames are used) */
} flm_conv_span;

typedef struct flm_conv_params {
    int32_t sample_frames;   /* packing.sample_frames */
    int32_t lead;            /* packing.lead */
    double reaction_s;       /* dialog.reaction_s */
    int32_t reaction_frames; /* the same in frames (metadata) */
    int32_t yield_frames;    /* dialog.yield_s in frames */
    double frame_s;          /* seconds per frame (0.08) */
} flm_conv_params;

typedef struct flm_conv_event {
    const char *kind; /* "interrupt", "backchannel", "overlap" (static strings) */
    int32_t frame, n_frames;
    double value;
} flm_conv_event;

typedef struct flm_conv_part {
    int32_t start, end;            /* frames of the recording */
    int32_t first, n;              /* its model sentences [first, first + n) */
    int32_t first_user, n_user;    /* user sentences starting in it */
    int32_t first_event, n_events; /* its events (plan->events) */
    int32_t turns, user_turns, model_turns, eligible;
    int32_t interrupts, backchannels, overlaps, short_leads;
    int32_t split_user; /* 1: its end cuts a user sentence */
} flm_conv_part;

typedef struct flm_conv_plan {
    int32_t n_model, n_user, n_frames; /* n_frames: the recording's, or its last text's end */
    int32_t reaction_frames;
    int32_t *text_at; /* [n_model] frame of each model sentence's first token */
    int32_t *n_tokens;
    int32_t n_events;
    flm_conv_event *events; /* by frame */
    int32_t n_parts;
    flm_conv_part *parts;
} flm_conv_plan;

/* The recipe's packing.lead, packing.sample_frames, dialog.reaction_s and dialog.yield_s. */
FLM_API flm_conv_params flm_conv_params_from_recipe(const flm_recipe *r, const flm_profiles *p);

/* Plans a conversation of n_frames frames: model[0..n_model) and user[0..n_user) are each side's
 * sentences in time order (a sentence may share one frame with the previous one), n_tokens[i]
 * model sentence i's token count (>= 1). FLM_EINVAL naming the conversation and the sentence for
 * sentences out of order or past the recording, FLM_ERANGE for a block longer than a sample. */
FLM_API int flm_conv_plan_make(flm_conv_plan *plan, const flm_conv_params *cp,
                               const flm_conv_span *model, const int32_t *n_tokens, int32_t n_model,
                               const flm_conv_span *user, int32_t n_user, int32_t n_frames,
                               const char *id, flm_error *err);
FLM_API void flm_conv_plan_free(flm_conv_plan *plan);

/* The user sentences overlapping part k as sample spans of its listen track (clipped to the
 * part, in order; two sentences sharing a frame make one span): the utterances of
 * flm_augment_apply (sorted, disjoint). starts and ends hold plan->n_user
 * entries. Returns the count. */
FLM_API int32_t flm_conv_user_spans(const flm_conv_plan *plan, int32_t k, const flm_conv_span *user,
                                    int32_t samples_per_frame, int64_t *starts, int64_t *ends);

/* Part k as one sample of parts[k].end - parts[k].start frames: tokens[i] are model sentence i's
 * tokens (the counts planned with; no control tokens), speak_codes and listen_codes the codes of
 * the part's two tracks, [FLM_N_CODEBOOKS][n_frames] codebook-major. Style "conversation",
 * default loss classes, the part's events and metadata. */
FLM_API int flm_conv_pack(flm_sample **out, const flm_profiles *p, const flm_conv_plan *plan,
                          int32_t k, const int32_t *const *tokens, const int32_t *speak_codes,
                          const int32_t *listen_codes, int32_t n_frames, const char *sample_id,
                          flm_error *err);

#endif
