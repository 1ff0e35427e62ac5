/* plot.c - the ROC and training-history pictures as SVG (see plot.h).
 *
 * A picture is composed in memory, then written to a temporary file next to
 * the target and renamed over it (hs_file_write_atomic): a reader (a
 * browser refreshing a report) sees the old picture or the new one, never
 * half of one, and composing first means a write error cannot leave a
 * truncated document behind. The layout is fixed in viewBox units
 * (640x480) and text widths are estimated from character counts (0.6 em per
 * character, generous for sans-serif fonts), which is enough to keep labels
 * inside their boxes without a font library: labels that would not fit are
 * shortened with an ellipsis. Every string from the caller goes through
 * put_text, which escapes XML and replaces invalid UTF-8 and control
 * characters, so the file always parses. Numbers are formatted under the C
 * locale (hs_c_locale, this thread only), so a decimal-comma locale cannot
 * produce "0,5" in a coordinate. The document grows in an hs_strbuf
 * (strbuf.h), checked once when it is complete. */
#include "hemoscan/plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hemoscan/fileio.h"
#include "hemoscan/strbuf.h"

#define W 640
#define H 480
/* Average advance of a sans-serif character in em; on the wide side so that
 * an estimate never underestimates a real label by much. */
#define CHAR_EM 0.6

/* Okabe-Ito colours (distinguishable with the common colour-vision
 * deficiencies) without their yellow, which vanishes on white, plus two
 * dark ones to reach eight. */
static const char *const palette[HS_PLOT_MAX_CURVES] = {
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#882255", "#555555",
};

/* ---- composing text ------------------------------------------------------------ */

/* Decodes one UTF-8 character at s (len bytes left). Returns its length in
 * bytes, and in *cp the code point, or U+FFFD for an invalid or overlong
 * sequence, a surrogate, or a character XML 1.0 does not allow. */
static size_t utf8_next(const unsigned char *s, size_t len, unsigned *cp)
{
    unsigned c = s[0];
    size_t need;
    unsigned v, min;
    if (c < 0x80) {
        *cp = (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f ? 0xfffd : c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
        v = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        v = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        v = c & 0x07;
        min = 0x10000;
    } else {
        *cp = 0xfffd;
        return 1;
    }
    for (size_t i = 1; i <= need; i++) {
        if (i >= len || (s[i] & 0xc0) != 0x80) {
            *cp = 0xfffd;
            return i; /* resynchronise at the first byte that is not a continuation */
        }
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff) || v == 0xfffe || v == 0xffff ||
        (v >= 0x80 && v <= 0x9f))
        v = 0xfffd;
    *cp = v;
    return need + 1;
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0, len = strlen(s), i = 0;
    unsigned cp;
    while (i < len) {
        i += utf8_next((const unsigned char *)s + i, len - i, &cp);
        n++;
    }
    return n;
}

