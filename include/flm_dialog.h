/* flm_dialog.h - SFT dialogs (DESIGN 3.3-3.5): manifests, two-voice timelines with simulated
 * interruptions, waveform rendering and the packing of the fine-tuning formats.
 *
 *     flm_dialog_manifest m = {0};
 *     flm_dialog_manifest_load("dialogs.jsonl", &m, &err);      // bad lines land in m.rejects
 *     flm_dialog_params dp;
 *     flm_dialog_params_from_recipe(&dp, &recipe, &profiles, &err);
 *     int fmt = flm_dialog_pick_format(&recipe, seed, id);        // FLM_FORMAT_ARRT, ...
 *     // per turn: decode d->turns[k].audio to 24 kHz mono (n_samples[k]), tokenize its text
 *     flm_dialog_plan plan;
 *     flm_dialog_plan_make(&plan, &dp, fmt, d, n_samples, n_tokens, seed, id, &err);
 *     int64_t n = (int64_t)plan.n_frames * dp.samples_per_frame;
 *     flm_dialog_render(&plan, &dp, audio, n_samples, listen, speak, n, &err);  // [n] each
 *     // augment listen (user spans from flm_dialog_user_spans, speak for the echo), then
 *     // Mimi-encode both tracks: [FLM_N_CODEBOOKS][plan.n_frames] codes each
 *     flm_dialog_pack(&s, &profiles, &plan, tokens, n_tokens, speak_codes, listen_codes,
 *                     plan.n_frames, id, &err);
 *
 * Time is in frames (80 ms). Every utterance starts on a frame boundary of the rendered
 * tracks; its frames are ceil(n_samples / samples_per_frame). The listen track carries the
 * user's turns, the speak track the model's; both are zero elsewhere.
 *
 * Formats (FLM_FORMAT_* of flm_recipe.h):
 * - ARRT, ASR-Response-TTS (fine-tuning-1, semi-duplex): asr_lag frames after a user turn ends
 *   the text channel holds <asr>, the user turn's tokens, <answer>, then the model turn's tokens,
 *   contiguously; the model's speech starts `lead` frames after its first response token. A model
 *   turn that follows no user turn has <answer> and its tokens. A user turn that no model turn
 *   follows gets its span <asr> ... <answer> alone.
 * - RTTS, Response-TTS (fine-tuning-2): the response tokens start a response gap after the user
 *   turn ends; speech `lead` frames after the first of them.
 * - RTTS_FREE, Response-TTS with free user inputs (fine-tuning-2, full duplex): as RTTS, and for
 *   each model turn followed by a user turn (an "eligible" turn), with probability p_interrupt
 *   the user turn is moved to start at an onset frame drawn uniformly over the model's speech
 *   frames. If the user turn is at least reaction_s long, the model's speech and text stop at
 *   cut = onset + round(reaction_s * frame rate): the waveform fades out linearly over fade_s
 *   before cut * samples_per_frame and is zero after; response tokens at frames >= cut are
 *   dropped (the text channel holds <wait>). A shorter user turn is a back-channel: the model
 *   goes on. Either way the next model turn answers the user turn, after it ends.
 * Gaps: the first turn and the sample's end get a drawn gap (uniform frames in [gap_min_s,
 * gap_max_s]); a user turn starts a drawn gap after the model's speech ended (never over the
 * model in ARRT/RTTS); the response gap is drawn from [response_gap_min_s, response_gap_max_s].
 * With manifest_timing, turns that have start times take their gaps from them instead (negative
 * gaps count as 0). A model turn whose text or speech would start before its previous text or
 * speech ended moves later (never overwritten, never dropped) and counts as a conflict.
 *
 * Randomness: flm_rng keyed by (seed, sample_id, purpose), purposes "dialog.format",
 * "dialog.gap", "dialog.response_gap", "dialog.interrupt", "dialog.onset". The same inputs give
 * the same plan, waveforms and sample in any order, thread or partition.
 *
 * Events (in the plan, and on the packed sample, then in the index's events table):
 *   "interrupt"   frame = onset, n_frames = overlap (user and model speech both on),
 *                 value = reaction delay in seconds (cut - onset)
 *   "cut"         frame = cut, n_frames = model speech frames not played, value = tokens dropped
 *                 (only when something was cut)
 *   "backchannel" frame = onset, n_frames = overlap, value = the user sound's length in seconds
 * Metadata "dialog.*": format, turns, user_turns, model_turns, eligible, interrupts,
 * backchannels, dropped_tokens, conflicts, reaction_frames, timing ("drawn" or "manifest").
 *
 * Ownership: manifests and their dialogs own their strings (free with flm_dialog_manifest_free
 * or flm_dialog_clear); plans are plain data; every other input is borrowed; the packed sample
 * is the caller's.
 */
