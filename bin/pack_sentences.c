/* Post-training packing (DESIGN 3.1, 3.2; see pack.h): a group's utterances -> codes (.npy, or
 * FFmpeg decode + Mimi encode), Qwen tokens per sentence -> pairs bucketed by (corpus, language)
 * -> TTS- or ASR-style samples (style drawn per sample with the recipe's proportion). A broken
 * utterance is quarantined and its group goes on without it. The samples and quarantines are
 * returned (pack_out), the group's samples when it is packed. */
#include <string.h>

#include "codes.h"
#include "flm_alloc.h"
#include "flm_npy.h"
#include "flm_pack.h"
#include "flm_pack_input.h"
#include "flm_rng.h"
#include "flm_util.h"
#include "pack.h"

typedef struct pair_buf {
    flm_pack_pair pair;
    int32_t utt; /* index into the group's utterances */
    int32_t sent;
    int32_t bucket;
} pair_buf;

typedef struct utt_buf {
    flm_pack_utt u;
    int32_t *codes; /* [8][n_frames] */
    int64_t n_frames;
    int64_t line;
    /* word-level recipes: the utterance's words with their tokens (into tokens) */
    flm_pack_word *words;
    size_t n_words;
    int32_t *tokens;
} utt_buf;

struct sentence_group {
    utt_buf *utts;
    size_t n_utts, cap_utts;
    pair_buf *pairs;
    size_t n_pairs, cap_pairs;
    char **bucket_corpus, **bucket_lang;
    size_t n_buckets, cap_buckets, cap_blang;
};

void sentence_group_free(sentence_group *G)
{
    if (!G)
        return;
    for (size_t i = 0; i < G->n_utts; i++) {
        flm_pack_utt_free(&G->utts[i].u);
        flm_free(G->utts[i].codes);
        flm_free(G->utts[i].words);
        flm_free(G->utts[i].tokens);
    }
    for (size_t i = 0; i < G->n_pairs; i++) {
        flm_free((void *)G->pairs[i].pair.text);
        flm_free((void *)G->pairs[i].pair.id);
        flm_free((void *)G->pairs[i].pair.codes);
    }
    flm_free(G->utts);
    flm_free(G->pairs);
    flm_free(G->bucket_corpus);
    flm_free(G->bucket_lang);
    flm_free(G);
}

static int same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static int bucket_of(sentence_group *G, const flm_pack_utt *u)
{
    for (size_t b = 0; b < G->n_buckets; b++)
        if (same(G->bucket_corpus[b], u->corpus) && same(G->bucket_lang[b], u->language))
            return (int)b;
    if (flm_grow((void **)&G->bucket_corpus, &G->cap_buckets, G->n_buckets + 1,
                 sizeof *G->bucket_corpus) < 0 ||
        flm_grow((void **)&G->bucket_lang, &G->cap_blang, G->n_buckets + 1,
                 sizeof *G->bucket_lang) < 0)
        return -1;
    G->bucket_corpus[G->n_buckets] = u->corpus;
    G->bucket_lang[G->n_buckets] = u->language;
    return (int)G->n_buckets++;
}

