/* model.c - reading and writing the .hsm model file (see model.h).
 *
 * Byte layout; every integer and float is little-endian, floats are IEEE-754
 * binary32:
 *
 *   offset       size      content
 *   0            8         magic "HSMODEL\0"
 *   8            4         u32 format version: 1, or 2 for a model with a
 *                                   "gray-window" channel (see model.h)
 *   12           4         u32 header length H
 *   16           H         header text: UTF-8 "key value\n" lines
 *   16+H         4         u32 ensemble members M
 *   20+H         8         u64 parameters per member P
 *   28+H         4*M*P     weights, member after member, in hs_net.params order
 *   28+H+4*M*P   32        SHA-256 of every byte before it
 *
 * Header lines, exactly in this order, fields separated by one space:
 *
 *   hemoscan-model V                V = the format version above
 *   input H W C
 *   channel I NAME CENTER WIDTH     C lines, I = 0 .. C-1; NAME "gray" or
 *                                   "gray-window" marks a model trained on
 *                                   gray pictures (hs_recipe_from_gray),
 *                                   any other name a window rendered from HU
 *   crop NAME
 *   normalise NAME
 *   layers N
 *   layer I KIND key=value ...      N lines, I = 0 .. N-1, keys by kind:
 *                                     conv    units= kernel= pad=valid|same relu=0|1 out=
 *                                     dense   units= relu=0|1 out=
 *                                     dropout rate= out=
 *                                     others  out=
 *                                   out=HxWxC is the layer's output shape
 *   classes K
 *   class I NAME                    K lines, NAME is the rest of the line
 *   threshold T
 *   data-sha256 HEX                 "-" when there is none
 *   seed S
 *   epochs E
 *   date TEXT
 *   version TEXT
 *   note TEXT
 *   members M
 *   params P
 *
 * Text values (class names, date, version, note) run verbatim to the end of
 * the line: they may hold spaces but no control characters. An empty date,
 * version or note is written as the key alone ("note\n"), so every string,
 * "-" included, has exactly one spelling. data-sha256 may use "-" for none
 * because "-" is never a digest. Floats are printed with %.9g, which is
 * enough digits for every binary32 value to read back bit for bit, and in
 * the C locale whatever locale the process runs in.
 *
 * The writer has one canonical spelling for every model and the reader
 * accepts only that spelling (fixed key order, single spaces, no leading
 * zeros, canonical floats), so saving a loaded model reproduces the file
 * byte for byte and the SHA-256 identity of a model survives load and save.
 *
 * The reader treats the bytes as hostile: every length is checked against
 * the bytes present before it is used, the trailer is verified before the
 * header is parsed, and the layer shapes are derived here from the layer
 * list and checked against the declared out= shapes and the parameter count
 * (which the file size bounds) before the engine allocates anything. The
 * engine's own shapes are then compared once more, so the file and the
 * engine can never silently disagree. Integers and floats are assembled
 * byte by byte, which is correct on any host byte order. */
#include "hemoscan/model.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hemoscan/checksum.h"
#include "hemoscan/fileio.h"
#include "hemoscan/strbuf.h"

_Static_assert(sizeof(float) == 4 && FLT_RADIX == 2 && FLT_MANT_DIG == 24 && FLT_MAX_EXP == 128,
               "model files store IEEE-754 binary32 weights; this platform's float differs");

#define MAGIC_LEN 8
static const unsigned char model_magic[MAGIC_LEN] = {'H', 'S', 'M', 'O', 'D', 'E', 'L', '\0'};

#define PREFIX_LEN 16 /* magic, format version, header length */
#define COUNTS_LEN 12 /* members, parameters per member */
#define MIN_FILE_LEN (PREFIX_LEN + COUNTS_LEN + HS_SHA256_LEN)
/* Far above any real header (a few KiB), low enough that a corrupted
 * length cannot make the reader copy a large block for nothing. */
#define MAX_HEADER_LEN ((size_t)1 << 20)
/* Weights are converted in blocks of this many floats on save. */
#define WRITE_BLOCK 4096

/* ---- bytes ---------------------------------------------------------------- */

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static int mul_u64(uint64_t a, uint64_t b, uint64_t *r)
{
    return !__builtin_mul_overflow(a, b, r);
}

static int add_u64(uint64_t a, uint64_t b, uint64_t *r)
{
    return !__builtin_add_overflow(a, b, r);
}

/* ---- text ----------------------------------------------------------------- */

/* Length of the UTF-8 character at s (n bytes available), or 0 if it is a
 * control character or not well-formed UTF-8 (overlong forms, surrogates
 * and code points past U+10FFFF included). */
static size_t utf8_char(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x20 || c == 0x7f)
        return 0;
    if (c < 0x80)
        return 1;
    size_t len;
    uint32_t cp, min;
    if ((c & 0xe0) == 0xc0) {
        len = 2;
        cp = c & 0x1f;
        min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3;
        cp = c & 0x0f;
        min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* 1 if the n bytes at s are printable UTF-8: the header promises UTF-8 and
 * one line per key, so a control character can never enter it. */
static int text_ok(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t len = utf8_char(p + i, n - i);
        if (len == 0)
            return 0;
        i += len;
    }
    return 1;
}

enum { STR_TEXT = 0, STR_NONEMPTY = 1, STR_TOKEN = 2 };

/* 1 if the cap-byte array field holds a NUL-terminated string the header
 * can carry: printable UTF-8, non-empty for STR_NONEMPTY, and also free of
 * spaces for STR_TOKEN (tokens share their line with other fields). */
static int string_ok(const char *field, size_t cap, int kind)
{
    const char *end = memchr(field, '\0', cap);
    if (end == NULL)
        return 0;
    size_t n = (size_t)(end - field);
    if (n == 0)
        return kind == STR_TEXT;
    if (kind == STR_TOKEN && memchr(field, ' ', n) != NULL)
        return 0;
    return text_ok(field, n);
}

static int hex_digest_ok(const char *s)
{
    for (int i = 0; i < 64; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    }
    return s[64] == '\0';
}

/* ---- layer lists ------------------------------------------------------------ */

static int shape_equal(hs_shape a, hs_shape b)
{
    return a.h == b.h && a.w == b.w && a.c == b.c;
}

/* The spec as the file can express it: the fields its kind does not use are
 * zeroed, which is also exactly what the reader rebuilds. */