#ifndef FLM_DIALOG_H
#define FLM_DIALOG_H

#include <stddef.h>
#include <stdint.h>

#include "flm_error.h"
#include "flm_profile.h"
#include "flm_recipe.h"
#include "flm_stream.h"

#define FLM_DIALOG_MAX_TURNS 10
#define FLM_DIALOG_MAX_EVENTS (2 * FLM_DIALOG_MAX_TURNS)

enum { FLM_DIALOG_USER = 1, FLM_DIALOG_MODEL = 2 };

/* ---- Manifests (schemas/dialog/dialog.schema.json) --------------------------------------- */

typedef struct flm_dialog_turn {
    int role;     /* FLM_DIALOG_USER or FLM_DIALOG_MODEL */
    char *text;   /* owned */
    char *audio;  /* the manifest's path joined to the manifest's directory, owned */
    double start; /* seconds from the dialog's start; -1 when not given */
} flm_dialog_turn;

typedef struct flm_dialog {
    char *id;       /* "id", or "<manifest>:<line>" when absent; owned */
    char *corpus;   /* NULL when absent; owned */
    char *language; /* NULL when absent; owned */
    int32_t line;   /* line in the manifest (1-based) */
    int32_t n_turns;
    flm_dialog_turn turns[FLM_DIALOG_MAX_TURNS];
} flm_dialog;

typedef struct flm_dialog_reject {
    int32_t line;
    char *error; /* "file:line: key \"turns[2].role\": ...", owned */
} flm_dialog_reject;

typedef struct flm_dialog_manifest {
    flm_dialog *dialogs; /* [n_dialogs] */
    size_t n_dialogs, dialogs_cap;
    flm_dialog_reject *rejects; /* [n_rejects] lines that failed, with the reason */
    size_t n_rejects, rejects_cap;
} flm_dialog_manifest;

/* Parses one JSON line (line_no for messages; dir: directory audio paths are relative to).
 * FLM_EFORMAT naming file, line and key on any schema violation; d is then empty. */
FLM_API int flm_dialog_parse(flm_dialog *d, const char *json, size_t size, const char *file,
                             int32_t line_no, const char *dir, flm_error *err);
FLM_API void flm_dialog_clear(flm_dialog *d);
/* Parses a whole JSONL text (blank lines skipped); bad lines become rejects, good ones dialogs.
 * Fails only when out of memory. Ids are not checked for uniqueness here (the index refuses a
 * second sample with the same key). */
FLM_API int flm_dialog_manifest_parse(flm_dialog_manifest *m, const char *data, size_t size,
                                      const char *path, flm_error *err);
/* Reads path (at most 1 GiB) and parses it. */
FLM_API int flm_dialog_manifest_load(const char *path, flm_dialog_manifest *m, flm_error *err);
FLM_API void flm_dialog_manifest_free(flm_dialog_manifest *m);

/* ---- Timeline planning -------------------------------------------------------------------- */

typedef struct flm_dialog_params {
    int32_t sample_rate;         /* 24000 (codec profile) */
    int32_t samples_per_frame;   /* 1920 */
    int32_t sample_frames;       /* 8192: a dialog longer than this is FLM_ERANGE */
    int32_t lead;                /* speech starts lead frames after the first response token (2) */
    int32_t asr_lag;             /* ARRT: <asr> this many frames after the user turn (0) */
    double gap_min_s, gap_max_s; /* 0.2 .. 1.5 */
    double response_gap_min_s, response_gap_max_s; /* 0 .. 0.5 */
    int32_t manifest_timing;                       /* 1: gaps from the turns' start times */
    double p_interrupt;                            /* RTTS_FREE: 0.7 */
    double reaction_s;                             /* 0.5 */
    double fade_s;                                 /* 0.01 */
} flm_dialog_params;

