/* main.c - the hemoscan command line: parse options, wire stages together.
 *
 * Nothing here computes anything itself; each mode calls the modules that
 * do the work and turns their status into a message and an exit code. The
 * option vocabulary follows DCMTK's tools (-h, --version, -q, -v). Exit
 * codes: 0 success, 1 an operation failed, 2 the command line is wrong. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "hemoscan/cnn.h"
#include "hemoscan/model.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

typedef struct {
    int verbose; /* -1 quiet, 0 normal, 1 verbose */
    int threads;
    uint64_t seed;
    const char *init_model;
    const char *model_info;
} options;

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: hemoscan [OPTION]... MODE\n"
            "Find intracranial hemorrhage on head CT (decision support, not a diagnosis).\n"
            "\n"
            "Modes:\n"
            "  --init-model FILE   write an untrained reference network to FILE\n"
            "  --model-info FILE   describe a model file: layers, input recipe, classes,\n"
            "                      threshold, provenance, parameter count, SHA-256\n"
            "\n"
            "Options:\n"
            "  --model FILE        the model file to use (with --model-info: same as its argument)\n"
            "  --seed N            seed for every random choice (default 1)\n"
            "  --threads N         worker threads (default 1)\n"
            "  -q, --quiet         print errors only\n"
            "  -v, --verbose       print more detail\n"
            "  -h, --help          print this help and exit\n"
            "      --version       print the version and exit\n"
            "\n"
            "Exit status: 0 success, 1 an operation failed, 2 usage error.\n"
            "See hemoscan(1).\n");
}

static int parse_count(const char *opt, const char *text, long lo, long hi, long *out)
{
    char *end = NULL;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "hemoscan: %s: '%s' is not a whole number from %ld to %ld\n", opt,
                text, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_options(int argc, char **argv, options *o)
{
    enum { OPT_VERSION = 256, OPT_INIT_MODEL, OPT_MODEL_INFO, OPT_MODEL, OPT_SEED, OPT_THREADS };
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"init-model", required_argument, NULL, OPT_INIT_MODEL},
        {"model-info", required_argument, NULL, OPT_MODEL_INFO},
        {"model", required_argument, NULL, OPT_MODEL},
        {"seed", required_argument, NULL, OPT_SEED},
        {"threads", required_argument, NULL, OPT_THREADS},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->threads = 1;
    o->seed = 1;
    opterr = 0;
    for (;;) {
        int c = getopt_long(argc, argv, ":hqv", longopts, NULL);
        if (c == -1)
            break;
        long v;
        switch (c) {
        case 'h':
            usage(stdout);
            exit(EXIT_OK);
        case OPT_VERSION:
            printf("hemoscan %s\n", PACKAGE_VERSION);
            exit(EXIT_OK);
        case 'q':
            o->verbose = -1;
            break;
        case 'v':
            o->verbose = 1;
            break;
        case OPT_INIT_MODEL:
            o->init_model = optarg;
            break;
        case OPT_MODEL_INFO:
        case OPT_MODEL:
            o->model_info = optarg;
            break;
        case OPT_SEED: {
            char *end = NULL;
            unsigned long long s = strtoull(optarg, &end, 10);
            if (end == optarg || *end != '\0' || optarg[0] == '-') {
                fprintf(stderr, "hemoscan: --seed: '%s' is not a non-negative whole number\n", optarg);
                return -1;
            }
            o->seed = (uint64_t)s;
            break;
        }
        case OPT_THREADS:
            if (parse_count("--threads", optarg, 1, 256, &v) != 0)
                return -1;
            o->threads = (int)v;
            break;
        case ':':
            fprintf(stderr, "hemoscan: option '%s' needs an argument\n", argv[optind - 1]);
            return -1;
        default:
            fprintf(stderr, "hemoscan: unknown option '%s' (try --help)\n", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "hemoscan: unexpected argument '%s' (try --help)\n", argv[optind]);
        return -1;
    }
    if (o->init_model == NULL && o->model_info == NULL) {
        fprintf(stderr, "hemoscan: no mode given (try --help)\n");
        return -1;
    }
    return 0;
}

/* --init-model: the reference network with seeded He/Glorot weights. */
static int init_model(const options *o)
{
    hs_model model;
    hs_error err;
    memset(&model, 0, sizeof model);
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
static int model_info(const options *o)
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

int main(int argc, char **argv)
{
    options o;
    if (parse_options(argc, argv, &o) != 0)
        return EXIT_USAGE;
    if (o.init_model != NULL) {
        int rc = init_model(&o);
        if (rc != EXIT_OK || o.model_info == NULL)
            return rc;
    }
    return model_info(&o);
}
