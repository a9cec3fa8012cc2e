/* The inputs of flm pack: .npy code arrays (flm_npy.h: round trip, every accepted dtype and shape,
 * rejections with their messages), the sentence lines (flm_pack_input.h: fields, path
 * resolution, each error naming file, line and key), and flm_path_relative (what flm align writes
 * so that those paths resolve). Exact expected values throughout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flm_alloc.h"
#include "flm_npy.h"
#include "flm_pack_input.h"
#include "flm_util.h"
#include "tap.h"
#include "test_util.h"

/* A v1 .npy image with the given header dict and raw little-endian data. */
static size_t npy(uint8_t *out, const char *dict, const void *data, size_t n)
{
    size_t hl = strlen(dict), total = (10 + hl + 1 + 63) / 64 * 64;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    flm_put_u16(out + 8, (uint16_t)(total - 10));
    memset(out + 10, ' ', total - 10);
    memcpy(out + 10, dict, hl);
    out[total - 1] = '\n';
    memcpy(out + total, data, n);
    return total + n;
}

static void test_npy(const char *dir)
{
    uint8_t buf[1024];
    int32_t *c = NULL, n_q = 0;
    int64_t T = 0;
    flm_error err = {0};

    int16_t i2[6] = {0, 1, -2, 300, 2047, -32768};
    size_t n =
        npy(buf, "{'descr': '<i2', 'fortran_order': False, 'shape': (2, 3), }", i2, sizeof i2);
    TAP_EQ_INT(flm_npy_parse_codes(buf, n, "a.npy", &c, &n_q, &T, &err), 0, "int16 (2, 3)");
    TAP_OK(n_q == 2 && T == 3 && c[0] == 0 && c[2] == -2 && c[3] == 300 && c[5] == -32768,
           "int16 values, codebook-major");
    flm_free(c);

    uint16_t u2[2] = {65535, 7};
    n = npy(buf, "{'descr': '<u2', 'fortran_order': False, 'shape': (1, 1, 2), }", u2, sizeof u2);
    TAP_EQ_INT(flm_npy_parse_codes(buf, n, "b.npy", &c, &n_q, &T, &err), 0, "uint16 (1, 1, 2)");
    TAP_OK(n_q == 1 && T == 2 && c[0] == 65535 && c[1] == 7, "uint16 values, leading 1 dropped");
    flm_free(c);

    int64_t i8[2] = {2049, (int64_t)1 << 40};
    n = npy(buf, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 1), }", i8, sizeof i8);
    TAP_EQ_INT(flm_npy_parse_codes(buf, n, "c.npy", &c, &n_q, &T, &err), FLM_ERANGE,
               "int64 beyond int32");
    TAP_CONTAINS(err.msg, "c.npy: value 1099511627776 at codebook 1 frame 0", "names the place");

    n = npy(buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1), }", i2, 8);
    TAP_EQ_INT(flm_npy_parse_codes(buf, n, "d.npy", &c, &n_q, &T, &err), FLM_EFORMAT, "float32");
    TAP_CONTAINS(err.msg, "d.npy: dtype must be little-endian int16", "says which dtypes");
    n = npy(buf, "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 1), }", i2, 8);
    TAP_EQ_INT(flm_npy_parse_codes(buf, n, "e.npy", &c, &n_q, &T, &err), FLM_EFORMAT, "Fortran");
    n = npy(buf, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", i2, 12);
    TAP_EQ_INT(flm_npy_parse_codes(buf, n, "f.npy", &c, &n_q, &T, &err), FLM_EFORMAT, "short");
    TAP_CONTAINS(err.msg, "f.npy: shape (2, 2) needs 16 data bytes, the file has 12",
                 "says what the shape needs");
    n = npy(buf, "{'descr': '<i4', 'fortran_order': False, 'shape': (65, 0), }", i2, 0);
    TAP_EQ_INT(flm_npy_parse_codes(buf, n, "g.npy", &c, &n_q, &T, &err), FLM_EFORMAT,
               "65 codebooks");
    TAP_EQ_INT(flm_npy_parse_codes("\x93NUMPY\x03", 8, "h.npy", &c, &n_q, &T, &err), FLM_EFORMAT,
               "format 3");

    /* write -> read round trip, through numpy's reader's rules (v1, 64-byte aligned header) */
    int32_t codes[8 * 5];
    for (int i = 0; i < 40; i++)
        codes[i] = i * 51 % 2048;
    char path[1100];
    snprintf(path, sizeof path, "%s/rt.npy", dir);
    TAP_EQ_INT(flm_npy_write_codes(path, codes, 8, 5, &err), 0, "write");
    TAP_EQ_INT(flm_npy_read_codes(path, &c, &n_q, &T, &err), 0, "read back");
    TAP_OK(n_q == 8 && T == 5 && !memcmp(c, codes, sizeof codes), "identical codes");
    flm_free(c);
    char *raw = NULL;
    size_t size = 0;
    flm_read_file(path, &raw, &size, 1 << 20, &err);
    TAP_OK(size == 128 + 160 && raw[127] == '\n' && !memcmp(raw + 10, "{'descr': '<i4'", 15) &&
               flm_get_u32((const uint8_t *)raw + 128 + 4) == 51,
           "header padded to a multiple of 64 bytes, int32 little-endian data after it");
    flm_free(raw);
}

