// hs-gen-ct.cc - writes synthetic head CT series as real DICOM files.
//
// hemoscan reads head CT studies from scanners; its tests and benchmarks
// need studies that look like a scanner's output without shipping patient
// data. This program draws a head phantom in Hounsfield units (scalp, a
// skull shell, gray and white matter, sulci, ventricles, optional bleeds),
// samples it on the planes a CT would acquire (axial, tilted, reformatted or
// a localizer) and writes every slice with DCMTK in the transfer syntax and
// pixel storage asked for, with the header attributes a real CT carries.
//
// Design choices, and why:
// - The phantom is one function of a point in patient coordinates (mm, LPS,
//   head centre at the origin). Every plane samples that same function, so
//   a tilted series, a coronal reformat and a localizer agree with each
//   other and with the bleed coordinates the user gave.
// - Everything derives from the seed: noise, file names under --shuffle,
//   the study identity and the UIDs (under DCMTK's site UID roots). Same
//   options and seed give byte-identical files, whatever --jobs is.
// - Slices are rendered and encoded on several threads (DCMTK's codec list
//   allows concurrent encoding), so a 240-slice benchmark series takes
//   seconds.
// - DCMTK's encoders rewrite some attributes (ImageType, rescale, padding).
//   What they do is kept where a real lossy file would show it too; the
//   ImageType is put back so lossless and lossy files read as originals.
//
// Build: see Makefile.am (testdata/gen/hs-gen-ct). Documentation:
// testdata/gen/README.md and --help.

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmdata/dcrleerg.h"
#include "dcmtk/dcmdata/dcuid.h"
#include "dcmtk/dcmjpeg/djencode.h"
#include "dcmtk/dcmjpeg/djrplol.h"
#include "dcmtk/dcmjpeg/djrploss.h"
#include "dcmtk/dcmjpls/djencode.h"
#include "dcmtk/dcmjpls/djrparam.h"
#include "dcmtk/oflog/oflog.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include "hemoscan/rng.h"
}

namespace {

const char *const kProgram = "hs-gen-ct";
const char *const kVersion = "1.0";
const double kPi = 3.14159265358979323846;

// Exit codes: 0 success, 1 a file could not be made, 2 bad usage.
const int kExitFailure = 1;
const int kExitUsage = 2;

// ---- options ------------------------------------------------------------------

enum class Ts {
    Implicit, Explicit, Big, Deflate, Rle, JpegBaseline, JpegExtended,
    JpegLossless, JpegLs, JpegLsNear
};

enum class BleedType { Iph, Sdh, Sah };

struct Bleed {
    BleedType type;
    double x_mm, y_mm, z_mm, size_mm;
};

enum class Plane { Axial, Coronal, Sagittal };

struct Options {
    std::string out_dir;
    int size = 512;
    double fov_mm = 230.0;
    int slices = 32;
    double thickness_mm = 5.0;
    double spacing_mm = -1.0;        // < 0: same as the thickness
    double tilt_deg = 0.0;
    bool shuffle = false;
    bool reverse = false;
    std::vector<int> gaps;           // 1-based slice numbers to leave out
    uint64_t seed = 1;
    std::vector<Bleed> bleeds;
    double noise_hu = 4.0;

    bool storage_signed = true;
    bool storage_given = false;
    int intercept = 0;
    bool intercept_given = false;
    int bits_stored = 16;
    bool bits_given = false;
    bool padding_given = false;
    long padding_value = 0;
    bool monochrome1 = false;

    Ts ts = Ts::Explicit;
    int quality = 90;
    int near = 2;
    bool eight_bit = false;
    double eight_center = 40.0, eight_width = 80.0;

    double window_center = 40.0, window_width = 80.0;
    bool multi_window = false;

    std::string study_uid;
    int series_number = 2;
    std::string series_description;
    bool localizer = false;
    std::string modality = "CT";
    bool no_instance_number = false;
    bool invalid_uid = false;
    bool derived = false;
    Plane plane = Plane::Axial;
    bool contrast = false;
    bool no_body_part = false;
    bool enhanced = false;           // one Enhanced CT multi-frame file
    bool enhanced_vary = false;      // per-frame rescale that differs frame to frame