static hs_status clean_spec(const hs_layer_spec *in, int index, hs_layer_spec *out,
                            const char *path, hs_error *err)
{
    memset(out, 0, sizeof *out);
    out->kind = in->kind;
    const char *kind = hs_layer_kind_name(in->kind);
    switch (in->kind) {
    case HS_LAYER_CONV:
        out->kernel = in->kernel;
        out->pad_same = in->pad_same;
        out->units = in->units;
        out->relu = in->relu;
        if (out->kernel < 1 || (out->pad_same != 0 && out->pad_same != 1))
            return hs_fail(err, HS_ERR_ARG,
                           "%s: layer %d (conv): kernel %d, pad_same %d; expected kernel >= 1 and pad_same 0 or 1",
                           path, index, out->kernel, out->pad_same);
        break;
    case HS_LAYER_DENSE:
        out->units = in->units;
        out->relu = in->relu;
        break;
    case HS_LAYER_DROPOUT:
        out->rate = in->rate;
        if (!(out->rate >= 0.0f && out->rate < 1.0f))
            return hs_fail(err, HS_ERR_ARG, "%s: layer %d (dropout): rate %g, expected 0 <= rate < 1",
                           path, index, (double)out->rate);
        return HS_OK;
    case HS_LAYER_RELU:
    case HS_LAYER_MAXPOOL:
    case HS_LAYER_FLATTEN:
    case HS_LAYER_SIGMOID:
    case HS_LAYER_SOFTMAX:
        return HS_OK;
    default:
        return hs_fail(err, HS_ERR_ARG, "%s: layer %d: unknown layer kind %d", path, index, (int)in->kind);
    }
    if (out->units < 1 || (out->relu != 0 && out->relu != 1))
        return hs_fail(err, HS_ERR_ARG,
                       "%s: layer %d (%s): %d units, relu %d; expected units >= 1 and relu 0 or 1",
                       path, index, kind, out->units, out->relu);
    return HS_OK;
}

static int spec_equal(const hs_layer_spec *a, const hs_layer_spec *b)
{
    uint32_t ra, rb;
    memcpy(&ra, &a->rate, sizeof ra);
    memcpy(&rb, &b->rate, sizeof rb);
    return a->kind == b->kind && a->units == b->units && a->kernel == b->kernel &&
           a->pad_same == b->pad_same && a->relu == b->relu && ra == rb;
}

/* Output shapes and parameter count of a layer list by the rules cnn.h
 * documents. The reader runs this before hs_net_create so that a header
 * whose layers ask for more parameters than the file holds is refused
 * without the engine allocating them; the engine's result is compared too. */
static hs_status derive_layers(const char *name, hs_shape input, const hs_layer_spec *spec,
                               const hs_shape *declared, int n, uint64_t *n_params, hs_error *err)
{
    uint64_t total = 0;
    hs_shape in = input;
    for (int i = 0; i < n; i++) {
        const char *kind = hs_layer_kind_name(spec[i].kind);
        hs_shape out = in;
        uint64_t weights = 0, elems = 0;
        int ok = 1;
        switch (spec[i].kind) {
        case HS_LAYER_CONV: {
            int k = spec[i].kernel;
            if (!spec[i].pad_same) {
                if (in.h < k || in.w < k)
                    return hs_fail(err, HS_ERR_SHAPE,
                                   "%s: layer %d (conv): a %dx%d kernel does not fit the %dx%d input",
                                   name, i, k, k, in.h, in.w);
                out.h = in.h - k + 1;
                out.w = in.w - k + 1;
            }
            out.c = spec[i].units;
            ok = mul_u64((uint64_t)k * (uint64_t)k, (uint64_t)in.c, &weights) &&
                 mul_u64(weights, (uint64_t)spec[i].units, &weights);
            break;
        }
        case HS_LAYER_MAXPOOL:
            if (in.h < 2 || in.w < 2)
                return hs_fail(err, HS_ERR_SHAPE, "%s: layer %d (maxpool): the %dx%d input is smaller than 2x2",
                               name, i, in.h, in.w);
            out.h = in.h / 2;
            out.w = in.w / 2;
            break;
        case HS_LAYER_FLATTEN:
        case HS_LAYER_DENSE:
            ok = mul_u64((uint64_t)in.h * (uint64_t)in.w, (uint64_t)in.c, &elems) && elems <= INT_MAX;
            out.h = 1;
            out.w = 1;
            out.c = spec[i].kind == HS_LAYER_DENSE ? spec[i].units : ok ? (int)elems : 0;
            if (spec[i].kind == HS_LAYER_DENSE)
                ok = ok && mul_u64(elems, (uint64_t)spec[i].units, &weights);
            break;
        default:
            break;
        }
        if (!ok)
            return hs_fail(err, HS_ERR_SHAPE, "%s: layer %d (%s): its %dx%dx%d input is too large",
                           name, i, kind, in.h, in.w, in.c);
        if (!shape_equal(out, declared[i]))
            return hs_fail(err, HS_ERR_SHAPE,
                           "%s: layer %d (%s): the file says out=%dx%dx%d, the layer list gives %dx%dx%d",
                           name, i, kind, declared[i].h, declared[i].w, declared[i].c, out.h, out.w, out.c);
        int has_bias = spec[i].kind == HS_LAYER_CONV || spec[i].kind == HS_LAYER_DENSE;
        uint64_t biases = has_bias ? (uint64_t)spec[i].units : 0;
        if (!add_u64(total, weights, &total) || !add_u64(total, biases, &total))
            return hs_fail(err, HS_ERR_SHAPE, "%s: layer %d (%s): the parameter count overflows", name, i, kind);
        in = out;
    }
    *n_params = total;
    return HS_OK;
}

/* ---- save ---------------------------------------------------------------- */

/* Everything a reader would refuse is refused here, so a file that saves
 * always loads. specs receives member 0's layer list as the file holds it. */
