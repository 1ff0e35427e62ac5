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
 * database. A file that is truncated, corrupted, of another version or whose
 * layer shapes do not add up is refused with a message naming the file. */
#ifndef HEMOSCAN_MODEL_H
#define HEMOSCAN_MODEL_H

#include <stdint.h>

#include "hemoscan/cnn.h"
#include "hemoscan/status.h"

#define HS_MODEL_FORMAT_VERSION 1
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

/* Fill recipe with the recipe of models trained on PNG pictures: the
 * default's size, crop and normalisation, every channel named "gray" and
 * holding the picture's gray level, which is taken to be a rendering in the
 * brain window (40/80), the window the DICOM path then reproduces. */
void hs_input_recipe_gray(hs_input_recipe *recipe);

/* 1 when every channel of recipe is named "gray": the model was trained on
 * gray pictures (PNG files), each channel holding the same gray rendering,
 * and a CT slice is rendered once through channel 0's window. 0 when the
 * channels are distinct windows (e.g. brain, subdural, bone). */
int hs_recipe_is_gray(const hs_input_recipe *recipe);

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
