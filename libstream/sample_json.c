/* JSON form of a sample: what `flm inspect --json` prints and what readers compare against
 * (flm_json.h: floats shortest round-trip). */
#include <jansson.h>

#include "flm_json.h"
#include "flm_stream.h"

static json_t *meta_object(const flm_sample *s)
{
    json_t *meta = json_object();
    for (int32_t i = 0; meta && i < s->n_meta; i++) {
        const flm_meta *m = &s->meta[i];
        json_t *v = m->type == FLM_META_INT    ? json_integer(m->i)
                    : m->type == FLM_META_REAL ? json_real(m->r)
                                               : json_string(m->s);
        json_object_set_new(meta, m->key, v ? v : json_null());
    }
    return meta;
}

char *flm_sample_to_json(const flm_sample *s, int flags)
{
    if (flags & FLM_JSON_METADATA_ONLY) {
        json_t *meta = meta_object(s);
        char *txt = meta ? flm_json_dumps(meta) : NULL;
        json_decref(meta);
        return txt;
    }
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "id", s->id ? json_string(s->id) : json_null());
    const char *keys[5] = {"style", "stage", "language", "corpus", "speakers"};
    const char *vals[5] = {s->style, s->stage, s->language, s->corpus, s->speakers};
    for (int i = 0; i < 5; i++)
        json_object_set_new(o, keys[i], vals[i] ? json_string(vals[i]) : json_null());
    json_object_set_new(o, "n_frames", json_integer(s->n_frames));
    json_object_set_new(o, "duration_s", json_real(s->duration_s));
    if (flags & FLM_JSON_TOKENS) {
        json_t *tok = json_array(), *cls = json_array();
        for (int ch = 0; ch < FLM_N_CHANNELS; ch++) {
            json_t *a = json_array(), *b = json_array();
            for (int32_t t = 0; t < s->n_frames; t++) {
                json_array_append_new(a, json_integer(FLM_TOK(s, ch, t)));
                json_array_append_new(b, json_integer(FLM_CLS(s, ch, t)));
            }
            json_array_append_new(tok, a);
            json_array_append_new(cls, b);
        }
        json_object_set_new(o, "tokens", tok);
        json_object_set_new(o, "loss_class", cls);
    }
    json_object_set_new(o, "metadata", meta_object(s));
    json_t *ev = json_array();
    for (int32_t i = 0; i < s->n_events; i++) {
        const flm_event *e = &s->events[i];
        json_array_append_new(ev, json_pack("{s:s,s:i,s:i,s:f}", "kind", e->kind, "frame",
                                            (int)e->frame, "n_frames", (int)e->n_frames, "value",
                                            e->value));
    }
    json_object_set_new(o, "events", ev);
    char *txt = flm_json_dumps(o);
    json_decref(o);
    return txt;
}