typedef struct flm_dialog_turn_plan {
    int role;
    int32_t at;       /* first frame of its audio (user: listen, model: speak) */
    int32_t n_frames; /* ceil(n_samples / samples_per_frame) */
    int64_t n_samples;
    int32_t n_tokens; /* tokens of its text */
    /* model turns only (user turns: 0 / -1) */
    int32_t played;         /* frames of speech played (< n_frames when cut) */
    int64_t played_samples; /* samples of the waveform kept (the fade ends there) */
    int32_t text_at;        /* first text position (<asr> or <answer> in ARRT) */
    int32_t n_text;         /* text positions: ARRT span + response tokens */
    int32_t n_text_kept;    /* positions before the cut */
    int32_t asr_turn;       /* ARRT: the user turn transcribed in the span, -1 none */
    int32_t response_at;    /* frame of the first response token */
    int32_t interrupted;    /* 1: a user turn was moved into its speech (or 2: a back-channel) */
} flm_dialog_turn_plan;

typedef struct flm_dialog_event {
    const char *kind; /* "interrupt", "cut", "backchannel" (static strings) */
    int32_t frame, n_frames;
    double value;
    int32_t turn; /* the model turn concerned */
} flm_dialog_event;

typedef struct flm_dialog_plan {
    int format;       /* FLM_FORMAT_ARRT, FLM_FORMAT_RTTS or FLM_FORMAT_RTTS_FREE */
    int32_t n_frames; /* length of the sample (and of both tracks: n_frames * spf samples) */
    int32_t n_turns;
    flm_dialog_turn_plan turns[FLM_DIALOG_MAX_TURNS];
    int32_t reaction_frames;
    int32_t manifest_timing; /* 1 if some gap came from the manifest */
    int32_t n_eligible, n_interrupts, n_backchannels, n_dropped_tokens, n_conflicts;
    int32_t n_events;
    flm_dialog_event events[FLM_DIALOG_MAX_EVENTS];
    int64_t fade_samples;
} flm_dialog_plan;

/* Defaults above, rates from the codec profile, sample_frames from the model profile. */
FLM_API flm_dialog_params flm_dialog_default_params(const flm_profiles *p);
/* Defaults overridden by the recipe's "packing" (lead, sample_frames) and "dialog" keys. */
FLM_API int flm_dialog_params_from_recipe(flm_dialog_params *dp, const flm_recipe *r,
                                          const flm_profiles *p, flm_error *err);
/* The format of one dialog, drawn by the recipe's dialog format shares ("dialog.format").
 * Returns FLM_EINVAL when the recipe has no dialog format. */
FLM_API int flm_dialog_pick_format(const flm_recipe *r, uint64_t seed, const char *sample_id);

/* Plans dialog d given each turn's audio length (samples at sample_rate) and token count.
 * Turns alternate roles (the parser ensures it; checked again). FLM_ERANGE naming the dialog
 * when it does not fit in sample_frames; FLM_EINVAL for empty audio or text. */
FLM_API int flm_dialog_plan_make(flm_dialog_plan *plan, const flm_dialog_params *dp, int format,
                                 const flm_dialog *d, const int64_t *n_samples,
                                 const int32_t *n_tokens, uint64_t seed, const char *sample_id,
                                 flm_error *err);

/* User turns as sample spans [starts[i], ends[i]) of the listen track, in time order (sorted,
 * disjoint): the utterances of flm_augment_apply. Returns their count (<= FLM_DIALOG_MAX_TURNS). */
FLM_API int32_t flm_dialog_user_spans(const flm_dialog_plan *plan, int32_t samples_per_frame,
                                      int64_t *starts, int64_t *ends);

/* Renders both tracks, n = plan->n_frames * samples_per_frame samples each (caller's buffers):
 * audio[k] is turn k's waveform of n_samples[k] samples (the lengths planned with). */
FLM_API int flm_dialog_render(const flm_dialog_plan *plan, const flm_dialog_params *dp,
                              const float *const *audio, const int64_t *n_samples, float *listen,
                              float *speak, int64_t n, flm_error *err);

/* ---- Packing ------------------------------------------------------------------------------ */

/* One sample from the plan: tokens[k][0..n_tokens[k]) are turn k's text tokens (the counts
 * planned with; no <wait>, <asr> or <answer> among them); speak_codes and listen_codes are the
 * codes of the rendered (listen: augmented) tracks, [FLM_N_CODEBOOKS][n_frames] codebook-major,
 * n_frames == plan->n_frames. Style "arrt", "rtts" or "rtts-free"; default loss classes; the
 * plan's events and "dialog.*" metadata; corpus and language are the caller's to set. */
FLM_API int flm_dialog_pack(flm_sample **out, const flm_profiles *p, const flm_dialog_plan *plan,
                            const int32_t *const *tokens, const int32_t *n_tokens,
                            const int32_t *speak_codes, const int32_t *listen_codes,
                            int32_t n_frames, const char *sample_id, flm_error *err);

#endif