/* Codes of an utterance: precomputed, or decoded and encoded. *stage says what failed. */
static int utt_codes(const pack_ctx *X, utt_buf *b, pack_out *out, int *stage, flm_error *err)
{
    const job *J = X->J;
    flm_pack_utt *u = &b->u;
    int rc;
    if (u->codes) {
        int32_t n_q;
        double t0 = flm_now();
        *stage = ST_CODES;
        rc = flm_npy_read_codes(u->codes, &b->codes, &n_q, &b->n_frames, err);
        out->t_read += flm_now() - t0;
        if (rc == 0 && n_q < FLM_N_CODEBOOKS)
            rc = flm_error_set(err, FLM_EFORMAT, "%s: %d codebooks, %d needed", u->codes, n_q,
                               FLM_N_CODEBOOKS);
        /* keep the first 8 codebooks ([n_q][T] -> [8][T] is a prefix) */
    } else {
        codes_timing tm = {0, 0};
        flm_mimi *mimi;
        flm_mimi_stream *stream;
        *stage = ST_AUDIO;
        rc = X->codec(X->user, &mimi, &stream, err);
        if (rc == 0)
            rc = codes_encode_file(stream, FLM_N_CODEBOOKS, u->audio, u->channel, &b->codes,
                                   &b->n_frames, &tm, err);
        out->t_decode += tm.decode_s;
        out->t_encode += tm.encode_s;
    }
    if (rc < 0)
        return rc;
    *stage = ST_CODES;
    for (int64_t i = 0; i < FLM_N_CODEBOOKS * b->n_frames; i++)
        if (b->codes[i] < 0 || b->codes[i] >= J->prof.codec.card)
            return flm_error_set(err, FLM_ERANGE, "%s: code %d at codebook %lld frame %lld",
                                 u->codes ? u->codes : u->audio, b->codes[i],
                                 (long long)(i / b->n_frames), (long long)(i % b->n_frames));
    *stage = ST_FRAMES;
    for (size_t s = 0; s < u->n_sents; s++)
        if (u->sents[s].end_frame > b->n_frames)
            return flm_error_set(err, FLM_ERANGE,
                                 "sentence %zu ends at frame %lld, the audio has %lld frames", s,
                                 (long long)u->sents[s].end_frame, (long long)b->n_frames);
    return 0;
}

sentence_group *sentence_group_new(void)
{
    return flm_calloc(1, sizeof(sentence_group));
}

/* Word-level recipes: tokenizes each word of utterance b (the group's last), times relative to
 * its first sentence; a failure quarantines the line (the utterance dropped). */
static int word_line(const pack_ctx *X, sentence_group *G, utt_buf *b, const pack_line *L,
                     pack_out *out, flm_error *fatal)
{
    const job *J = X->J;
    flm_token_buf *tb = X->tb;
    flm_error err = {0};
    double rate = (double)J->prof.codec.sample_rate / J->prof.codec.samples_per_frame;
    double t0 = b->u.sents[0].start_frame / rate;
    size_t n = 0, n_tok = 0, cap_tok = 0;
    int rc = 0, stage = ST_PARSE;
    for (size_t s = 0; s < b->u.n_sents && rc == 0; s++)
        if (!b->u.sents[s].words)
            rc = flm_error_set(
                &err, FLM_EFORMAT, "sentence %zu has no \"words\": recipe %s is word-level (%s)", s,
                J->recipe.name,
                flm_recipe_format_name(J->words == FLM_PACK_WORDS ? FLM_FORMAT_WORDS
                                                                  : FLM_FORMAT_WORDS_ASR));
        else
            n += b->u.sents[s].n_words;
    if (rc == 0 && !(b->words = flm_calloc(n + 1, sizeof *b->words)))
        rc = flm_error_set(&err, FLM_ENOMEM, "out of memory");
    size_t *offs = rc == 0 ? flm_calloc(n + 1, sizeof *offs) : NULL;
    if (rc == 0 && !offs)
        rc = flm_error_set(&err, FLM_ENOMEM, "out of memory");
    for (size_t s = 0; s < b->u.n_sents && rc == 0; s++) {
        const flm_pack_sentence *q = &b->u.sents[s];
        for (size_t k = 0; k < q->n_words && rc == 0; k++) {
            const flm_pack_input_word *w = &q->words[k];
            stage = ST_TOKENIZE;
            if ((rc = flm_tokenizer_encode(J->tok, w->text, strlen(w->text), tb, &err)) < 0)
                break;
            if (tb->n_ids == 0) {
                rc = flm_error_set(&err, FLM_EFORMAT, "sentence %zu word %zu: no tokens in \"%s\"",
                                   s, k, w->text);
                break;
            }
            if (flm_grow((void **)&b->tokens, &cap_tok, n_tok + tb->n_ids, sizeof *b->tokens) < 0) {
                rc = flm_error_set(&err, FLM_ENOMEM, "out of memory");
                break;
            }
            memcpy(b->tokens + n_tok, tb->ids, tb->n_ids * sizeof *b->tokens);
            offs[b->n_words] = n_tok;
            /* a word that starts before its utterance's first frame (refinement trims silence
             * the transcript's word timings may still cover) counts from that frame */
            double ws = w->start - t0 > 0 ? w->start - t0 : 0;
            double we = w->end - t0 > ws ? w->end - t0 : ws;
            b->words[b->n_words++] = (flm_pack_word){NULL, (int32_t)tb->n_ids, ws, we};
            n_tok += tb->n_ids;
            out->sentences += k == 0;
        }
    }
    for (size_t k = 0; rc == 0 && k < b->n_words; k++) /* tokens moved while growing */
        b->words[k].text = b->tokens + offs[k];
    flm_free(offs);
    if (rc == 0) {
        out->utts++;
        return 0;
    }
    char msg[FLM_ERROR_MSG_SIZE + 64];
    snprintf(msg, sizeof msg, "%s: %s", b->u.id, err.msg);
    G->n_utts--;
    flm_pack_utt_free(&b->u);
    flm_free(b->codes), flm_free(b->words), flm_free(b->tokens);
    memset(b, 0, sizeof *b);
    return pack_out_quarantine(out, L->key, L->file, stage, msg, fatal);
}