static hs_status check_model(const hs_model *m, const char *path, hs_layer_spec *specs, hs_error *err)
{
    if (m->n_members < 1 || m->n_members > HS_MODEL_MAX_MEMBERS)
        return hs_fail(err, HS_ERR_ARG, "%s: %d ensemble members, expected 1..%d", path, m->n_members,
                       HS_MODEL_MAX_MEMBERS);
    const hs_net *first = &m->member[0];
    if (first->n_layers < 1 || first->n_layers > HS_MAX_LAYERS || first->layers == NULL)
        return hs_fail(err, HS_ERR_ARG, "%s: member 0 has %d layers, expected 1..%d", path, first->n_layers,
                       HS_MAX_LAYERS);
    int n = first->n_layers;
    for (int i = 0; i < n; i++) {
        hs_status st = clean_spec(&first->layers[i].spec, i, &specs[i], path, err);
        if (st != HS_OK)
            return st;
    }
    for (int k = 0; k < m->n_members; k++) {
        const hs_net *net = &m->member[k];
        if (net->params == NULL || net->layers == NULL)
            return hs_fail(err, HS_ERR_ARG, "%s: member %d has no parameters", path, k);
        int same = shape_equal(net->input, first->input) && net->n_layers == n &&
                   net->n_params == first->n_params;
        for (int i = 0; same && i < n; i++) {
            hs_layer_spec s;
            same = clean_spec(&net->layers[i].spec, i, &s, path, err) == HS_OK && spec_equal(&s, &specs[i]);
        }
        if (!same)
            return hs_fail(err, HS_ERR_ARG, "%s: member %d has a different architecture from member 0; "
                           "all ensemble members must share one", path, k);
    }

    const hs_input_recipe *r = &m->recipe;
    if (r->channels < 1 || r->channels > HS_MODEL_MAX_CHANNELS)
        return hs_fail(err, HS_ERR_ARG, "%s: recipe has %d channels, expected 1..%d", path, r->channels,
                       HS_MODEL_MAX_CHANNELS);
    if (r->height != first->input.h || r->width != first->input.w || r->channels != first->input.c)
        return hs_fail(err, HS_ERR_SHAPE, "%s: recipe input %dx%dx%d differs from the network input %dx%dx%d",
                       path, r->height, r->width, r->channels, first->input.h, first->input.w, first->input.c);
    for (int c = 0; c < r->channels; c++) {
        const hs_channel_recipe *ch = &r->channel[c];
        if (!string_ok(ch->name, sizeof ch->name, STR_TOKEN))
            return hs_fail(err, HS_ERR_ARG, "%s: channel %d: the name must be non-empty printable UTF-8 "
                           "without spaces", path, c);
        if (!isfinite(ch->center_hu) || !isfinite(ch->width_hu) || !(ch->width_hu > 0.0f))
            return hs_fail(err, HS_ERR_ARG, "%s: channel %d: window %g/%g, expected a finite center and width > 0",
                           path, c, (double)ch->center_hu, (double)ch->width_hu);
    }
    if (!string_ok(r->crop, sizeof r->crop, STR_TOKEN) || !string_ok(r->normalise, sizeof r->normalise, STR_TOKEN))
        return hs_fail(err, HS_ERR_ARG, "%s: crop and normalise must be non-empty printable UTF-8 without spaces",
                       path);

    if (m->n_classes < 1 || m->n_classes > HS_MODEL_MAX_CLASSES)
        return hs_fail(err, HS_ERR_ARG, "%s: %d classes, expected 1..%d", path, m->n_classes,
                       HS_MODEL_MAX_CLASSES);
    for (int k = 0; k < m->n_classes; k++) {
        if (!string_ok(m->class_name[k], sizeof m->class_name[k], STR_NONEMPTY))
            return hs_fail(err, HS_ERR_ARG, "%s: class %d: the name must be non-empty printable UTF-8 "
                           "(no newline or other control character)", path, k);
    }
    if (!(m->threshold >= 0.0f && m->threshold <= 1.0f))
        return hs_fail(err, HS_ERR_ARG, "%s: threshold %g, expected 0 <= threshold <= 1", path,
                       (double)m->threshold);

    const hs_provenance *p = &m->provenance;
    if (p->data_sha256[0] != '\0' && !hex_digest_ok(p->data_sha256))
        return hs_fail(err, HS_ERR_ARG, "%s: data SHA-256 must be empty or 64 lowercase hex digits", path);
    if (p->epochs < 0)
        return hs_fail(err, HS_ERR_ARG, "%s: %d epochs, expected >= 0", path, p->epochs);
    if (!string_ok(p->date, sizeof p->date, STR_TEXT) || !string_ok(p->version, sizeof p->version, STR_TEXT) ||
        !string_ok(p->note, sizeof p->note, STR_TEXT))
        return hs_fail(err, HS_ERR_ARG, "%s: date, version and note must be printable UTF-8 "
                       "(no newline or other control character)", path);

    /* The engine's own view of the layer list must match what the file will
     * say, or the file would not load again. */
    hs_net check;
    hs_error local;
    hs_status st = hs_net_create(&check, first->input, specs, n, &local);
    if (st != HS_OK)
        return hs_fail(err, st == HS_ERR_NOMEM ? st : HS_ERR_SHAPE, "%s: %s", path, local.msg);
    int same = check.n_params == first->n_params;
    for (int i = 0; same && i < n; i++)
        same = shape_equal(check.layers[i].out, first->layers[i].out);
    hs_net_free(&check);
    if (!same)
        return hs_fail(err, HS_ERR_SHAPE, "%s: member 0's layer shapes or parameter count differ from what "
                       "its layer list gives", path);

    for (int k = 0; k < m->n_members; k++) {
        const float *w = m->member[k].params;
        for (size_t j = 0; j < first->n_params; j++) {
            if (!isfinite(w[j]))
                return hs_fail(err, HS_ERR_ARG, "%s: member %d parameter %zu is %g; a model file holds "
                               "only finite weights", path, k, j, (double)w[j]);
        }
    }
    return HS_OK;
}

static void write_text_field(hs_strbuf *sb, const char *key, const char *value)
{
    if (value[0] == '\0')
        hs_strbuf_printf(sb, "%s\n", key);
    else
        hs_strbuf_printf(sb, "%s %s\n", key, value);
}

static void build_header(const hs_model *m, const hs_layer_spec *specs, hs_strbuf *sb)
{
    const hs_input_recipe *r = &m->recipe;
    const hs_net *net = &m->member[0];
    hs_strbuf_printf(sb, "hemoscan-model %d\n", hs_model_format_version(r));
    hs_strbuf_printf(sb, "input %d %d %d\n", r->height, r->width, r->channels);
    for (int c = 0; c < r->channels; c++)
        hs_strbuf_printf(sb, "channel %d %s %.9g %.9g\n", c, r->channel[c].name, (double)r->channel[c].center_hu,
                  (double)r->channel[c].width_hu);
    hs_strbuf_printf(sb, "crop %s\n", r->crop);
    hs_strbuf_printf(sb, "normalise %s\n", r->normalise);
    hs_strbuf_printf(sb, "layers %d\n", net->n_layers);
    for (int i = 0; i < net->n_layers; i++) {
        const hs_layer_spec *s = &specs[i];
        hs_strbuf_printf(sb, "layer %d %s", i, hs_layer_kind_name(s->kind));
        if (s->kind == HS_LAYER_CONV)
            hs_strbuf_printf(sb, " units=%d kernel=%d pad=%s relu=%d", s->units, s->kernel,
                      s->pad_same ? "same" : "valid", s->relu);
        else if (s->kind == HS_LAYER_DENSE)
            hs_strbuf_printf(sb, " units=%d relu=%d", s->units, s->relu);
        else if (s->kind == HS_LAYER_DROPOUT)
            hs_strbuf_printf(sb, " rate=%.9g", (double)s->rate);
        hs_shape o = net->layers[i].out;
        hs_strbuf_printf(sb, " out=%dx%dx%d\n", o.h, o.w, o.c);
    }
    hs_strbuf_printf(sb, "classes %d\n", m->n_classes);
    for (int k = 0; k < m->n_classes; k++)
        hs_strbuf_printf(sb, "class %d %s\n", k, m->class_name[k]);
    hs_strbuf_printf(sb, "threshold %.9g\n", (double)m->threshold);
    const hs_provenance *p = &m->provenance;
    hs_strbuf_printf(sb, "data-sha256 %s\n", p->data_sha256[0] != '\0' ? p->data_sha256 : "-");
    hs_strbuf_printf(sb, "seed %" PRIu64 "\n", p->seed);
    hs_strbuf_printf(sb, "epochs %d\n", p->epochs);
    write_text_field(sb, "date", p->date);
    write_text_field(sb, "version", p->version);
    write_text_field(sb, "note", p->note);
    hs_strbuf_printf(sb, "members %d\n", m->n_members);
    hs_strbuf_printf(sb, "params %zu\n", net->n_params);
}

