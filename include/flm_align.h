/* flm_align.h - transcript importers, sentence splitting, timing refinement (DESIGN 4, issue 6).
 *
 *     flm_align_params ap = flm_align_default_params();
 *     flm_transcript t = {0};
 *     // one transcript file -> utterances (file-level syntax errors fail, per-line errors
 *     // become rejects in t.rejects and the import goes on)
 *     if (flm_transcript_import(&t, FLM_ALIGN_WHISPER, "a.json", text, size, "a.wav", &err) < 0)
 *         puts(err.msg);
 *     for (size_t i = 0; i < t.n_utts; i++) {
 *         flm_utterance *u = &t.utts[i];
 *         u->duration = n / 24000.0;                         // decoded audio x[n] of u->audio
 *         flm_transcript_validate(&t, i, &ap, tok);          // tok may be NULL (estimate)
 *         if (u->rejected) continue;
 *         flm_utterance_split(u, &ap, tok, &err);             // segments -> sentences
 *         flm_utterance_refine(u, x, n, 24000, &ap, &err);    // move splits to pauses, trim
 *         flm_utterance_finish(&t, i, &ap, &codec, tok);      // frames, rate check
 *         flm_utterance_to_json(u, &line, &err);              // one JSONL line, flm_free it
 *     }
 *     flm_transcript_free(&t);
 *
 * The utterance model: one audio file (or one channel of it) with its language, speaker,
 * corpus, and the imported segments (text, start/end in seconds, optional confidence and word
 * timestamps). Splitting turns segments into sentences; refinement moves the split points into
 * distinct silent runs of the decoded audio near their estimates (in order) and trims the silence
 * around each sentence to params.margin. Frames: see flm_align_frames. Rules: docs/align.md.
 *
 * Rejections never stop a job: each is recorded in flm_transcript.rejects with the file, the line
 * (or 0 for JSON documents), a place ("segments[3]"), the utterance id and a reason from
 * flm_align_reason.
 *
 * Ownership: a flm_transcript owns every string and array reachable from it (freed by
 * flm_transcript_free, which leaves it zeroed and reusable). Input buffers are only read.
 * Not thread-safe per transcript; separate transcripts are independent.
 */
#ifndef FLM_ALIGN_H
#define FLM_ALIGN_H

#include <stddef.h>
#include <stdint.h>

#include "flm_error.h"
#include "flm_profile.h"
#include "flm_tokenizer.h"

typedef enum flm_align_format {
    FLM_ALIGN_WHISPER = 1, /* {"segments": [{"start","end","text", "words"?: [...]}]} */
    FLM_ALIGN_FUNASR = 2,  /* [{"key","text","sentence_info": [{"text","start","end"} ms]}] */
    FLM_ALIGN_SRT = 3,
    FLM_ALIGN_VTT = 4,
    FLM_ALIGN_MOSHI = 5,  /* {"alignments": [[word, [start, end], speaker]]} + stereo wav */
    FLM_ALIGN_JSONL = 6,  /* our manifest: schemas/align-manifest.schema.json */
    FLM_ALIGN_NEMO = 7,   /* NeMo manifest: {"audio_filepath","duration","text","offset"?} lines */
    FLM_ALIGN_LHOTSE = 8, /* Lhotse cuts (MonoCut, MultiCut) or supervisions + recordings */
    FLM_ALIGN_MOSHI_FT = 9, /* moshi-finetune's {"path","duration"} lines + PATH.json beside */
    FLM_ALIGN_HF = 10,      /* Hugging Face audiofolder metadata.csv / metadata.jsonl */
} flm_align_format;

/* Options of flm_transcript_import_opts (zero-initialize; every field is optional). */
typedef struct flm_align_import_opts {
    const char *audio;       /* audio of a single-file format (as flm_transcript_import) */
    const char *text_column; /* hf: the transcription column (default: the first of
                                "transcription", "text", "sentence" present) */
    /* lhotse: a recordings manifest (JSONL, already decompressed) for supervisions input;
     * without it, a supervisions file looks for its sibling (the name with "supervisions"
     * replaced by "recordings") */
    const char *recordings_path, *recordings_data;
    size_t recordings_size;
} flm_align_import_opts;