static void put_codepoint(hs_strbuf *b, unsigned cp)
{
    char out[4];
    size_t n;
    switch (cp) {
    case '&':
        hs_strbuf_append(b, "&amp;", 5);
        return;
    case '<':
        hs_strbuf_append(b, "&lt;", 4);
        return;
    case '>':
        hs_strbuf_append(b, "&gt;", 4);
        return;
    case '"':
        hs_strbuf_append(b, "&quot;", 6);
        return;
    case '\'':
        hs_strbuf_append(b, "&#39;", 5);
        return;
    case '\t':
    case '\n':
    case '\r':
        /* Line breaks mean nothing inside one SVG text line. */
        hs_strbuf_append(b, " ", 1);
        return;
    default:
        break;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        out[0] = (char)(0xf0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    hs_strbuf_append(b, out, n);
}

/* Caller text, escaped, at most max_chars characters (the last one an
 * ellipsis when it had to be shortened). */
static void put_text(hs_strbuf *b, const char *s, size_t max_chars)
{
    size_t len = strlen(s), i = 0, n = 0;
    size_t keep = utf8_chars(s) > max_chars ? (max_chars > 0 ? max_chars - 1 : 0) : max_chars;
    unsigned cp;
    while (i < len && n < keep) {
        i += utf8_next((const unsigned char *)s + i, len - i, &cp);
        put_codepoint(b, cp);
        n++;
    }
    if (i < len && max_chars > 0)
        put_codepoint(b, 0x2026);
}

/* How many characters of a font_px font fit into width_px. */
static size_t fit_chars(double width_px, double font_px)
{
    double n = floor(width_px / (CHAR_EM * font_px));
    return n < 1.0 ? 1 : (size_t)n;
}

/* The opening <text> tag; extra holds more attributes (fill, a halo). */
static void text_open(hs_strbuf *b, double x, double y, double font_px, const char *anchor, const char *extra)
{
    hs_strbuf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.0f\" text-anchor=\"%s\"%s%s>", x, y, font_px, anchor,
              extra[0] != '\0' ? " " : "", extra);
}

/* One line of text, escaped and shortened to max_chars. Labels the program
 * builds itself (numbers, fixed words) go through here too, so that no text
 * reaches the file unescaped whatever its origin. */
static void text_line(hs_strbuf *b, double x, double y, double font_px, const char *anchor, const char *extra,
                      const char *s, size_t max_chars)
{
    text_open(b, x, y, font_px, anchor, extra);
    put_text(b, s, max_chars);
    hs_strbuf_append(b, "</text>\n", 8);
}

/* A white outline behind the glyphs keeps a label readable where it
 * crosses curves or grid lines. */
static const char halo[] = "stroke=\"#ffffff\" stroke-width=\"3\" stroke-linejoin=\"round\" paint-order=\"stroke\"";

/* ---- axes ---------------------------------------------------------------------- */

typedef struct {
    double lo, hi, step;
    int decimals;
    double tick_from; /* no tick below this (epoch 0 does not exist) */
} axis;

/* A 1-2-5 step giving about target intervals over span. */
static double nice_step(double span, int target)
{
    double raw = span / target;
    double mag = pow(10.0, floor(log10(raw)));
    double f = raw / mag;
    if (f <= 1.5)
        return mag;
    if (f <= 3.0)
        return 2.0 * mag;
    if (f <= 7.0)
        return 5.0 * mag;
    return 10.0 * mag;
}

static int step_decimals(double step)
{
    int d = (int)ceil(-log10(step) - 1e-9);
    return d < 0 ? 0 : d;
}

/* Axis over data [mn, mx] with 5% padding, snapped outwards to ticks. A
 * quantity that is never negative (a loss) does not get a negative axis. */
static axis data_axis(double mn, double mx, int nonnegative)
{
    axis a;
    if (!(mn <= mx)) {
        mn = 0.0;
        mx = 1.0;
    }
    double span = mx - mn;
    if (span <= 0.0)
        span = fmax(fabs(mx) * 0.2, 0.1);
    double lo = mn - 0.05 * span, hi = mx + 0.05 * span;
    if (nonnegative && mn >= 0.0 && lo < 0.0)
        lo = 0.0;
    if (hi <= lo)
        hi = lo + span;
    a.step = nice_step(hi - lo, 5);
    a.lo = floor(lo / a.step + 1e-9) * a.step;
    a.hi = ceil(hi / a.step - 1e-9) * a.step;
    a.decimals = step_decimals(a.step);
    a.tick_from = -INFINITY;
    return a;
}

static axis fixed_axis(double lo, double hi, double step)
{
    axis a = {lo, hi, step, step_decimals(step), -INFINITY};
    return a;
}

/* Plot rectangle in viewBox units. */
typedef struct {
    double l, t, r, b;
} box;

static double map_x(const box *p, const axis *ax, double v)
{
    return p->l + (v - ax->lo) / (ax->hi - ax->lo) * (p->r - p->l);
}

static double map_y(const box *p, const axis *ay, double v)
{
    return p->b - (v - ay->lo) / (ay->hi - ay->lo) * (p->b - p->t);
}

/* Grid lines, ticks, tick labels, frame and axis titles of one panel. */
/* Ticks sit on multiples of the step, which need not include the axis'
 * ends (epochs 1..30 get ticks 5, 10, ... 30). */
static double first_tick(const axis *a)
{
    double t = ceil(a->lo / a->step - 1e-9) * a->step;
    while (t < a->tick_from)
        t += a->step;
    return t;
}

static int tick_count(const axis *a)
{
    return (int)floor((a->hi - first_tick(a)) / a->step + 1e-9) + 1;
}

static void draw_axes(hs_strbuf *b, const box *p, const axis *ax, const axis *ay, const char *xlabel,
                      const char *ylabel)
{
    char num[64];
    int nx = tick_count(ax), ny = tick_count(ay);
    double x0 = first_tick(ax), y0 = first_tick(ay);
    hs_strbuf_printf(b, "<g stroke=\"#e4e4e4\" stroke-width=\"1\">\n");
    for (int i = 0; i < nx; i++) {
        double x = map_x(p, ax, x0 + i * ax->step);
        hs_strbuf_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", x, p->t, x, p->b);
    }
    for (int i = 0; i < ny; i++) {
        double y = map_y(p, ay, y0 + i * ay->step);
        hs_strbuf_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", p->l, y, p->r, y);
    }
    hs_strbuf_printf(b, "</g>\n<g stroke=\"#333333\" stroke-width=\"1\">\n");
    for (int i = 0; i < nx; i++) {
        double x = map_x(p, ax, x0 + i * ax->step);
        hs_strbuf_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", x, p->b, x, p->b + 5);
    }
    for (int i = 0; i < ny; i++) {
        double y = map_y(p, ay, y0 + i * ay->step);
        hs_strbuf_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", p->l - 5, y, p->l, y);
    }
    hs_strbuf_printf(b, "</g>\n<g fill=\"#333333\">\n");
    for (int i = 0; i < nx; i++) {
        double v = x0 + i * ax->step;
        snprintf(num, sizeof num, "%.*f", ax->decimals, fabs(v) < 1e-12 ? 0.0 : v);
        text_line(b, map_x(p, ax, v), p->b + 19, 12, "middle", "", num, 16);
    }
    for (int i = 0; i < ny; i++) {
        double v = y0 + i * ay->step;
        snprintf(num, sizeof num, "%.*f", ay->decimals, fabs(v) < 1e-12 ? 0.0 : v);
        text_line(b, p->l - 8, map_y(p, ay, v) + 4, 12, "end", "", num, 16);
    }
    hs_strbuf_printf(b, "</g>\n");
    hs_strbuf_printf(b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" stroke=\"#333333\" "
                 "stroke-width=\"1\"/>\n",
              p->l, p->t, p->r - p->l, p->b - p->t);
    double xc = 0.5 * (p->l + p->r), yc = 0.5 * (p->t + p->b);
    text_line(b, xc, p->b + 42, 13, "middle", "fill=\"#111111\"", xlabel, fit_chars(p->r - p->l + 60, 13));
    char rot[96];
    double yx = p->l - 46;
    snprintf(rot, sizeof rot, "fill=\"#111111\" transform=\"rotate(-90 %.2f %.2f)\"", yx, yc);
    text_line(b, yx, yc, 13, "middle", rot, ylabel, fit_chars(p->b - p->t + 40, 13));
}

/* Opening of the document: white background and a centred title. */
static void svg_begin(hs_strbuf *b, const char *title)
{
    hs_strbuf_printf(b, "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
                 "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
                 "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n",
              W, H, W, H);
    if (title != NULL && title[0] != '\0') {
        hs_strbuf_printf(b, "<title>");
        put_text(b, title, 1000);
        hs_strbuf_printf(b, "</title>\n");
    }
    hs_strbuf_printf(b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", W, H);
    if (title != NULL && title[0] != '\0')
        text_line(b, W / 2.0, 30, 17, "middle", "font-weight=\"bold\" fill=\"#111111\"", title,
                  fit_chars(W - 40, 17));
}

/* A polyline through (x[i], y[i]) that breaks at NaN, as one path. */
static void draw_series(hs_strbuf *b, const box *p, const axis *ax, const axis *ay, const double *x, const double *y,
                        int n, double clamp_lo, double clamp_hi, const char *style)
{
    int pen_down = 0, any = 0;
    for (int i = 0; i < n; i++) {
        if (isnan(x[i]) || isnan(y[i])) {
            pen_down = 0;
            continue;
        }
        const char *cmd = " M"; /* a new piece after a gap */
        if (!any) {
            hs_strbuf_printf(b, "<path fill=\"none\" %s d=\"", style);
            cmd = "M";
            any = 1;
        } else if (pen_down) {
            cmd = " L";
        }
        double vx = fmin(fmax(x[i], clamp_lo), clamp_hi), vy = fmin(fmax(y[i], clamp_lo), clamp_hi);
        hs_strbuf_printf(b, "%s%.2f %.2f", cmd, map_x(p, ax, vx), map_y(p, ay, vy));
        pen_down = 1;
    }
    if (any)
        hs_strbuf_printf(b, "\"/>\n");
}

/* ---- writing the file ---------------------------------------------------------- */

/* Composes with compose(b, ctx) under the C locale and writes the result
 * atomically (see fileio.h), readable by all: a picture is meant to be
 * looked at by others. */
static hs_status render(const char *path, void (*compose)(hs_strbuf *, const void *), const void *ctx, hs_error *err)
{
    hs_c_locale loc;
    if (!hs_c_locale_enter(&loc))
        return hs_fail(err, HS_ERR_NOMEM, "%s: cannot create the C locale for writing numbers", path);
    hs_strbuf b;
    hs_strbuf_init(&b, HS_STRBUF_NO_LIMIT);
    compose(&b, ctx);
    hs_c_locale_leave(&loc);
    hs_status st;
    if (b.status != HS_OK)
        st = hs_fail(err, HS_ERR_NOMEM, "%s: out of memory composing the picture", path);
    else
        st = hs_file_write_atomic(path, b.p, b.len, 0644, err);
    hs_strbuf_free(&b);
    return st;
}

/* ---- ROC --------------------------------------------------------------------- */

typedef struct {
    const char *title;
    const hs_plot_curve *curves;
    int n_curves;
    double op_fpr, op_tpr;
} roc_ctx;

/* Area under the points by trapezoids, skipping NaN points. */
static double trapezoid_auc(const hs_plot_curve *c)
{
    double area = 0.0;
    int prev = -1;
    for (int i = 0; i < c->count; i++) {
        if (isnan(c->fpr[i]) || isnan(c->tpr[i]))
            continue;
        if (prev >= 0)
            area += (c->fpr[i] - c->fpr[prev]) * 0.5 * (c->tpr[i] + c->tpr[prev]);
        prev = i;
    }
    return prev >= 0 ? area : NAN;
}

static void legend_swatch_line(hs_strbuf *b, double x, double y, const char *colour, const char *dash)
{
    hs_strbuf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2.5\"%s/>\n", x,
              y, x + 22, y, colour, dash);
}

static void compose_roc(hs_strbuf *b, const void *ctx_v)
{
    const roc_ctx *ctx = ctx_v;
    /* A square plot (so the chance line is at 45 degrees) on the left, the
     * legend beside it: it never hides a curve, whatever their shape. */
    const box p = {70, 52, 420, 402};
    const axis a01 = fixed_axis(0.0, 1.0, 0.2);
    const double legend_l = 438, legend_r = 632;
    char s[160];

    svg_begin(b, ctx->title);
    draw_axes(b, &p, &a01, &a01, "False positive rate (1 \xe2\x88\x92 specificity)",
              "True positive rate (sensitivity)");
    hs_strbuf_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#9a9a9a\" stroke-width=\"1.2\" "
                 "stroke-dasharray=\"6 4\"/>\n",
              p.l, p.b, p.r, p.t);
    for (int i = 0; i < ctx->n_curves; i++) {
        char style[96];
        snprintf(style, sizeof style,
                 "stroke=\"%s\" stroke-width=\"2.2\" stroke-linejoin=\"round\" stroke-linecap=\"round\"",
                 palette[i]);
        draw_series(b, &p, &a01, &a01, ctx->curves[i].fpr, ctx->curves[i].tpr, ctx->curves[i].count, 0.0, 1.0,
                    style);
    }

    int have_op = !isnan(ctx->op_fpr) && !isnan(ctx->op_tpr);
    if (have_op) {
        double fx = fmin(fmax(ctx->op_fpr, 0.0), 1.0), ty = fmin(fmax(ctx->op_tpr, 0.0), 1.0);
        double px = map_x(&p, &a01, fx), py = map_y(&p, &a01, ty);
        hs_strbuf_printf(b, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"5\" fill=\"#111111\" stroke=\"#ffffff\" "
                     "stroke-width=\"1.5\"/>\n",
                  px, py);
        /* Below and to the right of the dot is under the curve, where a ROC
         * curve through the dot does not go; move left or up near the edges. */
        snprintf(s, sizeof s, "sens %.3f, spec %.3f", ty, 1.0 - fx);
        double width = (double)utf8_chars(s) * CHAR_EM * 12;
        const char *anchor = "start";
        double tx = px + 9, tyl = py + 19;
        if (tx + width > p.r - 4) {
            anchor = "end";
            tx = px - 9;
            if (tx - width < p.l + 4) {
                anchor = "middle";
                tx = fmin(fmax(px, p.l + 4 + width / 2), p.r - 4 - width / 2);
            }
        }
        if (tyl > p.b - 6)
            tyl = py - 11;
        char extra[160];
        snprintf(extra, sizeof extra, "fill=\"#111111\" %s", halo);
        text_line(b, tx, tyl, 12, anchor, extra, s, 80);
    }

    /* Legend: per curve its label, and under it the AUC with its CI. */
    int any_ci = 0;
    double y = p.t + 14;
    size_t label_chars = fit_chars(legend_r - legend_l - 30, 12);
    size_t auc_chars = fit_chars(legend_r - legend_l - 30, 11);
    for (int i = 0; i < ctx->n_curves; i++) {
        const hs_plot_curve *c = &ctx->curves[i];
        char fallback[32];
        const char *label = c->label;
        if (label == NULL || label[0] == '\0') {
            snprintf(fallback, sizeof fallback, "curve %d", i + 1);
            label = fallback;
        }
        double auc = isnan(c->auc) ? trapezoid_auc(c) : c->auc;
        legend_swatch_line(b, legend_l, y - 4, palette[i], "");
        text_line(b, legend_l + 30, y, 12, "start", "fill=\"#111111\"", label, label_chars);
        if (isnan(auc))
            snprintf(s, sizeof s, "AUC n/a");
        else if (!isnan(c->auc_lo) && !isnan(c->auc_hi)) {
            snprintf(s, sizeof s, "AUC %.3f (%.3f\xe2\x80\x93%.3f)", auc, c->auc_lo, c->auc_hi);
            any_ci = 1;
        } else
            snprintf(s, sizeof s, "AUC %.3f", auc);
        text_line(b, legend_l + 30, y + 15, 11, "start", "fill=\"#444444\"", s, auc_chars);
        y += 36;
    }
    legend_swatch_line(b, legend_l, y - 4, "#9a9a9a", " stroke-dasharray=\"6 4\"");
    text_line(b, legend_l + 30, y, 12, "start", "fill=\"#111111\"", "chance (AUC 0.500)", label_chars);
    y += 22;
    if (have_op) {
        hs_strbuf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"5\" fill=\"#111111\"/>\n", legend_l + 11, y - 4);
        text_line(b, legend_l + 30, y, 12, "start", "fill=\"#111111\"", "operating point", label_chars);
        y += 22;
    }
    if (any_ci)
        text_line(b, legend_l, y + 4, 11, "start", "fill=\"#666666\"", "(in brackets: 95% CI)",
                  fit_chars(legend_r - legend_l, 11));
    hs_strbuf_printf(b, "</svg>\n");
}

