/* ljpeg.c - lossless JPEG (T.81 process 14) decoder for one-component
 * images; what it handles and why it exists is in ljpeg.h.
 *
 * Built for speed on the common CT stream and for safety on any input:
 * - the bit reader keeps up to 64 bits and refills a byte at a time,
 *   undoing 0xFF00 stuffing and stopping at a marker; bits it had to invent
 *   past the end of the data (or past a marker) are counted, and a stream
 *   that used any of them is declined rather than decoded into zeros;
 * - Huffman codes of up to LOOKUP_BITS bits (nearly all of them in CT,
 *   where differences are small) come from one table lookup, longer ones
 *   from the canonical max-code walk of T.81 Annex F.2.2.3;
 * - rows are reconstructed in place in the output, so the predictor reads
 *   the row above where it already is. */
#include "hemoscan/ljpeg.h"

#include <stdio.h>
#include <string.h>

#define LOOKUP_BITS 9
/* Codes whose category and extra bits together fit in FAST_BITS bits are
 * decoded to their difference in one lookup: in CT nearly all of them. */
#define FAST_BITS 12

typedef struct {
    int defined;
    /* lookup[peek] = (length << 8) | symbol for codes of <= LOOKUP_BITS bits; 0 otherwise */
    uint16_t lookup[1 << LOOKUP_BITS];
    int32_t maxcode[18]; /* largest code of each length, -1 when none; [17] sentinel */
    int32_t valoffset[17]; /* symbol index of a code of each length = code + valoffset */
    uint8_t symbols[256];
    /* fast[peek] = (bits << 16) | (difference mod 2^16) for a code and its
     * extra bits of <= FAST_BITS bits in all; 0 otherwise */
    uint32_t fast[1 << FAST_BITS];
} huff_table;

typedef struct {
    const uint8_t *p, *end;
    uint64_t buf;  /* the next nbits bits of the stream are its low nbits, first bit highest */
    int nbits;
    int invented;  /* zero bytes fed past a marker or the end of the data */
} bit_reader;

static int decline(char *why, const char *reason)
{
    if (why != NULL)
        snprintf(why, 128, "%s", reason);
    return 0;
}

static unsigned read_u16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* Builds t from a DHT table definition (counts: 16 code-length counts,
 * then their symbols). 0 when the counts describe impossible codes. */
static int build_table(huff_table *t, const uint8_t counts[16], const uint8_t *symbols, int n_symbols)
{
    memset(t, 0, sizeof *t);
    memcpy(t->symbols, symbols, (size_t)n_symbols);
    int32_t code = 0;
    int k = 0;
    for (int len = 1; len <= 16; len++) {
        int n = counts[len - 1];
        if (n == 0) {
            t->maxcode[len] = -1;
        } else {
            t->valoffset[len] = k - code;
            for (int i = 0; i < n; i++, k++, code++) {
                if (len <= LOOKUP_BITS) {
                    int shift = LOOKUP_BITS - len;
                    for (int fill = 0; fill < 1 << shift; fill++)
                        t->lookup[(code << shift) | fill] = (uint16_t)(len << 8 | symbols[k]);
                }
            }
            t->maxcode[len] = code - 1;
            if (code - 1 >= (1 << len)) /* more codes than bits allow */
                return 0;
        }
        code <<= 1;
    }
    t->maxcode[17] = 0x7fffffff;
    /* The fast table: every code of <= FAST_BITS bits followed by every
     * value of its extra bits that still fits. */
    code = 0;
    k = 0;
    for (int len = 1; len <= 16; len++, code <<= 1) {
        for (int i = 0; i < counts[len - 1]; i++, k++, code++) {
            int cat = symbols[k];
            int extra = cat == 16 ? 0 : cat;
            if (cat > 16 || len + extra > FAST_BITS)
                continue;
            for (int32_t v = 0; v < (1 << extra); v++) {
                int32_t diff = cat == 0 ? 0 : cat == 16 ? 32768
                               : v < (1 << (cat - 1)) ? v - (1 << cat) + 1 : v;
                int used = len + extra, shift = FAST_BITS - used;
                uint32_t entry = (uint32_t)used << 16 | ((uint32_t)diff & 0xFFFFu);
                for (int fill = 0; fill < 1 << shift; fill++)
                    t->fast[(((uint32_t)code << extra | (uint32_t)v) << shift) | (uint32_t)fill] = entry;
            }
        }
    }
    t->defined = 1;
    return 1;
}