/* Why an item was rejected; names (flm_align_reason_name) are what reports print. */
typedef enum flm_align_reason {
    FLM_REJECT_PARSE = 1,     /* "parse_error": syntax, missing or mistyped field */
    FLM_REJECT_BAD_UTF8,      /* "bad_utf8" */
    FLM_REJECT_EMPTY_TEXT,    /* "empty_text": nothing but spaces and punctuation */
    FLM_REJECT_NEGATIVE_TIME, /* "negative_time" */
    FLM_REJECT_REVERSED_TIME, /* "reversed_time": end <= start */
    FLM_REJECT_OVERLAP,       /* "overlap": starts before the previous segment ends (- tolerance) */
    FLM_REJECT_OUT_OF_AUDIO,  /* "out_of_audio": ends after the audio (+ tolerance) */
    FLM_REJECT_MISSING_AUDIO, /* "missing_audio": the audio file does not exist */
    FLM_REJECT_BAD_AUDIO,     /* "bad_audio": the audio does not decode */
    FLM_REJECT_BAD_CHANNEL,   /* "bad_channel": channel not in the audio */
    FLM_REJECT_DUPLICATE_ID,  /* "duplicate_id" */
    FLM_REJECT_RATE,          /* "speaking_rate": tokens per second outside [min, max] */
    FLM_REJECT_NO_SENTENCES,  /* "no_sentences": every segment of the utterance was rejected */
    FLM_REJECT_N_REASONS
} flm_align_reason;

enum { FLM_LANG_AUTO = 0, FLM_LANG_EN = 1, FLM_LANG_ZH = 2 };

typedef struct flm_align_params {
    double max_duration;      /* s: longer sentences are split at clause punctuation (20) */
    int32_t max_tokens;       /* same for the token count (200) */
    int32_t min_chars;        /* sentences with fewer letters/CJK characters are merged (3) */
    double overlap_tolerance; /* s: overlaps up to this are clipped, beyond rejected (0.05) */
    double audio_tolerance;   /* s: ends up to this past the audio are clipped (0.1) */
    double max_rate;          /* tokens/s above this: rejected (15) */
    double min_rate;          /* tokens/s below this, for sentences over 2 s: rejected (0.3) */
    double search_window;     /* s: a split may move this far from its estimate (1.5) */
    double margin;            /* s: silence kept before/after each sentence (0.04) */
    double hop;               /* s: energy analysis hop (0.01) */
    double silence_db;        /* dB below the loud level counted as silence (40) */
} flm_align_params;

typedef struct flm_align_word {
    char *text;
    double start, end;
    double confidence; /* < 0: not given */
} flm_align_word;

typedef struct flm_align_segment {
    char *text;
    double start, end;     /* s */
    double confidence;     /* < 0: not given */
    int32_t line;          /* source line (SRT/VTT/JSONL), 0 for JSON documents */
    int32_t index;         /* position in the source (segments[index], cue number) */
    int32_t rejected;      /* 0 or a flm_align_reason */
    flm_align_word *words; /* [n_words] optional word timestamps, in order */
    size_t n_words;
} flm_align_segment;

typedef struct flm_sentence {
    char *text;
    double start, end;              /* s, rounded to 1 ms */
    int64_t start_frame, end_frame; /* [start_frame, end_frame) at the codec frame rate */
    double confidence;              /* < 0: not given */
    double split_estimate;          /* s: where the split before this sentence was estimated
                                       (< 0: a boundary given by the input, kept) */
    double split_window;            /* s: how far refinement may move it (0: search_window) */
    int32_t seg;                    /* index of the segment it came from */
} flm_sentence;

typedef struct flm_utterance {
    char *id, *audio, *language, *speaker, *corpus; /* language "" = detect */
    int32_t channel;  /* -1: mono mixdown; otherwise the channel of the audio file */
    double duration;  /* s; < 0 until known */
    char *file;       /* transcript file it came from */
    int32_t line;     /* its line (JSONL), else 0 */
    int32_t rejected; /* 0 or a flm_align_reason (whole utterance) */
    flm_align_segment *segs;
    size_t n_segs, cap_segs;
    flm_sentence *sents;
    size_t n_sents, cap_sents;
} flm_utterance;

