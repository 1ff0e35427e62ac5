/* test_model.c - CUnit tests of the model file (model.c) and of SHA-256
 * (checksum.c), registered by hs_register_model_tests().
 *
 * A model file is the one artefact that must stay readable for years and
 * must never load wrongly, so the tests check both directions: everything
 * written comes back bit for bit (and is written byte for byte the same
 * way again), and every kind of damage is refused with the right status
 * and a message naming the file. Damage that the trailer would catch first
 * is also made with the trailer recomputed, so that the specific check
 * behind it (version, shapes, counts, weights, size) is what gets tested.
 * All files live in a private mkdtemp directory that is removed afterwards. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "hemoscan/checksum.h"
#include "hemoscan/cnn.h"
#include "hemoscan/model.h"
#include "hemoscan/rng.h"
#include "hemoscan/status.h"
#include "test_util.h"

int hs_register_model_tests(void);

static char tmp_dir[4096];
static const hs_model zero_model;

/* ---- helpers -------------------------------------------------------------- */

static int suite_init(void)
{
    return hs_test_tmpdir_create(tmp_dir, sizeof tmp_dir, "model");
}

static int suite_clean(void)
{
    return hs_test_tmpdir_remove(tmp_dir);
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void set_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void set_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Makes the trailer right again after a deliberate edit. */
static void fix_trailer(unsigned char *buf, size_t len)
{
    hs_sha256(buf, len - HS_SHA256_LEN, buf + len - HS_SHA256_LEN);
}

static size_t header_len(const unsigned char *buf)
{
    return le32(buf + 12);
}

/* Offset of the first weight byte. */
static size_t weights_at(const unsigned char *buf)
{
    return 16 + header_len(buf) + 12;
}

static const char *find_bytes(const char *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; k <= n && i <= n - k; i++) {
        if (memcmp(hay + i, needle, k) == 0)
            return hay + i;
    }
    return NULL;
}

/* A copy of the file with the first `from` in its header replaced by `to`,
 * the header length and the trailer made consistent; NULL if `from` is not
 * in the header. */
static unsigned char *edit_header(const unsigned char *buf, size_t len, const char *from, const char *to,
                                  size_t *out_len)
{
    size_t hlen = header_len(buf);
    const char *hdr = (const char *)buf + 16;
    const char *at = find_bytes(hdr, hlen, from);
    if (at == NULL)
        return NULL;
    size_t before = (size_t)(at - hdr), flen = strlen(from), tlen = strlen(to);
    size_t new_hlen = hlen - flen + tlen;
    *out_len = len - hlen + new_hlen;
    unsigned char *out = malloc(*out_len);
    if (out == NULL)
        return NULL;
    memcpy(out, buf, 16);
    set_le32(out + 12, (uint32_t)new_hlen);
    memcpy(out + 16, hdr, before);
    memcpy(out + 16 + before, to, tlen);
    memcpy(out + 16 + before + tlen, at + flen, hlen - before - flen);
    memcpy(out + 16 + new_hlen, buf + 16 + hlen, len - 16 - hlen);
    fix_trailer(out, *out_len);
    return out;
}

/* Loads buf and checks that it is refused: with status want (or any
 * failure when want < 0), a message naming `name` and containing `part`
 * (if given), and the model left empty. Through a file when via_file. */
static void expect_refusal(const unsigned char *buf, size_t len, const char *leaf, int via_file, int want,
                           const char *part)
{
    char path[4400];
    hs_model m;
    hs_error err = {HS_OK, ""};
    hs_status st;
    memset(&m, 0x5a, sizeof m); /* the loader must clear it, whatever was there */
    if (via_file) {
        hs_test_path(path, sizeof path, tmp_dir, leaf);
        CU_ASSERT_FATAL(hs_test_write_file(path, buf, len) == 0);
        st = hs_model_load(&m, path, &err);
        unlink(path);
    } else {
        snprintf(path, sizeof path, "%s", leaf);
        st = hs_model_load_buffer(&m, buf, len, path, &err);
    }
    int ok = st != HS_OK && (want < 0 || st == (hs_status)want) && err.code == st &&
             strstr(err.msg, path) != NULL && (part == NULL || strstr(err.msg, part) != NULL) &&
             memcmp(&m, &zero_model, sizeof m) == 0;
    if (!ok)
        fprintf(stderr, "\n  %s (%zu bytes): got %s \"%s\", wanted %s%s%s\n", leaf, len, hs_status_name(st),
                err.msg, want < 0 ? "any failure" : hs_status_name((hs_status)want), part ? " with " : "",
                part ? part : "");
    CU_ASSERT(ok);
    if (st == HS_OK)
        hs_model_free(&m);
}

static void fill_weights(hs_net *net, hs_rng *rng)
{
    for (size_t j = 0; j < net->n_params; j++)
        net->params[j] = (float)(0.05 * hs_rng_normal(rng));
}

/* The reference design with two members of random weights, four classes
 * and full provenance; a few weights carry bit patterns that a careless
 * writer loses (-0, a subnormal, the extremes). */
static int make_reference_model(hs_model *m, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    hs_layer_spec specs[HS_MAX_LAYERS];
    int n = hs_net_reference_specs(specs, HS_MAX_LAYERS, 0.5f);
    hs_input_recipe_default(&m->recipe);
    hs_shape in = {150, 150, 3};
    hs_rng rng;
    hs_rng_seed(&rng, seed);
    hs_error err;
    for (int k = 0; k < 2; k++) {
        if (hs_net_create(&m->member[k], in, specs, n, &err) != HS_OK) {
            fprintf(stderr, "hs_net_create: %s\n", err.msg);
            hs_model_free(m);
            return -1;
        }
        m->n_members = k + 1;
        fill_weights(&m->member[k], &rng);
    }
    float *w = m->member[1].params;
    w[0] = -0.0f;
    w[1] = FLT_TRUE_MIN;
    w[2] = FLT_MAX;
    w[3] = -FLT_MAX;
    w[m->member[1].n_params - 1] = 1.0f / 3.0f;
    static const char *const names[] = {"no hemorrhage", "epidural", "subdural", "intraparenchymal"};
    m->n_classes = 4;
    for (int k = 0; k < 4; k++)
        snprintf(m->class_name[k], sizeof m->class_name[k], "%s", names[k]);
    m->threshold = 0.314159274f;
    unsigned char digest[HS_SHA256_LEN];
    hs_sha256("training data", 13, digest);
    hs_sha256_hex(digest, m->provenance.data_sha256);
    m->provenance.seed = UINT64_C(0xfedcba9876543210);
    m->provenance.epochs = 30;
    snprintf(m->provenance.date, sizeof m->provenance.date, "2024-05-01T12:34:56Z");
    snprintf(m->provenance.version, sizeof m->provenance.version, "0.1.0");
    snprintf(m->provenance.note, sizeof m->provenance.note, "hemoscan train --epochs 30 --seed 42 data/");
    return 0;
}

/* A small network that is not the reference: 'same' 5x5 conv, standalone
 * ReLU, dropout and a 4-way softmax; three members, odd strings and empty
 * provenance fields. Small, so that exhaustive damage tests stay fast. */
