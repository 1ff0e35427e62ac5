/* model.h - the self-describing, versioned model file (.hsm).
 *
 * A model file carries everything needed to use a network correctly years
 * later: the layer list with shapes, the input recipe (size, what each
 * channel means and how pixels are normalised), the class names, the
 * decision threshold, where it came from (data checksum, seed, epochs, date,
 * hemoscan version) and the weights of one or more ensemble members. The
 * layout (see model.c for the byte-level description):
 *
 *   "HSMODEL\0" | u32 format version | u32 header bytes | header text
 *   | u32 members | u64 params per member | float32 params ... | SHA-256
 *
 * All integers and floats are little-endian. The header is UTF-8 text, one
 * "key value" per line, so `head -c 2000 model.hsm` is readable. The last 32
 * bytes are the SHA-256 of everything before them; the SHA-256 of the whole
 * file (what `sha256sum` prints) is the model's identity in the audit
 * database. A file that is truncated, corrupted, of a format version this
 * build does not read, or whose layer shapes do not add up is refused with a
 * message naming the file. */
#ifndef HEMOSCAN_MODEL_H
#define HEMOSCAN_MODEL_H

#include <stdint.h>

#include "hemoscan/cnn.h"
#include "hemoscan/status.h"

/* The newest format version this hemoscan reads and writes. Version 2 adds
 * the "gray-window" channel, a window re-cut from a gray picture (see
 * hs_recipe_from_gray). A hemoscan that reads only version 1 would take that
 * channel for a window rendered from Hounsfield units, and would score
 * pictures wrongly without saying so; it refuses version 2 instead. A model
 * is written in the lowest version that holds it (hs_model_format_version),
 * so every model without such a channel stays readable by older builds. */
#define HS_MODEL_FORMAT_VERSION 2
#define HS_MODEL_MAX_CLASSES 64
#define HS_MODEL_MAX_MEMBERS 16
#define HS_MODEL_MAX_CHANNELS 4
#define HS_MODEL_NAME_LEN 64

/* What one input channel holds. For CT the channel is a window on Hounsfield
 * units (center_hu, width_hu); for images that arrive as PNG the window tells
 * what rendering the pixels are assumed to be in. */
typedef struct {
    char name[HS_MODEL_NAME_LEN]; /* e.g. "brain", "subdural", "bone" */
    float center_hu;
    float width_hu;
} hs_channel_recipe;

/* How a picture becomes the network's input tensor. */
typedef struct {
    int width, height, channels;
    hs_channel_recipe channel[HS_MODEL_MAX_CHANNELS];
    char crop[HS_MODEL_NAME_LEN];      /* "head" (bounding box of the head) or "none" */
    char normalise[HS_MODEL_NAME_LEN]; /* "unit": window maps to [0, 1] */
} hs_input_recipe;

/* Where the weights came from. */
typedef struct {
    char data_sha256[65]; /* checksum of the training data, hex ("" if none) */
    uint64_t seed;
    int epochs;
    char date[32];        /* ISO 8601 UTC */
    char version[32];     /* hemoscan version that trained it */
    char note[256];       /* free text, e.g. the training command */
} hs_provenance;

typedef struct {
    int n_members;                       /* ensemble size, >= 1 */
    hs_net member[HS_MODEL_MAX_MEMBERS]; /* same architecture, own weights */
    hs_input_recipe recipe;
    int n_classes;
    char class_name[HS_MODEL_MAX_CLASSES][HS_MODEL_NAME_LEN];
    float threshold;   /* decision threshold on the positive class probability */
    hs_provenance provenance;
    char sha256[65];   /* SHA-256 of the file as last loaded or saved, hex */
} hs_model;

/* Fill recipe with the default CT recipe: 150x150, three windows (brain
 * 40/80, subdural 80/200, bone 600/2800), head crop, unit normalisation. */
void hs_input_recipe_default(hs_input_recipe *recipe);

/* The windows of the input channels of models trained on gray pictures
 * (PNG files), as hemoscan --train --windows takes them: CENTER/WIDTH in
 * HU, comma-separated. The default: brain (40/80, the picture as it is),
 * then a blood window (60/40: 40 to 80 HU, where fresh blood lies above
 * brain) and a low window (20/40: 0 to 40 HU, brain against CSF and
 * oedema), both narrower windows cut from the brain window. */
#define HS_GRAY_WINDOWS_DEFAULT "40/80,60/40,20/40"

/* Fill recipe with the recipe of models trained on gray pictures: the
 * default's size, crop and normalisation, and one channel per window of
 * windows (1 to HS_MODEL_MAX_CHANNELS, see HS_GRAY_WINDOWS_DEFAULT). A
 * picture is taken to be a rendering in the first window (so the DICOM
 * path renders a slice through it): channel 0, and any channel with the
 * same window, is named "gray" and holds the picture as it is; a channel
 * with another window is named "gray-window" and holds the picture
 * re-windowed to it (hs_prepare_input), which can only stretch or clip
 * what the picture holds, so such windows lie within the first one to
 * mean anything. "40/80,40/80,40/80" is the plain gray recipe of models
 * trained before 2026-12 (every channel the same gray). HS_ERR_ARG, with
 * the text, for a malformed list. */
hs_status hs_input_recipe_gray(hs_input_recipe *recipe, const char *windows, hs_error *err);

/* 1 when every channel of recipe is named "gray": the model was trained on
 * gray pictures with every channel the same gray rendering (the predictor
 * then runs one channel). 0 otherwise. */
int hs_recipe_is_gray(const hs_input_recipe *recipe);

/* 1 when the model was trained on gray pictures (channel 0 named "gray",
 * the others "gray" or "gray-window"): a picture is reduced to gray, a CT
 * slice is rendered once through channel 0's window, and each channel is
 * cut from that one picture. 0 when the channels are distinct windows
 * rendered from Hounsfield units (e.g. brain, subdural, bone). */
int hs_recipe_from_gray(const hs_input_recipe *recipe);

/* The format version a model with this recipe is written in, and the only
 * one it is read in: 2 when a channel is named "gray-window", 1 otherwise. */
int hs_model_format_version(const hs_input_recipe *recipe);

/* Write the model to path (atomically: a temporary file renamed into place)
 * and set model->sha256. */
hs_status hs_model_save(hs_model *model, const char *path, hs_error *err);
/* Read and verify a model file; on failure model is left empty and err says
 * what is wrong with which file. */
hs_status hs_model_load(hs_model *model, const char *path, hs_error *err);
/* The same from a memory buffer (name is used in messages). */
hs_status hs_model_load_buffer(hs_model *model, const unsigned char *buf,
                               size_t len, const char *name, hs_error *err);
void hs_model_free(hs_model *model);

#endif