/* Keeps at least 57 bits in the reader (fewer only through invented bytes). */
static inline void refill(bit_reader *r)
{
    if (r->end - r->p >= 8) {
        uint64_t word;
        memcpy(&word, r->p, 8);
        word = __builtin_bswap64(word);
        /* no 0xFF byte among the eight: take whole bytes without looking */
        uint64_t inv = ~word;
        if (((inv - 0x0101010101010101ull) & ~inv & 0x8080808080808080ull) == 0) {
            int k = (63 - r->nbits) >> 3;
            r->buf = r->buf << (8 * k) | word >> (64 - 8 * k);
            r->p += k;
            r->nbits += 8 * k;
            return;
        }
    }
    while (r->nbits <= 56) {
        unsigned byte = 0;
        if (r->p < r->end && !(r->p[0] == 0xFF && (r->p + 1 >= r->end || r->p[1] != 0x00))) {
            byte = *r->p;
            r->p += byte == 0xFF ? 2 : 1; /* 0xFF 0x00: a stuffed 0xFF */
        } else {
            r->invented++;
        }
        r->buf = r->buf << 8 | byte;
        r->nbits += 8;
    }
}

static inline unsigned peek(const bit_reader *r, int n)
{
    return (unsigned)(r->buf >> (r->nbits - n)) & ((1u << n) - 1u);
}

/* The next difference category (SSSS), or -1 for a code not in t. */
static inline int decode_category(bit_reader *r, const huff_table *t)
{
    unsigned e = t->lookup[peek(r, LOOKUP_BITS)];
    if (e != 0) {
        r->nbits -= (int)(e >> 8);
        return (int)(e & 0xFF);
    }
    int len = LOOKUP_BITS + 1;
    int32_t code = (int32_t)peek(r, len);
    while (code > t->maxcode[len]) {
        if (len == 16)
            return -1;
        len++;
        code = (int32_t)peek(r, len);
    }
    r->nbits -= len;
    return t->symbols[code + t->valoffset[len]];
}

/* The difference of category s (T.81 H.1.2.2 and F.2.2.1's EXTEND). */
static inline int32_t decode_difference(bit_reader *r, int s)
{
    if (s == 0)
        return 0;
    if (s == 16)
        return 32768;
    int32_t v = (int32_t)peek(r, s);
    r->nbits -= s;
    return v < (1 << (s - 1)) ? v - (1 << s) + 1 : v;
}

/* The next difference mod 2^16, or -1 for a code not in t. */
static inline int32_t decode_next(bit_reader *r, const huff_table *t)
{
    if (r->nbits < 32)
        refill(r);
    uint32_t e = t->fast[peek(r, FAST_BITS)];
    if (e != 0) {
        r->nbits -= (int)(e >> 16);
        return (int32_t)(e & 0xFFFFu);
    }
    int s = decode_category(r, t);
    if (s < 0 || s > 16)
        return -1;
    return decode_difference(r, s) & 0xFFFF;
}

/* Decodes rows [row0, row1) of one restart interval. 0 when a code is
 * invalid. */
