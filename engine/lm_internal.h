/* lm_internal.h - what the files of the FLM-Audio LM share (engine/lm*.c; not installed):
 * the model's fields, the checkpoint tensor table and the run state.
 *   lm_config.c    config.json, presets, the tensor table (names, shapes, destinations)
 *   lm_weights.c   loading (copied or mapped, any weight format), random checkpoints on disk, a
 *                  random model in memory, writing a loaded model
 *   lm.c           run state, backbone, depth head, teacher forcing and its loss
 *   lm_generate.c  streaming generation and sampling
 * Buffers are owned and tensors loaded through weights.h (shared with Mimi).
 * The weight table of the checkpoint is in lm_config.c's opening comment. */
#ifndef FLM_LM_INTERNAL_H
#define FLM_LM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "flm_lm.h"
#include "flm_quant.h"
#include "flm_safetensors.h"
#include "weights.h"

#define NCB FLM_LM_N_CODEBOOKS
#define DEPTH_EPS 1e-6f /* DepthGPT's RMSNorm eps is hard-coded upstream, not in the config */
#define CONFIG_MAX_SIZE (1 << 20)

/* Matrices (and embedding tables) are flm_qmat in the load's weight format; norms, biases and
 * wpe stay float32. */
typedef struct lm_layer {
    float *ln1, *ln2;    /* [d] */
    flm_qmat wq, wk, wv; /* [d][d], [kv][d], [kv][d] */
    float *bq, *bk, *bv; /* [d], [kv], [kv] */
    flm_qmat wo;         /* [d][d] */
    float *bo;           /* [d] or NULL */
    flm_qmat wg, wu;     /* [ff][d] */
    flm_qmat wd;         /* [d][ff] */
} lm_layer;

typedef struct dep_layer {
    float *ln1, *ln2;          /* [E] */
    flm_qmat c_attn;           /* [3E][E] */
    flm_qmat c_proj;           /* [E][E] */
    flm_qmat wg[NCB], wu[NCB]; /* [F][E] per position */
    flm_qmat wd[NCB];          /* [E][F] */
} dep_layer;

struct flm_lm {
    flm_lm_config cfg;
    flm_wtype wtype;
    flm_qmat text_emb;                        /* [V][d] */
    flm_qmat speak_emb[NCB], listen_emb[NCB]; /* [A][d] */
    lm_layer *L;                              /* [n_layers] */
    float *norm;                              /* [d] */
    flm_qmat lm_head;                         /* [V][d] (= text_emb when tied) */
    flm_qmat dep_in;                          /* [8E][d] */
    flm_qmat wte[NCB];                        /* [A][E] */
    float *wpe;                               /* [8][E] */
    dep_layer *D;                             /* [dep_layers] */
    float *ln_f;                              /* [E] */
    flm_qmat head[NCB];                       /* [A][E] */
    alloc_list allocs;                        /* every copied weight (ALLOC_HUGE) */
    flm_safetensors *st; /* kept open while weights are served from its mapping, else NULL */
    size_t mapped_size;  /* bytes of the weights that live in st's mapping */
};

/* ---- the tensor table (lm_config.c) ---- */

enum { INIT_NORMAL, INIT_NORM, INIT_F32 };

typedef struct wdesc {
    char name[160];
    int n_dim;
    int64_t shape[2];
    float **dst;   /* loader destination: a float32 vector ... */
    flm_qmat *mat; /* ... or a matrix in the weight format */
    int init;
} wdesc;

typedef int (*wfn)(void *ctx, const wdesc *d);

/* Enumerates every checkpoint tensor with its shape, calling fn for each; m == NULL: names and
 * shapes only. Returns fn's first error. */
int lm_walk(const flm_lm_config *c, flm_lm *m, wfn fn, void *ctx);

/* ---- run state (lm.c; lm_generate.c runs it) ---- */

struct flm_lm_state {
    const flm_lm *lm;
    int max_ctx, max_rows, pos;
    float **kc, **vc; /* [n_layers] -> [max_ctx][kv] */
    float *x;         /* [max_rows][d] residual stream */
    float *h;         /* [max_rows][d] normed / attention output */
    float *q;         /* [max_rows][d] */
    float *att;       /* [max_rows][d] */
    float *g, *u;     /* [max_rows][ff] */
    float *scr;       /* attention scratch */
    float *wscr;      /* flm_qmat_gemm scratch */
    float *row;       /* [max(d, E)] an embedding row */
    float *trace;     /* borrowed, or NULL */
    /* depth head: frames of 8 positions */
    float *dx;      /* [max_rows][8][E] residual */
    float *dh;      /* [max_rows][8][E] normed */
    float **dqkv;   /* [dep_layers] -> [max_rows][8][3E] (keys of earlier positions) */
    float *datt;    /* [max_rows][8][E] */
    float *dg, *du; /* [max_rows][F] */
    float *dscr;
    /* flm_lm_score */
    int32_t *in;       /* [max_ctx][17] */
    int32_t *tgt;      /* [max_ctx][9] */
    uint8_t *tcls;     /* [max_ctx][9] */
    int32_t *codes;    /* [max_rows][8] */
    float *hid;        /* [max_rows][d] */
    float *tlog;       /* [max_rows][V] */
    float *dlog;       /* [max_rows][8][A] */
    alloc_list allocs; /* every buffer above (ALLOC_HUGE | ALLOC_ZERO) */
};

#endif
