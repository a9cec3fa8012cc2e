/* flm_pack_input.h - the input of `flm pack`: one utterance per JSONL line, as `flm align`
 * writes it (schemas/align/sentences.schema.json), optionally with precomputed codes.
 *
 *     flm_pack_utt u;
 *     if (flm_pack_utt_parse(line, len, "data/sentences.jsonl", 12, "data", &u, &err) < 0)
 *         quarantine(err.msg);   // "data/sentences.jsonl:12: key \"sentences[3].end_frame\": ..."
 *     ...
 *     flm_pack_utt_free(&u);
 *
 * Keys: id (required; no control characters), audio (path; required unless codes is given),
 * codes (optional path of a .npy code array, flm_npy.h, shape (n_q, n_frames) covering the whole
 * audio: the codes are then not computed), channel (-1 mono mixdown, default; or 0..63),
 * language, speaker, corpus (string or null), duration (number; informative), sentences (1 or more,
 * each text (non-empty), start_frame >= 0, end_frame > start_frame, in time order: a sentence
 * may share at most one frame with the previous one; start and end in seconds (kept when they are
 * numbers with 0 <= start <= end, else -1; conversations measure speech lengths with them) and
 * confidence (accepted, not used); words, optional: [{"text", "start", "end"}, ...] in seconds from
 * the start of the audio, in time order, whose texts concatenated and trimmed are the sentence's
 * text -- the word timings of the word-level arms). Relative paths are relative to base_dir (the
 * manifest's directory). Unknown keys are errors (a typo must not silently drop a field). Every
 * error names the file, the line and the key.
 */
#ifndef FLM_PACK_INPUT_H
#define FLM_PACK_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "flm_error.h"

/* A timed word of a sentence (for the word-level arms; seconds from the start of the audio). */
typedef struct flm_pack_input_word {
    char *text; /* verbatim, leading space included where the transcript has one (" world") */
    double start, end;
} flm_pack_input_word;

typedef struct flm_pack_sentence {
    char *text;
    int64_t start_frame, end_frame; /* [start_frame, end_frame) of the utterance's codes */
    double start, end;          /* seconds, when given as numbers with 0 <= start <= end; else -1 */
    flm_pack_input_word *words; /* optional; NULL when the line has none */
    size_t n_words;
} flm_pack_sentence;

typedef struct flm_pack_utt {
    char *id;
    char *audio; /* resolved path, or NULL when only codes are given */
    char *codes; /* resolved path of precomputed codes, or NULL */
    int32_t channel;
    char *language, *speaker, *corpus; /* NULL when not given */
    double duration;                   /* s; -1 when not given */
    flm_pack_sentence *sents;
    size_t n_sents;
} flm_pack_utt;

FLM_API int flm_pack_utt_parse(const char *line, size_t len, const char *file, int64_t line_no,
                               const char *base_dir, flm_pack_utt *u, flm_error *err);
FLM_API void flm_pack_utt_free(flm_pack_utt *u);

#endif