/* Writes go to the file and to two digests: body (everything before the
 * trailer, whose digest becomes the trailer) and whole (the whole file, the
 * model's identity), so the file is never read back. */
typedef struct {
    FILE *f;
    hs_sha256_ctx *body, *whole;
    int error; /* first errno of a failed write, 0 if none */
    const hs_model *model;
    const hs_strbuf *header;
    unsigned char *identity; /* receives the digest of the whole file */
} writer;

static void w_put(writer *w, const void *p, size_t n)
{
    if (w->error == 0 && fwrite(p, 1, n, w->f) != n)
        w->error = errno != 0 ? errno : EIO;
    hs_sha256_update(w->body, p, n);
    hs_sha256_update(w->whole, p, n);
}

static void write_body(writer *w, const hs_model *m, const hs_strbuf *header)
{
    unsigned char fixed[COUNTS_LEN];
    memcpy(fixed, model_magic, MAGIC_LEN);
    put_u32(fixed + 8, (uint32_t)hs_model_format_version(&m->recipe));
    w_put(w, fixed, 12);
    put_u32(fixed, (uint32_t)header->len);
    w_put(w, fixed, 4);
    w_put(w, header->p, header->len);
    size_t n_params = m->member[0].n_params;
    put_u32(fixed, (uint32_t)m->n_members);
    put_u64(fixed + 4, (uint64_t)n_params);
    w_put(w, fixed, COUNTS_LEN);
    unsigned char block[WRITE_BLOCK * 4];
    for (int k = 0; k < m->n_members; k++) {
        const float *src = m->member[k].params;
        for (size_t j = 0; j < n_params; j += WRITE_BLOCK) {
            size_t count = n_params - j < WRITE_BLOCK ? n_params - j : WRITE_BLOCK;
            for (size_t i = 0; i < count; i++) {
                uint32_t bits;
                memcpy(&bits, &src[j + i], sizeof bits);
                put_u32(block + 4 * i, bits);
            }
            w_put(w, block, 4 * count);
        }
    }
}

/* The whole file as hs_file_write_atomic_with streams it: the body, then
 * its digest as the trailer. */
static int stream_file(FILE *f, void *ctx)
{
    writer *w = ctx;
    unsigned char trailer[HS_SHA256_LEN];
    w->f = f;
    write_body(w, w->model, w->header);
    hs_sha256_end(w->body, trailer);
    w->body = NULL;
    w_put(w, trailer, sizeof trailer);
    hs_sha256_end(w->whole, w->identity);
    w->whole = NULL;
    return w->error;
}

/* Streams the file into a temporary name next to path and renames it into
 * place (see fileio.h), so a reader sees either the old file or the
 * complete new one, never half of one. identity receives the SHA-256 of
 * the whole file. */
static hs_status write_file(const hs_model *model, const hs_strbuf *header, const char *path,
                            unsigned char identity[HS_SHA256_LEN], hs_error *err)
{
    writer w = {NULL, hs_sha256_begin(), hs_sha256_begin(), 0, model, header, identity};
    hs_status st;
    if (w.body == NULL || w.whole == NULL)
        st = hs_fail(err, HS_ERR_NOMEM, "%s: out of memory for saving", path);
    else /* 0644: a model is meant to be shared and audited. */
        st = hs_file_write_atomic_with(path, 0644, stream_file, &w, err);
    /* Frees the digests the stream did not finish (all of them when it
     * never ran). */
    unsigned char unused[HS_SHA256_LEN];
    hs_sha256_end(w.body, unused);
    hs_sha256_end(w.whole, unused);
    return st;
}

static hs_status save_model(hs_model *model, const char *path, hs_error *err)
{
    hs_layer_spec specs[HS_MAX_LAYERS];
    hs_status st = check_model(model, path, specs, err);
    if (st != HS_OK)
        return st;
    hs_strbuf header;
    hs_strbuf_init(&header, MAX_HEADER_LEN);
    build_header(model, specs, &header);
    if (header.status == HS_ERR_NOMEM)
        st = hs_fail(err, HS_ERR_NOMEM, "%s: out of memory for the model header", path);
    else if (header.status != HS_OK)
        st = hs_fail(err, HS_ERR_ARG, "%s: the header would be more than the %zu bytes a reader accepts",
                     path, MAX_HEADER_LEN);
    unsigned char identity[HS_SHA256_LEN];
    if (st == HS_OK)
        st = write_file(model, &header, path, identity, err);
    if (st == HS_OK)
        hs_sha256_hex(identity, model->sha256);
    hs_strbuf_free(&header);
    return st;
}

/* ---- load ------------------------------------------------------------------ */

/* The header's keys in the order the file must have them; the rank of a key
 * tells a missing key from a repeated one in messages. */
static const char *const key_order[] = {
    "hemoscan-model", "input", "channel", "crop", "normalise", "layers", "layer", "classes", "class",
    "threshold", "data-sha256", "seed", "epochs", "date", "version", "note", "members", "params",
};

static int key_rank(const char *key)
{
    for (size_t i = 0; i < sizeof key_order / sizeof key_order[0]; i++) {
        if (strcmp(key, key_order[i]) == 0)
            return (int)i;
    }
    return -1;
}

/* A cursor over the NUL-terminated copy of the header. Lines are cut in
 * place: key is the text before the first space, value the text after it
 * (NULL when the line holds the key alone). */
typedef struct {
    const char *name;
    char *next;
    int line_no;
    char *key;
    char *value;
} reader;

static hs_status read_line(reader *r, hs_error *err)
{
    char *line = r->next;
    char *nl = strchr(line, '\n'); /* present: the header ends with one */
    *nl = '\0';
    r->next = nl + 1;
    r->line_no++;
    if (!text_ok(line, (size_t)(nl - line)))
        return hs_fail(err, HS_ERR_FORMAT, "%s: header line %d is not printable UTF-8 text", r->name, r->line_no);
    r->key = line;
    r->value = NULL;
    char *space = strchr(line, ' ');
    if (space != NULL) {
        *space = '\0';
        r->value = space + 1;
    }
    return HS_OK;
}

/* Reads the next line, which must be the key `key`. */
static hs_status expect_key(reader *r, const char *key, hs_error *err)
{
    if (*r->next == '\0')
        return hs_fail(err, HS_ERR_FORMAT, "%s: the header ends where the '%s' line was expected", r->name, key);
    hs_status st = read_line(r, err);
    if (st != HS_OK)
        return st;
    if (strcmp(r->key, key) == 0)
        return HS_OK;
    int want = key_rank(key), got = key_rank(r->key);
    if (got < 0)
        return hs_fail(err, HS_ERR_FORMAT, "%s: header line %d: unknown key '%s' (expected '%s')", r->name,
                       r->line_no, r->key, key);
    if (got < want)
        return hs_fail(err, HS_ERR_FORMAT, "%s: header line %d: duplicate or extra '%s' line (expected '%s')",
                       r->name, r->line_no, r->key, key);
    return hs_fail(err, HS_ERR_FORMAT, "%s: header line %d: missing key '%s' before '%s'", r->name, r->line_no,
                   key, r->key);
}

