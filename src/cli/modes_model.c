/* modes_model.c - the modes that make or describe a model file without
 * data: --init-model (a seeded, untrained reference network) and
 * --model-info (everything the file says about itself, and proof that the
 * engine runs it). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "hemoscan/cnn.h"
#include "hemoscan/model.h"
#include "modes.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

/* --init-model: the reference network with seeded He/Glorot weights, for
 * the CT windows of hs_input_recipe_default, or with --windows the gray
 * recipe they name (such a model's --export renders slices as pictures
 * in that window, the way training pictures are made). */
int cli_mode_init_model(const options *o)
{
    hs_model model;
    hs_error err;
    memset(&model, 0, sizeof model);
    if (o->windows_given)
        model.recipe = o->train_recipe;
    else
        hs_input_recipe_default(&model.recipe);
    hs_layer_spec specs[16];
    int n = hs_net_reference_specs(specs, 16, 0.5f);
    hs_shape in = {model.recipe.height, model.recipe.width, model.recipe.channels};
    if (hs_net_create(&model.member[0], in, specs, n, &err) != HS_OK) {
        fprintf(stderr, "hemoscan: %s\n", err.msg);
        return EXIT_FAILED;
    }
    model.n_members = 1;
    hs_rng rng;
    hs_rng_seed(&rng, o->seed);
    hs_net_init(&model.member[0], &rng);
    model.n_classes = 2;
    snprintf(model.class_name[0], HS_MODEL_NAME_LEN, "normal");
    snprintf(model.class_name[1], HS_MODEL_NAME_LEN, "hemorrhage");
    model.threshold = 0.5f;
    model.provenance.seed = o->seed;
    model.provenance.epochs = 0;
    snprintf(model.provenance.version, sizeof model.provenance.version, "%s", PACKAGE_VERSION);
    snprintf(model.provenance.note, sizeof model.provenance.note,
             "untrained reference network (hemoscan --init-model --seed %" PRIu64 ")", o->seed);
    /* No date: an untrained network is a pure function of the seed, and
     * its file should be too. */
    int rc = EXIT_OK;
    if (hs_model_save(&model, o->init_model, &err) != HS_OK) {
        fprintf(stderr, "hemoscan: %s\n", err.msg);
        rc = EXIT_FAILED;
    } else if (o->verbose >= 0) {
        printf("wrote %s (%zu parameters, sha256 %s)\n", o->init_model,
               model.member[0].n_params, model.sha256);
    }
    hs_model_free(&model);
    return rc;
}

/* --model-info: everything the file says about itself, plus a test forward
 * pass on a blank image so the user sees the engine runs the network. */
int cli_mode_model_info(const options *o)
{
    hs_model model;
    hs_error err;
    if (hs_model_load(&model, o->model_info, &err) != HS_OK) {
        fprintf(stderr, "hemoscan: %s\n", err.msg);
        return EXIT_FAILED;
    }
    const hs_input_recipe *r = &model.recipe;
    const hs_provenance *p = &model.provenance;
    printf("model:      %s\n", o->model_info);
    printf("sha256:     %s\n", model.sha256);
    printf("format:     version %d\n", hs_model_format_version(r));
    printf("input:      %dx%d, %d channels, crop %s, normalise %s\n", r->width, r->height,
           r->channels, r->crop, r->normalise);
    for (int c = 0; c < r->channels; c++)
        printf("  channel %d: %s window center %g HU, width %g HU\n", c, r->channel[c].name,
               (double)r->channel[c].center_hu, (double)r->channel[c].width_hu);
    printf("classes:   ");
    for (int c = 0; c < model.n_classes; c++)
        printf(" %s", model.class_name[c]);
    printf("\nthreshold:  %g\n", (double)model.threshold);
    printf("members:    %d\n", model.n_members);
    printf("trained:    %d epochs, seed %" PRIu64 ", data sha256 %s, date %s, hemoscan %s\n",
           p->epochs, p->seed, p->data_sha256[0] ? p->data_sha256 : "-",
           p->date[0] ? p->date : "-", p->version[0] ? p->version : "-");
    if (p->note[0])
        printf("note:       %s\n", p->note);
    printf("forward:    %.3f GFLOP per image\n", hs_net_forward_flops(&model.member[0]) / 1e9);
    hs_net_describe(&model.member[0], stdout);

    int rc = EXIT_OK;
    hs_ws *ws = NULL;
    const hs_net *net = &model.member[0];
    size_t size = (size_t)net->input.h * net->input.w * net->input.c;
    float *blank = calloc(size, sizeof *blank);
    if (blank == NULL || hs_ws_create(&ws, net, 1, 0, o->threads, &err) != HS_OK) {
        fprintf(stderr, "hemoscan: %s\n", blank == NULL ? "out of memory" : err.msg);
        rc = EXIT_FAILED;
    } else {
        const float *prob = hs_forward(net, ws, blank, 1, 0, NULL);
        printf("blank image: %s probability %.6f\n",
               model.n_classes > 1 ? model.class_name[model.n_classes - 1] : "positive",
               (double)prob[hs_net_outputs(net) - 1]);
    }
    hs_ws_free(ws);
    free(blank);
    hs_model_free(&model);
    return rc;
}