typedef struct flm_align_reject {
    char *file;
    int32_t line;   /* 0 when the source has no lines (JSON documents) */
    char *where;    /* "segments[3]", "cue 4", "" */
    char *id;       /* utterance id or "" */
    int32_t reason; /* flm_align_reason */
    char *detail;   /* human-readable: value and expectation */
} flm_align_reject;

typedef struct flm_transcript {
    flm_utterance *utts;
    size_t n_utts, cap_utts;
    flm_align_reject *rejects;
    size_t n_rejects, cap_rejects;
} flm_transcript;

FLM_API flm_align_params flm_align_default_params(void);
FLM_API const char *flm_align_reason_name(int reason);
/* "whisper", "funasr", "srt", "vtt", "moshi", "jsonl", "nemo", "lhotse", "moshi-ft",
 * "hf-audiofolder" -> format, 0 if unknown. */
FLM_API int flm_align_format_from_name(const char *name);
FLM_API const char *flm_align_format_name(int format);

/* The format of a transcript from its content (already decompressed), not its name: 0 when
 * unknown. *lhotse_kind (may be NULL) is set for FLM_ALIGN_LHOTSE: 'c' cuts, 'r' recordings,
 * 's' supervisions. */
FLM_API int flm_align_detect_format(const char *data, size_t size, int *lhotse_kind);

/* Reads path whole; gzip data (magic bytes 1f 8b, whatever the name) is decompressed. More than
 * max_size bytes (read or decompressed: a gzip bomb) is FLM_ERANGE naming the file and the
 * cap; a corrupt gzip stream is FLM_EFORMAT. *out is NUL-terminated; caller frees with flm_free. */
FLM_API int flm_align_read_input(const char *path, size_t max_size, char **out, size_t *size,
                                 flm_error *err);
/* The same on a buffer: gzip -> *out (new buffer), other data -> *out NULL (use the input). */
FLM_API int flm_align_gunzip(const char *path, const char *data, size_t size, size_t max_size,
                             char **out, size_t *out_size, flm_error *err);

/* Parses data[0..size) (the contents of path) and appends its utterances to t. audio: the audio
 * file of a single-file format (whisper, funasr, srt, vtt, moshi); ignored for jsonl, whose lines
 * name their audio relative to the manifest's directory. A document that cannot be parsed at all
 * is FLM_EFORMAT (message names the file and the line); line-level problems are rejects. */
FLM_API int flm_transcript_import(flm_transcript *t, int format, const char *path, const char *data,
                                  size_t size, const char *audio, flm_error *err);
/* The same with options (the manifest formats: nemo, lhotse, moshi-ft, hf read files named by
 * the input: per-wav JSON, a recordings sibling). */
FLM_API int flm_transcript_import_opts(flm_transcript *t, int format, const char *path,
                                       const char *data, size_t size,
                                       const flm_align_import_opts *o, flm_error *err);
FLM_API void flm_transcript_free(flm_transcript *t);
/* Appends a reject (detail is a printf format). FLM_ENOMEM only. */
FLM_API int flm_transcript_reject(flm_transcript *t, const char *file, int32_t line,
                                  const char *where, const char *id, int reason, const char *fmt,
                                  ...) FLM_PRINTF(7, 8);
/* Marks utterance i rejected with reason and records it. */
FLM_API int flm_transcript_reject_utterance(flm_transcript *t, size_t i, int reason,
                                            const char *fmt, ...) FLM_PRINTF(4, 5);

/* Checks utterance i's segments (text UTF-8 and non-empty, times non-negative, ordered, inside
 * u->duration when known, speaking rate). Bad segments are marked and reported; an utterance left
 * without segments is rejected (no_sentences). Returns FLM_ENOMEM only. */
FLM_API int flm_transcript_validate(flm_transcript *t, size_t i, const flm_align_params *p,
                                    const flm_tokenizer *tok);