/* Cuts s into fields separated by single spaces. Returns the count, or -1
 * for an empty field (a doubled, leading or trailing space) or more than
 * max fields: only the canonical spelling is accepted. */
static int split_fields(char *s, char **field, int max)
{
    int n = 0;
    for (;;) {
        if (n == max)
            return -1;
        field[n++] = s;
        char *space = strchr(s, ' ');
        if (space == NULL)
            break;
        *space = '\0';
        s = space + 1;
    }
    for (int i = 0; i < n; i++) {
        if (field[i][0] == '\0')
            return -1;
    }
    return n;
}

/* A decimal in [0, hi] from the n bytes at s: digits only, no sign and no
 * leading zero, so each number has one spelling. */
static int parse_uint_n(const char *s, size_t n, uint64_t hi, uint64_t *out)
{
    if (n == 0 || (s[0] == '0' && n > 1))
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (d > hi || v > (hi - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    uint64_t v;
    if (!parse_uint_n(s, strlen(s), (uint64_t)hi, &v) || v < (uint64_t)lo)
        return 0;
    *out = (int)v;
    return 1;
}

/* A finite float spelled exactly as the writer's %.9g spells it. */
static int parse_float(const char *s, float *out)
{
    char *end;
    float v = strtof(s, &end);
    if (end == s || *end != '\0' || !isfinite(v))
        return 0;
    char canon[32];
    snprintf(canon, sizeof canon, "%.9g", (double)v);
    if (strcmp(canon, s) != 0)
        return 0;
    *out = v;
    return 1;
}

/* HxWxC with every dimension in 1..INT_MAX. */
static int parse_shape(const char *s, hs_shape *out)
{
    int dim[3];
    for (int i = 0; i < 3; i++) {
        size_t n = i < 2 ? strcspn(s, "x") : strlen(s);
        uint64_t v;
        if (!parse_uint_n(s, n, INT_MAX, &v) || v < 1)
            return 0;
        dim[i] = (int)v;
        s += n;
        if (i < 2) {
            if (*s != 'x')
                return 0;
            s++;
        }
    }
    out->h = dim[0];
    out->w = dim[1];
    out->c = dim[2];
    return 1;
}

static hs_status bad_value(const reader *r, const char *what, hs_error *err)
{
    return hs_fail(err, HS_ERR_FORMAT, "%s: header line %d: '%s' expects %s", r->name, r->line_no, r->key, what);
}

/* Copies the line's single token value into a cap-byte field. */
static hs_status read_token(reader *r, char *dst, size_t cap, hs_error *err)
{
    char *field[1];
    if (r->value == NULL || split_fields(r->value, field, 1) != 1 || strlen(field[0]) >= cap)
        return bad_value(r, "one name without spaces, at most 63 bytes", err);
    memcpy(dst, field[0], strlen(field[0]) + 1);
    return HS_OK;
}

/* A free-text value: the key alone means empty, see the top of this file. */
static hs_status read_text(reader *r, const char *key, char *dst, size_t cap, hs_error *err)
{
    hs_status st = expect_key(r, key, err);
    if (st != HS_OK)
        return st;
    if (r->value == NULL) {
        dst[0] = '\0';
        return HS_OK;
    }
    size_t n = strlen(r->value);
    if (n == 0)
        return hs_fail(err, HS_ERR_FORMAT, "%s: header line %d: '%s' followed by a space but no text "
                       "(an empty value is the key alone)", r->name, r->line_no, key);
    if (n >= cap)
        return hs_fail(err, HS_ERR_FORMAT, "%s: header line %d: '%s' is %zu bytes, at most %zu fit", r->name,
                       r->line_no, key, n, cap - 1);
    memcpy(dst, r->value, n + 1);
    return HS_OK;
}

/* Reads the line `key N` with N in [lo, hi]. */
static hs_status read_count(reader *r, const char *key, int lo, int hi, int *out, hs_error *err)
{
    hs_status st = expect_key(r, key, err);
    if (st != HS_OK)
        return st;
    if (r->value == NULL || !parse_int(r->value, lo, hi, out))
        return hs_fail(err, HS_ERR_FORMAT, "%s: header line %d: '%s' expects an integer in %d..%d", r->name,
                       r->line_no, key, lo, hi);
    return HS_OK;
}

static hs_status read_channel(reader *r, int index, hs_channel_recipe *ch, hs_error *err)
{
    hs_status st = expect_key(r, "channel", err);
    if (st != HS_OK)
        return st;
    char *f[4];
    int i;
    if (r->value == NULL || split_fields(r->value, f, 4) != 4 || !parse_int(f[0], 0, INT_MAX, &i) || i != index ||
        strlen(f[1]) >= sizeof ch->name || !parse_float(f[2], &ch->center_hu) ||
        !parse_float(f[3], &ch->width_hu) || !(ch->width_hu > 0.0f))
        return hs_fail(err, HS_ERR_FORMAT, "%s: header line %d: expected 'channel %d NAME CENTER WIDTH' "
                       "with a name of at most 63 bytes and width > 0", r->name, r->line_no, index);
    memcpy(ch->name, f[1], strlen(f[1]) + 1);
    return HS_OK;
}

/* Keys of a layer line by kind, in their fixed order. */
static const char *const *layer_keys(hs_layer_kind kind)
{
    static const char *const conv[] = {"units", "kernel", "pad", "relu", "out", NULL};
    static const char *const dense[] = {"units", "relu", "out", NULL};
    static const char *const dropout[] = {"rate", "out", NULL};
    static const char *const plain[] = {"out", NULL};
    if (kind == HS_LAYER_CONV)
        return conv;
    if (kind == HS_LAYER_DENSE)
        return dense;
    if (kind == HS_LAYER_DROPOUT)
        return dropout;
    return plain;
}

static int set_layer_field(const char *key, const char *v, hs_layer_spec *spec, hs_shape *out)
{
    if (strcmp(key, "units") == 0)
        return parse_int(v, 1, INT_MAX, &spec->units);
    if (strcmp(key, "kernel") == 0)
        return parse_int(v, 1, INT_MAX, &spec->kernel);
    if (strcmp(key, "relu") == 0)
        return parse_int(v, 0, 1, &spec->relu);
    if (strcmp(key, "rate") == 0)
        return parse_float(v, &spec->rate) && spec->rate >= 0.0f && spec->rate < 1.0f;
    if (strcmp(key, "out") == 0)
        return parse_shape(v, out);
    if (strcmp(key, "pad") == 0 && (strcmp(v, "valid") == 0 || strcmp(v, "same") == 0)) {
        spec->pad_same = strcmp(v, "same") == 0;
        return 1;
    }
    return 0;
}

static hs_status read_layer(reader *r, int index, hs_layer_spec *spec, hs_shape *out, hs_error *err)
{
    hs_status st = expect_key(r, "layer", err);
    if (st != HS_OK)
        return st;
    char *f[8];
    int n = r->value == NULL ? -1 : split_fields(r->value, f, 8);
    int i;
    if (n < 2 || !parse_int(f[0], 0, INT_MAX, &i) || i != index)
        return hs_fail(err, HS_ERR_FORMAT, "%s: header line %d: expected 'layer %d KIND key=value ...'", r->name,
                       r->line_no, index);
    memset(spec, 0, sizeof *spec);
    if (hs_layer_kind_parse(f[1], &spec->kind) != 0)
        return hs_fail(err, HS_ERR_FORMAT, "%s: header line %d: layer %d: unknown layer kind '%s'", r->name,
                       r->line_no, index, f[1]);
    const char *const *keys = layer_keys(spec->kind);
    int k = 0;
    for (; keys[k] != NULL; k++) {
        if (2 + k >= n)
            return hs_fail(err, HS_ERR_FORMAT, "%s: header line %d: layer %d (%s) lacks '%s='", r->name,
                           r->line_no, index, f[1], keys[k]);
        const char *tok = f[2 + k];
        size_t len = strlen(keys[k]);
        if (strncmp(tok, keys[k], len) != 0 || tok[len] != '=')
            return hs_fail(err, HS_ERR_FORMAT, "%s: header line %d: layer %d (%s): expected '%s=', found '%s'",
                           r->name, r->line_no, index, f[1], keys[k], tok);
        if (!set_layer_field(keys[k], tok + len + 1, spec, out))
            return hs_fail(err, HS_ERR_FORMAT, "%s: header line %d: layer %d (%s): bad value in '%s'", r->name,
                           r->line_no, index, f[1], tok);
    }
    if (2 + k < n)
        return hs_fail(err, HS_ERR_FORMAT, "%s: header line %d: layer %d (%s): unexpected '%s'", r->name,
                       r->line_no, index, f[1], f[2 + k]);
    return HS_OK;
}

static hs_status read_class(reader *r, int index, char *name, hs_error *err)
{
    hs_status st = expect_key(r, "class", err);
    if (st != HS_OK)
        return st;
    char *space = r->value == NULL ? NULL : strchr(r->value, ' ');
    int i;
    if (space != NULL)
        *space = '\0';
    if (space == NULL || !parse_int(r->value, 0, INT_MAX, &i) || i != index || space[1] == '\0' ||
        strlen(space + 1) >= HS_MODEL_NAME_LEN)
        return hs_fail(err, HS_ERR_FORMAT,
                       "%s: header line %d: expected 'class %d NAME' with a name of 1..%d bytes",
                       r->name, r->line_no, index, HS_MODEL_NAME_LEN - 1);
    memcpy(name, space + 1, strlen(space + 1) + 1);
    return HS_OK;
}

/* What the header says beyond the fields that go straight into the model. */
typedef struct {
    int n_layers;
    hs_layer_spec spec[HS_MAX_LAYERS];
    hs_shape out[HS_MAX_LAYERS];
    int members;
    uint64_t params;
} header_info;

/* version is the format version of the file's prefix, already known to be
 * one this hemoscan reads; the header must repeat it. */
static hs_status parse_header(reader *r, uint32_t version, hs_model *m, header_info *h, hs_error *err)
{
    hs_status st = expect_key(r, "hemoscan-model", err);
    if (st != HS_OK)
        return st;
    char said[12];
    snprintf(said, sizeof said, "%" PRIu32, version);
    if (r->value == NULL || strcmp(r->value, said) != 0)
        return hs_fail(err, HS_ERR_VERSION,
                       "%s: header line %d: hemoscan-model %s, but the file is format version %s", r->name,
                       r->line_no, r->value != NULL ? r->value : "(empty)", said);

    hs_input_recipe *rec = &m->recipe;
    st = expect_key(r, "input", err);
    if (st != HS_OK)
        return st;
    char *f[3];
    if (r->value == NULL || split_fields(r->value, f, 3) != 3 || !parse_int(f[0], 1, INT_MAX, &rec->height) ||
        !parse_int(f[1], 1, INT_MAX, &rec->width) || !parse_int(f[2], 1, HS_MODEL_MAX_CHANNELS, &rec->channels))
        return hs_fail(err, HS_ERR_FORMAT, "%s: header line %d: expected 'input HEIGHT WIDTH CHANNELS' "
                       "with 1..%d channels", r->name, r->line_no, HS_MODEL_MAX_CHANNELS);
    for (int c = 0; c < rec->channels; c++) {
        st = read_channel(r, c, &rec->channel[c], err);
        if (st != HS_OK)
            return st;
    }
    /* One spelling per model: a version 1 file cannot hold a gray-window
     * channel (older builds would misread it), and a version 2 file must. */
    if ((uint32_t)hs_model_format_version(rec) != version)
        return hs_fail(err, HS_ERR_VERSION, "%s: format version %" PRIu32 " with %s 'gray-window' channel; "
                       "a model is version 2 exactly when it has one", r->name, version,
                       version == 1 ? "a" : "no");
    st = expect_key(r, "crop", err);
    if (st == HS_OK)
        st = read_token(r, rec->crop, sizeof rec->crop, err);
    if (st == HS_OK)
        st = expect_key(r, "normalise", err);
    if (st == HS_OK)
        st = read_token(r, rec->normalise, sizeof rec->normalise, err);
    if (st == HS_OK)
        st = read_count(r, "layers", 1, HS_MAX_LAYERS, &h->n_layers, err);
    for (int i = 0; st == HS_OK && i < h->n_layers; i++)
        st = read_layer(r, i, &h->spec[i], &h->out[i], err);
    if (st == HS_OK)
        st = read_count(r, "classes", 1, HS_MODEL_MAX_CLASSES, &m->n_classes, err);
    for (int k = 0; st == HS_OK && k < m->n_classes; k++)
        st = read_class(r, k, m->class_name[k], err);
    if (st == HS_OK)
        st = expect_key(r, "threshold", err);
    if (st != HS_OK)
        return st;
    if (r->value == NULL || !parse_float(r->value, &m->threshold) || m->threshold < 0.0f || m->threshold > 1.0f)
        return bad_value(r, "a number in [0, 1]", err);

    hs_provenance *p = &m->provenance;
    st = expect_key(r, "data-sha256", err);
    if (st != HS_OK)
        return st;
    if (r->value != NULL && strcmp(r->value, "-") == 0)
        p->data_sha256[0] = '\0';
    else if (r->value != NULL && strlen(r->value) == 64 && hex_digest_ok(r->value))
        memcpy(p->data_sha256, r->value, 65);
    else
        return bad_value(r, "64 lowercase hex digits or '-'", err);
    st = expect_key(r, "seed", err);
    if (st != HS_OK)
        return st;
    if (r->value == NULL || !parse_uint_n(r->value, strlen(r->value), UINT64_MAX, &p->seed))
        return bad_value(r, "an unsigned 64-bit integer", err);
    st = read_count(r, "epochs", 0, INT_MAX, &p->epochs, err);
    if (st == HS_OK)
        st = read_text(r, "date", p->date, sizeof p->date, err);
    if (st == HS_OK)
        st = read_text(r, "version", p->version, sizeof p->version, err);
    if (st == HS_OK)
        st = read_text(r, "note", p->note, sizeof p->note, err);
    if (st == HS_OK)
        st = read_count(r, "members", 1, HS_MODEL_MAX_MEMBERS, &h->members, err);
    if (st == HS_OK)
        st = expect_key(r, "params", err);
    if (st != HS_OK)
        return st;
    if (r->value == NULL || !parse_uint_n(r->value, strlen(r->value), UINT64_MAX, &h->params) || h->params < 1)
        return bad_value(r, "a positive integer", err);
    if (*r->next != '\0') {
        st = read_line(r, err);
        if (st != HS_OK)
            return st;
        return hs_fail(err, HS_ERR_FORMAT, "%s: header line %d: %s key '%s' after the last key 'params'", r->name,
                       r->line_no, key_rank(r->key) >= 0 ? "duplicate" : "unknown", r->key);
    }
    return HS_OK;
}

/* Builds the members from the parsed header and the weights at w. */
static hs_status build_members(hs_model *m, const header_info *h, const unsigned char *w, const char *name,
                               hs_error *err)
{
    hs_shape input = {m->recipe.height, m->recipe.width, m->recipe.channels};
    uint64_t n_params = 0;
    hs_status st = derive_layers(name, input, h->spec, h->out, h->n_layers, &n_params, err);
    if (st != HS_OK)
        return st;
    if (n_params != h->params)
        return hs_fail(err, HS_ERR_SHAPE, "%s: the layer list needs %" PRIu64 " parameters per member, "
                       "the file holds %" PRIu64, name, n_params, h->params);
    for (int k = 0; k < h->members; k++) {
        hs_net *net = &m->member[k];
        hs_error local;
        st = hs_net_create(net, input, h->spec, h->n_layers, &local);
        if (st != HS_OK)
            return hs_fail(err, st == HS_ERR_NOMEM ? st : HS_ERR_SHAPE, "%s: %s", name, local.msg);
        m->n_members = k + 1;
        if (k == 0) {
            for (int i = 0; i < h->n_layers; i++) {
                hs_shape o = net->layers[i].out;
                if (!shape_equal(o, h->out[i]))
                    return hs_fail(err, HS_ERR_SHAPE, "%s: layer %d (%s): the file says out=%dx%dx%d, "
                                   "the engine computes %dx%dx%d", name, i, hs_layer_kind_name(h->spec[i].kind),
                                   h->out[i].h, h->out[i].w, h->out[i].c, o.h, o.w, o.c);
            }
            if ((uint64_t)net->n_params != h->params)
                return hs_fail(err, HS_ERR_SHAPE, "%s: the engine counts %zu parameters per member, the file "
                               "holds %" PRIu64, name, net->n_params, h->params);
        }
        for (size_t j = 0; j < net->n_params; j++) {
            uint32_t bits = get_u32(w);
            w += 4;
            float v;
            memcpy(&v, &bits, sizeof v);
            if (!isfinite(v))
                return hs_fail(err, HS_ERR_FORMAT, "%s: member %d weight %zu is NaN or infinite", name, k, j);
            net->params[j] = v;
        }
    }
    return HS_OK;
}

static hs_status load_buffer(hs_model *m, const unsigned char *buf, size_t len, const char *name, hs_error *err)
{
    if (memcmp(buf, model_magic, len < MAGIC_LEN ? len : MAGIC_LEN) != 0)
        return hs_fail(err, HS_ERR_FORMAT, "%s: not a hemoscan model file (it does not start with HSMODEL)", name);
    if (len < MIN_FILE_LEN)
        return hs_fail(err, HS_ERR_FORMAT, "%s: truncated: %zu bytes, a model file has at least %d", name, len,
                       MIN_FILE_LEN);
    uint32_t version = get_u32(buf + MAGIC_LEN);
    if (version < 1 || version > HS_MODEL_FORMAT_VERSION)
        return hs_fail(err, HS_ERR_VERSION, "%s: format version %" PRIu32 ", this hemoscan reads 1 to %d", name,
                       version, HS_MODEL_FORMAT_VERSION);
    size_t hlen = get_u32(buf + 12);
    if (hlen > MAX_HEADER_LEN)
        return hs_fail(err, HS_ERR_FORMAT, "%s: header length %zu bytes, expected at most %zu", name, hlen,
                       MAX_HEADER_LEN);
    if (hlen > len - MIN_FILE_LEN)
        return hs_fail(err, HS_ERR_FORMAT,
                       "%s: truncated: %zu bytes, too short for its own %zu-byte header plus weights and checksum",
                       name, len, hlen);

    unsigned char digest[HS_SHA256_LEN];
    hs_sha256_ctx *ctx = hs_sha256_begin();
    if (ctx == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory for checking the checksum", name);
    hs_sha256_update(ctx, buf, len - HS_SHA256_LEN);
    hs_sha256_end(ctx, digest);
    if (memcmp(digest, buf + len - HS_SHA256_LEN, HS_SHA256_LEN) != 0)
        return hs_fail(err, HS_ERR_CHECKSUM, "%s: checksum mismatch: the file is corrupted or truncated "
                       "(its last 32 bytes are not the SHA-256 of the rest)", name);

    const unsigned char *counts = buf + PREFIX_LEN + hlen;
    uint32_t members = get_u32(counts);
    uint64_t params = get_u64(counts + 4);
    if (members < 1 || members > HS_MODEL_MAX_MEMBERS || params < 1)
        return hs_fail(err, HS_ERR_FORMAT, "%s: %" PRIu32 " members of %" PRIu64 " parameters, expected 1..%d "
                       "members of at least 1", name, members, params, HS_MODEL_MAX_MEMBERS);
    size_t have = len - MIN_FILE_LEN - hlen;
    uint64_t need;
    if (!mul_u64(params, (uint64_t)members * 4, &need) || need > have)
        return hs_fail(err, HS_ERR_FORMAT, "%s: truncated: %" PRIu32 " members of %" PRIu64 " parameters do not "
                       "fit in the %zu bytes of weights present", name, members, params, have);
    if (need < have)
        return hs_fail(err, HS_ERR_FORMAT, "%s: %" PRIu64 " bytes of trailing garbage after the weights", name,
                       (uint64_t)have - need);

    if (hlen == 0 || buf[PREFIX_LEN + hlen - 1] != '\n' || memchr(buf + PREFIX_LEN, '\0', hlen) != NULL)
        return hs_fail(err, HS_ERR_FORMAT, "%s: the header must be non-empty text ending in a newline", name);
    char *text = malloc(hlen + 1);
    if (text == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory for the %zu byte header", name, hlen);
    memcpy(text, buf + PREFIX_LEN, hlen);
    text[hlen] = '\0';
    reader r = {name, text, 0, NULL, NULL};
    header_info *h = malloc(sizeof *h);
    hs_status st = h == NULL ? hs_fail(err, HS_ERR_NOMEM, "%s: out of memory", name)
                             : parse_header(&r, version, m, h, err);
    free(text);
    if (st == HS_OK && ((uint64_t)h->members != members || h->params != params))
        st = hs_fail(err, HS_ERR_FORMAT, "%s: the header says %d members of %" PRIu64 " parameters, the weight "
                     "section %" PRIu32 " of %" PRIu64, name, h->members, h->params, members, params);
    if (st == HS_OK)
        st = build_members(m, h, counts + COUNTS_LEN, name, err);
    free(h);
    if (st != HS_OK)
        return st;

    ctx = hs_sha256_begin();
    if (ctx == NULL)
        return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory for the file's SHA-256", name);
    hs_sha256_update(ctx, buf, len);
    hs_sha256_end(ctx, digest);
    hs_sha256_hex(digest, m->sha256);
    return HS_OK;
}

/* ---- public ------------------------------------------------------------------ */

int hs_recipe_is_gray(const hs_input_recipe *recipe)
{
    for (int c = 0; c < recipe->channels && c < HS_MODEL_MAX_CHANNELS; c++) {
        if (strncmp(recipe->channel[c].name, "gray", sizeof recipe->channel[c].name) != 0)
            return 0;
    }
    return recipe->channels > 0;
}

int hs_recipe_from_gray(const hs_input_recipe *recipe)
{
    const size_t cap = sizeof recipe->channel[0].name;
    if (recipe->channels < 1 || strncmp(recipe->channel[0].name, "gray", cap) != 0)
        return 0;
    for (int c = 1; c < recipe->channels && c < HS_MODEL_MAX_CHANNELS; c++) {
        const char *name = recipe->channel[c].name;
        if (strncmp(name, "gray", cap) != 0 && strncmp(name, "gray-window", cap) != 0)
            return 0;
    }
    return 1;
}

int hs_model_format_version(const hs_input_recipe *recipe)
{
    for (int c = 0; c < recipe->channels && c < HS_MODEL_MAX_CHANNELS; c++) {
        if (strncmp(recipe->channel[c].name, "gray-window", sizeof recipe->channel[c].name) == 0)
            return 2;
    }
    return 1;
}

void hs_input_recipe_default(hs_input_recipe *recipe)
{
    static const hs_channel_recipe windows[3] = {
        {"brain", 40.0f, 80.0f},
        {"subdural", 80.0f, 200.0f},
        {"bone", 600.0f, 2800.0f},
    };
    memset(recipe, 0, sizeof *recipe);
    recipe->height = 150;
    recipe->width = 150;
    recipe->channels = 3;
    memcpy(recipe->channel, windows, sizeof windows);
    snprintf(recipe->crop, sizeof recipe->crop, "head");
    snprintf(recipe->normalise, sizeof recipe->normalise, "unit");
}

hs_status hs_input_recipe_gray(hs_input_recipe *recipe, const char *windows, hs_error *err)
{
    hs_input_recipe_default(recipe);
    const char *p = windows;
    int n = 0;
    for (;;) {
        char *end = NULL;
        double center = strtod(p, &end);
        double width = 0.0;
        int ok = end != p && *end == '/';
        if (ok) {
            p = end + 1;
            width = strtod(p, &end);
            ok = end != p && (*end == ',' || *end == '\0') && isfinite(center) && isfinite(width) &&
                 width > 0.0 && fabs(center) <= 1e5 && width <= 1e5;
        }
        if (!ok || n == HS_MODEL_MAX_CHANNELS)
            return hs_fail(err, HS_ERR_ARG,
                           "\"%s\": expected 1 to %d windows CENTER/WIDTH (HU, width > 0) "
                           "separated by commas, e.g. %s",
                           windows, HS_MODEL_MAX_CHANNELS, HS_GRAY_WINDOWS_DEFAULT);
        hs_channel_recipe *ch = &recipe->channel[n];
        ch->center_hu = (float)center;
        ch->width_hu = (float)width;
        /* Channel 0 is the picture as it is; a later channel with the same
         * window is too, and only a different window is a re-windowing. */
        int same = n > 0 && ch->center_hu == recipe->channel[0].center_hu &&
                   ch->width_hu == recipe->channel[0].width_hu;
        snprintf(ch->name, sizeof ch->name, "%s", n == 0 || same ? "gray" : "gray-window");
        n++;
        if (*end == '\0')
            break;
        p = end + 1;
    }
    recipe->channels = n;
    return HS_OK;
}

hs_status hs_model_save(hs_model *model, const char *path, hs_error *err)
{
    if (model == NULL || path == NULL || path[0] == '\0')
        return hs_fail(err, HS_ERR_ARG, "hs_model_save: no model or no file name given");
    hs_c_locale loc;
    if (!hs_c_locale_enter(&loc))
        return hs_fail(err, HS_ERR_NOMEM, "%s: cannot set up the C locale for writing numbers", path);
    hs_status st = save_model(model, path, err);
    hs_c_locale_leave(&loc);
    return st;
}

hs_status hs_model_load_buffer(hs_model *model, const unsigned char *buf, size_t len, const char *name,
                               hs_error *err)
{
    if (name == NULL)
        name = "(model buffer)";
    if (model == NULL)
        return hs_fail(err, HS_ERR_ARG, "%s: no model to load into", name);
    memset(model, 0, sizeof *model);
    if (buf == NULL && len > 0)
        return hs_fail(err, HS_ERR_ARG, "%s: no buffer given for %zu bytes", name, len);
    static const unsigned char empty[1];
    hs_c_locale loc;
    if (!hs_c_locale_enter(&loc))
        return hs_fail(err, HS_ERR_NOMEM, "%s: cannot set up the C locale for reading numbers", name);
    hs_status st = load_buffer(model, buf != NULL ? buf : empty, len, name, err);
    hs_c_locale_leave(&loc);
    if (st != HS_OK)
        hs_model_free(model);
    return st;
}

hs_status hs_model_load(hs_model *model, const char *path, hs_error *err)
{
    if (model != NULL)
        memset(model, 0, sizeof *model);
    if (model == NULL || path == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_model_load: no model or no file name given");
    unsigned char *buf = NULL;
    size_t len = 0;
    /* The whole file: it is hashed and parsed from memory anyway. */
    hs_status st = hs_file_read_all(path, SIZE_MAX, &buf, &len, err);
    if (st != HS_OK)
        return st;
    st = hs_model_load_buffer(model, buf, len, path, err);
    free(buf);
    return st;
}

void hs_model_free(hs_model *model)
{
    if (model == NULL)
        return;
    int n = model->n_members;
    if (n > HS_MODEL_MAX_MEMBERS)
        n = HS_MODEL_MAX_MEMBERS;
    for (int k = 0; k < n; k++)
        hs_net_free(&model->member[k]);
    memset(model, 0, sizeof *model);
}
