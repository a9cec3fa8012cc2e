/* mimi_internal.h - what the files of the Mimi codec share (engine/mimi*.c; not installed): the
 * model's fields.
 *   mimi_weights.c  the checkpoint tensor table, config inference, loading (copied, convs repacked
 *                   into the kernels' panels), random checkpoints
 *   mimi.c          the streaming layers and state, encode / decode by chunks, the batch wrappers
 * Weights and stream buffers are owned, and tensors loaded, through weights.h (shared with the LM).
 * The weight table of the checkpoint is in mimi_weights.c's opening comment. */
#ifndef FLM_MIMI_INTERNAL_H
#define FLM_MIMI_INTERNAL_H

#include <stddef.h>

#include "flm_kernels.h"
#include "flm_mimi.h"
#include "weights.h"

typedef struct res_w {
    flm_conv1d a; /* C -> C/2, k = residual_kernel */
    flm_conv1d b; /* C/2 -> C, k = 1 */
} res_w;

typedef struct xf_layer {
    float *in_proj;               /* [3d][d] */
    float *out_proj;              /* [d][d] */
    float *n1w, *n1b, *n2w, *n2b; /* [d] */
    float *lin1;                  /* [ff][d] */
    float *lin2;                  /* [d][ff] */
    float *ls1, *ls2;             /* [d] */
    flm_conv1d mm[4];             /* the four as k = 1 convs, what runs (see pack_panels) */
} xf_layer;

typedef struct vq_part {
    float *in_proj;  /* [qd][D] */
    float *out_proj; /* [D][qd] */
    int n_levels;
    float *codebook[64]; /* each [bins][qd] = embedding_sum / max(cluster_usage, eps) */
    float *usage[64];    /* each [bins], only during load */
    float *norm2[64];    /* each [bins]: squared norms of the centroids */
} vq_part;

struct flm_mimi {
    flm_mimi_config cfg;
    int chunk_frames; /* batch step */
    flm_conv1d enc_in, enc_down[4], enc_out;
    res_w enc_res[4];
    xf_layer *enc_xf, *dec_xf; /* [n_layers] */
    flm_conv1d downsample;
    flm_convtr1d upsample;
    vq_part vq[2]; /* 0: rvq_first (semantic), 1: rvq_rest (acoustic) */
    flm_conv1d dec_in, dec_out;
    flm_convtr1d dec_up[4];
    res_w dec_res[4];
    alloc_list allocs; /* every weight */
};

#endif