/* Parses one line, gets its codes, tokenizes its sentences into pairs. */
int sentence_line(const pack_ctx *X, sentence_group *G, const pack_line *L, pack_out *out,
                  flm_error *fatal)
{
    const job *J = X->J;
    flm_token_buf *tb = X->tb;
    flm_error err = {0};
    if (flm_grow((void **)&G->utts, &G->cap_utts, G->n_utts + 1, sizeof *G->utts) < 0)
        return flm_error_set(fatal, FLM_ENOMEM, "out of memory");
    utt_buf *b = &G->utts[G->n_utts];
    memset(b, 0, sizeof *b);
    b->line = L->line_no;
    int stage = ST_PARSE;
    int rc = flm_pack_utt_parse(L->text, L->len, L->file, L->line_no, L->dir, &b->u, &err);
    if (rc == 0)
        rc = utt_codes(X, b, out, &stage, &err);
    if (rc == 0) {
        G->n_utts++;
    } else {
        char msg[FLM_ERROR_MSG_SIZE + 64];
        snprintf(msg, sizeof msg, "%s%s%s", b->u.id ? b->u.id : "", b->u.id ? ": " : "", err.msg);
        flm_pack_utt_free(&b->u);
        flm_free(b->codes);
        return pack_out_quarantine(out, L->key, L->file, stage, msg, fatal);
    }
    if (J->words)
        return word_line(X, G, b, L, out, fatal);
    int bucket = bucket_of(G, &b->u);
    double t0 = flm_now();
    size_t first_pair = G->n_pairs;
    for (size_t s = 0; s < b->u.n_sents && bucket >= 0; s++) {
        const flm_pack_sentence *q = &b->u.sents[s];
        if (flm_tokenizer_encode(J->tok, q->text, strlen(q->text), tb, &err) < 0 ||
            (tb->n_ids == 0 &&
             flm_error_set(&err, FLM_EFORMAT, "sentence %zu: no tokens in \"%s\"", s, q->text))) {
            while (G->n_pairs > first_pair) { /* the utterance goes whole or not at all */
                pair_buf *p = &G->pairs[--G->n_pairs];
                flm_free((void *)p->pair.text), flm_free((void *)p->pair.id);
                flm_free((void *)p->pair.codes);
            }
            char msg[FLM_ERROR_MSG_SIZE + 64];
            snprintf(msg, sizeof msg, "%s: sentence %zu: %s", b->u.id, s, err.msg);
            out->t_tokenize += flm_now() - t0;
            return pack_out_quarantine(out, L->key, L->file, ST_TOKENIZE, msg, fatal);
        }
        int32_t nf = (int32_t)(q->end_frame - q->start_frame);
        char id[700];
        snprintf(id, sizeof id, "%s#%zu", b->u.id, s);
        int32_t *text = flm_malloc(tb->n_ids * sizeof *text);
        int32_t *codes = flm_malloc((size_t)nf * FLM_N_CODEBOOKS * sizeof *codes);
        char *pid = flm_strdup(id);
        if (!text || !codes || !pid ||
            flm_grow((void **)&G->pairs, &G->cap_pairs, G->n_pairs + 1, sizeof *G->pairs) < 0) {
            flm_free(text), flm_free(codes), flm_free(pid);
            bucket = -1;
            break;
        }
        memcpy(text, tb->ids, tb->n_ids * sizeof *text);
        for (int c = 0; c < FLM_N_CODEBOOKS; c++)
            memcpy(codes + (size_t)c * nf, b->codes + c * b->n_frames + q->start_frame,
                   (size_t)nf * sizeof *codes);
        G->pairs[G->n_pairs++] = (pair_buf){{pid, text, (int32_t)tb->n_ids, codes, nf},
                                            (int32_t)(G->n_utts - 1),
                                            (int32_t)s,
                                            bucket};
        out->sentences++;
    }
    out->t_tokenize += flm_now() - t0;
    if (bucket < 0)
        return flm_error_set(fatal, FLM_ENOMEM, "out of memory");
    flm_free(b->codes); /* the pairs hold copies of their frames */
    b->codes = NULL;
    out->utts++;
    return 0;
}