static int decode_rows(bit_reader *r, const huff_table *t, int predictor, int initial, int width,
                       int row0, int row1, uint16_t *out)
{
    uint16_t *row = out + (size_t)row0 * width;
    /* The first row of an interval: the initial value, then the left neighbour. */
    int32_t left = initial;
    for (int x = 0; x < width; x++) {
        int32_t diff = decode_next(r, t);
        if (diff < 0)
            return 0;
        left = (left + diff) & 0xFFFF;
        row[x] = (uint16_t)left;
    }
    for (int y = row0 + 1; y < row1; y++) {
        row = out + (size_t)y * width;
        const uint16_t *above = row - width;
        int32_t diff = decode_next(r, t);
        if (diff < 0)
            return 0;
        int32_t ra = (above[0] + diff) & 0xFFFF;
        row[0] = (uint16_t)ra;
        for (int x = 1; x < width; x++) {
            diff = decode_next(r, t);
            if (diff < 0)
                return 0;
            int32_t rb = above[x], rc = above[x - 1], pred;
            switch (predictor) {
            case 1: pred = ra; break;
            case 2: pred = rb; break;
            case 3: pred = rc; break;
            case 4: pred = ra + rb - rc; break;
            case 5: pred = ra + ((rb - rc) >> 1); break;
            case 6: pred = rb + ((ra - rc) >> 1); break;
            default: pred = (ra + rb) >> 1; break;
            }
            ra = (pred + diff) & 0xFFFF;
            row[x] = (uint16_t)ra;
        }
    }
    return 1;
}

/* The tables of a DHT segment (s, n bytes) into tables. 0 (with why)
 * when one is not usable for lossless DC coding. */
static int read_dht(huff_table tables[4], const uint8_t *s, size_t n, char *why)
{
    size_t k = 0;
    while (k < n) {
        if (k + 17 > n)
            return decline(why, "short DHT segment");
        unsigned tc = s[k] >> 4, th = s[k] & 15;
        int total = 0;
        for (int c = 0; c < 16; c++)
            total += s[k + 1 + c];
        if (tc != 0 || th > 3 || total > 256 || k + 17 + (size_t)total > n)
            return decline(why, "DHT table not usable for lossless DC coding");
        if (!build_table(&tables[th], s + k + 1, s + k + 17, total))
            return decline(why, "DHT code lengths overflow");
        k += 17 + (size_t)total;
    }
    return 1;
}

/* One scan, as its SOS segment and the frame describe it. */
typedef struct {
    const huff_table *table;
    int predictor;         /* selection value, 1..7 */
    int pt;                /* point transform */
    int initial;           /* the prediction of each interval's first sample */
    int rows_per_interval; /* restart interval in rows (the height without one) */
    int width, height;
} scan;

/* Decodes the entropy-coded data of scan sc, starting at data[start], into
 * out: each restart interval, checking the RSTn markers between them,
 * then the point transform undone. 1 on success, else 0 with why. */
static int decode_scan(const unsigned char *data, size_t len, size_t start, const scan *sc, uint16_t *out,
                       char *why)
{
    const int width = sc->width, height = sc->height, rows_per_interval = sc->rows_per_interval;
    bit_reader r = {data + start, data + len, 0, 0, 0};
    int interval = 0;
    for (int row0 = 0; row0 < height; row0 += rows_per_interval, interval++) {
        if (row0 > 0) {
            /* byte-aligned RSTn, in sequence, where the reader stopped */
            if (r.p + 2 > r.end || r.p[0] != 0xFF || r.p[1] != 0xD0 + (interval - 1) % 8)
                return decline(why, "restart marker missing or out of order");
            r.p += 2;
            r.buf = 0;
            r.nbits = 0;
            r.invented = 0;
        }
        int row1 = row0 + rows_per_interval < height ? row0 + rows_per_interval : height;
        if (!decode_rows(&r, sc->table, sc->predictor, sc->initial, width, row0, row1, out))
            return decline(why, "invalid Huffman code");
        /* Bits taken from invented bytes mean the data ran out. */
        if (r.nbits < r.invented * 8)
            return decline(why, "entropy-coded data ends before the last sample");
        /* Unused bits (padding) are dropped; back up over bytes read ahead. */
        while (r.nbits >= 8 + 8 * r.invented) {
            r.p--;
            if (r.p > data && r.p[0] == 0x00 && r.p[-1] == 0xFF)
                r.p--;
            r.nbits -= 8;
        }
    }
    if (sc->pt > 0) {
        size_t count = (size_t)width * height;
        for (size_t k = 0; k < count; k++)
            out[k] = (uint16_t)(out[k] << sc->pt);
    }
    return 1;
}

