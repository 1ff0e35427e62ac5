/* image.h - pictures to network input: PNG reading and writing, gray
 * conversion, the head crop, aspect-preserving resizing and augmentation.
 *
 * Training and inference must turn a picture into the input tensor in
 * exactly the same way, or the network sees at inference something it never
 * saw in training. So there is one recipe (hs_prepare_input) and every path
 * goes through it: PNG files, and DICOM slices, which render.h turns into
 * the same gray picture first.
 *
 * The recipe is built so that nothing but the anatomy reaches the network.
 * Colour and alpha are dropped (the data set mixes RGB and RGBA files, and
 * which one a case came in must not become a label shortcut), burned-in text
 * and rulers are cut away with everything else outside the head, and the
 * head is scaled to fill the input the same way whatever the pixel size of
 * the source, with an area filter that averages rather than skips pixels.
 *
 * An hs_image holds float pixels in [0, 1], row-major with the channels of
 * a pixel next to each other (HWC), the layout of the network's tensors.
 * Functions that produce an image fill a caller-provided hs_image with a new
 * allocation; whatever it held before is not freed (pass an empty or freed
 * image). On failure the output image is left empty (all fields zero). */
#ifndef HEMOSCAN_IMAGE_H
#define HEMOSCAN_IMAGE_H

#include <stddef.h>

#include "hemoscan/model.h"
#include "hemoscan/rng.h"
#include "hemoscan/status.h"

/* Largest width or height accepted anywhere (PNG files included). Far above
 * any CT rendering, low enough that a hostile header cannot make the reader
 * allocate without bound. */
#define HS_IMAGE_MAX_SIDE 16384
/* Most values (width * height * channels of the result) hs_png_read
 * accepts: 2^23, i.e. 32 MiB of float pixels. A gray picture may be 2896 x
 * 2896, a colour one about 2.8 megapixels (e.g. 1920 x 1440), far above the
 * CT renderings and data sets hemoscan reads. The head crop of
 * hs_prepare_input needs up to about 20 bytes a pixel more, so a hostile
 * picture at the limit costs some 200 MB and a fraction of a second.
 * Without a limit on values the per-side limit alone let a tiny file
 * claiming 16384 x 16384 RGB make the reader reserve 3 GiB before it found
 * the data missing; at 2^26 a 75 kB checkerboard PNG found by the fuzzer
 * still took 1.5 GB and 2 s through hs_prepare_input. */
#define HS_PNG_MAX_VALUES (8 * 1024 * 1024)
/* Largest ancillary chunk (text, ICC profile, ...) hs_png_read lets libpng
 * read or inflate, bytes; a larger one makes the file HS_ERR_FORMAT. */
#define HS_PNG_MAX_CHUNK_BYTES (8 * 1024 * 1024)
/* Channels an hs_image may have: gray, gray+x, RGB, or up to the model's
 * input channel count. */
#define HS_IMAGE_MAX_CHANNELS 4
/* Default head-crop threshold on [0, 1] gray: above the near-black air and
 * scanner noise around the head, below the darkest soft tissue of a
 * brain-window rendering, so the scalp outlines the head. */
#define HS_HEAD_THRESHOLD 0.08f

typedef struct {
    int width, height, channels;
    float *px; /* height * width * channels values, row-major, HWC, in [0, 1] */
} hs_image;

/* Free the pixels and reset img to empty. NULL and empty images are fine. */
void hs_image_free(hs_image *img);

/* Allocate a zero-filled image. width and height in 1..HS_IMAGE_MAX_SIDE,
 * channels in 1..HS_IMAGE_MAX_CHANNELS, otherwise HS_ERR_ARG. */
hs_status hs_image_alloc(hs_image *img, int width, int height, int channels, hs_error *err);