/* Comma-separated distinct speakers of the pairs in [from, from + n) of one bucket. */
static char *speakers_of(const sentence_group *G, const pair_buf *const *ps, size_t n)
{
    size_t size = 1;
    for (size_t i = 0; i < n; i++) {
        const char *sp = G->utts[ps[i]->utt].u.speaker;
        size += sp ? strlen(sp) + 1 : 0;
    }
    char *out = flm_malloc(size);
    if (!out)
        return NULL;
    out[0] = 0;
    for (size_t i = 0; i < n; i++) {
        const char *sp = G->utts[ps[i]->utt].u.speaker;
        int seen = 0;
        for (size_t k = 0; sp && k < i && !seen; k++)
            seen = same(G->utts[ps[k]->utt].u.speaker, sp);
        if (sp && !seen) {
            if (out[0])
                strcat(out, ",");
            strcat(out, sp);
        }
    }
    return out;
}

/* Word-level recipes: one sample per utterance, its speech from its first sentence's start to
 * its last sentence's end. */
static int words_group_pack(const pack_ctx *X, sentence_group *G, const char *file,
                            const char *sample_base, pack_out *out, flm_error *err)
{
    const job *J = X->J;
    double t0 = flm_now();
    int rc = 0;
    for (size_t i = 0; i < G->n_utts && rc == 0; i++) {
        utt_buf *b = &G->utts[i];
        int64_t from = b->u.sents[0].start_frame, to = b->u.sents[b->u.n_sents - 1].end_frame;
        int32_t nf = (int32_t)(to - from);
        int32_t *codes = flm_malloc((size_t)nf * FLM_N_CODEBOOKS * sizeof *codes);
        if (!codes) {
            rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
            break;
        }
        for (int c = 0; c < FLM_N_CODEBOOKS; c++)
            memcpy(codes + (size_t)c * nf, b->codes + c * b->n_frames + from,
                   (size_t)nf * sizeof *codes);
        char sid[700];
        snprintf(sid, sizeof sid, "%s#L%lld", sample_base, (long long)b->line);
        flm_sample *s = NULL;
        rc = flm_pack_words(&s, &J->prof, J->words, J->recipe.word_lag, codes, nf, b->words,
                            b->n_words, sid, err);
        flm_free(codes);
        if (rc == 0 && s->n_frames > J->recipe.sample_frames)
            rc = flm_error_set(err, FLM_ERANGE, "%s: %d frames, longer than a sample (%d)", sid,
                               s->n_frames, J->recipe.sample_frames);
        if (rc == FLM_ERANGE || rc == FLM_EINVAL) { /* this utterance cannot be packed */
            char key[700], msg[FLM_ERROR_MSG_SIZE + 64];
            snprintf(key, sizeof key, "pack:%s:%lld:%s#words", pack_base_name(file),
                     (long long)b->line, b->u.id);
            snprintf(msg, sizeof msg, "%s: %s", b->u.id, err->msg);
            flm_sample_destroy(&s);
            rc = pack_out_quarantine(out, key, file, ST_PACK, msg, err);
            continue;
        }
        if (rc == 0 &&
            (flm_sample_set_stage(s, J->recipe.stage) || flm_sample_set_corpus(s, b->u.corpus) ||
             flm_sample_set_language(s, b->u.language) || flm_sample_set_speakers(s, b->u.speaker)))
            rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
        if (rc == 0) {
            rc = pack_out_sample(out, s, err);
            s = NULL;
        }
        flm_sample_destroy(&s);
    }
    out->t_pack += flm_now() - t0;
    return rc;
}