int hs_ljpeg_decode(const unsigned char *data, size_t len, int width, int height, uint16_t *out,
                    char *why)
{
    if (data == NULL || out == NULL || width < 1 || height < 1)
        return decline(why, "no data or no image size");
    if (len < 4 || data[0] != 0xFF || data[1] != 0xD8)
        return decline(why, "no SOI marker");
    huff_table tables[4];
    memset(tables, 0, sizeof tables); /* none defined until a DHT says so */
    int precision = 0, restart = 0, have_frame = 0;
    size_t i = 2;
    for (;;) {
        /* the next marker, fill bytes allowed before it */
        while (i < len && data[i] == 0xFF && i + 1 < len && data[i + 1] == 0xFF)
            i++;
        if (i + 4 > len || data[i] != 0xFF)
            return decline(why, "no marker where one is due");
        unsigned marker = data[i + 1];
        if (marker == 0xD8 || marker == 0xD9 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01)
            return decline(why, "marker out of place before the scan");
        size_t seg = read_u16(data + i + 2);
        if (seg < 2 || i + 2 + seg > len)
            return decline(why, "segment longer than the data");
        const uint8_t *s = data + i + 4;
        size_t n = seg - 2;
        i += 2 + seg;
        if (marker == 0xC4) { /* DHT */
            if (!read_dht(tables, s, n, why))
                return 0;
        } else if (marker == 0xC3) { /* SOF3 */
            if (have_frame || n < 9)
                return decline(why, "second or short SOF3");
            precision = s[0];
            if ((int)read_u16(s + 1) != height || (int)read_u16(s + 3) != width)
                return decline(why, "frame size differs from the expected image size");
            if (s[5] != 1 || n != 9)
                return decline(why, "more than one component");
            if (precision < 2 || precision > 16)
                return decline(why, "sample precision outside 2..16");
            have_frame = 1;
        } else if ((marker >= 0xC0 && marker <= 0xCF) && marker != 0xC4 && marker != 0xC8 && marker != 0xCC) {
            return decline(why, "not a Huffman lossless frame (SOF3)");
        } else if (marker == 0xCC || marker == 0xDC) {
            return decline(why, "arithmetic coding or DNL");
        } else if (marker == 0xDD) { /* DRI */
            if (n != 2)
                return decline(why, "bad DRI segment");
            restart = (int)read_u16(s);
        } else if (marker == 0xDA) { /* SOS */
            if (!have_frame || n < 6 || s[0] != 1 || n != 6)
                return decline(why, "scan before frame, or not one component");
            unsigned table = s[2] >> 4, predictor = s[3], pt = s[5] & 15;
            if (table > 3 || !tables[table].defined)
                return decline(why, "scan uses an undefined Huffman table");
            if (predictor < 1 || predictor > 7 || s[4] != 0 || (s[5] >> 4) != 0 || (int)pt >= precision)
                return decline(why, "scan parameters are not a lossless scan");
            if (restart != 0 && restart % width != 0)
                return decline(why, "restart interval is not whole rows");
            scan sc = {&tables[table], (int)predictor, (int)pt, 1 << (precision - (int)pt - 1),
                       restart != 0 ? restart / width : height, width, height};
            return decode_scan(data, len, i, &sc, out, why);
        }
        /* APPn, COM, DQT and the like: skipped */
    }
}