static void test_lines(void)
{
    flm_pack_utt u;
    flm_error err = {0};
    const char *good =
        "{\"id\": \"u1\", \"audio\": \"a/u1.wav\", \"channel\": 1, \"language\": \"en\", "
        "\"speaker\": null, \"corpus\": \"libri\", \"duration\": 3.5, \"sentences\": ["
        "{\"text\": \"Hi.\", \"start\": 0.0, \"end\": 0.5, \"start_frame\": 0, \"end_frame\": 7, "
        "\"confidence\": null}, {\"text\": \"Bye.\", \"start_frame\": 6, \"end_frame\": 20}]}";
    TAP_EQ_INT(flm_pack_utt_parse(good, strlen(good), "m.jsonl", 3, "data", &u, &err), 0,
               "an flm align line");
    TAP_EQ_STR(u.id, "u1", "id");
    TAP_EQ_STR(u.audio, "data/a/u1.wav", "audio relative to the manifest's directory");
    TAP_OK(u.codes == NULL && u.channel == 1 && u.speaker == NULL && u.duration == 3.5,
           "channel, null speaker, duration");
    TAP_OK(u.n_sents == 2 && u.sents[1].start_frame == 6 && u.sents[1].end_frame == 20 &&
               !strcmp(u.sents[1].text, "Bye."),
           "sentences (sharing one frame is allowed)");
    flm_pack_utt_free(&u);

    const char *codes = "{\"id\": \"u2\", \"codes\": \"/abs/u2.npy\", \"sentences\": "
                        "[{\"text\": \"x\", \"start_frame\": 1, \"end_frame\": 2}]}";
    TAP_EQ_INT(flm_pack_utt_parse(codes, strlen(codes), "m.jsonl", 4, "data", &u, &err), 0,
               "precomputed codes, no audio");
    TAP_OK(u.audio == NULL && !strcmp(u.codes, "/abs/u2.npy") && u.channel == -1,
           "absolute path kept, channel defaults to the mixdown");
    flm_pack_utt_free(&u);

    static const struct {
        const char *line, *msg;
    } bad[] = {
        {"{\"id\": \"u\", \"audio\": \"a\", \"sentence\": []}",
         "m.jsonl:9: unknown key \"sentence\""},
        {"{\"audio\": \"a\", \"sentences\": []}", "m.jsonl:9: key \"id\": expected a non-empty"},
        {"{\"id\": \"a\\nb\", \"audio\": \"a\", \"sentences\": []}", "control character 0x0a"},
        {"{\"id\": \"u\", \"sentences\": [{\"text\": \"x\", \"start_frame\": 0, \"end_frame\": "
         "1}]}",
         "key \"audio\": missing (and no \"codes\")"},
        {"{\"id\": \"u\", \"audio\": \"a\", \"channel\": 64, \"sentences\": []}",
         "key \"channel\": expected an integer -1..63"},
        {"{\"id\": \"u\", \"audio\": \"a\", \"sentences\": []}",
         "key \"sentences\": expected a non-empty array"},
        {"{\"id\": \"u\", \"audio\": \"a\", \"sentences\": [{\"text\": \"x\", \"start_frame\": 5, "
         "\"end_frame\": 5}]}",
         "key \"sentences[0].end_frame\": 5 is not after start_frame 5"},
        {"{\"id\": \"u\", \"audio\": \"a\", \"sentences\": [{\"text\": \"x\", \"start_frame\": 0, "
         "\"end_frame\": 9}, {\"text\": \"y\", \"start_frame\": 7, \"end_frame\": 12}]}",
         "key \"sentences[1].start_frame\": 7 overlaps the previous sentence (frames 0..9)"},
        {"{\"id\": \"u\", \"audio\": \"a\", \"sentences\": [{\"text\": \"\", \"start_frame\": 0, "
         "\"end_frame\": 1}]}",
         "key \"sentences[0].text\": expected a non-empty string"},
        {"{\"id\": \"u\", \"audio\": \"a\", \"sentences\": [{\"text\": \"x\", \"start_frame\": -1, "
         "\"end_frame\": 1}]}",
         "key \"sentences[0].start_frame\": expected an integer frame"},
        {"{\"id\": \"u\", \"id\": \"v\"}", "m.jsonl:9: column"},
        {"[1, 2]", "m.jsonl:9: expected a JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = flm_pack_utt_parse(bad[i].line, strlen(bad[i].line), "m.jsonl", 9, ".", &u, &err);
        TAP_EQ_INT(rc, FLM_EFORMAT, bad[i].msg);
        TAP_CONTAINS(err.msg, bad[i].msg, "the message");
        TAP_OK(u.id == NULL && u.sents == NULL, "nothing left allocated in the result");
    }
}

static void test_relative(void)
{
    static const char *const cases[][3] = {
        {"a/b.wav", "out", "../a/b.wav"},       {"/x/y/z.wav", "/x/w", "../y/z.wav"},
        {"/x/y/z.wav", "/x/y", "z.wav"},        {"/x/./y/../y/z.wav", "/x//y/", "z.wav"},
        {"/data/a.wav", "/", "data/a.wav"},     {"/a/b", "/a/b", "."},
        {"/a.wav", "/p/q/r", "../../../a.wav"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *r = flm_path_relative(cases[i][0], cases[i][1]);
        char what[200];
        snprintf(what, sizeof what, "%s from %s", cases[i][0], cases[i][1]);
        TAP_EQ_STR(r ? r : "(null)", cases[i][2], what);
        flm_free(r);
    }
}

int main(void)
{
    char dir[1024];
    temp_dir(dir, sizeof dir, "test_pack_input");
    test_npy(dir);
    test_lines();
    test_relative();
    return tap_done();
}