hs_status hs_plot_roc_svg(const char *path, const char *title, const hs_plot_curve *curves, int n_curves,
                          double op_fpr, double op_tpr, hs_error *err)
{
    if (path == NULL || path[0] == '\0')
        return hs_fail(err, HS_ERR_ARG, "roc plot: no file name");
    if (n_curves < 0 || n_curves > HS_PLOT_MAX_CURVES)
        return hs_fail(err, HS_ERR_ARG, "%s: %d curves, expected 0 to %d", path, n_curves, HS_PLOT_MAX_CURVES);
    if (n_curves > 0 && curves == NULL)
        return hs_fail(err, HS_ERR_ARG, "%s: curves missing", path);
    for (int i = 0; i < n_curves; i++) {
        if (curves[i].count < 1 || curves[i].fpr == NULL || curves[i].tpr == NULL)
            return hs_fail(err, HS_ERR_ARG, "%s: curve %d has no points", path, i + 1);
    }
    roc_ctx ctx = {title, curves, n_curves, op_fpr, op_tpr};
    return render(path, compose_roc, &ctx, err);
}

/* ---- training history ---------------------------------------------------------- */

typedef struct {
    const char *title;
    const double *series[4]; /* loss, val_loss, acc, val_acc */
    int epochs, best_epoch;
} history_ctx;