/* Read a PNG file with libpng. Every colour type and bit depth is accepted
 * (gray, gray+alpha, RGB, RGBA, palette with or without tRNS; 1 to 16 bits;
 * interlaced or not). The result has 1 channel for gray and gray+alpha
 * sources and 3 for RGB, RGBA and palette sources. Alpha and tRNS
 * transparency are dropped, never composited. Samples are scaled by their
 * maximum (255 for 8-bit, 65535 for 16-bit, 2^d - 1 below 8 bits); no gamma
 * correction is applied. A missing or unreadable file gives HS_ERR_IO; a
 * file that is not a PNG, is truncated or corrupt, is wider or taller than
 * HS_IMAGE_MAX_SIDE, or holds more than HS_PNG_MAX_VALUES values (width *
 * height * result channels) gives HS_ERR_FORMAT. The size limits are
 * checked on the header, before anything is allocated for the pixels, so a
 * hostile header costs nothing; the message names the file and the limit.
 * A decode holds at most about twice the result in memory: the floats,
 * and for an interlaced file every decoded row (at most as many bytes). */
hs_status hs_png_read(const char *path, hs_image *img, hs_error *err);

/* The same from len bytes at buf; name stands for the source in messages
 * ("(buffer)" if NULL or empty). */
hs_status hs_png_read_buffer(const unsigned char *buf, size_t len, const char *name,
                             hs_image *img, hs_error *err);

/* Write an 8-bit gray (1 channel) or RGB (3 channels) PNG. Values are
 * clamped to [0, 1] (NaN becomes 0) and rounded to the nearest of 256
 * levels. Other channel counts give HS_ERR_ARG. The file is written in
 * place (not atomically); on failure it is removed. */
hs_status hs_png_write(const char *path, const hs_image *img, hs_error *err);

/* Luminance of a 1- or 3-channel image into a new 1-channel image, with the
 * ITU-R BT.601 weights 0.299 R + 0.587 G + 0.114 B (computed in double, so a
 * pixel with R = G = B keeps its value exactly). A 1-channel input is
 * copied. Other channel counts give HS_ERR_ARG. gray must not be in. */
hs_status hs_image_to_gray(const hs_image *in, hs_image *gray, hs_error *err);

/* The head crop. The head is found on the first channel (the gray of a
 * picture, the first window of a CT rendering): the largest 8-connected
 * region of pixels brighter than threshold (HS_HEAD_THRESHOLD by default;
 * the first in raster order wins a tie). Its holes are filled: a pixel
 * outside the region belongs to the background only if it is connected to
 * the image border through non-region pixels (4-connected, the dual of the
 * region's 8-connectivity, so a ring closed only diagonally still encloses
 * its inside); every other pixel is kept, so dark ventricles and CSF stay.
 * out receives the region's bounding box, every channel, with every
 * background pixel set to 0, so text, rulers and table lines outside the
 * head disappear. If no pixel is above threshold, out is a copy of gray. A
 * NaN threshold gives HS_ERR_ARG. Works on runs of pixels with
 * union-find, never recursion, so any image size is safe. */
hs_status hs_image_crop_head(const hs_image *gray, float threshold, hs_image *out, hs_error *err);

/* hs_image_crop_head, also telling where the crop came from: box receives
 * x, y, width, height of the head's bounding box in gray's pixels (the
 * whole image when nothing is above threshold). box may be NULL. */
hs_status hs_image_crop_head_box(const hs_image *gray, float threshold, hs_image *out, int box[4],
                                 hs_error *err);

/* Fit in into a new width x height image of the same channel count without
 * distortion: scale so the whole picture fits (the limiting side fills the
 * canvas; the other is rounded to the nearest pixel, at least 1), centre it
 * (offset (canvas - content) / 2, rounded down) and pad with 0. Each axis is
 * resampled separately: when it shrinks, with an area (box) filter that
 * averages every covered source pixel weighted by its covered fraction,
 * which preserves the mean; when it grows, bilinearly between pixel centres
 * (edge pixels extended). Sizes out of range give HS_ERR_ARG. */
hs_status hs_image_fit(const hs_image *in, int width, int height, hs_image *out, hs_error *err);