static int make_small_model(hs_model *m, int members)
{
    memset(m, 0, sizeof *m);
    const hs_layer_spec specs[] = {
        {.kind = HS_LAYER_CONV, .units = 4, .kernel = 5, .pad_same = 1},
        {.kind = HS_LAYER_RELU},
        {.kind = HS_LAYER_MAXPOOL},
        {.kind = HS_LAYER_CONV, .units = 6, .kernel = 3, .relu = 1},
        {.kind = HS_LAYER_MAXPOOL},
        {.kind = HS_LAYER_FLATTEN},
        {.kind = HS_LAYER_DENSE, .units = 10, .relu = 1},
        {.kind = HS_LAYER_DROPOUT, .rate = 0.25f},
        {.kind = HS_LAYER_DENSE, .units = 4},
        {.kind = HS_LAYER_SOFTMAX},
    };
    int n = (int)(sizeof specs / sizeof specs[0]);
    hs_shape in = {16, 12, 2};
    hs_rng rng;
    hs_rng_seed(&rng, 7);
    hs_error err;
    for (int k = 0; k < members; k++) {
        if (hs_net_create(&m->member[k], in, specs, n, &err) != HS_OK) {
            fprintf(stderr, "hs_net_create: %s\n", err.msg);
            hs_model_free(m);
            return -1;
        }
        m->n_members = k + 1;
        fill_weights(&m->member[k], &rng);
    }
    hs_input_recipe *r = &m->recipe;
    r->height = 16;
    r->width = 12;
    r->channels = 2;
    snprintf(r->channel[0].name, sizeof r->channel[0].name, "gray");
    r->channel[0].center_hu = 0.5f;
    r->channel[0].width_hu = 1.0f;
    snprintf(r->channel[1].name, sizeof r->channel[1].name, "edge-\xc3\xa6");
    r->channel[1].center_hu = -3.25e-7f;
    r->channel[1].width_hu = 1e30f;
    snprintf(r->crop, sizeof r->crop, "none");
    snprintf(r->normalise, sizeof r->normalise, "unit");
    static const char *const names[] = {"normal", "epidural h\xc3\xa6matoma", "  two leading spaces", "-"};
    m->n_classes = 4;
    for (int k = 0; k < 4; k++)
        snprintf(m->class_name[k], sizeof m->class_name[k], "%s", names[k]);
    m->threshold = 1.0f;
    m->provenance.seed = 0;
    m->provenance.epochs = 0;
    snprintf(m->provenance.version, sizeof m->provenance.version, "-");
    return 0;
}