static const char *const train_colour = "#0072B2";
static const char *const val_colour = "#D55E00";

/* Smallest and largest non-NaN values of up to two series. */
static void range_of(const double *a, const double *b, int n, double *mn, double *mx)
{
    *mn = INFINITY;
    *mx = -INFINITY;
    const double *s[2] = {a, b};
    for (int k = 0; k < 2; k++) {
        for (int i = 0; s[k] != NULL && i < n; i++) {
            if (isfinite(s[k][i])) {
                *mn = fmin(*mn, s[k][i]);
                *mx = fmax(*mx, s[k][i]);
            }
        }
    }
}

static void draw_panel(hs_strbuf *b, const history_ctx *ctx, const box *p, const axis *ax, const axis *ay,
                       const char *heading, const char *ylabel, const double *train, const double *val,
                       double *epoch_x)
{
    text_line(b, 0.5 * (p->l + p->r), p->t - 10, 14, "middle", "font-weight=\"bold\" fill=\"#111111\"", heading,
              fit_chars(p->r - p->l, 14));
    draw_axes(b, p, ax, ay, "epoch", ylabel);
    int n = ctx->epochs;
    if (ctx->best_epoch >= 1) {
        double x = map_x(p, ax, ctx->best_epoch);
        hs_strbuf_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#555555\" stroke-width=\"1.2\" "
                     "stroke-dasharray=\"5 4\"/>\n",
                  x, p->t, x, p->b);
        char s[48];
        snprintf(s, sizeof s, "best %d", ctx->best_epoch);
        double width = (double)utf8_chars(s) * CHAR_EM * 11;
        int right = x + 5 + width <= p->r - 3;
        char extra[160];
        snprintf(extra, sizeof extra, "fill=\"#333333\" %s", halo);
        text_line(b, right ? x + 5 : x - 5, p->t + 14, 11, right ? "start" : "end", extra, s, 24);
    }
    /* Markers only while there is room for them; many epochs make a line. */
    int markers = n <= 40;
    const double *s[2] = {train, val};
    const char *colour[2] = {train_colour, val_colour};
    for (int k = 0; k < 2; k++) {
        if (s[k] == NULL)
            continue;
        char style[96];
        snprintf(style, sizeof style, "stroke=\"%s\" stroke-width=\"2\" stroke-linejoin=\"round\"", colour[k]);
        draw_series(b, p, ax, ay, epoch_x, s[k], n, -INFINITY, INFINITY, style);
        if (!markers)
            continue;
        hs_strbuf_printf(b, "<g fill=\"%s\">\n", colour[k]);
        for (int i = 0; i < n; i++) {
            if (isfinite(s[k][i]))
                hs_strbuf_printf(b, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"2.6\"/>\n", map_x(p, ax, i + 1),
                          map_y(p, ay, s[k][i]));
        }
        hs_strbuf_printf(b, "</g>\n");
    }
}

