/* render.c - Hounsfield units to the model's picture (see render.h).
 *
 * Kept apart from image.c because it is the one place that knows about HU
 * and windows; image.c knows only pictures in [0, 1]. Everything after the
 * window is image.c's hs_prepare_input, shared with training. */
#include "hemoscan/render.h"

#include <math.h>
#include <string.h>

/* The window into every stride-th float of out (one channel of HWC). */
static void window_strided(const float *hu, size_t n, float center_hu, float width_hu, float *out,
                           size_t stride)
{
    const float low = center_hu - 0.5f * width_hu, scale = 1.0f / width_hu;
    for (size_t i = 0; i < n; i++) {
        float v = (hu[i] - low) * scale;
        /* written so that NaN fails both tests and becomes 0 */
        out[i * stride] = v > 0.0f ? (v < 1.0f ? v : 1.0f) : 0.0f;
    }
}

void hs_window(const float *hu, size_t n, float center_hu, float width_hu, float *out)
{
    window_strided(hu, n, center_hu, width_hu, out, 1);
}

hs_status hs_render_slice(const float *hu, int width, int height, const hs_input_recipe *recipe,
                          hs_image *picture, hs_error *err)
{
    if (picture != NULL)
        memset(picture, 0, sizeof *picture);
    if (hu == NULL || recipe == NULL || picture == NULL)
        return hs_fail(err, HS_ERR_ARG, "hs_render_slice: no pixels, recipe or output given");
    if (recipe->channels < 1 || recipe->channels > HS_MODEL_MAX_CHANNELS ||
        recipe->channels > HS_IMAGE_MAX_CHANNELS)
        return hs_fail(err, HS_ERR_ARG, "input recipe: %d channels, expected 1..%d", recipe->channels,
                       HS_IMAGE_MAX_CHANNELS);
    int gray = hs_recipe_from_gray(recipe);
    int channels = gray ? 1 : recipe->channels;
    for (int c = 0; c < channels; c++) {
        if (!(recipe->channel[c].width_hu > 0.0f) || !isfinite(recipe->channel[c].center_hu))
            return hs_fail(err, HS_ERR_ARG, "input recipe: channel %d (%.*s) has window %g/%g, expected a width > 0",
                           c, (int)sizeof recipe->channel[c].name, recipe->channel[c].name,
                           (double)recipe->channel[c].center_hu, (double)recipe->channel[c].width_hu);
    }
    hs_status st = hs_image_alloc(picture, width, height, channels, err);
    if (st != HS_OK)
        return st;
    size_t n = (size_t)width * (size_t)height;
    for (int c = 0; c < channels; c++)
        window_strided(hu, n, recipe->channel[c].center_hu, recipe->channel[c].width_hu,
                       picture->px + c, (size_t)channels);
    return HS_OK;
}

hs_status hs_render_input(const float *hu, int width, int height, const hs_input_recipe *recipe,
                          float *out, hs_error *err)
{
    hs_image picture = {0};
    hs_status st = hs_render_slice(hu, width, height, recipe, &picture, err);
    if (st == HS_OK)
        st = hs_prepare_input(&picture, recipe, out, err);
    hs_image_free(&picture);
    return st;
}