/* The whole input recipe for a picture: a PNG file, or a CT slice rendered
 * by render.h. With a recipe of gray pictures (hs_recipe_from_gray) or a
 * 1-channel picture: gray (hs_image_to_gray) -> head crop -> fit -> the
 * gray value replicated into each of recipe->channels channels, and in a
 * channel named "gray-window" re-windowed from channel 0's window to its
 * own (the gray taken as a rendering in channel 0's window, mapped back to
 * HU and through the channel's window, clamped). With distinct windows
 * and a picture of recipe->channels channels (one rendering per window):
 * head crop found on channel 0 and applied to all -> fit -> channels kept
 * in order; any other channel count gives HS_ERR_ARG. The head crop uses
 * HS_HEAD_THRESHOLD when recipe->crop is "head" and is skipped for "none";
 * the fit is to recipe->width x recipe->height. recipe->normalise "unit"
 * keeps values in [0, 1]. out receives recipe->height * recipe->width *
 * recipe->channels floats, HWC. An unknown crop or normalise name, or a
 * size or channel count out of range, gives HS_ERR_ARG naming the value.
 * Intermediate images are allocated here (their size depends on the
 * picture), so HS_ERR_NOMEM is possible; out is only written on success. */
hs_status hs_prepare_input(const hs_image *picture, const hs_input_recipe *recipe, float *out,
                           hs_error *err);

/* Where the network input came from, for drawing what the network saw
 * (a saliency map) back onto the picture at its own resolution: the crop
 * box in picture pixels (the whole picture without a crop), and where
 * hs_image_fit put it in the input (content box; the rest is padding). */
typedef struct {
    int picture_width, picture_height;
    int crop_x, crop_y, crop_w, crop_h;
    int input_width, input_height;
    int content_x, content_y, content_w, content_h;
} hs_input_geometry;

/* hs_prepare_input that also fills geo (may be NULL). */
hs_status hs_prepare_input_geometry(const hs_image *picture, const hs_input_recipe *recipe, float *out,
                                    hs_input_geometry *geo, hs_error *err);

/* Continuous pixel coordinates (pixel centres at integers) from input to
 * picture and back, through the crop box and the fit's scale and offset.
 * Exact inverses of each other. */
void hs_input_to_picture(const hs_input_geometry *g, double ix, double iy, double *px, double *py);
void hs_picture_to_input(const hs_input_geometry *g, double px, double py, double *ix, double *iy);

/* On-the-fly augmentation for training. All amounts are symmetric ranges
 * drawn uniformly; zero disables a transform. */
typedef struct {
    float flip_prob;  /* horizontal flip probability (default 0.5) */
    float rotate_deg; /* rotation uniform in [-r, r] degrees (default 10) */
    float shift_frac; /* shift uniform in [-s, s] * size, each axis (default 0.08) */
    float zoom_frac;  /* scale uniform in [1 - z, 1 + z] (default 0.10) */
    float brightness; /* add uniform [-b, b] (default 0.08) */
    float contrast;   /* multiply around 0.5 by uniform [1 - c, 1 + c] (default 0.15) */
} hs_augment;

/* Fill aug with the defaults above. */
void hs_augment_default(hs_augment *aug);

/* Apply one random draw of every transform to the HWC tensor in, writing
 * out (same shape; must not alias in). Exactly seven hs_rng_uniform draws
 * per call whatever the settings, in this order, so streams stay aligned:
 *   1 flip (flip if u < flip_prob)   2 angle   3 shift x   4 shift y
 *   5 zoom   6 brightness   7 contrast.
 * The geometric part is one affine warp about the image centre (flip, then
 * zoom, then rotation, then shift) sampled bilinearly by inverse mapping,
 * with 0 outside the source; then v' = (v - 0.5) * contrast + 0.5 +
 * brightness, and everything is clamped to [0, 1]. A draw that leaves the
 * geometry unchanged copies pixels exactly (a flip alone mirrors exactly);
 * a draw that changes nothing at all (e.g. a zero hs_augment) makes out a
 * bit-exact copy of in, unclamped. Does not allocate. */
void hs_augment_apply(const hs_augment *aug, hs_rng *rng, const float *in, float *out, int width,
                      int height, int channels);

#endif