    int jobs = 0;                    // 0: one per processor, at most 8
    bool verbose = false;
    bool quiet = false;
};

[[noreturn]] void usage_error(const std::string &msg)
{
    std::fprintf(stderr, "%s: %s\n", kProgram, msg.c_str());
    std::fprintf(stderr, "%s: try '%s --help'\n", kProgram, kProgram);
    std::exit(kExitUsage);
}

void print_help()
{
    std::printf(
"usage: %s --out DIR [options]\n"
"\n"
"Writes one synthetic head CT series (and optionally a localizer) as DICOM\n"
"files into DIR (created if missing; files of the same name are replaced).\n"
"Same options and seed give byte-identical files. Coordinates are in mm,\n"
"patient LPS (x to the patient's left, y posterior, z superior), relative\n"
"to the head centre.\n"
"\n"
"Geometry:\n"
"  --out DIR             output folder (required)\n"
"  --size N              rows and columns (16..2048, default 512)\n"
"  --fov MM              reconstruction diameter (default 230: 0.45 mm pixels at 512)\n"
"  --slices N            number of slices (1..2000, default 32)\n"
"  --thickness MM        SliceThickness (default 5)\n"
"  --spacing MM          distance between slice centres along the normal\n"
"                        (default: the thickness)\n"
"  --tilt DEG            gantry tilt, -30..30 (default 0): GantryDetectorTilt,\n"
"                        ImageOrientationPatient 1\\0\\0\\0\\cos\\-sin and table\n"
"                        positions as a tilted GE acquisition writes them\n"
"  --reverse             first instance at the top (positions descending)\n"
"  --gap K               leave out the image with InstanceNumber K; repeatable\n"
"  --reformat PLANE      coronal or sagittal: a reformatted stack instead of\n"
"                        axial slices (ImageType ORIGINAL\\PRIMARY\\REFORMATTED)\n"
"\n"
"Content:\n"
"  --seed N              seed for noise, names, study identity and UIDs (default 1)\n"
"  --noise SD            noise standard deviation in HU (default 4, 0 for none)\n"
"  --bleed TYPE:X,Y,Z,SIZE\n"
"                        add a hyperdense bleed; repeatable. TYPE iph\n"
"                        (intraparenchymal blob, SIZE = diameter, 60-80 HU),\n"
"                        sdh (subdural crescent on the inner table toward X,Y,\n"
"                        SIZE = greatest thickness, 55-75 HU) or sah (blood in\n"
"                        sulci and cisterns within SIZE of the point, 50-60 HU)\n"
"  --bleed-none          no bleed (the default; clears earlier --bleed)\n"
"  --contrast            contrast-enhanced: ContrastBolusAgent, bright sinus\n"
"\n"
"Pixel storage:\n"
"  --storage KIND        signed (PixelRepresentation 1, default) or unsigned\n"
"                        (PixelRepresentation 0, intercept -1024)\n"
"  --intercept N         RescaleIntercept (signed default 0, unsigned -1024)\n"
"  --bits-stored N       12 or 16 (default 16 signed, 12 unsigned)\n"
"  --padding-value V     PixelPaddingValue V (stored value) outside the scan\n"
"                        circle, like GE's -2000\n"
"  --monochrome1         PhotometricInterpretation MONOCHROME1 (display\n"
"                        polarity only: stored values and HU are unchanged)\n"
"  --window C,W          WindowCenter/Width (default 40,80)\n"
"  --multi-window        two windows: 40\\600 and 80\\2800 (BRAIN\\BONE)\n"
"  --8bit-window C,W     write 8-bit windowed Secondary Capture images (window\n"
"                        C,W mapped to 0..255, slope/intercept back to HU);\n"
"                        required for --ts jpeg-baseline\n"
"\n"
"Transfer syntax:\n"
"  --ts NAME             implicit, explicit (default), big, deflate, rle,\n"
"                        jpeg-baseline (8 bit, needs --8bit-window),\n"
"                        jpeg-extended (lossy 12 bit: unsigned 12-bit storage),\n"
"                        jpeg-lossless (process 14, selection value 1),\n"
"                        jpeg-ls (lossless), jpeg-ls-near (near-lossless:\n"
"                        unsigned storage).\n"
"                        JPEG 2000 is not available: open-source DCMTK has\n"
"                        no JPEG 2000 encoder\n"
"  --quality Q           JPEG baseline/extended quality 1..100 (default 90)\n"
"  --near N              JPEG-LS near-lossless deviation 1..255 (default 2)\n"
"\n"
"Header:\n"
"  --study-uid UID       use this StudyInstanceUID (to add a series to an\n"
"                        earlier study; patient and dates derive from it)\n"
"  --series-number N     SeriesNumber (default 2; the localizer is 1)\n"
"  --series-description TEXT\n"
"                        SeriesDescription (default e.g. 'HEAD 5.0 mm')\n"
"  --modality MOD        CT (default) or MR (an MR series, to be rejected)\n"
"  --localizer           also write a localizer (series 1, ImageType\n"
"                        ORIGINAL\\PRIMARY\\LOCALIZER, one lateral projection\n"
"                        in a sagittal plane)\n"
"  --derived             ImageType DERIVED\\SECONDARY\\...\n"
"  --no-instance-number  leave InstanceNumber out\n"
"  --invalid-uid         UIDs with a leading-zero component (not conformant)\n"
"  --no-body-part        leave BodyPartExamined out\n"
"  --enhanced            write the series as ONE Enhanced CT Image Storage\n"
"                        multi-frame file (EN0001.dcm) with shared and\n"
"                        per-frame functional groups; not with lossy syntaxes,\n"
"                        --8bit-window or --modality MR\n"
"  --enhanced-rescale R  shared (default): one RescaleSlope/Intercept in the\n"
"                        shared groups; vary: a different slope (1 or 0.5) and\n"
"                        intercept (0 or -1024) per frame, same HU (needs\n"
"                        signed 16-bit storage)\n"
"\n"
"Output:\n"
"  --shuffle             random file names and writing order (from the seed);\n"
"                        default names are IM0001.dcm ... (LOC0001.dcm)\n"
"  --jobs N              threads (default: processors, at most 8)\n"
"  -v, --verbose         one line per slice: position and HU statistics\n"
"  -q, --quiet           no summary line\n"
"  -h, --help            this help\n"
"  --version             version\n"
"\n"
"Exit status: 0 written, 1 a file could not be written, 2 bad usage.\n",
        kProgram);
}

// ---- number parsing (whole argument must be a number) -----------------------

bool parse_long(const char *s, long &out)
{
    if (s == nullptr || *s == '\0')
        return false;
    errno = 0;
    char *end = nullptr;
    long v = std::strtol(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    out = v;
    return true;
}

bool parse_double(const char *s, double &out)
{
    if (s == nullptr || *s == '\0')
        return false;
    errno = 0;
    char *end = nullptr;
    double v = std::strtod(s, &end);
    if (errno != 0 || *end != '\0' || !std::isfinite(v))
        return false;
    out = v;
    return true;
}

long need_long(const std::string &opt, const char *val, long lo, long hi)
{
    long v = 0;
    if (!parse_long(val, v) || v < lo || v > hi)
        usage_error(opt + ": expected an integer " + std::to_string(lo) + ".." +
                    std::to_string(hi) + ", got '" + val + "'");
    return v;
}

double need_double(const std::string &opt, const char *val, double lo, double hi)
{
    double v = 0;
    if (!parse_double(val, v) || v < lo || v > hi) {
        char b[160];
        std::snprintf(b, sizeof b, ": expected a number %g..%g, got '", lo, hi);
        usage_error(opt + b + val + "'");
    }
    return v;
}

// Splits "a,b,c" into numbers; false unless exactly n numbers.
bool parse_numbers(const std::string &s, size_t n, std::vector<double> &out)
{
    out.clear();
    size_t start = 0;
    while (true) {
        size_t comma = s.find(',', start);
        std::string part = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        double v = 0;
        if (!parse_double(part.c_str(), v))
            return false;
        out.push_back(v);
        if (comma == std::string::npos)
            break;
        start = comma + 1;
    }
    return out.size() == n;
}

Bleed parse_bleed(const char *arg)
{
    std::string s(arg);
    size_t colon = s.find(':');
    std::string type = s.substr(0, colon);
    Bleed b{};
    if (type == "iph")
        b.type = BleedType::Iph;
    else if (type == "sdh")
        b.type = BleedType::Sdh;
    else if (type == "sah")
        b.type = BleedType::Sah;
    else
        usage_error(std::string("--bleed: type must be iph, sdh or sah, got '") + arg + "'");
    std::vector<double> v;
    if (colon == std::string::npos || !parse_numbers(s.substr(colon + 1), 4, v))
        usage_error(std::string("--bleed: expected TYPE:X,Y,Z,SIZE (mm), got '") + arg + "'");
    if (v[3] <= 0 || v[3] > 120)
        usage_error(std::string("--bleed: SIZE must be in (0, 120] mm, got '") + arg + "'");
    for (int i = 0; i < 3; i++)
        if (std::fabs(v[i]) > 150)
            usage_error(std::string("--bleed: X, Y, Z must be within 150 mm of the head centre, got '") + arg + "'");
    b.x_mm = v[0];
    b.y_mm = v[1];
    b.z_mm = v[2];
    b.size_mm = v[3];
    return b;
}

bool valid_uid_syntax(const std::string &u)
{
    if (u.empty() || u.size() > 64 || u.front() == '.' || u.back() == '.')
        return false;
    for (size_t i = 0; i < u.size(); i++) {
        char c = u[i];
        if (c == '.') {
            if (u[i + 1] == '.')
                return false;
        } else if (c < '0' || c > '9') {
            return false;
        }
    }
    return true;
}

Options parse_args(int argc, char **argv)
{
    Options o;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        const char *val = nullptr;
        std::string name = a;
        size_t eq = a.find('=');
        if (a.compare(0, 2, "--") == 0 && eq != std::string::npos) {
            name = a.substr(0, eq);
            val = argv[i] + eq + 1;
        }
        // value(): the option's argument, from "--opt=V" or the next word.
        auto value = [&]() -> const char * {
            if (val != nullptr)
                return val;
            if (i + 1 >= argc)
                usage_error(name + ": missing value");
            return argv[++i];
        };
        auto flag = [&]() {
            if (val != nullptr)
                usage_error(name + ": takes no value");
        };

        if (name == "-h" || name == "--help") {
            print_help();
            std::exit(0);
        } else if (name == "--version") {
            std::printf("%s %s (DCMTK %s)\n", kProgram, kVersion, OFFIS_DCMTK_VERSION_STRING);
            std::exit(0);
        } else if (name == "--out") {
            o.out_dir = value();
            if (o.out_dir.empty())
                usage_error("--out: empty folder name");
        } else if (name == "--size") {
            o.size = (int)need_long(name, value(), 16, 2048);
        } else if (name == "--fov") {
            o.fov_mm = need_double(name, value(), 50, 600);
        } else if (name == "--slices") {
            o.slices = (int)need_long(name, value(), 1, 2000);
        } else if (name == "--thickness") {
            o.thickness_mm = need_double(name, value(), 0.1, 20);
        } else if (name == "--spacing") {
            o.spacing_mm = need_double(name, value(), 0.1, 50);
        } else if (name == "--tilt") {
            o.tilt_deg = need_double(name, value(), -30, 30);
        } else if (name == "--reverse") {
            flag();
            o.reverse = true;
        } else if (name == "--shuffle") {
            flag();
            o.shuffle = true;
        } else if (name == "--gap") {
            o.gaps.push_back((int)need_long(name, value(), 1, 2000));
        } else if (name == "--seed") {
            const char *v = value();
            char *end = nullptr;
            errno = 0;
            unsigned long long s = std::strtoull(v, &end, 10);
            if (*v == '\0' || *v == '-' || errno != 0 || *end != '\0')
                usage_error(std::string("--seed: expected a non-negative integer, got '") + v + "'");
            o.seed = s;
        } else if (name == "--noise") {
            o.noise_hu = need_double(name, value(), 0, 100);
        } else if (name == "--bleed") {
            o.bleeds.push_back(parse_bleed(value()));
        } else if (name == "--bleed-none") {
            flag();
            o.bleeds.clear();
        } else if (name == "--contrast") {
            flag();
            o.contrast = true;
        } else if (name == "--storage") {
            std::string v = value();
            if (v == "signed")
                o.storage_signed = true;
            else if (v == "unsigned")
                o.storage_signed = false;
            else
                usage_error("--storage: expected signed or unsigned, got '" + v + "'");
            o.storage_given = true;
        } else if (name == "--intercept") {
            o.intercept = (int)need_long(name, value(), -32768, 32767);
            o.intercept_given = true;
        } else if (name == "--bits-stored") {
            long b = need_long(name, value(), 12, 16);
            if (b != 12 && b != 16)
                usage_error("--bits-stored: expected 12 or 16, got '" + std::to_string(b) + "'");
            o.bits_stored = (int)b;
            o.bits_given = true;
        } else if (name == "--padding-value") {
            o.padding_value = need_long(name, value(), -32768, 65535);
            o.padding_given = true;
        } else if (name == "--monochrome1") {
            flag();
            o.monochrome1 = true;
        } else if (name == "--window" || name == "--8bit-window") {
            const char *v = value();
            std::vector<double> cw;
            if (!parse_numbers(v, 2, cw) || cw[1] < 1 || std::fabs(cw[0]) > 10000 || cw[1] > 20000)
                usage_error(name + ": expected CENTER,WIDTH with WIDTH >= 1, got '" + v + "'");
            if (name == "--window") {
                o.window_center = cw[0];
                o.window_width = cw[1];
            } else {
                o.eight_bit = true;
                o.eight_center = cw[0];
                o.eight_width = cw[1];
            }
        } else if (name == "--multi-window") {
            flag();
            o.multi_window = true;
        } else if (name == "--ts") {
            std::string v = value();
            if (v == "implicit") o.ts = Ts::Implicit;
            else if (v == "explicit") o.ts = Ts::Explicit;
            else if (v == "big") o.ts = Ts::Big;
            else if (v == "deflate") o.ts = Ts::Deflate;
            else if (v == "rle") o.ts = Ts::Rle;
            else if (v == "jpeg-baseline") o.ts = Ts::JpegBaseline;
            else if (v == "jpeg-extended") o.ts = Ts::JpegExtended;
            else if (v == "jpeg-lossless") o.ts = Ts::JpegLossless;
            else if (v == "jpeg-ls") o.ts = Ts::JpegLs;
            else if (v == "jpeg-ls-near") o.ts = Ts::JpegLsNear;
            else if (v == "jpeg2000" || v == "jpeg-2000" || v == "j2k" || v == "jpeg2000-lossless")
                usage_error("--ts " + v + ": JPEG 2000 cannot be written: open-source DCMTK has no "
                            "JPEG 2000 encoder (use an uncompressed, RLE, JPEG or JPEG-LS syntax)");
            else
                usage_error("--ts: unknown transfer syntax '" + v + "' (implicit, explicit, big, deflate, "
                            "rle, jpeg-baseline, jpeg-extended, jpeg-lossless, jpeg-ls, jpeg-ls-near)");
        } else if (name == "--quality") {
            o.quality = (int)need_long(name, value(), 1, 100);
        } else if (name == "--near") {
            o.near = (int)need_long(name, value(), 1, 255);
        } else if (name == "--study-uid") {
            o.study_uid = value();
            if (!valid_uid_syntax(o.study_uid))
                usage_error("--study-uid: '" + o.study_uid + "' is not a UID (digits and dots, at most 64 characters)");
        } else if (name == "--series-number") {
            o.series_number = (int)need_long(name, value(), 1, 99999);
        } else if (name == "--series-description") {
            o.series_description = value();
            if (o.series_description.size() > 64 || o.series_description.find('\\') != std::string::npos)
                usage_error("--series-description: at most 64 characters and no backslash");
        } else if (name == "--localizer") {
            flag();
            o.localizer = true;
        } else if (name == "--modality") {
            std::string v = value();
            if (v != "CT" && v != "MR")
                usage_error("--modality: expected CT or MR, got '" + v + "'");
            o.modality = v;
        } else if (name == "--no-instance-number") {
            flag();
            o.no_instance_number = true;
        } else if (name == "--invalid-uid") {
            flag();
            o.invalid_uid = true;
        } else if (name == "--derived") {
            flag();
            o.derived = true;
        } else if (name == "--reformat") {
            std::string v = value();
            if (v == "coronal")
                o.plane = Plane::Coronal;
            else if (v == "sagittal")
                o.plane = Plane::Sagittal;
            else if (v == "axial")
                o.plane = Plane::Axial;
            else
                usage_error("--reformat: expected coronal or sagittal, got '" + v + "'");
        } else if (name == "--enhanced") {
            flag();
            o.enhanced = true;
        } else if (name == "--enhanced-rescale") {
            std::string v = value();
            if (v == "vary")
                o.enhanced_vary = true;
            else if (v == "shared")
                o.enhanced_vary = false;
            else
                usage_error("--enhanced-rescale: expected shared or vary, got '" + v + "'");
        } else if (name == "--no-body-part") {
            flag();
            o.no_body_part = true;
        } else if (name == "--jobs") {
            o.jobs = (int)need_long(name, value(), 1, 256);
        } else if (name == "-v" || name == "--verbose") {
            flag();
            o.verbose = true;
        } else if (name == "-q" || name == "--quiet") {
            flag();
            o.quiet = true;
        } else {
            usage_error("unknown option '" + a + "'");
        }
    }
    if (o.out_dir.empty())
        usage_error("--out DIR is required");
    return o;
}

// ---- what the options imply, checked once -------------------------------------

// The pixel encoding every slice of the series uses.
struct Storage {
    bool eight_bit;      // 8-bit windowed secondary capture
    bool is_signed;
    int bits_allocated;
    int bits_stored;
    double slope;
    double intercept;
    long smin, smax;     // representable stored values
    bool rescale;        // write RescaleSlope/Intercept (not for MR)
};

// HU the phantom produces: air with noise down to about -1020, bone up to
// about 1550 with noise. A storage must hold this range.
const double kHuLow = -1024.0;
const double kHuHigh = 1600.0;

void check_options(Options &o, Storage &st)
{
    // Transfer syntax constraints decide defaults of the storage.
    if (o.ts == Ts::JpegBaseline && !o.eight_bit)
        usage_error("--ts jpeg-baseline: baseline JPEG holds 8-bit samples only and CT needs 12 to 16 bits; "
                    "add --8bit-window C,W to write an 8-bit windowed Secondary Capture image, or use "
                    "jpeg-extended, jpeg-lossless or jpeg-ls");
    if (o.ts == Ts::JpegExtended && !o.eight_bit) {
        if ((o.storage_given && o.storage_signed) || (o.bits_given && o.bits_stored != 12))
            usage_error("--ts jpeg-extended: lossy JPEG holds at most 12 bits; it needs --storage unsigned "
                        "--bits-stored 12 (the defaults for this syntax)");
        o.storage_signed = false;
    }
    if (o.ts == Ts::JpegLsNear && !o.eight_bit) {
        if (o.storage_given && o.storage_signed)
            usage_error("--ts jpeg-ls-near: DCMTK's near-lossless JPEG-LS encoder refuses signed pixels; "
                        "it needs --storage unsigned (the default for this syntax)");
        o.storage_signed = false;
    }
    if (o.modality == "MR") {
        if (o.localizer)
            usage_error("--modality MR: --localizer writes a CT scout, not with an MR series");
        if (o.eight_bit)
            usage_error("--modality MR: --8bit-window is for CT only");
        if ((o.storage_given && o.storage_signed) || o.intercept_given)
            usage_error("--modality MR: MR images are written unsigned 12-bit without rescale; "
                        "drop --storage signed / --intercept");
        o.storage_signed = false;
    }
    if (o.enhanced) {
        if (o.modality != "CT" || o.eight_bit)
            usage_error("--enhanced: writes Enhanced CT; not with --modality MR or --8bit-window");
        if (o.ts == Ts::JpegBaseline || o.ts == Ts::JpegExtended || o.ts == Ts::JpegLsNear)
            usage_error("--enhanced: lossy syntaxes are not written as Enhanced CT (the encoders would have to "
                        "update the functional groups); use a lossless one");
    } else if (o.enhanced_vary) {
        usage_error("--enhanced-rescale: only with --enhanced");
    }
    if (o.enhanced_vary && (!o.storage_signed || (o.bits_given && o.bits_stored != 16)))
        usage_error("--enhanced-rescale vary: needs signed 16-bit storage (slope 0.5 doubles the stored values)");
    if (!o.bits_given)
        o.bits_stored = o.storage_signed ? 16 : 12;
    if (!o.intercept_given)
        o.intercept = o.storage_signed ? 0 : -1024;
    if (o.spacing_mm < 0)
        o.spacing_mm = o.thickness_mm;
    if (o.plane != Plane::Axial && o.tilt_deg != 0)
        usage_error("--tilt: only for axial slices, not with --reformat");
    for (int g : o.gaps)
        if (g > o.slices)
            usage_error("--gap " + std::to_string(g) + ": the series has only " + std::to_string(o.slices) + " slices");
    {
        std::vector<int> g = o.gaps;
        std::sort(g.begin(), g.end());
        g.erase(std::unique(g.begin(), g.end()), g.end());
        if ((int)g.size() >= o.slices)
            usage_error("--gap: every slice would be left out");
        o.gaps = g;
    }

    st = Storage{};
    if (o.eight_bit) {
        if (o.padding_given)
            usage_error("--padding-value: not with --8bit-window (8-bit windowed images have no padding)");
        if (o.bits_given || o.storage_given || o.intercept_given)
            usage_error("--8bit-window: the storage is fixed (8 bits, unsigned, slope/intercept from the window); "
                        "drop --bits-stored / --storage / --intercept");
        st.eight_bit = true;
        st.is_signed = false;
        st.bits_allocated = 8;
        st.bits_stored = 8;
        st.slope = o.eight_width / 255.0;
        st.intercept = o.eight_center - o.eight_width / 2.0;
        st.smin = 0;
        st.smax = 255;
        st.rescale = true;
        return;
    }
    st.eight_bit = false;
    st.is_signed = o.storage_signed;
    st.bits_allocated = 16;
    st.bits_stored = o.bits_stored;
    st.slope = 1.0;
    st.intercept = o.intercept;
    st.rescale = o.modality != "MR";
    if (st.is_signed) {
        st.smin = -(1L << (st.bits_stored - 1));
        st.smax = (1L << (st.bits_stored - 1)) - 1;
    } else {
        st.smin = 0;
        st.smax = (1L << st.bits_stored) - 1;
    }
    if (o.modality == "MR") {
        st.intercept = -1024;   // used only to map HU to MR "intensity"
    } else {
        double lo = st.smin + st.intercept, hi = st.smax + st.intercept;
        if (lo > kHuLow || hi < kHuHigh) {
            char b[400];
            std::snprintf(b, sizeof b,
                          "%s %d-bit storage with intercept %d holds %.0f..%.0f HU, but the phantom needs "
                          "%.0f..%.0f HU (air to bone); use %s",
                          st.is_signed ? "signed" : "unsigned", st.bits_stored, o.intercept, lo, hi, kHuLow,
                          kHuHigh,
                          st.is_signed ? "--intercept 0 or --bits-stored 16" : "--intercept -1024");
            usage_error(b);
        }
    }
    if (o.padding_given && (o.padding_value < st.smin || o.padding_value > st.smax))
        usage_error("--padding-value " + std::to_string(o.padding_value) + ": outside the stored range " +
                    std::to_string(st.smin) + ".." + std::to_string(st.smax));
}

// ---- deterministic randomness and hashing ----------------------------------

uint64_t splitmix64(uint64_t &state)
{
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

uint64_t hash_string(const std::string &s)
{
    uint64_t h = 0xCBF29CE484222325ULL;   // FNV-1a, then mixed
    for (unsigned char c : s) {
        h ^= c;
        h *= 0x100000001B3ULL;
    }
    return splitmix64(h);
}

// One random stream per slice, from hemoscan's own generator (rng.h).
struct Rng {
    hs_rng state;
    explicit Rng(uint64_t seed) { hs_rng_seed(&state, seed); }
    uint64_t next() { return hs_rng_u64(&state); }
    double uniform() { return hs_rng_uniform(&state); }
    // Approximately standard normal: the sum of four 16-bit uniforms
    // (Irwin-Hall), bounded at +-3.46; one 64-bit draw per value.
    float gauss()
    {
        uint64_t r = next();
        int sum = (int)(r & 0xFFFF) + (int)((r >> 16) & 0xFFFF) + (int)((r >> 32) & 0xFFFF) + (int)(r >> 48);
        return (float)(sum - 131070) * (1.0f / 37837.23f);
    }
};

// ---- the head phantom ----------------------------------------------------------

// Per-subject constants drawn from the seed: real heads differ.
struct Subject {
    double scale;        // head size
    double ventricles;   // ventricle size (age)
    double atrophy;      // sulcal width
    double phase1, phase2;
};

// Cross-section parameters at one height z (mm); computed once per image
// row, since every plane here keeps z constant along a row.
struct Level {
    double z;
    bool head;                    // any tissue at this height
    double sa, sb_ant, sb_post;   // scalp outer semi-axes (x, y front, y back)
    double oa, ob_ant, ob_post;   // skull outer semi-axes
    double t0;                    // skull thickness
    double t_ant;                 // extra bone anteriorly (skull base)
    double t_frontal;             // extra frontal bone (frontal sinus)
    double vent;                  // lateral ventricle size 0..1 at this height
    // Size factors (0..1) of structures at this height: the square root
    // of a sine bump, so the structures are ellipsoids, not prisms.
    double deep_gray, temporal_horns, third_vent, fourth_vent, sphenoid, cisterns, brainstem;
    double sylvian;               // weight of the Sylvian fissures
    double pineal_mm;             // radius of the pineal calcification
};

struct Scene {
    Subject subj;
    std::vector<Bleed> bleeds;
    bool contrast;
    double pixel_mm;              // for partial-volume edges
};

inline double clamp01(double v) { return v < 0 ? 0 : (v > 1 ? 1 : v); }
inline double lerp(double a, double b, double w) { return a + (b - a) * w; }
inline double sq(double v) { return v * v; }

// Occupancy of a boundary at signed distance d (mm, negative inside),
// linear over one pixel: a partial-volume edge.
inline double edge(double d, double px) { return clamp01(0.5 - d / px); }

// Height profile of a dome: 1 at z0, 0 at z0 + up and z0 - down.
inline double dome(double z, double z0, double up, double down)
{
    double t = (z - z0) / (z >= z0 ? up : down);
    return t >= 1 ? 0 : std::sqrt(1 - t * t);
}

inline double fsin(double a) { return std::sin((float)a); }
inline double fcos(double a) { return std::cos((float)a); }

inline double bump(double z, double lo, double hi)
{
    if (z <= lo || z >= hi)
        return 0;
    return std::sin(kPi * (z - lo) / (hi - lo));
}

Level level_at(const Scene &sc, double z)
{
    Level L{};
    double s = sc.subj.scale;
    L.z = z;
    double fo = dome(z, 8, 80, 120);   // skull: vertex at z = 88
    double fs = dome(z, 8, 85, 125);   // scalp: 5 mm above the skull
    L.head = fs > 0.02;
    L.oa = 70 * fo * s;
    L.ob_ant = 86 * fo * s;
    L.ob_post = 91 * fo * s;
    L.sa = 75 * fs * s;
    L.sb_ant = 91 * fs * s;
    L.sb_post = 97 * fs * s;
    // thicker toward the skull base, slightly thinner near the vertex
    L.t0 = 6.0 + 0.12 * std::max(0.0, -20 - z) - 1.0 * clamp01((z - 50) / 30);
    L.t_ant = std::min(45.0, 2.2 * std::max(0.0, -30 - z));
    L.t_frontal = 9.0 * bump(z, -36, -6);
    L.vent = bump(z, -12, 30);
    L.deep_gray = std::sqrt(bump(z, -20, 10));
    L.sylvian = bump(z, -30, -2);
    L.temporal_horns = std::sqrt(bump(z, -34, -14));
    L.third_vent = std::sqrt(bump(z, -22, -4));
    L.fourth_vent = std::sqrt(bump(z, -56, -36));
    L.sphenoid = std::sqrt(bump(z, -68, -42));
    L.cisterns = std::sqrt(bump(z, -42, -14));
    L.brainstem = z < -22 ? 1.0 : std::sqrt(std::max(0.0, 1 - sq((z + 22) / 8)));
    L.pineal_mm = std::sqrt(std::max(0.0, 4 - sq(z + 5)));
    return L;
}

// Signed radial distance to an ellipse centred at the origin (negative
// inside), measured along the ray from the centre: rho * (1 - 1/r).
inline double ellipse_dist(double x, double y, double a, double b, double rho)
{
    if (a <= 0 || b <= 0)
        return 1e9;
    double r = std::sqrt(sq(x / a) + sq(y / b));
    if (r < 1e-9)
        return -std::min(a, b);
    return rho * (1 - 1 / r);
}

// A rotation, with its cosine and sine computed once.
struct Rot {
    double c, s;
};

Rot make_rot(double angle) { return Rot{std::cos(angle), std::sin(angle)}; }

const Rot kNoRot{1, 0};
const Rot kRot20[2] = {make_rot(-0.2), make_rot(0.2)};    // indexed by side < 0, side > 0
const Rot kRot25[2] = {make_rot(0.25), make_rot(-0.25)};
const Rot kRot50[2] = {make_rot(-0.5), make_rot(0.5)};

// Occupancy of a (rotated) ellipse centred at (cx, cy), with a soft edge.
inline double blob(double x, double y, double cx, double cy, double a, double b, Rot r, double px)
{
    double dx = x - cx, dy = y - cy;
    double reach = std::max(a, b) + px;
    if (std::fabs(dx) > reach || std::fabs(dy) > reach)
        return 0;
    double u = r.c * dx + r.s * dy, v = -r.s * dx + r.c * dy;
    double rho = std::sqrt(u * u + v * v);
    return edge(ellipse_dist(u, v, a, b, rho), px);
}

const double kHuAir = -1000, kHuCsf = 6, kHuGray = 38, kHuWhite = 27, kHuScalp = 40;
const double kHuSahCsf = 56;

// Pixel label for statistics: how much of the pixel is bleed.
struct Sample {
    double hu;
    bool bleed;
};

// Contents of the cranial cavity at a point. depth is the distance inward
// from the inner table (mm); cy the in-plane direction's y component.
double brain_hu(const Scene &sc, const Level &L, double x, double y, double z, double depth, double cy,
                bool &bleed)
{
    const double px = sc.pixel_mm;
    const Subject &S = sc.subj;

    // SAH turns the CSF of sulci, fissures and cisterns into blood.
    double csf = kHuCsf;
    bool in_sah = false;
    for (const Bleed &b : sc.bleeds)
        if (b.type == BleedType::Sah &&
            sq(x - b.x_mm) + sq(y - b.y_mm) + sq(z - b.z_mm) < sq(b.size_mm)) {
            csf = kHuSahCsf - 4 * std::sqrt(sq(x - b.x_mm) + sq(y - b.y_mm) + sq(z - b.z_mm)) / b.size_mm;
            in_sah = true;
        }

    // Cortex, white matter and sulci near the surface; white matter deeper.
    double v = kHuWhite;
    double csf_w = 0;        // weight of sulcal/cisternal CSF
    if (depth < 18) {
        // Sulci are the zero lines of a sum of two waves around the head,
        // bent with height and depth; the distance to the nearest zero
        // line (mm, to first order) sets sulcal CSF and the gray ribbon
        // that lines it, so every sulcus has the same width. Single precision
        // trigonometry: this band is most of the rendering time.
        double rho = std::sqrt(x * x + y * y);
        double theta = (double)std::atan2((float)y, (float)x);
        double tw = theta + 0.06 * fsin(3 * theta + 0.04 * z + S.phase2) +
                    0.012 * depth * fsin(7 * theta + S.phase1);
        double a1 = 13 * tw + S.phase1 + 0.07 * z, a2 = 22 * tw + S.phase2 - 0.05 * z;
        double p = fsin(a1) + 0.6 * fsin(a2);
        double dp = std::max(4.0, std::fabs(13 * fcos(a1) + 13.2 * fcos(a2)));
        double dist = std::fabs(p) / dp * std::max(rho, 10.0);
        double sulcal_depth = 9 + 3.5 * fsin(5 * theta + 0.1 * z) + 1.5 * fsin(11 * theta + S.phase1);
        double gray_depth = dist < 3.0 ? sulcal_depth + 2.5 : 3.0 + 1.0 * fsin(9 * theta + 0.05 * z);
        double w_gray = clamp01((gray_depth - depth) / 1.2 + 0.5) * clamp01((3.5 - dist) / 1.2 + 0.5);
        w_gray = std::max(w_gray, clamp01((3.0 - depth) / 1.0 + 0.5));
        v = lerp(kHuWhite, kHuGray + 1.5 * fsin(3 * theta + 0.03 * z), w_gray);
        if (depth < sulcal_depth) {
            double half = (0.45 + 0.55 * (1 - depth / sulcal_depth)) * S.atrophy;
            csf_w = clamp01((half - dist) / px + 0.5);
        }
        // thin subarachnoid space under the inner table
        csf_w = std::max(csf_w, clamp01((0.8 * S.atrophy - depth) / px + 0.5));
    }

    // Deep gray matter: thalami and lentiform nuclei.
    if (L.deep_gray > 0) {
        double k = L.deep_gray, w = 0;
        for (int side = -1; side <= 1; side += 2) {
            w = std::max(w, blob(x, y, side * 11.0 * S.scale, 6, 7 * k, 11 * k, kNoRot, px));
            w = std::max(w, blob(x, y, side * 22.0 * S.scale, -6, 5 * k, 13 * k, kRot20[side > 0], px));
        }
        v = lerp(v, 37, w);
    }

    // Brainstem, and the basal cisterns around it.
    if (L.brainstem > 0) {
        double k = L.brainstem;
        double wb = blob(x, y, 0, 12, 11 * k, 10 * k, kNoRot, px);
        if (L.cisterns > 0) {
            double c = L.cisterns;
            double ring = blob(x, y, 0, 10, 11 * k + 6 * c, 10 * k + 4 * c, kNoRot, px) * (1 - wb);
            csf_w = std::max(csf_w, ring);
        }
        v = lerp(v, 31, wb);
    }

    // Sylvian fissures.
    if (z > -30 && z < -2 && std::fabs(x) > 0.42 * L.oa && depth < 28) {
        double d = std::fabs(y - (-6 + 0.15 * std::fabs(x)));
        csf_w = std::max(csf_w, clamp01((1.3 - d) / px + 0.5) * L.sylvian);
    }

    // Interhemispheric fissure with the falx in it.
    double falx_w = 0;
    if (z > -30 && (depth < 30 || z > 28)) {
        double ax = std::fabs(x);
        csf_w = std::max(csf_w, clamp01((1.3 - ax) / px + 0.5));
        falx_w = clamp01((0.4 - ax) / px + 0.5);
    }

    v = lerp(v, csf, csf_w);
    v = lerp(v, 48, falx_w);
    if (in_sah && csf_w >= 0.5)
        bleed = true;

    // Ventricles (always CSF, an SAH does not fill them here).
    double vw = 0;
    if (L.vent > 0) {
        double k = L.vent * S.ventricles, taper = std::min(1.0, 2.5 * L.vent);
        for (int side = -1; side <= 1; side += 2) {
            double cx0 = side * (3.0 + 6.0 * k), a = (1.5 + 3.0 * k) * taper, b = (10 + 12 * k) * taper;
            double w = blob(x, y, cx0, -4, a, b, kRot25[side > 0], px);
            // the caudate nucleus indents the lateral wall: a crescent
            double cut = blob(x, y, cx0 + side * (a + 2.5), -14, 4.0, 8.0, kRot25[side > 0], px);
            vw = std::max(vw, w * (1 - cut));
        }
    }
    if (L.temporal_horns > 0) {
        double k = L.temporal_horns;
        for (int side = -1; side <= 1; side += 2)
            vw = std::max(vw, blob(x, y, side * 0.5 * L.oa, 4, 1.5 * S.ventricles * k, 7 * k, kRot50[side > 0], px));
    }
    if (L.third_vent > 0)
        vw = std::max(vw, blob(x, y, 0, -2, 1.3 * S.ventricles * L.third_vent, 9 * L.third_vent, kNoRot, px));
    if (L.fourth_vent > 0)
        vw = std::max(vw, blob(x, y, 0, 25, 4 * L.fourth_vent, 2.5 * L.fourth_vent, kNoRot, px));
    v = lerp(v, kHuCsf, vw);

    // Pineal calcification and choroid plexus: bright but not blood.
    if (L.pineal_mm > 0)
        v = lerp(v, 130, blob(x, y, 0, 17, L.pineal_mm, L.pineal_mm, kNoRot, px));
    if (L.vent > 0.3) {
        for (int side = -1; side <= 1; side += 2)
            v = lerp(v, sc.contrast ? 110 : 45, 0.8 * blob(x, y, side * 8.0, 14, 2.0, 3.0, kNoRot, px) * vw);
    }

    // Superior sagittal sinus: a triangle at the midline under the inner table.
    if (depth < 7 && z > -10 && (cy > 0.6 || (z > 30 && cy < -0.6))) {
        double half = (7 - depth) * 0.6;
        double w = clamp01((half - std::fabs(x)) / px + 0.5) * clamp01((7 - depth) / px);
        v = lerp(v, sc.contrast ? 160 : 46, w);
    }

    // Bleeds.
    for (const Bleed &b : sc.bleeds) {
        if (b.type == BleedType::Iph) {
            double r = b.size_mm / 2;
            double dz = z - b.z_mm;
            if (std::fabs(dz) > r * 1.3 + 4)
                continue;
            double dx = x - b.x_mm, dy = y - b.y_mm;
            double dist = std::sqrt(dx * dx + dy * dy + dz * dz);
            if (dist > r * 1.3 + 4)
                continue;
            double ux = dist > 0 ? dx / dist : 0, uy = dist > 0 ? dy / dist : 0, uz = dist > 0 ? dz / dist : 0;
            double reff = r * (1 + 0.15 * ux * uy + 0.1 * uz * ux - 0.08 * uy * uz);
            // perihematomal oedema, then the clot
            double ed = clamp01((reff + 3 - dist) / 3.0) * (dist > reff ? 1 : 0);
            v = lerp(v, 20, 0.6 * ed);
            double w = edge(dist - reff, px);
            if (w > 0) {
                double core = 72 - 8 * sq(std::min(1.0, dist / reff));
                v = lerp(v, core, w);
                if (w >= 0.5)
                    bleed = true;
            }
        } else if (b.type == BleedType::Sdh) {
            if (depth > b.size_mm + px)
                continue;
            double zext = 40;
            double fz = 1 - sq((z - b.z_mm) / zext);
            if (fz <= 0)
                continue;
            double phi0 = std::atan2(b.y_mm, b.x_mm);
            double dphi = std::remainder(std::atan2(y, x) - phi0, 2 * kPi);
            double span = 0.9;
            double fa = 1 - sq(dphi / span);
            if (fa <= 0)
                continue;
            double t = b.size_mm * fa * fz;
            double w = clamp01((t - depth) / px + 0.5);
            if (w > 0) {
                v = lerp(v, 70 - 8 * clamp01(depth / std::max(t, 1e-6)), w);
                if (w >= 0.5)
                    bleed = true;
            }
        }
    }
    return v;
}

// The phantom at one point (patient coordinates, mm). Everything outside
// the head is air, except the head holder and the table below the head.
Sample phantom(const Scene &sc, const Level &L, double x, double y, double z)
{
    const double px = sc.pixel_mm;
    Sample out{kHuAir, false};

    // Head holder (a curved shell behind the head) and the table.
    double rho = std::sqrt(x * x + y * y);
    if (y > 55) {
        double cyr = rho > 0 ? y / rho : 0;
        if (cyr > 0.55 && rho > 95 && rho < 106) {
            double w = clamp01(std::min((rho - 99) / px + 0.5, (102 - rho) / px + 0.5));
            out.hu = lerp(out.hu, -60, w);
        }
        if (y > 106 && y < 116) {
            double core = clamp01(std::min((y - 107.5) / px + 0.5, (114.5 - y) / px + 0.5));
            double shell = clamp01(std::min((y - 106.5) / px + 0.5, (115.5 - y) / px + 0.5));
            out.hu = lerp(lerp(out.hu, 0, shell), -550, core);
        }
    }
    if (!L.head)
        return out;

    // Scalp.
    double sb = y < 0 ? L.sb_ant : L.sb_post;
    double qs = sq(x / L.sa) + sq(y / sb);
    if (qs > 1.2)
        return out;
    double d_scalp = ellipse_dist(x, y, L.sa, sb, rho);
    double w_scalp = edge(d_scalp, px);
    if (w_scalp <= 0)
        return out;
    double cx = rho > 0 ? x / rho : 0, cy = rho > 0 ? y / rho : 0;
    out.hu = lerp(out.hu, kHuScalp + 8 * cx * cy, w_scalp);

    // Skull: outer surface, thickness varying with direction and height.
    double ob = y < 0 ? L.ob_ant : L.ob_post;
    double d_outer = ellipse_dist(x, y, L.oa, ob, rho);
    double w_bone = edge(d_outer, px);
    if (w_bone <= 0)
        return out;
    double ant = std::max(0.0, -cy);
    double t = L.t0 * (1 + 0.25 * cy * cy * (cy > 0 ? 1.2 : 1.0) - 0.35 * cx * cx) + L.t_ant * ant * std::sqrt(ant) +
               L.t_frontal * sq(sq(ant));
    double f = clamp01(-d_outer / t);   // 0 outer table .. 1 inner table
    double bone = 1450 - 650 * std::sin(kPi * f) + 60 * cx * cy;
    // air in the sinuses and mastoids, inside the bone
    if (L.t_frontal > 1 && ant > 0.8) {     // frontal sinus
        double e = sq(x / (16 * L.t_frontal / 9)) + sq((f - 0.55) / 0.28);
        bone = lerp(bone, kHuAir + 50, clamp01((1 - e) * 4));
    }
    if (z < -42 && z > -68 && f > 0.2) {   // sphenoid sinus
        double k = L.sphenoid;
        bone = lerp(bone, -900, blob(x, y, 0, -34, 11 * k, 9 * k, kNoRot, px));
    }
    if (z < -40 && z > -64 && std::fabs(cx) > 0.6 && cy > 0.25 && f > 0.25 && f < 0.8 &&
        std::sin(1.3 * x) * std::sin(1.3 * y) > 0.15)
        bone = -700;
    out.hu = lerp(out.hu, bone, w_bone);

    // Cranial cavity.
    double d_cav = d_outer + t;
    double w_cav = edge(d_cav, px);
    if (w_cav <= 0)
        return out;
    bool bleed = false;
    double brain = brain_hu(sc, L, x, y, z, -d_cav, cy, bleed);
    out.hu = lerp(out.hu, brain, w_cav);
    out.bleed = bleed && w_cav >= 1;
    return out;
}

// ---- planes and the series plan ----------------------------------------------

struct Vec3 {
    double x, y, z;
};

inline Vec3 operator+(Vec3 a, Vec3 b) { return {a.x + b.x, a.y + b.y, a.z + b.z}; }
inline Vec3 operator*(double k, Vec3 a) { return {k * a.x, k * a.y, k * a.z}; }
inline double dot(Vec3 a, Vec3 b) { return a.x * b.x + a.y * b.y + a.z * b.z; }

// One image to write.
struct ImageSpec {
    int index;             // position in the stack, 0-based
    int instance;          // InstanceNumber
    Vec3 origin;           // ImagePositionPatient (centre of the first pixel)
    Vec3 row, col;         // ImageOrientationPatient: along a row, down a column
    double slice_location;
    bool localizer;
    std::string file;
    int frame;             // with --enhanced: 0-based frame in the file
};

// Everything common to one series.
struct Series {
    std::string series_uid;
    std::string instance_uid_prefix;
    int number;
    std::string description;
    std::string image_type;
    std::string sop_class;
    std::vector<ImageSpec> images;
};

struct Study {
    std::string study_uid;
    std::string frame_uid;
    std::string patient_id;
    std::string accession;
    std::string study_id;
    std::string date;          // YYYYMMDD
    std::string time;          // HHMMSS
    int time_s;                // seconds since midnight
};

// Formats a DS value: at most 16 characters, no trailing zeros.
std::string ds(double v)
{
    char b[64];
    for (int prec = 6; prec >= 0; prec--) {
        std::snprintf(b, sizeof b, "%.*f", prec, v);
        if (std::strchr(b, '.')) {
            char *e = b + std::strlen(b) - 1;
            while (*e == '0')
                *e-- = '\0';
            if (*e == '.')
                *e = '\0';
        }
        if (std::strlen(b) <= 16)
            break;
    }
    if (std::strcmp(b, "-0") == 0)
        std::strcpy(b, "0");
    return b;
}

std::string ds3(Vec3 v) { return ds(v.x) + "\\" + ds(v.y) + "\\" + ds(v.z); }

// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
std::string date_from_days(long days)
{
    days += 719468;
    long era = (days >= 0 ? days : days - 146096) / 146097;
    long doe = days - era * 146097;
    long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long y = yoe + era * 400;
    long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long mp = (5 * doy + 2) / 153;
    long d = doy - (153 * mp + 2) / 5 + 1;
    long m = mp < 10 ? mp + 3 : mp - 9;
    if (m <= 2)
        y++;
    char b[16];
    std::snprintf(b, sizeof b, "%04ld%02ld%02ld", y, m, d);
    return b;
}

std::string hhmmss(int s)
{
    s %= 86400;
    char b[16];
    std::snprintf(b, sizeof b, "%02d%02d%02d", s / 3600, s / 60 % 60, s % 60);
    return b;
}

// A UID under a DCMTK site root, from a hash; with --invalid-uid the hash
// component gets a leading zero, which the UID rules forbid.
std::string make_uid(const char *root, uint64_t h, const std::string &tail, bool invalid)
{
    std::string u = std::string(root) + "." + (invalid ? "0" : "") + std::to_string(h == 0 ? 1 : h);
    if (!tail.empty())
        u += "." + tail;
    return u;
}

// Every option that changes the files, in one string: the series UIDs
// derive from it, so another option set gives another series.
std::string canonical(const Options &o)
{
    std::ostringstream s;
    s << "v1|" << o.size << '|' << o.fov_mm << '|' << o.slices << '|' << o.thickness_mm << '|' << o.spacing_mm
      << '|' << o.tilt_deg << '|' << o.shuffle << o.reverse << '|';
    for (int g : o.gaps)
        s << g << ',';
    s << '|' << o.seed << '|' << o.noise_hu << '|';
    for (const Bleed &b : o.bleeds)
        s << (int)b.type << ':' << b.x_mm << ',' << b.y_mm << ',' << b.z_mm << ',' << b.size_mm << ';';
    s << '|' << o.storage_signed << o.intercept << '|' << o.bits_stored << '|' << o.padding_given
      << o.padding_value << '|' << o.monochrome1 << '|' << (int)o.ts << '|' << o.quality << '|' << o.near << '|'
      << o.eight_bit << o.eight_center << ',' << o.eight_width << '|' << o.window_center << ','
      << o.window_width << o.multi_window << '|' << o.study_uid << '|' << o.series_number << '|'
      << o.series_description << '|' << o.localizer << o.modality << o.no_instance_number << o.invalid_uid
      << o.derived << (int)o.plane << o.contrast << o.no_body_part;
    if (o.enhanced)   // appended only when used, so older UIDs stay as they were
        s << "|enhanced" << o.enhanced_vary;
    return s.str();
}

Study make_study(const Options &o)
{
    Study st;
    // The study UID comes from the seed unless given; patient, dates and
    // the frame of reference come from the study UID, so a second series
    // written with --study-uid joins the same patient.
    if (o.study_uid.empty())
        st.study_uid = make_uid(SITE_STUDY_UID_ROOT, hash_string("seed:" + std::to_string(o.seed)), "",
                                o.invalid_uid);
    else
        st.study_uid = o.study_uid;
    uint64_t state = hash_string("study:" + st.study_uid);
    st.frame_uid = make_uid(SITE_INSTANCE_UID_ROOT, splitmix64(state), "0", false);
    uint64_t r = splitmix64(state);
    char b[32];
    std::snprintf(b, sizeof b, "SYN%08llu", (unsigned long long)(r % 100000000ULL));
    st.patient_id = b;
    std::snprintf(b, sizeof b, "SA%08llu", (unsigned long long)((r >> 27) % 100000000ULL));
    st.accession = b;
    std::snprintf(b, sizeof b, "%llu", (unsigned long long)(splitmix64(state) % 9000 + 1000));
    st.study_id = b;
    // a date in 2015..2024 and a time during the working day
    st.date = date_from_days(16436 + (long)(splitmix64(state) % 3650));
    st.time_s = 7 * 3600 + (int)(splitmix64(state) % (12 * 3600));
    st.time = hhmmss(st.time_s);
    return st;
}

std::string default_description(const Options &o)
{
    char b[64];
    if (o.modality == "MR")
        std::snprintf(b, sizeof b, "AX T1 SE %.1f mm", o.thickness_mm);
    else if (o.plane == Plane::Coronal)
        std::snprintf(b, sizeof b, "COR HEAD %.1f mm", o.thickness_mm);
    else if (o.plane == Plane::Sagittal)
        std::snprintf(b, sizeof b, "SAG HEAD %.1f mm", o.thickness_mm);
    else
        std::snprintf(b, sizeof b, "HEAD %.1f mm%s", o.thickness_mm, o.contrast ? " C+" : "");
    return b;
}

// Where the images of the series lie. The head centre is the patient
// origin; axial images are centred 10 mm posterior of it, so the table
// fits in the field of view below the head.
void plan_series(const Options &o, Series &main, Series &loc)
{
    const int n = o.slices, N = o.size;
    const double ps = o.fov_mm / N;
    const double half = N / 2.0 * ps;
    const double z_centre = 5.0;     // covers skull base to vertex with 32 x 5 mm
    const double y_centre = 10.0;
    double t = o.tilt_deg * kPi / 180;
    double c = std::cos(t), s = std::sin(t);

    std::vector<int> gaps = o.gaps;
    for (int k = 0; k < n; k++) {
        int number = k + 1;   // slice number along the acquisition
        if (std::binary_search(gaps.begin(), gaps.end(), number))
            continue;
        double off = (o.reverse ? ((n - 1) / 2.0 - k) : (k - (n - 1) / 2.0)) * o.spacing_mm;
        ImageSpec im{};
        im.index = k;
        im.instance = number;
        im.localizer = false;
        Vec3 centre{};
        if (o.plane == Plane::Axial) {
            // The table moves along z; a tilted gantry makes the slice
            // planes lean, so the distance along z between slices is
            // spacing / cos(tilt) and the normal distance is the spacing.
            im.row = {1, 0, 0};
            im.col = {0, c, -s};
            centre = {0, y_centre, z_centre + off / c};
            im.slice_location = centre.z;
        } else if (o.plane == Plane::Coronal) {
            im.row = {1, 0, 0};
            im.col = {0, 0, -1};
            centre = {0, off, z_centre};
            im.slice_location = dot(centre, Vec3{0, -1, 0});   // along the normal row x col
        } else {
            im.row = {0, 1, 0};
            im.col = {0, 0, -1};
            centre = {off, y_centre, z_centre};
            im.slice_location = dot(centre, Vec3{-1, 0, 0});
        }
        im.origin = centre + (-half) * im.row + (-half) * im.col;
        char b[32];
        std::snprintf(b, sizeof b, "IM%04d.dcm", number);
        im.file = b;
        main.images.push_back(im);
    }
    if (o.localizer) {
        ImageSpec im{};
        im.index = 0;
        im.instance = 1;
        im.localizer = true;
        im.row = {0, 1, 0};
        im.col = {0, 0, -1};
        Vec3 centre{0, y_centre, z_centre};
        im.origin = centre + (-half) * im.row + (-half) * im.col;
        im.slice_location = 0;
        im.file = "LOC0001.dcm";
        loc.images.push_back(im);
    }
}

// ---- rendering ------------------------------------------------------------------

struct SliceStats {
    double hu_min = 1e9, hu_max = -1e9;
    long bleed_pixels = 0;
    double bleed_max = -1e9;
    long clipped = 0;
};

// Renders one image into stored pixel values (16-bit words; 8-bit images
// use the low byte) and returns HU statistics of the pixels inside the scan
// circle.
SliceStats render(const Options &o, const Scene &sc, const Storage &st, const ImageSpec &im, uint64_t noise_seed,
                  std::vector<uint16_t> &px)
{
    const int N = o.size;
    const double ps = o.fov_mm / N;
    SliceStats stats;
    Rng rng(noise_seed);
    px.assign((size_t)N * N, 0);
    const double c0 = (N - 1) / 2.0, rmax2 = sq(N / 2.0);
    const bool mr = o.modality == "MR";
    Level L{};
    double level_z = std::nan("");
    for (int i = 0; i < N; i++) {
        Vec3 rowstart = im.origin + (i * ps) * im.col;
        for (int j = 0; j < N; j++) {
            Vec3 p = rowstart + (j * ps) * im.row;
            if (!(p.z == level_z)) {     // z is constant along a row for every plane here
                L = level_at(sc, p.z);
                level_z = p.z;
            }
            size_t idx = (size_t)i * N + j;
            bool inside = sq(i - c0) + sq(j - c0) <= rmax2;
            if (!inside && !im.localizer) {
                long sv;
                if (o.padding_given)
                    sv = o.padding_value;
                else if (st.eight_bit)
                    sv = 0;
                else
                    sv = std::max(st.smin, std::min(st.smax, (long)std::lrint((kHuLow - st.intercept) / st.slope)));
                px[idx] = (uint16_t)(sv & 0xFFFF);
                (void)rng.next();   // keep the noise stream independent of padding
                continue;
            }
            Sample smp{0, false};
            if (im.localizer) {
                // A scout is a projection: the mean HU along the x-ray,
                // which runs from the patient's right to left. The samples
                // start at a random offset, which turns the aliasing of
                // thin shells (skull, scalp) into noise.
                const double step = 2.5, reach = 110;
                const int count = (int)(2 * reach / step);
                double x0 = -reach + step * rng.uniform();
                for (int k = 0; k < count; k++)
                    smp.hu += phantom(sc, L, x0 + k * step, p.y, p.z).hu;
                smp.hu /= count;
            } else {
                smp = phantom(sc, L, p.x, p.y, p.z);
            }
            double hu = smp.hu + o.noise_hu * rng.gauss();
            long sv;
            if (mr) {
                sv = std::lrint(hu + 1024);
            } else {
                sv = std::lrint((hu - st.intercept) / st.slope);
            }
            if (sv < st.smin || sv > st.smax) {
                if (!st.eight_bit)
                    stats.clipped++;
                sv = std::max(st.smin, std::min(st.smax, sv));
            }
            double hu_out = mr ? hu : sv * st.slope + st.intercept;
            stats.hu_min = std::min(stats.hu_min, hu_out);
            stats.hu_max = std::max(stats.hu_max, hu_out);
            if (smp.bleed) {
                stats.bleed_pixels++;
                stats.bleed_max = std::max(stats.bleed_max, hu_out);
            }
            px[idx] = (uint16_t)(sv & 0xFFFF);
        }
    }
    return stats;
}

// ---- DICOM -------------------------------------------------------------------------

E_TransferSyntax xfer_of(Ts ts)
{
    switch (ts) {
    case Ts::Implicit: return EXS_LittleEndianImplicit;
    case Ts::Explicit: return EXS_LittleEndianExplicit;
    case Ts::Big: return EXS_BigEndianExplicit;
    case Ts::Deflate: return EXS_DeflatedLittleEndianExplicit;
    case Ts::Rle: return EXS_RLELossless;
    case Ts::JpegBaseline: return EXS_JPEGProcess1;
    case Ts::JpegExtended: return EXS_JPEGProcess2_4;
    case Ts::JpegLossless: return EXS_JPEGProcess14SV1;
    case Ts::JpegLs: return EXS_JPEGLSLossless;
    case Ts::JpegLsNear: return EXS_JPEGLSLossy;
    }
    return EXS_LittleEndianExplicit;
}

bool encapsulated(Ts ts)
{
    return ts == Ts::Rle || ts == Ts::JpegBaseline || ts == Ts::JpegExtended || ts == Ts::JpegLossless ||
           ts == Ts::JpegLs || ts == Ts::JpegLsNear;
}

// Collects the first failure of a run of dataset calls.
struct Put {
    explicit Put(DcmItem *i) : item(i) {}
    DcmItem *item;
    OFCondition first = EC_Normal;
    std::string what;
    void str(const DcmTagKey &tag, const std::string &v)
    {
        note(item->putAndInsertString(tag, v.c_str()), tag);
    }
    void u16(const DcmTagKey &tag, Uint16 v) { note(item->putAndInsertUint16(tag, v), tag); }
    void note(const OFCondition &c, const DcmTagKey &tag)
    {
        if (c.bad() && first.good()) {
            first = c;
            what = DcmTag(tag).getTagName();
        }
    }
};

// Inserts an element the caller made; the dataset owns it only on success.
void insert_or_delete(Put &p, DcmItem *item, DcmElement *e)
{
    DcmTagKey key = e->getTag();
    OFCondition c = item->insert(e, OFTrue);
    if (c.bad())
        delete e;
    p.note(c, key);
}

struct Writer {
    const Options &o;
    const Storage &st;
    const Study &study;
    std::unique_ptr<DcmRepresentationParameter> rep;

    Writer(const Options &opt, const Storage &s, const Study &sd) : o(opt), st(s), study(sd)
    {
        switch (o.ts) {
        case Ts::JpegBaseline:
        case Ts::JpegExtended: rep.reset(new DJ_RPLossy(o.quality)); break;
        case Ts::JpegLossless: rep.reset(new DJ_RPLossless(1, 0)); break;
        case Ts::JpegLs: rep.reset(new DJLSRepresentationParameter(0, OFTrue)); break;
        case Ts::JpegLsNear: rep.reset(new DJLSRepresentationParameter((Uint16)o.near, OFFalse)); break;
        default: break;
        }
    }

    // The attributes of one image, everything but the pixels.
    void fill(Put &p, DcmDataset *dset, const Series &se, const ImageSpec &im) const
    {
        const bool mr = o.modality == "MR";
        const int N = o.size;
        const double ps = o.fov_mm / N;
        int series_time = study.time_s + 60 * se.number;
        int content_time = series_time + 30 + im.index;

        // SOP common, general study/series/equipment, patient
        p.str(DCM_SpecificCharacterSet, "ISO_IR 100");
        p.str(DCM_ImageType, se.image_type);
        p.str(DCM_InstanceCreationDate, study.date);
        p.str(DCM_InstanceCreationTime, hhmmss(content_time));
        p.str(DCM_SOPClassUID, se.sop_class);
        p.str(DCM_SOPInstanceUID, se.instance_uid_prefix + "." + std::to_string(im.instance));
        p.str(DCM_StudyDate, study.date);
        p.str(DCM_SeriesDate, study.date);
        p.str(DCM_AcquisitionDate, study.date);
        p.str(DCM_ContentDate, study.date);
        p.str(DCM_StudyTime, study.time);
        p.str(DCM_SeriesTime, hhmmss(series_time));
        p.str(DCM_AcquisitionTime, hhmmss(series_time + 20));
        p.str(DCM_ContentTime, hhmmss(content_time));
        p.str(DCM_AccessionNumber, study.accession);
        p.str(DCM_Modality, o.modality);
        if (st.eight_bit)
            p.str(DCM_ConversionType, "WSD");
        p.str(DCM_Manufacturer, "HEMOSCAN SYNTHETIC");
        p.str(DCM_InstitutionName, "SYNTHETIC DATA - NOT A PATIENT");
        p.str(DCM_ReferringPhysicianName, "");
        p.str(DCM_StudyDescription, mr ? "MR HEAD" : (o.contrast ? "CT HEAD W CONTRAST" : "CT HEAD WO CONTRAST"));
        p.str(DCM_SeriesDescription, se.description);
        p.str(DCM_ManufacturerModelName, "hs-gen-ct");
        p.str(DCM_PatientName, "SYNTHETIC^HEAD");
        p.str(DCM_PatientID, study.patient_id);
        p.str(DCM_PatientBirthDate, "");
        p.str(DCM_PatientSex, "O");
        if (o.contrast)
            p.str(DCM_ContrastBolusAgent, "IOHEXOL 350 MG/ML");
        if (!o.no_body_part)
            p.str(DCM_BodyPartExamined, "HEAD");
        p.str(DCM_SliceThickness, ds(o.thickness_mm));
        if (mr) {
            p.str(DCM_ScanningSequence, "SE");
            p.str(DCM_SequenceVariant, "NONE");
            p.str(DCM_ScanOptions, "");
            p.str(DCM_MRAcquisitionType, "2D");
            p.str(DCM_RepetitionTime, "500");
            p.str(DCM_EchoTime, "15");
            p.str(DCM_EchoTrainLength, "1");
            p.str(DCM_ImagingFrequency, "63.87");
            p.str(DCM_MagneticFieldStrength, "1.5");
        } else {
            p.str(DCM_ScanOptions, im.localizer ? "SCOUT MODE" : "AXIAL MODE");
            p.str(DCM_KVP, "120");
            p.str(DCM_DataCollectionDiameter, "250");
        }
        p.str(DCM_SoftwareVersions, std::string(kProgram) + " " + kVersion);
        if (!mr) {
            p.str(DCM_ReconstructionDiameter, ds(o.fov_mm));
            p.str(DCM_DistanceSourceToDetector, "949.075");
            p.str(DCM_DistanceSourceToPatient, "541");
            p.str(DCM_GantryDetectorTilt, ds(im.localizer ? 0.0 : o.tilt_deg));
            p.str(DCM_TableHeight, "150");
            p.str(DCM_RotationDirection, "CW");
            p.str(DCM_ExposureTime, "1000");
            p.str(DCM_XRayTubeCurrent, "250");
            p.str(DCM_Exposure, "250");
            p.str(DCM_ConvolutionKernel, "STANDARD");
        }
        p.str(DCM_PatientPosition, "HFS");
        p.str(DCM_StudyInstanceUID, study.study_uid);
        p.str(DCM_SeriesInstanceUID, se.series_uid);
        p.str(DCM_StudyID, study.study_id);
        p.str(DCM_SeriesNumber, std::to_string(se.number));
        p.str(DCM_AcquisitionNumber, "1");
        if (!o.no_instance_number)
            p.str(DCM_InstanceNumber, std::to_string(im.instance));
        p.str(DCM_ImagePositionPatient, ds3(im.origin));
        p.str(DCM_ImageOrientationPatient, ds3(im.row) + "\\" + ds3(im.col));
        p.str(DCM_FrameOfReferenceUID, study.frame_uid);
        p.str(DCM_PositionReferenceIndicator, "");
        p.str(DCM_SliceLocation, ds(im.slice_location));

        // image pixel, modality LUT, VOI LUT
        p.u16(DCM_SamplesPerPixel, 1);
        p.str(DCM_PhotometricInterpretation, o.monochrome1 ? "MONOCHROME1" : "MONOCHROME2");
        p.u16(DCM_Rows, (Uint16)N);
        p.u16(DCM_Columns, (Uint16)N);
        p.str(DCM_PixelSpacing, ds(ps) + "\\" + ds(ps));
        p.u16(DCM_BitsAllocated, (Uint16)st.bits_allocated);
        p.u16(DCM_BitsStored, (Uint16)st.bits_stored);
        p.u16(DCM_HighBit, (Uint16)(st.bits_stored - 1));
        p.u16(DCM_PixelRepresentation, st.is_signed ? 1 : 0);
        if (o.padding_given) {
            DcmTag tag(DCM_PixelPaddingValue);
            if (st.is_signed) {
                tag.setVR(EVR_SS);
                DcmSignedShort *e = new DcmSignedShort(tag);
                p.note(e->putSint16((Sint16)o.padding_value), DCM_PixelPaddingValue);
                insert_or_delete(p, dset, e);
            } else {
                tag.setVR(EVR_US);
                DcmUnsignedShort *e = new DcmUnsignedShort(tag);
                p.note(e->putUint16((Uint16)o.padding_value), DCM_PixelPaddingValue);
                insert_or_delete(p, dset, e);
            }
        }
        if (mr) {
            p.str(DCM_WindowCenter, "1100");
            p.str(DCM_WindowWidth, "400");
        } else if (o.multi_window) {
            p.str(DCM_WindowCenter, ds(o.window_center) + "\\600");
            p.str(DCM_WindowWidth, ds(o.window_width) + "\\2800");
            p.str(DCM_WindowCenterWidthExplanation, "BRAIN\\BONE");
        } else {
            p.str(DCM_WindowCenter, ds(o.window_center));
            p.str(DCM_WindowWidth, ds(o.window_width));
        }
        if (st.rescale) {
            p.str(DCM_RescaleIntercept, ds(st.intercept));
            p.str(DCM_RescaleSlope, ds(st.slope));
            p.str(DCM_RescaleType, "HU");
        }
    }

    // Builds and saves one file; on failure returns false and sets err.
    bool write(const Series &se, const ImageSpec &im, const std::vector<uint16_t> &px, const std::string &path,
               std::string &err) const
    {
        DcmFileFormat ff;
        DcmDataset *dset = ff.getDataset();
        Put p(dset);
        fill(p, dset, se, im);
        if (st.eight_bit) {
            std::vector<Uint8> b(px.size());
            for (size_t i = 0; i < px.size(); i++)
                b[i] = (Uint8)px[i];
            p.note(dset->putAndInsertUint8Array(DCM_PixelData, b.data(), (unsigned long)b.size()), DCM_PixelData);
        } else {
            p.note(dset->putAndInsertUint16Array(DCM_PixelData, px.data(), (unsigned long)px.size()), DCM_PixelData);
        }
        if (p.first.bad()) {
            err = "cannot set " + p.what + ": " + p.first.text();
            return false;
        }
        return encode_save(ff, se.image_type, path, err);
    }

    // RescaleSlope and RescaleIntercept of a frame with --enhanced-rescale
    // vary, from its place in the stack: different from its neighbours.
    static void vary_rescale(int index, double &slope, double &intercept)
    {
        slope = index % 3 == 1 ? 0.5 : 1.0;
        intercept = index % 2 == 1 ? -1024.0 : 0.0;
    }

    // Builds and saves the series as one Enhanced CT image: frames in the
    // order given, px[k] the stored pixels of frames[k] as render() made
    // them. Geometry, rescale and windows go into the functional groups,
    // not the top level, so a reader must use them.
    bool write_enhanced(const Series &se, const std::vector<const ImageSpec *> &frames,
                        const std::vector<const std::vector<uint16_t> *> &px, const std::string &path,
                        std::string &err) const
    {
        DcmFileFormat ff;
        DcmDataset *dset = ff.getDataset();
        Put p(dset);
        const ImageSpec &first = *frames[0];
        fill(p, dset, se, first);
        const DcmTagKey moved[] = {DCM_ImagePositionPatient, DCM_ImageOrientationPatient, DCM_SliceLocation,
                                   DCM_PixelSpacing,         DCM_SliceThickness,          DCM_RescaleIntercept,
                                   DCM_RescaleSlope,         DCM_RescaleType,             DCM_WindowCenter,
                                   DCM_WindowWidth,          DCM_WindowCenterWidthExplanation,
                                   DCM_GantryDetectorTilt};
        for (const DcmTagKey &t : moved)
            dset->findAndDeleteElement(t);
        const std::string frame_type = se.image_type + "\\NONE";
        p.str(DCM_SOPClassUID, UID_EnhancedCTImageStorage);
        p.str(DCM_SOPInstanceUID, se.instance_uid_prefix + ".1");
        p.str(DCM_ImageType, frame_type);
        p.str(DCM_ContentQualification, "PRODUCT");
        p.str(DCM_NumberOfFrames, std::to_string(frames.size()));
        if (!o.no_instance_number)
            p.str(DCM_InstanceNumber, "1");
        const double ps = o.fov_mm / o.size;

        DcmItem *shared = nullptr, *g = nullptr;
        p.note(dset->findOrCreateSequenceItem(DCM_SharedFunctionalGroupsSequence, shared, 0),
               DCM_SharedFunctionalGroupsSequence);
        if (shared == nullptr) {
            err = "cannot create SharedFunctionalGroupsSequence";
            return false;
        }
        auto group = [&](DcmItem *parent, const DcmTagKey &seq) {
            DcmItem *it = nullptr;
            p.note(parent->findOrCreateSequenceItem(seq, it, 0), seq);
            return it;
        };
        if ((g = group(shared, DCM_PixelMeasuresSequence)) != nullptr) {
            Put q(g);
            q.str(DCM_PixelSpacing, ds(ps) + "\\" + ds(ps));
            q.str(DCM_SliceThickness, ds(o.thickness_mm));
            p.note(q.first, DCM_PixelMeasuresSequence);
        }
        if ((g = group(shared, DCM_PlaneOrientationSequence)) != nullptr) {
            Put q(g);
            q.str(DCM_ImageOrientationPatient, ds3(first.row) + "\\" + ds3(first.col));
            p.note(q.first, DCM_PlaneOrientationSequence);
        }
        if ((g = group(shared, DCM_FrameVOILUTSequence)) != nullptr) {
            Put q(g);
            q.str(DCM_WindowCenter, ds(o.window_center));
            q.str(DCM_WindowWidth, ds(o.window_width));
            p.note(q.first, DCM_FrameVOILUTSequence);
        }
        if ((g = group(shared, DCM_CTAcquisitionDetailsSequence)) != nullptr) {
            Put q(g);
            q.str(DCM_GantryDetectorTilt, ds(o.tilt_deg));
            p.note(q.first, DCM_CTAcquisitionDetailsSequence);
        }
        if (!o.enhanced_vary && (g = group(shared, DCM_PixelValueTransformationSequence)) != nullptr) {
            Put q(g);
            q.str(DCM_RescaleIntercept, ds(st.intercept));
            q.str(DCM_RescaleSlope, ds(st.slope));
            q.str(DCM_RescaleType, "HU");
            p.note(q.first, DCM_PixelValueTransformationSequence);
        }

        const size_t n = (size_t)o.size * o.size;
        std::vector<uint16_t> all(n * frames.size());
        for (size_t k = 0; k < frames.size(); k++) {
            const ImageSpec &im = *frames[k];
            DcmItem *fr = nullptr;
            p.note(dset->findOrCreateSequenceItem(DCM_PerFrameFunctionalGroupsSequence, fr, -2),
                   DCM_PerFrameFunctionalGroupsSequence);
            if (fr == nullptr) {
                err = "cannot create PerFrameFunctionalGroupsSequence";
                return false;
            }
            if ((g = group(fr, DCM_FrameContentSequence)) != nullptr) {
                Put q(g);
                q.str(DCM_FrameAcquisitionNumber, "1");
                q.str(DCM_StackID, "1");
                q.str(DCM_InStackPositionNumber, std::to_string(im.instance));
                p.note(q.first, DCM_FrameContentSequence);
            }
            if ((g = group(fr, DCM_PlanePositionSequence)) != nullptr) {
                Put q(g);
                q.str(DCM_ImagePositionPatient, ds3(im.origin));
                p.note(q.first, DCM_PlanePositionSequence);
            }
            if ((g = group(fr, DCM_CTImageFrameTypeSequence)) != nullptr) {
                Put q(g);
                q.str(DCM_FrameType, frame_type);
                p.note(q.first, DCM_CTImageFrameTypeSequence);
            }
            double slope = st.slope, intercept = st.intercept;
            if (o.enhanced_vary) {
                vary_rescale(im.index, slope, intercept);
                if ((g = group(fr, DCM_PixelValueTransformationSequence)) != nullptr) {
                    Put q(g);
                    q.str(DCM_RescaleIntercept, ds(intercept));
                    q.str(DCM_RescaleSlope, ds(slope));
                    q.str(DCM_RescaleType, "HU");
                    p.note(q.first, DCM_PixelValueTransformationSequence);
                }
            }
            const std::vector<uint16_t> &src = *px[k];
            uint16_t *dst = all.data() + k * n;
            for (size_t i = 0; i < n; i++) {
                if (!o.enhanced_vary || (o.padding_given && (int16_t)src[i] == (int16_t)o.padding_value)) {
                    dst[i] = src[i];
                    continue;
                }
                // Same HU with this frame's rescale: signed storage (checked).
                double hu = (int16_t)src[i] * st.slope + st.intercept;
                long v = std::lrint((hu - intercept) / slope);
                if (v < st.smin || v > st.smax) {
                    err = "--enhanced-rescale vary: a stored value does not fit";
                    return false;
                }
                dst[i] = (uint16_t)(v & 0xFFFF);
            }
        }
        p.note(dset->putAndInsertUint16Array(DCM_PixelData, all.data(), (unsigned long)all.size()), DCM_PixelData);
        if (p.first.bad()) {
            err = "cannot set " + p.what + ": " + p.first.text();
            return false;
        }
        return encode_save(ff, frame_type, path, err);
    }

    // Encodes ff in the transfer syntax of the run and saves it.
    bool encode_save(DcmFileFormat &ff, const std::string &image_type, const std::string &path,
                     std::string &err) const
    {
        DcmDataset *dset = ff.getDataset();
        E_TransferSyntax xfer = xfer_of(o.ts);
        if (encapsulated(o.ts)) {
            OFCondition c = dset->chooseRepresentation(xfer, rep.get());
            if (c.bad() || !dset->canWriteXfer(xfer)) {
                err = std::string("DCMTK cannot encode ") + DcmXfer(xfer).getXferName() + ": " +
                      (c.bad() ? c.text() : "no encoder for this image");
                return false;
            }
            // The JPEG encoders mark their output DERIVED\SECONDARY; a
            // scanner that compresses its own images keeps ORIGINAL.
            Put q(dset);
            q.str(DCM_ImageType, image_type);
            if (st.eight_bit && st.rescale)
                q.str(DCM_RescaleType, "HU");
            if (q.first.bad()) {
                err = "cannot set " + q.what + ": " + q.first.text();
                return false;
            }
        }
        OFCondition c = ff.saveFile(path.c_str(), xfer, EET_ExplicitLength, EGL_recalcGL, EPD_noChange, 0, 0,
                                    EWM_fileformat);
        if (c.bad()) {
            err = c.text();
            return false;
        }
        return true;
    }
};

std::string join_path(const std::string &dir, const std::string &file)
{
    if (!dir.empty() && dir.back() == '/')
        return dir + file;
    return dir + "/" + file;
}

// Gives every image of both series a random 8-character name and puts
// the writing order in random order; both from the seed.
void shuffle_names(uint64_t seed, std::vector<std::pair<Series *, size_t>> &order)
{
    Rng rng(seed ^ 0x53485546464C45ULL);
    std::vector<std::string> used;
    for (auto &e : order) {
        std::string name;
        do {
            char b[16];
            static const char hex[] = "0123456789ABCDEF";
            for (int k = 0; k < 8; k++)
                b[k] = hex[rng.next() >> 60];
            b[8] = '\0';
            name = b;
        } while (std::find(used.begin(), used.end(), name) != used.end());
        used.push_back(name);
        e.first->images[e.second].file = name;
    }
    for (size_t k = order.size(); k > 1; k--) {
        size_t r = (size_t)(rng.uniform() * k);
        std::swap(order[k - 1], order[r]);
    }
}

}  // namespace

int main(int argc, char **argv)
{
    Options o = parse_args(argc, argv);
    Storage st{};
    check_options(o, st);

    // DCMTK: quiet logging, codecs that do not invent new UIDs (so output
    // is reproducible), and range-preserving lossy JPEG (see README).
    OFLog::configure(OFLogger::ERROR_LOG_LEVEL);
    if (!dcmDataDict.isDictionaryLoaded()) {
        std::fprintf(stderr, "%s: the DICOM data dictionary is not loaded (is DCMDICTPATH set wrongly?)\n",
                     kProgram);
        return kExitFailure;
    }
    DJEncoderRegistration::registerCodecs(ECC_lossyYCbCr, EUC_never, OFFalse, 0, 0, 0, OFTrue, ESS_444, OFFalse,
                                          OFFalse, 0, 0, 0.0, 0.0, 0, 0, 0, 0,
                                          OFFalse /* use the full range, not the pixel values */,
                                          OFTrue /* rescale back to the original values */);
    DJLSEncoderRegistration::registerCodecs(0, 0, 0, 0, OFFalse /* raw: keep stored values */, 0, OFTrue,
                                            EJLSUC_never);
    DcmRLEEncoderRegistration::registerCodecs(OFFalse, 0, OFTrue, OFFalse);

    Study study = make_study(o);
    uint64_t series_hash = hash_string(canonical(o));
    Series main_series, loc_series;
    main_series.number = o.series_number;
    main_series.description = o.series_description.empty() ? default_description(o) : o.series_description;
    const char *third = o.modality == "MR" ? "M\\ND" : (o.plane == Plane::Axial ? "AXIAL" : "REFORMATTED");
    main_series.image_type = std::string(o.derived || o.eight_bit ? "DERIVED\\SECONDARY\\" : "ORIGINAL\\PRIMARY\\") +
                             third;
    main_series.sop_class = o.modality == "MR" ? UID_MRImageStorage
                            : o.eight_bit      ? UID_SecondaryCaptureImageStorage
                                               : UID_CTImageStorage;
    main_series.series_uid = make_uid(SITE_SERIES_UID_ROOT, series_hash, std::to_string(main_series.number),
                                      o.invalid_uid);
    main_series.instance_uid_prefix = make_uid(SITE_INSTANCE_UID_ROOT, series_hash,
                                               std::to_string(main_series.number), o.invalid_uid);
    loc_series = main_series;
    loc_series.number = o.series_number == 1 ? 101 : 1;
    loc_series.description = "SCOUT";
    loc_series.image_type = o.derived ? "DERIVED\\SECONDARY\\LOCALIZER" : "ORIGINAL\\PRIMARY\\LOCALIZER";
    loc_series.series_uid = make_uid(SITE_SERIES_UID_ROOT, series_hash, std::to_string(loc_series.number),
                                     o.invalid_uid);
    loc_series.instance_uid_prefix = make_uid(SITE_INSTANCE_UID_ROOT, series_hash,
                                              std::to_string(loc_series.number), o.invalid_uid);
    plan_series(o, main_series, loc_series);

    // Subject constants and the scene.
    Scene scene{};
    {
        uint64_t s = o.seed ^ 0x48454144ULL;
        Rng r(splitmix64(s));
        scene.subj.scale = 0.94 + 0.10 * r.uniform();
        scene.subj.ventricles = 0.8 + 0.6 * r.uniform();
        scene.subj.atrophy = 0.85 + 0.4 * r.uniform();
        scene.subj.phase1 = 2 * kPi * r.uniform();
        scene.subj.phase2 = 2 * kPi * r.uniform();
    }
    scene.bleeds = o.bleeds;
    scene.contrast = o.contrast;
    scene.pixel_mm = o.fov_mm / o.size;

    // Output folder.
    {
        std::error_code ec;
        std::filesystem::create_directories(o.out_dir, ec);
        bool is_dir = !ec && std::filesystem::is_directory(o.out_dir, ec);
        if (ec || !is_dir) {
            std::fprintf(stderr, "%s: cannot create folder %s: %s\n", kProgram, o.out_dir.c_str(),
                         ec ? ec.message().c_str() : "not a folder");
            return kExitFailure;
        }
    }

    // What to write, in order.
    std::vector<std::pair<Series *, size_t>> order;
    for (size_t k = 0; k < loc_series.images.size(); k++)
        order.emplace_back(&loc_series, k);
    for (size_t k = 0; k < main_series.images.size(); k++)
        order.emplace_back(&main_series, k);
    if (o.shuffle)
        shuffle_names(o.seed, order);

    int jobs = o.jobs;
    if (jobs <= 0) {
        unsigned hc = std::thread::hardware_concurrency();
        jobs = (int)std::min(8u, std::max(1u, hc));
    }
    jobs = std::min<int>(jobs, (int)order.size());

    Writer writer(o, st, study);
    std::atomic<size_t> next{0};
    std::atomic<bool> failed{false};
    std::mutex err_mutex;
    std::string first_error;
    std::vector<SliceStats> stats(order.size());
    // --enhanced: the series' pixels wait here and go into one file at the end
    std::vector<std::vector<uint16_t>> enhanced_px(o.enhanced ? main_series.images.size() : 0);
    auto t0 = std::chrono::steady_clock::now();

    auto work = [&]() {
        std::vector<uint16_t> px;
        while (!failed.load()) {
            size_t k = next.fetch_add(1);
            if (k >= order.size())
                break;
            Series &se = *order[k].first;
            const ImageSpec &im = se.images[order[k].second];
            uint64_t ns = hash_string(std::to_string(o.seed) + (im.localizer ? ":loc:" : ":slice:") +
                                      std::to_string(im.index));
            if (o.enhanced && !im.localizer) {
                stats[k] = render(o, scene, st, im, ns, enhanced_px[order[k].second]);
                continue;
            }
            stats[k] = render(o, scene, st, im, ns, px);
            std::string path = join_path(o.out_dir, im.file), err;
            if (!writer.write(se, im, px, path, err)) {
                std::lock_guard<std::mutex> lock(err_mutex);
                if (!failed.exchange(true))
                    first_error = "cannot write " + path + ": " + err;
            }
        }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < jobs; t++)
        pool.emplace_back(work);
    work();
    for (auto &t : pool)
        t.join();
    size_t files = order.size();
    if (o.enhanced && !failed) {
        // Frame order: the stack, or a random permutation with --shuffle,
        // so that a reader has to sort frames by position.
        std::vector<size_t> perm(main_series.images.size());
        for (size_t k = 0; k < perm.size(); k++)
            perm[k] = k;
        if (o.shuffle) {
            Rng rng(o.seed ^ 0x4652414D4553ULL);
            for (size_t k = perm.size(); k > 1; k--)
                std::swap(perm[k - 1], perm[(size_t)(rng.uniform() * k)]);
        }
        std::string name = o.shuffle ? main_series.images[0].file : "EN0001.dcm";
        std::vector<const ImageSpec *> frames;
        std::vector<const std::vector<uint16_t> *> px;
        for (size_t k = 0; k < perm.size(); k++) {
            ImageSpec &im = main_series.images[perm[k]];
            im.file = name;
            im.frame = (int)k;
            frames.push_back(&im);
            px.push_back(&enhanced_px[perm[k]]);
        }
        std::string path = join_path(o.out_dir, name), err;
        if (!writer.write_enhanced(main_series, frames, px, path, err)) {
            failed = true;
            first_error = "cannot write " + path + ": " + err;
        }
        files = loc_series.images.size() + 1;
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    if (failed) {
        std::fprintf(stderr, "%s: %s\n", kProgram, first_error.c_str());
        return kExitFailure;
    }

    if (o.verbose) {
        // In stack order, whatever the writing order was.
        std::vector<size_t> idx(order.size());
        for (size_t k = 0; k < idx.size(); k++)
            idx[k] = k;
        std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
            const ImageSpec &ia = order[a].first->images[order[a].second];
            const ImageSpec &ib = order[b].first->images[order[b].second];
            if (ia.localizer != ib.localizer)
                return ia.localizer;
            return ia.instance < ib.instance;
        });
        for (size_t k : idx) {
            const ImageSpec &im = order[k].first->images[order[k].second];
            const SliceStats &s = stats[k];
            std::printf("%s instance %d position %s hu %.0f..%.0f bleed_pixels %ld", im.file.c_str(), im.instance,
                        ds3(im.origin).c_str(), s.hu_min, s.hu_max, s.bleed_pixels);
            if (o.enhanced && !im.localizer)
                std::printf(" frame %d", im.frame + 1);
            if (s.bleed_pixels > 0)
                std::printf(" bleed_max_hu %.0f", s.bleed_max);
            if (s.clipped > 0)
                std::printf(" clipped %ld", s.clipped);
            std::printf("\n");
        }
    }
    if (!o.quiet) {
        std::printf("%s: wrote %zu files (%s) to %s in %.2f s; study %s series %s\n", kProgram, files,
                    DcmXfer(xfer_of(o.ts)).getXferName(), o.out_dir.c_str(), secs, study.study_uid.c_str(),
                    main_series.series_uid.c_str());
    }

    DJEncoderRegistration::cleanup();
    DJLSEncoderRegistration::cleanup();
    DcmRLEEncoderRegistration::cleanup();
    return 0;
}