int sentence_group_pack(const pack_ctx *X, sentence_group *G, const char *file,
                        const char *sample_base, pack_out *out, flm_error *err)
{
    const job *J = X->J;
    if (J->words)
        return words_group_pack(X, G, file, sample_base, out, err);
    if (G->n_pairs == 0)
        return 0;
    double t0 = flm_now();
    flm_pack_pair *pairs = flm_malloc((G->n_pairs + 1) * sizeof *pairs);
    const pair_buf **refs = flm_malloc((G->n_pairs + 1) * sizeof *refs);
    int rc = pairs && refs ? 0 : flm_error_set(err, FLM_ENOMEM, "out of memory");
    int64_t k = 0;
    for (size_t b = 0; b < G->n_buckets && rc == 0; b++) {
        size_t n = 0;
        for (size_t i = 0; i < G->n_pairs; i++)
            if (G->pairs[i].bucket == (int32_t)b) {
                refs[n] = &G->pairs[i];
                pairs[n++] = G->pairs[i].pair;
            }
        for (size_t i = 0; i < n && rc == 0;) {
            char sid[700];
            snprintf(sid, sizeof sid, "%s#%lld", sample_base, (long long)k);
            flm_rng r;
            flm_rng_init(&r, J->recipe.seed, sid, "pack.style");
            flm_packer_params pp = flm_packer_default_params(&J->prof);
            double p_tts =
                J->recipe.p_format[FLM_FORMAT_TTS] /
                (J->recipe.p_format[FLM_FORMAT_TTS] + J->recipe.p_format[FLM_FORMAT_ASR]);
            pp.style = flm_rng_uniform(&r) < p_tts ? FLM_PACK_TTS : FLM_PACK_ASR;
            pp.lead = J->recipe.lead;
            pp.lag = J->recipe.lag;
            pp.sample_frames = J->recipe.sample_frames;
            double fr = (double)J->prof.codec.sample_rate / J->prof.codec.samples_per_frame;
            pp.silence_min = (int32_t)(J->recipe.silence_min_s * fr + 0.5);
            pp.silence_max = (int32_t)(J->recipe.silence_max_s * fr + 0.5);
            memcpy(pp.silence, J->silence, sizeof pp.silence);
            flm_sample *s = NULL;
            size_t used = 0;
            rc = flm_pack_sentences(&s, &J->prof, &pp, pairs + i, n - i, J->recipe.seed, sid, &used,
                                    err);
            if (rc == FLM_ERANGE) { /* one sentence longer than a sample: quarantine it */
                const utt_buf *u = &G->utts[refs[i]->utt];
                char key[700];
                snprintf(key, sizeof key, "pack:%s:%lld:%s#%d", pack_base_name(file),
                         (long long)u->line, u->u.id, refs[i]->sent);
                rc = pack_out_quarantine(out, key, file, ST_PACK, err->msg, err);
                i++;
                continue;
            }
            char *spk = rc == 0 ? speakers_of(G, refs + i, used) : NULL;
            const flm_pack_utt *u0 = &G->utts[refs[i]->utt].u;
            if (rc == 0 &&
                (!spk || flm_sample_set_stage(s, J->recipe.stage) ||
                 flm_sample_set_corpus(s, u0->corpus) || flm_sample_set_language(s, u0->language) ||
                 flm_sample_set_speakers(s, spk[0] ? spk : NULL)))
                rc = flm_error_set(err, FLM_ENOMEM, "out of memory");
            flm_free(spk);
            if (rc == 0) {
                rc = pack_out_sample(out, s, err);
                s = NULL;
            }
            flm_sample_destroy(&s);
            i += used;
            k++;
        }
    }
    flm_free(pairs);
    flm_free(refs);
    out->t_pack += flm_now() - t0;
    return rc;
}