typedef struct {
    const char *text, *colour, *dash;
} legend_item;

static void compose_history(hs_strbuf *b, const void *ctx_v)
{
    const history_ctx *ctx = ctx_v;
    const box left = {72, 66, 298, 386}, right = {392, 66, 618, 386};
    int n = ctx->epochs;
    double *epoch_x = malloc((size_t)n * sizeof *epoch_x);
    if (epoch_x == NULL) {
        hs_strbuf_fail_nomem(b);
        return;
    }
    for (int i = 0; i < n; i++)
        epoch_x[i] = i + 1;

    /* Epochs 1..n with integer ticks and a little room at both ends, so
     * that the first and last markers do not sit on the frame; a single
     * epoch gets room on both sides. */
    axis ax;
    double pad = n > 1 ? 0.03 * (n - 1) : 0.5;
    ax.lo = 1.0 - pad;
    ax.hi = n + pad;
    ax.step = fmax(1.0, round(nice_step(n > 1 ? n - 1.0 : 1.0, 6)));
    ax.decimals = 0;
    ax.tick_from = 1.0;
    double mn, mx;
    range_of(ctx->series[0], ctx->series[1], n, &mn, &mx);
    axis ay_loss = data_axis(mn, mx, 1);
    axis ay_acc = fixed_axis(0.0, 1.0, 0.2);

    svg_begin(b, ctx->title);
    draw_panel(b, ctx, &left, &ax, &ay_loss, "Loss", "loss", ctx->series[0], ctx->series[1], epoch_x);
    draw_panel(b, ctx, &right, &ax, &ay_acc, "Accuracy", "accuracy", ctx->series[2], ctx->series[3],
               epoch_x);
    free(epoch_x);

    /* One legend for both panels, centred under them. */
    int have_train = ctx->series[0] != NULL || ctx->series[2] != NULL;
    int have_val = ctx->series[1] != NULL || ctx->series[3] != NULL;
    legend_item items[3];
    int k = 0;
    if (have_train)
        items[k++] = (legend_item){"training", train_colour, ""};
    if (have_val)
        items[k++] = (legend_item){"validation", val_colour, ""};
    if (ctx->best_epoch >= 1)
        items[k++] = (legend_item){"best epoch", "#555555", " stroke-dasharray=\"5 4\""};
    double total = 0.0;
    for (int i = 0; i < k; i++)
        total += 30 + (double)strlen(items[i].text) * CHAR_EM * 12 + (i + 1 < k ? 24 : 0);
    double x = 0.5 * (W - total), y = 462;
    for (int i = 0; i < k; i++) {
        legend_swatch_line(b, x, y - 4, items[i].colour, items[i].dash);
        text_line(b, x + 30, y, 12, "start", "fill=\"#111111\"", items[i].text, 24);
        x += 30 + (double)strlen(items[i].text) * CHAR_EM * 12 + 24;
    }
    hs_strbuf_printf(b, "</svg>\n");
}

hs_status hs_plot_history_svg(const char *path, const char *title, const double *loss, const double *val_loss,
                              const double *acc, const double *val_acc, int epochs, int best_epoch,
                              hs_error *err)
{
    if (path == NULL || path[0] == '\0')
        return hs_fail(err, HS_ERR_ARG, "history plot: no file name");
    if (epochs < 1)
        return hs_fail(err, HS_ERR_ARG, "%s: %d epochs, expected at least 1", path, epochs);
    if (best_epoch < 0 || best_epoch > epochs)
        return hs_fail(err, HS_ERR_ARG, "%s: best epoch %d, expected 1 to %d (or 0 for none)", path, best_epoch,
                       epochs);
    history_ctx ctx = {title, {loss, val_loss, acc, val_acc}, epochs, best_epoch};
    return render(path, compose_history, &ctx, err);
}