/* Language of text by script: FLM_LANG_ZH when it has CJK characters and they are at least a third
 * as many as Latin letters (a CJK character carries about as much as three letters), else
 * FLM_LANG_EN. */
FLM_API int flm_align_detect_language(const char *text, size_t size);
/* Language code ("en", "zh", ...) to FLM_LANG_*: zh/cmn/yue/zh-* -> ZH, everything else EN. */
FLM_API int flm_align_language_from_code(const char *code);

/* ---- Sentence splitting (text only) -------------------------------------------------------- */
typedef struct flm_sentence_span {
    size_t begin, end; /* byte range in the text, trimmed of surrounding spaces */
} flm_sentence_span;

/* Splits text into sentences by the rules of docs/align.md (no clause splitting and no merging).
 * *spans is grown with flm_grow (caller frees with flm_free). */
FLM_API int flm_sentence_split(const char *text, size_t size, int lang, flm_sentence_span **spans,
                               size_t *n_spans, size_t *cap_spans, flm_error *err);
/* Merges fragments with fewer than min_chars letters/CJK characters into a neighbour. */
FLM_API void flm_sentence_merge_small(const char *text, flm_sentence_span *spans, size_t *n_spans,
                                      int32_t min_chars);
/* Byte offsets after clause punctuation (, ， 、 : ：, not a colon between digits) inside
 * [begin, end); at most max_points written; returns their count. */
FLM_API size_t flm_sentence_clause_points(const char *text, size_t begin, size_t end,
                                          size_t *points, size_t max_points);
/* Letters and CJK characters in text[begin, end): the weight used for proportional timing. */
FLM_API int32_t flm_sentence_weight(const char *text, size_t begin, size_t end);
/* Token count through tok, or an estimate when tok is NULL (CJK: 1 per character, other:
 * 1 per 4 bytes of a word, at least 1 per word). */
FLM_API int32_t flm_align_count_tokens(const flm_tokenizer *tok, const char *text, size_t size);

/* ---- Timing ------------------------------------------------------------------------------- */
/* Builds u->sents from the non-rejected segments: split, long sentences cut at clause points,
 * fragments merged, split times estimated from word timestamps or proportionally to
 * flm_sentence_weight. */
FLM_API int flm_utterance_split(flm_utterance *u, const flm_align_params *p,
                                const flm_tokenizer *tok, flm_error *err);
/* Refines u->sents on the decoded audio x ([n] mono samples at rate Hz): each split inside a
 * segment moves to the best silent run within search_window of its estimate; every sentence is
 * trimmed of leading/trailing silence down to margin. */
FLM_API int flm_utterance_refine(flm_utterance *u, const float *x, int64_t n, int32_t rate,
                                 const flm_align_params *p, flm_error *err);
/* Seconds -> frames: s = floor(sec * rate + 0.5) (flm_audio's rule), start_frame =
 * floor(s_start / spf), end_frame = ceil(s_end / spf): the frames that overlap the span. */
FLM_API void flm_align_frames(double start, double end, int32_t rate, int32_t samples_per_frame,
                              int64_t *start_frame, int64_t *end_frame);
/* Rounds times to 1 ms, computes frames, drops sentences that became empty, and rejects
 * sentences with an absurd speaking rate (reported with their text). */
FLM_API int flm_utterance_finish(flm_transcript *t, size_t i, const flm_align_params *p,
                                 const flm_codec_profile *codec, const flm_tokenizer *tok);
/* One JSONL line (no newline) in the format of schemas/sentences.schema.json; caller frees. */
FLM_API int flm_utterance_to_json(const flm_utterance *u, char **out, flm_error *err);

/* ---- Duplicate ids -------------------------------------------------------------------------- */
typedef struct flm_align_idset flm_align_idset;
FLM_API int flm_align_idset_create(flm_align_idset **s, flm_error *err);
/* 1 if id was already in the set, 0 if added, FLM_ENOMEM. */
FLM_API int flm_align_idset_add(flm_align_idset *s, const char *id);
FLM_API void flm_align_idset_destroy(flm_align_idset **s);

#endif
