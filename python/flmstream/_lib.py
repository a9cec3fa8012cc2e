"""cffi (ABI mode) binding of the part of libflmstream the reader needs.

The shared library is found, in order, at $FLMSTREAM_LIB, next to this package (the reader-only
libflmstream-reader.so that `pip install ./python` builds and bundles, or a libflmstream.so put
there), in the build tree (../build/libflmstream.so relative to the repository), or by the system
loader.
"""
import os

from cffi import FFI

ffi = FFI()
ffi.cdef(
    """
typedef struct flm_error { int code; char msg[512]; } flm_error;

typedef struct flm_vocab_profile {
    char name[64];
    int32_t version, text_vocab_size, text_wait, text_asr, text_answer, text_pad, text_epad;
    uint64_t hash;
} flm_vocab_profile;
typedef struct flm_codec_profile {
    char name[64];
    int32_t version, sample_rate, samples_per_frame, n_codebooks, card, aud_pad, aud_empty;
    uint64_t hash;
} flm_codec_profile;
typedef struct flm_model_profile {
    char name[64];
    int32_t version;
    int32_t delays[17];
    int32_t sample_frames;
    double loss_weights[5];
    uint64_t hash;
} flm_model_profile;
typedef struct flm_profiles {
    flm_vocab_profile vocab;
    flm_codec_profile codec;
    flm_model_profile model;
} flm_profiles;
void flm_profiles_default(flm_profiles *p);

typedef struct flm_record_view {
    uint32_t n_frames;
    const int32_t *tokens;
    const uint8_t *loss_class;
    double duration_s;
    const char *id, *style, *stage, *language, *corpus, *speakers;
    uint32_t n_meta, n_events;
    const uint8_t *meta_bytes, *event_bytes;
    size_t meta_size, event_size;
} flm_record_view;

typedef struct flm_sample flm_sample;
int flm_record_to_sample(const flm_record_view *v, flm_sample **out, flm_error *err);
void flm_sample_destroy(flm_sample **s);
char *flm_sample_to_json(const flm_sample *s, int flags);
void free(void *p);

typedef struct flm_dataset flm_dataset;
int flm_dataset_open(flm_dataset **ds, const char *index_path, flm_error *err);
void flm_dataset_close(flm_dataset **ds);
int64_t flm_dataset_count(const flm_dataset *ds);
int flm_dataset_read(flm_dataset *ds, int64_t i, flm_record_view *v, flm_error *err);
const char *flm_dataset_location(const flm_dataset *ds, int64_t i, uint64_t *record);
const char *flm_dataset_corpus(const flm_dataset *ds, int64_t i);
int32_t flm_dataset_frames(const flm_dataset *ds, int64_t i);

typedef struct flm_epoch_params {
    uint64_t seed;
    uint64_t epoch;
    int32_t rank, world;
    int64_t start;
    const char *const *corpora;
    const double *weights;
    size_t n_weights;
    double default_weight;
    int shuffle;
} flm_epoch_params;
typedef struct flm_epoch flm_epoch;
flm_epoch_params flm_epoch_default_params(void);
int flm_epoch_create(flm_epoch **e, const flm_dataset *ds, const flm_epoch_params *p, flm_error *err);
void flm_epoch_destroy(flm_epoch **e);
int64_t flm_epoch_global_size(const flm_epoch *e);
int64_t flm_epoch_size(const flm_epoch *e);
int64_t flm_epoch_sample(const flm_epoch *e, int64_t k);
int64_t flm_epoch_position(const flm_epoch *e, int64_t k);
"""
)


def _candidates():
    env = os.environ.get("FLMSTREAM_LIB")
    if env:  # an explicit choice: that library or an ImportError, never a silent fallback
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, "libflmstream-reader.so")
    yield os.path.join(here, "libflmstream.so")
    yield os.path.join(here, "..", "..", "build", "libflmstream.so")
    yield "libflmstream.so"


path = None  # the library loaded


def _load():
    global path
    errors = []
    for p in _candidates():
        if os.sep in p and not os.path.exists(p):
            continue
        try:
            lib_ = ffi.dlopen(p)
        except OSError as e:  # try the next place
            errors.append(f"{p}: {e}")
            continue
        path = p
        return lib_
    raise ImportError(
        "flmstream: cannot load libflmstream.so (set FLMSTREAM_LIB to its path; build it with "
        "tools/build.sh). Tried: " + "; ".join(errors or ["nothing found"])
    )


lib = _load()


FLM_EINVAL = -1  # flm_error.h: bad argument or parameter value
FLM_ERANGE = -6  # index or value out of range


class FlmError(RuntimeError):
    """An error from libflmstream or from the package's own checks; the message names the file,
    record, key or value and the reason. `code` is the FLM_E* code (negative)."""

    def __init__(self, err, code=FLM_EINVAL):
        if isinstance(err, str):  # raised by the Python side (or re-raised by a DataLoader)
            self.code = code
            super().__init__(err)
        else:
            self.code = err.code
            super().__init__(ffi.string(err.msg).decode("utf-8", "replace"))


def check(rc, err):
    if rc < 0:
        raise FlmError(err)
    return rc
