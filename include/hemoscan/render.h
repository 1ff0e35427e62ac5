/* render.h - the render stage: a CT slice in Hounsfield units becomes the
 * picture the model's input recipe expects, and from there the network
 * input through the very same hs_prepare_input that training uses.
 *
 * A window (center C, width W, both HU) maps HU linearly to gray:
 *     v = (HU - (C - W/2)) / W, clamped to [0, 1],
 * so C - W/2 is black and C + W/2 white. This is the simple linear form
 * most viewers and training pipelines use, not DICOM's VOI LUT variant with
 * its half-unit offsets (the two differ by under 1/W, below one gray level
 * of an 8-bit PNG for W >= 80).
 *
 * Which rendering matches the model: a model trained on gray PNG pictures
 * (hs_recipe_from_gray) saw one gray image per picture; a CT slice is
 * rendered once through channel 0's window (the default model's brain
 * window, 40/80) and takes the PNG path from there (head crop, fit,
 * replicate, narrower windows cut from that one picture exactly as from a
 * PNG, clipping and all). A model whose
 * channels are distinct windows gets one rendering per window, the head
 * crop found on the first. The PNG exported by --export is this picture,
 * so a site that labels exported slices trains on what production sees. */
#ifndef HEMOSCAN_RENDER_H
#define HEMOSCAN_RENDER_H

#include <stddef.h>

#include "hemoscan/image.h"
#include "hemoscan/model.h"
#include "hemoscan/status.h"

/* out[i] = window of hu[i]; n values. NaN HU gives 0 (black). width must
 * be > 0. */
void hs_window(const float *hu, size_t n, float center_hu, float width_hu, float *out);

/* The picture of one slice (width x height HU values, row-major) for
 * recipe: 1 channel for a recipe of gray pictures, recipe->channels
 * otherwise. picture
 * gets a new allocation. HS_ERR_ARG for a window width <= 0, sizes out of
 * range or NULL arguments; HS_ERR_NOMEM. */
hs_status hs_render_slice(const float *hu, int width, int height, const hs_input_recipe *recipe,
                          hs_image *picture, hs_error *err);

/* hs_render_slice followed by hs_prepare_input: recipe->height *
 * recipe->width * recipe->channels floats into out. */
hs_status hs_render_input(const float *hu, int width, int height, const hs_input_recipe *recipe,
                          float *out, hs_error *err);

#endif