static int float_bits_equal(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* Every field of two models, weights bit for bit. */
static void assert_models_equal(const hs_model *a, const hs_model *b)
{
    CU_ASSERT_EQUAL(a->n_members, b->n_members);
    const hs_input_recipe *ra = &a->recipe, *rb = &b->recipe;
    CU_ASSERT(ra->height == rb->height && ra->width == rb->width && ra->channels == rb->channels);
    for (int c = 0; c < ra->channels && c < HS_MODEL_MAX_CHANNELS; c++) {
        CU_ASSERT_STRING_EQUAL(ra->channel[c].name, rb->channel[c].name);
        CU_ASSERT(float_bits_equal(ra->channel[c].center_hu, rb->channel[c].center_hu));
        CU_ASSERT(float_bits_equal(ra->channel[c].width_hu, rb->channel[c].width_hu));
    }
    CU_ASSERT_STRING_EQUAL(ra->crop, rb->crop);
    CU_ASSERT_STRING_EQUAL(ra->normalise, rb->normalise);
    CU_ASSERT_EQUAL(a->n_classes, b->n_classes);
    for (int k = 0; k < a->n_classes && k < HS_MODEL_MAX_CLASSES; k++)
        CU_ASSERT_STRING_EQUAL(a->class_name[k], b->class_name[k]);
    CU_ASSERT(float_bits_equal(a->threshold, b->threshold));
    CU_ASSERT_STRING_EQUAL(a->provenance.data_sha256, b->provenance.data_sha256);
    CU_ASSERT(a->provenance.seed == b->provenance.seed);
    CU_ASSERT_EQUAL(a->provenance.epochs, b->provenance.epochs);
    CU_ASSERT_STRING_EQUAL(a->provenance.date, b->provenance.date);
    CU_ASSERT_STRING_EQUAL(a->provenance.version, b->provenance.version);
    CU_ASSERT_STRING_EQUAL(a->provenance.note, b->provenance.note);
    for (int k = 0; k < a->n_members && k < b->n_members; k++) {
        const hs_net *na = &a->member[k], *nb = &b->member[k];
        CU_ASSERT(na->input.h == nb->input.h && na->input.w == nb->input.w && na->input.c == nb->input.c);
        CU_ASSERT_EQUAL_FATAL(na->n_layers, nb->n_layers);
        for (int i = 0; i < na->n_layers; i++) {
            const hs_layer *la = &na->layers[i], *lb = &nb->layers[i];
            CU_ASSERT_EQUAL(la->spec.kind, lb->spec.kind);
            CU_ASSERT_EQUAL(la->spec.units, lb->spec.units);
            CU_ASSERT_EQUAL(la->spec.kernel, lb->spec.kernel);
            CU_ASSERT_EQUAL(la->spec.pad_same, lb->spec.pad_same);
            CU_ASSERT_EQUAL(la->spec.relu, lb->spec.relu);
            CU_ASSERT(float_bits_equal(la->spec.rate, lb->spec.rate));
            CU_ASSERT(la->out.h == lb->out.h && la->out.w == lb->out.w && la->out.c == lb->out.c);
        }
        CU_ASSERT_EQUAL_FATAL(na->n_params, nb->n_params);
        CU_ASSERT(memcmp(na->params, nb->params, na->n_params * sizeof(float)) == 0);
    }
}

static int files_equal(const char *p, const char *q)
{
    size_t lp, lq;
    unsigned char *a = hs_test_read_file(p, &lp), *b = hs_test_read_file(q, &lq);
    int same = a != NULL && b != NULL && lp == lq && memcmp(a, b, lp) == 0;
    free(a);
    free(b);
    return same;
}

/* Saves a fixture model into the test directory and reads the bytes back. */
static unsigned char *saved_bytes(hs_model *m, const char *leaf, size_t *len)
{
    char path[4400];
    hs_error err;
    hs_test_path(path, sizeof path, tmp_dir, leaf);
    if (hs_model_save(m, path, &err) != HS_OK) {
        fprintf(stderr, "\n  save %s: %s\n", leaf, err.msg);
        return NULL;
    }
    return hs_test_read_file(path, len);
}

/* ---- status and checksum ----------------------------------------------------- */

static void test_status(void)
{
    hs_error err = {HS_OK, ""};
    CU_ASSERT_EQUAL(hs_fail(NULL, HS_ERR_IO, "%s", "nowhere to write"), HS_ERR_IO);
    CU_ASSERT_EQUAL(hs_fail(&err, HS_ERR_SHAPE, "layer %d: %s", 3, "bad"), HS_ERR_SHAPE);
    CU_ASSERT_EQUAL(err.code, HS_ERR_SHAPE);
    CU_ASSERT_STRING_EQUAL(err.msg, "layer 3: bad");
    /* A callee's message may be prefixed in place. */
    hs_fail(&err, err.code, "%s: %s", "model.hsm", err.msg);
    CU_ASSERT_STRING_EQUAL(err.msg, "model.hsm: layer 3: bad");
    char long_text[2000];
    memset(long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    hs_fail(&err, HS_ERR_ARG, "%s", long_text);
    CU_ASSERT_EQUAL(strlen(err.msg), sizeof err.msg - 1);
    const hs_status all[] = {HS_OK, HS_ERR_ARG, HS_ERR_IO, HS_ERR_FORMAT, HS_ERR_VERSION,
                             HS_ERR_CHECKSUM, HS_ERR_SHAPE, HS_ERR_NOMEM};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(hs_status_name(all[i]));
        for (size_t j = 0; j < i; j++)
            CU_ASSERT(strcmp(hs_status_name(all[i]), hs_status_name(all[j])) != 0);
    }
    CU_ASSERT_STRING_EQUAL(hs_status_name(HS_ERR_FORMAT), "format error");
}

static void digest_hex(const void *data, size_t len, char hex[65])
{
    unsigned char d[HS_SHA256_LEN];
    hs_sha256(data, len, d);
    hs_sha256_hex(d, hex);
}

static void test_sha256_known(void)
{
    char hex[65];
    digest_hex("", 0, hex);
    CU_ASSERT_STRING_EQUAL(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    digest_hex("abc", 3, hex);
    CU_ASSERT_STRING_EQUAL(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* A million 'a' in uneven pieces exercises the streaming interface. */
    static char a[1000000];
    memset(a, 'a', sizeof a);
    hs_sha256_ctx *ctx = hs_sha256_begin();
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    size_t off = 0, piece = 1;
    while (off < sizeof a) {
        size_t n = sizeof a - off < piece ? sizeof a - off : piece;
        hs_sha256_update(ctx, a + off, n);
        off += n;
        piece = piece * 3 + 1;
    }
    unsigned char d[HS_SHA256_LEN];
    hs_sha256_end(ctx, d);
    hs_sha256_hex(d, hex);
    CU_ASSERT_STRING_EQUAL(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Runs sha256sum on path and returns its 64 hex digits; -1 if it fails. */
static int sha256sum_of(const char *path, char hex[65])
{
    char cmd[9000];
    size_t n = (size_t)snprintf(cmd, sizeof cmd, "sha256sum '");
    for (const char *p = path; *p != '\0' && n + 8 < sizeof cmd; p++) {
        if (*p == '\'') {
            memcpy(cmd + n, "'\\''", 4);
            n += 4;
        } else {
            cmd[n++] = *p;
        }
    }
    snprintf(cmd + n, sizeof cmd - n, "'");
    FILE *f = popen(cmd, "r");
    if (f == NULL)
        return -1;
    int got = fscanf(f, "%64[0-9a-f]", hex);
    int rc = pclose(f);
    return got == 1 && strlen(hex) == 64 && rc == 0 ? 0 : -1;
}

static void test_sha256_file(void)
{
    char path[4400], hex[65], want[65];
    hs_error err = {HS_OK, ""};
    /* Not a multiple of the 64 KiB read size, so the last piece is partial. */
    size_t len = 3 * 65536 + 12345;
    unsigned char *data = malloc(len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    for (size_t i = 0; i < len; i++)
        data[i] = (unsigned char)(i * 7 + i / 251);
    hs_test_path(path, sizeof path, tmp_dir, "sha-input.bin");
    CU_ASSERT_FATAL(hs_test_write_file(path, data, len) == 0);
    CU_ASSERT_EQUAL(hs_sha256_file(path, hex, &err), HS_OK);
    CU_ASSERT_EQUAL(sha256sum_of(path, want), 0);
    CU_ASSERT_STRING_EQUAL(hex, want);
    char mem[65];
    digest_hex(data, len, mem);
    CU_ASSERT_STRING_EQUAL(hex, mem);
    free(data);

    hs_test_path(path, sizeof path, tmp_dir, "sha-empty.bin");
    CU_ASSERT_FATAL(hs_test_write_file(path, "", 0) == 0);
    CU_ASSERT_EQUAL(hs_sha256_file(path, hex, &err), HS_OK);
    CU_ASSERT_STRING_EQUAL(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

    hs_test_path(path, sizeof path, tmp_dir, "sha-missing.bin");
    CU_ASSERT_EQUAL(hs_sha256_file(path, hex, &err), HS_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, strerror(ENOENT)));
    CU_ASSERT_EQUAL(hs_sha256_file(tmp_dir, hex, &err), HS_ERR_IO); /* a directory cannot be read */
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, tmp_dir));
}

/* ---- round trips --------------------------------------------------------------- */

static void test_recipe_default(void)
{
    hs_input_recipe r;
    memset(&r, 0x5a, sizeof r);
    hs_input_recipe_default(&r);
    CU_ASSERT(r.height == 150 && r.width == 150 && r.channels == 3);
    CU_ASSERT_STRING_EQUAL(r.channel[0].name, "brain");
    CU_ASSERT(r.channel[0].center_hu == 40.0f && r.channel[0].width_hu == 80.0f);
    CU_ASSERT_STRING_EQUAL(r.channel[1].name, "subdural");
    CU_ASSERT(r.channel[1].center_hu == 80.0f && r.channel[1].width_hu == 200.0f);
    CU_ASSERT_STRING_EQUAL(r.channel[2].name, "bone");
    CU_ASSERT(r.channel[2].center_hu == 600.0f && r.channel[2].width_hu == 2800.0f);
    CU_ASSERT_STRING_EQUAL(r.crop, "head");
    CU_ASSERT_STRING_EQUAL(r.normalise, "unit");
}

/* --train --windows: the gray-picture recipes, and lists that are refused. */
static void test_recipe_gray_windows(void)
{
    hs_input_recipe r;
    hs_error err = {0};
    CU_ASSERT_EQUAL_FATAL(hs_input_recipe_gray(&r, HS_GRAY_WINDOWS_DEFAULT, &err), HS_OK);
    CU_ASSERT(r.height == 150 && r.width == 150 && r.channels == 3);
    CU_ASSERT_STRING_EQUAL(r.channel[0].name, "gray");
    CU_ASSERT(r.channel[0].center_hu == 40.0f && r.channel[0].width_hu == 80.0f);
    CU_ASSERT_STRING_EQUAL(r.channel[1].name, "gray-window");
    CU_ASSERT(r.channel[1].center_hu == 60.0f && r.channel[1].width_hu == 40.0f);
    CU_ASSERT_STRING_EQUAL(r.channel[2].name, "gray-window");
    CU_ASSERT(r.channel[2].center_hu == 20.0f && r.channel[2].width_hu == 40.0f);
    CU_ASSERT_STRING_EQUAL(r.crop, "head");
    CU_ASSERT(hs_recipe_from_gray(&r));
    CU_ASSERT(!hs_recipe_is_gray(&r));
    CU_ASSERT_EQUAL(hs_model_format_version(&r), 2);

    /* the same window three times is the plain gray recipe */
    CU_ASSERT_EQUAL_FATAL(hs_input_recipe_gray(&r, "40/80,40/80,40/80", &err), HS_OK);
    CU_ASSERT(r.channels == 3 && hs_recipe_is_gray(&r) && hs_recipe_from_gray(&r));
    CU_ASSERT_EQUAL(hs_model_format_version(&r), 1);
    CU_ASSERT_EQUAL_FATAL(hs_input_recipe_gray(&r, "50.5/100,-10/20.25", &err), HS_OK);
    CU_ASSERT(r.channels == 2 && r.channel[0].center_hu == 50.5f && r.channel[1].width_hu == 20.25f);
    CU_ASSERT_STRING_EQUAL(r.channel[1].name, "gray-window");
    CU_ASSERT_EQUAL_FATAL(hs_input_recipe_gray(&r, "40/80", &err), HS_OK);
    CU_ASSERT(r.channels == 1 && hs_recipe_is_gray(&r));

    static const char *const bad[] = {"", "40", "40/", "/80", "40/0", "40/-5", "40/80,", ",40/80",
                                      "a/b", "40/80/3", "40/80 ", "nan/80", "40/inf", "1e9/80",
                                      "40/80,60/40,20/40,1/2,3/4"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = '\0';
        CU_ASSERT_EQUAL(hs_input_recipe_gray(&r, bad[i], &err), HS_ERR_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "CENTER/WIDTH"));
    }

    /* CT windows are not gray pictures; nor is a recipe whose channel 0 is
     * itself a re-windowing */
    hs_input_recipe_default(&r);
    CU_ASSERT(!hs_recipe_from_gray(&r) && !hs_recipe_is_gray(&r));
    CU_ASSERT_EQUAL(hs_model_format_version(&r), 1);
    CU_ASSERT_EQUAL_FATAL(hs_input_recipe_gray(&r, HS_GRAY_WINDOWS_DEFAULT, &err), HS_OK);
    snprintf(r.channel[0].name, sizeof r.channel[0].name, "gray-window");
    CU_ASSERT(!hs_recipe_from_gray(&r));
}

static void test_roundtrip_reference(void)
{
    hs_model m, loaded, again;
    hs_error err = {HS_OK, ""};
    char p1[4400], p2[4400], p3[4400], hex[65];
    CU_ASSERT_FATAL(make_reference_model(&m, 12345) == 0);
    CU_ASSERT_EQUAL(m.member[0].n_params, 265953);
    hs_test_path(p1, sizeof p1, tmp_dir, "reference.hsm");
    hs_test_path(p2, sizeof p2, tmp_dir, "reference-2.hsm");
    hs_test_path(p3, sizeof p3, tmp_dir, "reference-3.hsm");

    CU_ASSERT_EQUAL_FATAL(hs_model_save(&m, p1, &err), HS_OK);
    CU_ASSERT_EQUAL(hs_sha256_file(p1, hex, &err), HS_OK);
    CU_ASSERT_STRING_EQUAL(m.sha256, hex);
    struct stat sb;
    CU_ASSERT(stat(p1, &sb) == 0 && (sb.st_mode & 0777) == 0644);
    CU_ASSERT(!hs_test_has_temp_files(tmp_dir));

    CU_ASSERT_EQUAL_FATAL(hs_model_load(&loaded, p1, &err), HS_OK);
    assert_models_equal(&m, &loaded);
    CU_ASSERT_STRING_EQUAL(loaded.sha256, hex);
    CU_ASSERT(loaded.member[1].params[0] == 0.0f && signbit(loaded.member[1].params[0]));
    CU_ASSERT(loaded.member[1].params[1] == FLT_TRUE_MIN);

    /* The same model, and the loaded copy, write the very same bytes. */
    CU_ASSERT_EQUAL(hs_model_save(&m, p2, &err), HS_OK);
    CU_ASSERT(files_equal(p1, p2));
    CU_ASSERT_EQUAL(hs_model_save(&loaded, p3, &err), HS_OK);
    CU_ASSERT(files_equal(p1, p3));
    CU_ASSERT_STRING_EQUAL(loaded.sha256, hex);

    /* The header is readable text with the documented lines. */
    size_t len;
    unsigned char *buf = hs_test_read_file(p1, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    CU_ASSERT(memcmp(buf, "HSMODEL\0", 8) == 0 && le32(buf + 8) == 1);
    size_t hlen = header_len(buf);
    CU_ASSERT_EQUAL(len, 16 + hlen + 12 + 2 * 265953 * 4 + 32);
    const char *hdr = (const char *)buf + 16;
    static const char *const lines[] = {
        "hemoscan-model 1\ninput 150 150 3\nchannel 0 brain 40 80\nchannel 1 subdural 80 200\n"
        "channel 2 bone 600 2800\ncrop head\nnormalise unit\nlayers 15\n",
        "layer 0 conv units=16 kernel=3 pad=valid relu=1 out=148x148x16\n",
        "layer 1 maxpool out=74x74x16\n",
        "layer 10 flatten out=1x1x512\n",
        "layer 11 dense units=256 relu=1 out=1x1x256\n",
        "layer 12 dropout rate=0.5 out=1x1x256\n",
        "layer 13 dense units=1 relu=0 out=1x1x1\nlayer 14 sigmoid out=1x1x1\nclasses 4\n"
        "class 0 no hemorrhage\nclass 1 epidural\nclass 2 subdural\nclass 3 intraparenchymal\n",
        "threshold 0.314159274\n",
        "seed 18364758544493064720\nepochs 30\ndate 2024-05-01T12:34:56Z\nversion 0.1.0\n"
        "note hemoscan train --epochs 30 --seed 42 data/\nmembers 2\nparams 265953\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        CU_ASSERT_PTR_NOT_NULL(find_bytes(hdr, hlen, lines[i]));
    CU_ASSERT(hdr[hlen - 1] == '\n');
    free(buf);

    hs_model_free(&loaded);
    CU_ASSERT(memcmp(&loaded, &zero_model, sizeof loaded) == 0);
    /* A model loaded from memory gets the same identity. */
    buf = hs_test_read_file(p1, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    CU_ASSERT_EQUAL(hs_model_load_buffer(&again, buf, len, "in memory", &err), HS_OK);
    CU_ASSERT_STRING_EQUAL(again.sha256, hex);
    assert_models_equal(&m, &again);
    hs_model_free(&again);
    free(buf);
    hs_model_free(&m);
    unlink(p1);
    unlink(p2);
    unlink(p3);
}

static void test_roundtrip_custom(void)
{
    hs_model m, loaded;
    hs_error err = {HS_OK, ""};
    char path[4400], copy[4400];
    CU_ASSERT_FATAL(make_small_model(&m, 3) == 0);
    hs_test_path(path, sizeof path, tmp_dir, "small.hsm");
    hs_test_path(copy, sizeof copy, tmp_dir, "small-copy.hsm");
    CU_ASSERT_EQUAL_FATAL(hs_model_save(&m, path, &err), HS_OK);
    CU_ASSERT_EQUAL_FATAL(hs_model_load(&loaded, path, &err), HS_OK);
    assert_models_equal(&m, &loaded);
    CU_ASSERT_EQUAL(loaded.member[0].layers[0].spec.pad_same, 1);
    CU_ASSERT_EQUAL(loaded.member[2].layers[9].spec.kind, HS_LAYER_SOFTMAX);
    CU_ASSERT_EQUAL(hs_net_outputs(&loaded.member[2]), 4);
    CU_ASSERT_STRING_EQUAL(loaded.provenance.note, "");
    CU_ASSERT_STRING_EQUAL(loaded.provenance.version, "-");
    CU_ASSERT_STRING_EQUAL(loaded.class_name[2], "  two leading spaces");
    CU_ASSERT_EQUAL(hs_model_save(&loaded, copy, &err), HS_OK);
    CU_ASSERT(files_equal(path, copy));

    size_t len;
    unsigned char *buf = hs_test_read_file(path, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    const char *hdr = (const char *)buf + 16;
    size_t hlen = header_len(buf);
    static const char *const lines[] = {
        "\ninput 16 12 2\nchannel 0 gray 0.5 1\nchannel 1 edge-\xc3\xa6 -3.25000002e-07 1.00000002e+30\n",
        "\nlayer 0 conv units=4 kernel=5 pad=same relu=0 out=16x12x4\nlayer 1 relu out=16x12x4\n",
        "\nlayer 7 dropout rate=0.25 out=1x1x10\nlayer 8 dense units=4 relu=0 out=1x1x4\n"
        "layer 9 softmax out=1x1x4\nclasses 4\n",
        "\nclass 2   two leading spaces\nclass 3 -\nthreshold 1\ndata-sha256 -\nseed 0\nepochs 0\n"
        "date\nversion -\nnote\nmembers 3\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        CU_ASSERT_PTR_NOT_NULL(find_bytes(hdr, hlen, lines[i]));
    free(buf);
    hs_model_free(&loaded);
    hs_model_free(&m);
}

/* Every way of asking for a file that would not load again is refused,
 * leaves no temporary file and does not touch an existing file. */
static void test_save_refusals(void)
{
    hs_model m;
    hs_error err = {HS_OK, ""};
    char path[4400];
    CU_ASSERT_FATAL(make_small_model(&m, 2) == 0);
    hs_test_path(path, sizeof path, tmp_dir, "refused.hsm");
    CU_ASSERT_EQUAL_FATAL(hs_model_save(&m, path, &err), HS_OK);
    size_t before_len;
    unsigned char *before = hs_test_read_file(path, &before_len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);

    struct {
        const char *what;
        hs_status want;
    } cases[] = {
        {"empty class name", HS_ERR_ARG},     {"newline in class name", HS_ERR_ARG},
        {"tab in note", HS_ERR_ARG},          {"threshold NaN", HS_ERR_ARG},
        {"threshold 1.5", HS_ERR_ARG},        {"no members", HS_ERR_ARG},
        {"too many classes", HS_ERR_ARG},     {"space in crop", HS_ERR_ARG},
        {"uppercase data digest", HS_ERR_ARG}, {"NaN weight", HS_ERR_ARG},
        {"members differ", HS_ERR_ARG},       {"recipe differs from net", HS_ERR_SHAPE},
        {"invalid UTF-8 in note", HS_ERR_ARG}, {"negative epochs", HS_ERR_ARG},
        {"zero window width", HS_ERR_ARG},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hs_model bad = m; /* shallow: the nets are shared and never freed here */
        switch (i) {
        case 0: bad.class_name[1][0] = '\0'; break;
        case 1: snprintf(bad.class_name[1], sizeof bad.class_name[1], "two\nlines"); break;
        case 2: snprintf(bad.provenance.note, sizeof bad.provenance.note, "a\tb"); break;
        case 3: bad.threshold = NAN; break;
        case 4: bad.threshold = 1.5f; break;
        case 5: bad.n_members = 0; break;
        case 6: bad.n_classes = HS_MODEL_MAX_CLASSES + 1; break;
        case 7: snprintf(bad.recipe.crop, sizeof bad.recipe.crop, "head box"); break;
        case 8: snprintf(bad.provenance.data_sha256, sizeof bad.provenance.data_sha256, "%064d", 0);
                bad.provenance.data_sha256[5] = 'A'; break;
        case 9: break;  /* below: the weight lives in the shared net */
        case 10: break; /* below: so does the layer list */
        case 11: bad.recipe.width = 13; break;
        case 12: snprintf(bad.provenance.note, sizeof bad.provenance.note, "caf\xc3"); break;
        case 13: bad.provenance.epochs = -1; break;
        case 14: bad.recipe.channel[1].width_hu = 0.0f; break;
        }
        float kept = m.member[1].params[17];
        if (i == 9)
            m.member[1].params[17] = INFINITY;
        hs_layer_spec kept_spec = m.member[1].layers[6].spec;
        if (i == 10)
            m.member[1].layers[6].spec.units = 11;
        hs_status st = hs_model_save(&bad, path, &err);
        m.member[1].params[17] = kept;
        m.member[1].layers[6].spec = kept_spec;
        int ok = st == cases[i].want && strstr(err.msg, path) != NULL;
        if (!ok)
            fprintf(stderr, "\n  save with %s: got %s \"%s\"\n", cases[i].what, hs_status_name(st), err.msg);
        CU_ASSERT(ok);
    }
    size_t after_len;
    unsigned char *after = hs_test_read_file(path, &after_len);
    CU_ASSERT(after != NULL && after_len == before_len && memcmp(before, after, before_len) == 0);
    CU_ASSERT(!hs_test_has_temp_files(tmp_dir));
    free(before);
    free(after);

    char nowhere[4400];
    hs_test_path(nowhere, sizeof nowhere, tmp_dir, "no-such-dir/model.hsm");
    CU_ASSERT_EQUAL(hs_model_save(&m, nowhere, &err), HS_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, nowhere));
    CU_ASSERT_EQUAL(hs_model_save(NULL, path, &err), HS_ERR_ARG);
    hs_model_free(&m);
    unlink(path);
}

/* ---- refusals on load ------------------------------------------------------------ */

static void test_load_missing_and_empty(void)
{
    hs_model m;
    hs_error err = {HS_OK, ""};
    char path[4400];
    hs_test_path(path, sizeof path, tmp_dir, "does-not-exist.hsm");
    memset(&m, 0x5a, sizeof m);
    CU_ASSERT_EQUAL(hs_model_load(&m, path, &err), HS_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
    CU_ASSERT(memcmp(&m, &zero_model, sizeof m) == 0);
    CU_ASSERT_EQUAL(hs_model_load(&m, tmp_dir, &err), HS_ERR_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, tmp_dir));
    expect_refusal((const unsigned char *)"", 0, "empty.hsm", 1, HS_ERR_FORMAT, "truncated");
    expect_refusal(NULL, 0, "null buffer", 0, HS_ERR_FORMAT, "truncated");
    static const char text[] = "key value\nthis is not a model file at all, but long enough to be one\n";
    expect_refusal((const unsigned char *)text, sizeof text - 1, "text.hsm", 1, HS_ERR_FORMAT,
                   "not a hemoscan model");
}

static void test_load_truncated(void)
{
    hs_model m;
    size_t len;
    CU_ASSERT_FATAL(make_reference_model(&m, 99) == 0);
    unsigned char *buf = saved_bytes(&m, "truncate.hsm", &len);
    hs_model_free(&m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    for (size_t cut = 0; cut <= 64; cut++)
        expect_refusal(buf, cut, "truncated.hsm", 0, HS_ERR_FORMAT, NULL);
    /* Every 997th offset through the header, the counts and the first
     * 64 KiB of weights; beyond that every cut meets the same checks, and
     * a sparser stride keeps the test quick under valgrind. */
    size_t hlen = header_len(buf);
    for (size_t cut = 65; cut < len; cut += cut < weights_at(buf) + 65536 ? 997 : 99991)
        expect_refusal(buf, cut, "truncated.hsm", 0, -1, NULL);
    const size_t edges[] = {16 + hlen - 1, 16 + hlen, 16 + hlen + 1, weights_at(buf) - 1, weights_at(buf),
                            len - 33, len - 32, len - 31, len - 1};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++)
        expect_refusal(buf, edges[i], "truncated.hsm", 0, -1, NULL);
    expect_refusal(buf, len - 1, "truncated-file.hsm", 1, HS_ERR_CHECKSUM, "corrupted");
    free(buf);

    /* The small model is cut at every offset. */
    CU_ASSERT_FATAL(make_small_model(&m, 2) == 0);
    buf = saved_bytes(&m, "truncate-small.hsm", &len);
    hs_model_free(&m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    for (size_t cut = 0; cut < len; cut++)
        expect_refusal(buf, cut, "small-truncated.hsm", 0, -1, NULL);
    free(buf);
}

static void test_load_flipped(void)
{
    hs_model m;
    size_t len;
    CU_ASSERT_FATAL(make_reference_model(&m, 5) == 0);
    unsigned char *buf = saved_bytes(&m, "flip.hsm", &len);
    hs_model_free(&m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    size_t hlen = header_len(buf), w = weights_at(buf);
    struct {
        size_t at;
        int want;
    } cases[] = {
        {0, HS_ERR_FORMAT},       {3, HS_ERR_FORMAT},          {7, HS_ERR_FORMAT},
        {8, HS_ERR_VERSION},      {11, HS_ERR_VERSION},        {12, -1},
        {15, -1},                 {16, HS_ERR_CHECKSUM},       {16 + hlen / 2, HS_ERR_CHECKSUM},
        {16 + hlen - 1, HS_ERR_CHECKSUM}, {16 + hlen, HS_ERR_CHECKSUM}, {16 + hlen + 4, HS_ERR_CHECKSUM},
        {w - 1, HS_ERR_CHECKSUM}, {w, HS_ERR_CHECKSUM},        {w + (len - w) / 2, HS_ERR_CHECKSUM},
        {len - 33, HS_ERR_CHECKSUM}, {len - 32, HS_ERR_CHECKSUM}, {len - 1, HS_ERR_CHECKSUM},
    };
    const unsigned char masks[] = {0x01, 0x80, 0xff};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t k = 0; k < sizeof masks; k++) {
            buf[cases[i].at] ^= masks[k];
            expect_refusal(buf, len, "flipped.hsm", 0, cases[i].want, NULL);
            buf[cases[i].at] ^= masks[k];
        }
    }
    /* And through a file, for the message. */
    buf[w + 100] ^= 0x10;
    expect_refusal(buf, len, "flipped-file.hsm", 1, HS_ERR_CHECKSUM, "corrupted");
    buf[w + 100] ^= 0x10;
    free(buf);

    /* Random single-byte damage anywhere in the small model. */
    CU_ASSERT_FATAL(make_small_model(&m, 2) == 0);
    buf = saved_bytes(&m, "flip-small.hsm", &len);
    hs_model_free(&m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    hs_rng rng;
    hs_rng_seed(&rng, 2024);
    for (int t = 0; t < 2000; t++) {
        size_t at = (size_t)hs_rng_below(&rng, len);
        unsigned char mask = (unsigned char)(1 + hs_rng_below(&rng, 255));
        buf[at] ^= mask;
        expect_refusal(buf, len, "small-flipped.hsm", 0, -1, NULL);
        buf[at] ^= mask;
    }
    free(buf);
}

static void test_load_version(void)
{
    hs_model m;
    size_t len;
    CU_ASSERT_FATAL(make_small_model(&m, 1) == 0);
    unsigned char *buf = saved_bytes(&m, "version.hsm", &len);
    hs_model_free(&m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    CU_ASSERT(le32(buf + 8) == 1);
    const uint32_t versions[] = {0, HS_MODEL_FORMAT_VERSION + 1, 0xffffffffu};
    for (size_t i = 0; i < 3; i++) {
        char says[64];
        snprintf(says, sizeof says, "format version %u, this hemoscan reads 1 to %d", (unsigned)versions[i],
                 HS_MODEL_FORMAT_VERSION);
        set_le32(buf + 8, versions[i]);
        fix_trailer(buf, len);
        expect_refusal(buf, len, "version.hsm", 1, HS_ERR_VERSION, says);
        CU_ASSERT(find_bytes((const char *)buf, len, "hemoscan-model 1\n") != NULL);
    }
    set_le32(buf + 8, 1);
    fix_trailer(buf, len);
    size_t n;
    /* the header must repeat the prefix's version */
    unsigned char *edited = edit_header(buf, len, "hemoscan-model 1\n", "hemoscan-model 2\n", &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(edited);
    expect_refusal(edited, n, "header-version.hsm", 0, HS_ERR_VERSION, "hemoscan-model 2");
    /* both saying 2 is still refused: version 2 is only for gray-window models */
    set_le32(edited + 8, 2);
    fix_trailer(edited, n);
    expect_refusal(edited, n, "both-2.hsm", 0, HS_ERR_VERSION, "format version 2 with no 'gray-window'");
    free(edited);
    /* The untouched bytes still load: the edits above are what was refused. */
    hs_error err;
    CU_ASSERT_EQUAL(hs_model_load_buffer(&m, buf, len, "good", &err), HS_OK);
    hs_model_free(&m);
    free(buf);
}

/* A model with a gray-window channel is format version 2, in the prefix and
 * in the header, so a hemoscan that reads only version 1 (and would take the
 * channel for a window rendered from HU) refuses it; written as version 1 it
 * is refused here too. */
static void test_gray_window_is_version_2(void)
{
    hs_model m;
    size_t len, n;
    CU_ASSERT_FATAL(make_small_model(&m, 1) == 0);
    snprintf(m.recipe.channel[0].name, sizeof m.recipe.channel[0].name, "gray");
    snprintf(m.recipe.channel[1].name, sizeof m.recipe.channel[1].name, "gray-window");
    CU_ASSERT_EQUAL(hs_model_format_version(&m.recipe), 2);
    unsigned char *buf = saved_bytes(&m, "gray-window.hsm", &len);
    char sha[sizeof m.sha256];
    memcpy(sha, m.sha256, sizeof sha);
    hs_model_free(&m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    CU_ASSERT(le32(buf + 8) == 2);
    CU_ASSERT(memcmp(buf + 16, "hemoscan-model 2\n", 17) == 0);
    hs_error err;
    CU_ASSERT_EQUAL_FATAL(hs_model_load_buffer(&m, buf, len, "gray-window.hsm", &err), HS_OK);
    CU_ASSERT_STRING_EQUAL(m.recipe.channel[1].name, "gray-window");
    CU_ASSERT_STRING_EQUAL(m.sha256, sha);
    hs_model_free(&m);

    unsigned char *v1 = edit_header(buf, len, "hemoscan-model 2\n", "hemoscan-model 1\n", &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(v1);
    set_le32(v1 + 8, 1);
    fix_trailer(v1, n);
    expect_refusal(v1, n, "gray-window-v1.hsm", 1, HS_ERR_VERSION, "format version 1 with a 'gray-window'");
    free(v1);
    free(buf);
}

static void test_load_bad_shape(void)
{
    hs_model m;
    size_t len, n;
    CU_ASSERT_FATAL(make_reference_model(&m, 3) == 0);
    unsigned char *buf = saved_bytes(&m, "shape.hsm", &len);
    hs_model_free(&m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    struct {
        const char *from, *to, *layer;
    } cases[] = {
        {"out=148x148x16\n", "out=148x148x17\n", "layer 0 (conv)"},
        {"out=148x148x16\n", "out=147x148x16\n", "layer 0 (conv)"},
        {"layer 1 maxpool out=74x74x16\n", "layer 1 maxpool out=75x75x16\n", "layer 1 (maxpool)"},
        {"layer 10 flatten out=1x1x512\n", "layer 10 flatten out=1x1x511\n", "layer 10 (flatten)"},
        {"layer 14 sigmoid out=1x1x1\n", "layer 14 sigmoid out=1x1x2\n", "layer 14 (sigmoid)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char *edited = edit_header(buf, len, cases[i].from, cases[i].to, &n);
        CU_ASSERT_PTR_NOT_NULL_FATAL(edited);
        expect_refusal(edited, n, "bad-shape.hsm", 1, HS_ERR_SHAPE, cases[i].layer);
        free(edited);
    }
    /* A layer list whose shapes add up but which the file's weights do not
     * fit: 32 filters instead of 16 in the first layer. */
    unsigned char *edited = edit_header(buf, len, "units=16 kernel=3 pad=valid relu=1 out=148x148x16\n",
                                        "units=32 kernel=3 pad=valid relu=1 out=148x148x32\n", &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(edited);
    expect_refusal(edited, n, "other-layers.hsm", 0, HS_ERR_SHAPE, NULL);
    free(edited);
    free(buf);
}

static void test_load_params_mismatch(void)
{
    hs_model m;
    size_t len, n;
    CU_ASSERT_FATAL(make_reference_model(&m, 4) == 0);
    unsigned char *buf = saved_bytes(&m, "params.hsm", &len);
    size_t per_member = m.member[0].n_params;
    hs_model_free(&m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    size_t hlen = header_len(buf), w = weights_at(buf);

    /* The binary count alone: the file size no longer adds up. */
    unsigned char *copy = malloc(len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
    memcpy(copy, buf, len);
    set_le64(copy + 16 + hlen + 4, per_member + 1);
    fix_trailer(copy, len);
    expect_refusal(copy, len, "params-binary.hsm", 1, HS_ERR_FORMAT, NULL);
    set_le64(copy + 16 + hlen + 4, per_member - 1);
    fix_trailer(copy, len);
    expect_refusal(copy, len, "params-binary.hsm", 0, HS_ERR_FORMAT, NULL);
    /* The binary member count. */
    memcpy(copy, buf, len);
    set_le32(copy + 16 + hlen, 1);
    fix_trailer(copy, len);
    expect_refusal(copy, len, "members-binary.hsm", 0, HS_ERR_FORMAT, NULL);
    free(copy);

    /* The header count alone: header and weight section disagree. */
    unsigned char *edited = edit_header(buf, len, "\nparams 265953\n", "\nparams 265954\n", &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(edited);
    expect_refusal(edited, n, "params-header.hsm", 0, HS_ERR_FORMAT, "parameters");
    free(edited);
    edited = edit_header(buf, len, "\nmembers 2\n", "\nmembers 1\n", &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(edited);
    expect_refusal(edited, n, "members-header.hsm", 0, HS_ERR_FORMAT, "members");
    free(edited);

    /* Both counts and the weights agree with each other, but not with the
     * layer list: one extra weight per member. */
    edited = edit_header(buf, len, "\nparams 265953\n", "\nparams 265954\n", &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(edited);
    size_t grown = n + 8;
    unsigned char *big = calloc(1, grown);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    size_t wb = per_member * 4;
    memcpy(big, edited, w);
    set_le64(big + w - 8, per_member + 1);
    memcpy(big + w, edited + w, wb);             /* member 0, then one zero weight */
    memcpy(big + w + wb + 4, edited + w + wb, wb); /* member 1, then one zero weight */
    fix_trailer(big, grown);
    expect_refusal(big, grown, "params-layers.hsm", 1, HS_ERR_SHAPE, "265954");
    free(big);
    free(edited);
    free(buf);
}

static void test_load_bad_weights(void)
{
    hs_model m;
    size_t len;
    CU_ASSERT_FATAL(make_small_model(&m, 2) == 0);
    unsigned char *buf = saved_bytes(&m, "weights.hsm", &len);
    size_t per_member = m.member[0].n_params;
    hs_model_free(&m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    size_t w = weights_at(buf);
    const uint32_t bad[] = {0x7fc00000u, 0xffc00001u, 0x7f800000u, 0xff800000u, 0x7f800001u};
    const size_t where[] = {w, w + 4 * (per_member - 1), w + 4 * per_member, len - 36};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (size_t j = 0; j < sizeof where / sizeof where[0]; j++) {
            unsigned char kept[4];
            memcpy(kept, buf + where[j], 4);
            set_le32(buf + where[j], bad[i]);
            fix_trailer(buf, len);
            expect_refusal(buf, len, "nan-weight.hsm", j == 0, HS_ERR_FORMAT, "NaN or infinite");
            memcpy(buf + where[j], kept, 4);
        }
    }
    fix_trailer(buf, len);
    hs_error err;
    CU_ASSERT_EQUAL(hs_model_load_buffer(&m, buf, len, "restored", &err), HS_OK);
    hs_model_free(&m);
    free(buf);
}

static void test_load_trailing_garbage(void)
{
    hs_model m;
    size_t len;
    CU_ASSERT_FATAL(make_small_model(&m, 2) == 0);
    unsigned char *buf = saved_bytes(&m, "garbage.hsm", &len);
    hs_model_free(&m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    unsigned char *big = malloc(len + 100);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    /* Appended after the trailer: the trailer is no longer last. */
    memcpy(big, buf, len);
    memset(big + len, 'x', 100);
    expect_refusal(big, len + 1, "appended.hsm", 1, -1, NULL);
    expect_refusal(big, len + 100, "appended.hsm", 0, -1, NULL);
    /* Inserted before the trailer with the trailer recomputed: only the
     * size check can see it. */
    memcpy(big, buf, len - 32);
    memset(big + len - 32, 0, 4);
    fix_trailer(big, len + 4);
    expect_refusal(big, len + 4, "garbage.hsm", 1, HS_ERR_FORMAT, "trailing garbage");
    free(big);
    free(buf);
}

/* Header edits with a valid trailer, each refused with HS_ERR_FORMAT (or
 * the status given) and a message naming the file and the key. */
static void test_load_bad_header(void)
{
    hs_model m;
    size_t len;
    CU_ASSERT_FATAL(make_small_model(&m, 2) == 0);
    unsigned char *buf = saved_bytes(&m, "header.hsm", &len);
    hs_model_free(&m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    struct {
        const char *from, *to, *part;
    } cases[] = {
        {"crop none\n", "crop none\nflavour mint\n", "unknown key 'flavour'"},
        {"crop none\n", "crop none\ncrop none\n", "duplicate"},
        {"crop none\n", "", "missing key 'crop'"},
        {"\nnote\n", "\n", "missing key 'note'"},
        {"params 840\n", "params 840\nseed 1\n", "duplicate key 'seed'"},
        {"params 840\n", "params 840\n\n", "unknown key ''"},
        {"input 16 12 2\n", "input 16 12 5\n", "input"},
        {"input 16 12 2\n", "input 16 12 0\n", "input"},
        {"input 16 12 2\n", "input 16 12\n", "input"},
        {"input 16 12 2\n", "input 16  12 2\n", "input"},
        {"input 16 12 2\n", "input 016 12 2\n", "input"},
        {"input 16 12 2\n", "input 16 12 2 \n", "input"},
        {"channel 1 edge", "channel 2 edge", "channel 1"},
        {" 0.5 1\n", " 0.5 0\n", "channel 0"},
        {" 0.5 1\n", " 0.5 nan\n", "channel 0"},
        {" 0.5 1\n", " 0.50 1\n", "channel 0"},
        {"classes 4\n", "classes 65\n", "classes"},
        {"classes 4\n", "classes 0\n", "classes"},
        {"classes 4\n", "classes 3\n", "threshold"},
        {"classes 4\n", "classes 5\n", "class"},
        {"class 0 normal\n", "class 0 \n", "class 0"},
        {"class 0 normal\n", "class 0\n", "class 0"},
        {"class 0 normal\n", "class 0 normal\r\n", "line"},
        {"class 0 normal\n", "class 0 norm\xff" "al\n", "UTF-8"},
        {"class 0 normal\n", "class 0 0123456789012345678901234567890123456789012345678901234567890123\n",
         "class 0"},
        {"members 2\n", "members 17\n", "members"},
        {"members 2\n", "members 0\n", "members"},
        {"layers 10\n", "layers 65\n", "layers"},
        {"layers 10\n", "layers 11\n", "missing key 'layer'"},
        {"layers 10\n", "layers 9\n", "classes"},
        {"threshold 1\n", "threshold 1.5\n", "threshold"},
        {"threshold 1\n", "threshold nan\n", "threshold"},
        {"threshold 1\n", "threshold -0.5\n", "threshold"},
        {"threshold 1\n", "threshold 0x1p0\n", "threshold"},
        {"threshold 1\n", "threshold inf\n", "threshold"},
        {"data-sha256 -\n", "data-sha256 abc\n", "data-sha256"},
        {"data-sha256 -\n", "data-sha256\n", "data-sha256"},
        {"seed 0\n", "seed 18446744073709551616\n", "seed"},
        {"seed 0\n", "seed -1\n", "seed"},
        {"epochs 0\n", "epochs 2147483648\n", "epochs"},
        {"\ndate\n", "\ndate \n", "date"},
        {"\nnote\n", "\nnote 0123456789012345678901234567890123456789012345678901234567890123456789"
                     "0123456789012345678901234567890123456789012345678901234567890123456789"
                     "0123456789012345678901234567890123456789012345678901234567890123456789"
                     "0123456789012345678901234567890123456789012345\n", "note"}, /* 256 bytes */
        {"layer 0 conv", "layer 0 convolution", "unknown layer kind"},
        {"layer 0 conv", "layer 1 conv", "layer 0"},
        {"kernel=5 pad=same", "pad=same kernel=5", "kernel="},
        {"pad=same", "pad=full", "pad=full"},
        {"relu=0 out=16x12x4", "relu=2 out=16x12x4", "relu=2"},
        {"relu=0 out=16x12x4", "relu=0 out=16x12x4 units=3", "unexpected"},
        {"relu=0 out=16x12x4", "relu=0", "lacks 'out='"},
        {"rate=0.25", "rate=1", "rate=1"},
        {"rate=0.25", "rate=-0.25", "rate=-0.25"},
        {"layer 1 relu out=16x12x4", "layer 1 relu relu=1 out=16x12x4", "expected 'out='"},
        {"layer 1 relu out=16x12x4", "layer 1 relu out=16x12", "out=16x12"},
        {"layer 1 relu out=16x12x4", "layer 1 relu out=16x12x4x1", "out=16x12x4x1"},
        {"layer 1 relu out=16x12x4", "layer 1 relu out=16x0x4", "out=16x0x4"},
        {"hemoscan-model 1\n", "", "missing key 'hemoscan-model'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        unsigned char *edited = edit_header(buf, len, cases[i].from, cases[i].to, &n);
        if (edited == NULL)
            fprintf(stderr, "\n  case %zu: '%s' is not in the header\n", i, cases[i].from);
        CU_ASSERT_PTR_NOT_NULL_FATAL(edited);
        expect_refusal(edited, n, "bad-header.hsm", i % 8 == 0, HS_ERR_FORMAT, cases[i].part);
        free(edited);
    }
    /* A header that does not end in a newline or holds a NUL. */
    size_t n;
    unsigned char *edited = edit_header(buf, len, "params 840\n", "params 840", &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(edited);
    expect_refusal(edited, n, "no-newline.hsm", 0, HS_ERR_FORMAT, "newline");
    free(edited);
    edited = edit_header(buf, len, "crop none\n", "crop n@ne\n", &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(edited);
    char *at = (char *)find_bytes((const char *)edited, n, "n@ne");
    CU_ASSERT_PTR_NOT_NULL_FATAL(at);
    at[1] = '\0';
    fix_trailer(edited, n);
    expect_refusal(edited, n, "nul.hsm", 0, HS_ERR_FORMAT, NULL);
    free(edited);
    /* Layer lists the engine refuses although the shapes are spelled out
     * consistently: an output layer that does not follow a dense layer. */
    edited = edit_header(buf, len, "layer 8 dense units=4 relu=0 out=1x1x4\n",
                         "layer 8 dense units=4 relu=1 out=1x1x4\n", &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(edited);
    expect_refusal(edited, n, "engine-refuses.hsm", 1, HS_ERR_SHAPE, "layer 9");
    free(edited);
    /* A header length that runs past the end, or past the limit. */
    unsigned char *copy = malloc(len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
    memcpy(copy, buf, len);
    set_le32(copy + 12, (uint32_t)(len - 59));
    expect_refusal(copy, len, "long-header.hsm", 0, HS_ERR_FORMAT, "truncated");
    set_le32(copy + 12, (1u << 20) + 1);
    expect_refusal(copy, len, "huge-header.hsm", 0, HS_ERR_FORMAT, "header length");
    free(copy);
    free(buf);
}

/* ---- registration ------------------------------------------------------------------ */

int hs_register_model_tests(void)
{
    static const hs_test_case tests[] = {
        {"status messages", test_status},
        {"SHA-256 of known inputs", test_sha256_known},
        {"SHA-256 of a file matches sha256sum", test_sha256_file},
        {"default input recipe", test_recipe_default},
        {"gray-picture recipes from --windows lists", test_recipe_gray_windows},
        {"reference model round trip, byte-identical resave", test_roundtrip_reference},
        {"custom layer list round trip", test_roundtrip_custom},
        {"save refuses what would not load", test_save_refusals},
        {"load: missing, empty and foreign files", test_load_missing_and_empty},
        {"load: truncated files", test_load_truncated},
        {"load: flipped bytes", test_load_flipped},
        {"load: other format versions", test_load_version},
        {"a gray-window model is format version 2", test_gray_window_is_version_2},
        {"load: wrong layer shapes", test_load_bad_shape},
        {"load: parameter count mismatches", test_load_params_mismatch},
        {"load: NaN and infinite weights", test_load_bad_weights},
        {"load: trailing garbage", test_load_trailing_garbage},
        {"load: malformed headers", test_load_bad_header},
    };
    return hs_test_add_suite("model file and checksums", suite_init, suite_clean, tests, sizeof tests / sizeof tests[0]);
}
