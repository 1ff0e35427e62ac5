/* dicom.cc - the DICOM reading stage (see include/hemoscan/dicom.h):
 *   - DCMTK parses files and decodes RLE and JPEG;
 *   - CharLS 2 decodes JPEG-LS (the CharLS 1.0 inside DCMTK aborts the
 *     process on some bad streams);
 *   - OpenJPEG decodes JPEG 2000, which open-source DCMTK cannot;
 *   - the rest is hemoscan's own rules for which files are axial CT slices,
 *     how stored values become HU and when those HU would be meaningless.
 *
 * Why it is built this way:
 * - This file and dicom_sc.cc (the review's Secondary Capture) are the
 *   only C++ files and the only ones that see DCMTK, so the C code never
 *   needs a C++ header. Every entry point is extern "C" and catches
 *   everything: an exception must never unwind into C.
 * - The header read and the pixel read share one classification function,
 *   so hs_dicom_read_hu can refuse a file whose verdict changed since the
 *   scan (a file replaced while a study was arriving) by the same rules.
 * - Stored values are turned into HU here, by hand, rather than through
 *   DicomImage: the padding, the 12-bit wrap-around and the JPEG 2000
 *   signedness fixes must happen on the raw stored values, and DicomImage
 *   would hand back values already through its own modality transform.
 * - A rescale or content that makes HU meaningless (a NaN intercept, a
 *   negative slope, an intercept 2000 HU off) fails the decode rather than
 *   changing the verdict: the slice stays in its series and is recorded as
 *   not scored, so the study becomes not assessable instead of having its
 *   bad slices quietly dropped and the rest read as "no hemorrhage".
 * - The study, series and SOP instance UIDs are read as raw bytes
 *   (getPartialValue), not through DCMTK's string getters, which stop at a
 *   NUL and delete white space inside a UI value: files are grouped by
 *   these UIDs, so two values must never read the same (dicom.h, "UID
 *   keys").
 * - Codecs are registered once (std::call_once) and never deregistered,
 *   because DCMTK's registration must not race with decoding in another
 *   thread. DCMTK's own logging is silenced: every failure reaches the
 *   caller as a message in hs_error or a verdict reason instead. */
#include "dcmtk/config/osconfig.h"

#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcfcache.h"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcistrmf.h"
#include "dcmtk/dcmdata/dcmetinf.h"
#include "dcmtk/dcmdata/dcpixel.h"
#include "dcmtk/dcmdata/dcpixseq.h"
#include "dcmtk/dcmdata/dcpxitem.h"
#include "dcmtk/dcmdata/dcrledrg.h"
#include "dcmtk/dcmdata/dcuid.h"
#include "dcmtk/dcmdata/dcxfer.h"
#include "dcmtk/dcmjpeg/djdecode.h"
#include "dcmtk/oflog/oflog.h"

#include <charls/charls.h>
#include <openjpeg.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include <sys/stat.h>

#include "hemoscan/dicom.h"
#include "hemoscan/ljpeg.h"
/* checksum.h has no C++ guards of its own (see dicom.h). */
extern "C" {
#include "hemoscan/checksum.h"
}

namespace {

/* Read at most this many bytes of an element value while parsing a header;
 * larger values (the pixels) stay on disk until someone asks for them. */
const Uint32 header_max_read = 4096;

/* Longest value read from a header attribute. hemoscan's fields are all
 * far shorter; see dicom_attribute. */
const Uint32 max_attribute = 65536;

/* HU given to padding pixels: air, the value of everything outside the
 * patient, so padding never looks like tissue or bone. */
const float padding_hu = -1024.0f;

std::once_flag codecs_once;

/* Registers the decoders on construction and removes them at process exit.
 * Created as a function-local static on first use, so its destructor runs
 * before DCMTK's own statics (built earlier, when its libraries loaded) are
 * torn down; without it the registrations show up as leaks under valgrind. */
struct codec_registration {
    codec_registration()
    {
        OFLog::configure(OFLogger::FATAL_LOG_LEVEL);
        DJDecoderRegistration::registerCodecs();
        DcmRLEDecoderRegistration::registerCodecs();
    }
    ~codec_registration()
    {
        DcmRLEDecoderRegistration::cleanup();
        DJDecoderRegistration::cleanup();
    }
};

void register_codecs_once()
{
    std::call_once(codecs_once, []() { static codec_registration registration; });
}

/* Copy s into a fixed field of cap bytes, dropping DICOM's trailing space
 * and NUL padding and any leading spaces. */
void copy_field(char *dst, size_t cap, const std::string &s)
{
    size_t b = 0;
    size_t e = s.size();
    while (b < e && s[b] == ' ')
        b++;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\0'))
        e--;
    size_t n = e - b;
    if (n >= cap)
        n = cap - 1;
    std::memcpy(dst, s.data() + b, n);
    dst[n] = '\0';
}

/* The top-level element of tag, unless absent or longer than
 * max_attribute. DCMTK allocates the length an element claims when its
 * value is first read (and some getters reserve it again for the text), so
 * a claim of 4 GB (or an undefined length on an attribute that cannot have
 * one, as a fuzzed 16-byte file gave BitsAllocated) must not be read. */
DcmElement *dicom_attribute(DcmItem *ds, const DcmTagKey &tag)
{
    DcmElement *el = nullptr;
    if (ds->findAndGetElement(tag, el).bad() || el == nullptr || el->getLengthField() > max_attribute)
        return nullptr;
    return el;
}

/* True when no value in obj claims more than limit bytes: obj's own when
 * it is an element, those of every element nested in it when it is a
 * sequence or an item, at any depth. DCMTK's loadAllDataIntoMemory
 * allocates each claimed length before reading, and in a fuzzed 8 kB file
 * a sequence of 5 kB held an element that claimed 2.7 GB. */
bool values_within(DcmObject *obj, Uint32 limit)
{
    if (obj->isLeaf())
        return obj->getLengthField() <= limit;
    for (DcmObject *child = obj->nextInContainer(nullptr); child != nullptr; child = obj->nextInContainer(child)) {
        if (!values_within(child, limit))
            return false;
    }
    return true;
}

/* All values of a string attribute, backslashes kept; "" if absent. */
std::string get_string(DcmItem *ds, const DcmTagKey &tag)
{
    DcmElement *el = dicom_attribute(ds, tag);
    OFString v;
    if (el != nullptr && el->getOFStringArray(v).good())
        return std::string(v.c_str());
    return std::string();
}

void get_field(DcmItem *ds, const DcmTagKey &tag, char *dst, size_t cap)
{
    copy_field(dst, cap, get_string(ds, tag));
}

/* Every byte of a UID attribute's value, embedded NULs included, with
 * DICOM's trailing padding (spaces, or a NUL for UI) removed; "" if
 * absent. Not getOFStringArray: its C string stops at the first NUL, and
 * two UIDs that differ only after one would become the same study. Not
 * getString first either: on a UI element, DCMTK's input correction
 * deletes every white-space byte, wherever it is, so "1.2 3" would be
 * read as "1.23"; getPartialValue copies the bytes as they are. */
std::string get_raw_uid(DcmItem *ds, const DcmTagKey &tag)
{
    DcmElement *el = dicom_attribute(ds, tag);
    std::string v;
    char *text = nullptr;
    Uint32 len = 0;
    if (el == nullptr)
        return v;
    Uint32 field = el->getLengthField();
    v.resize(field);
    if (field > 0 && el->getPartialValue(&v[0], 0, field).bad()) {
        v.clear();
        if (el->getString(text, len).good() && text != nullptr)
            v.assign(text, len);
    }
    while (!v.empty() && (v.back() == ' ' || v.back() == '\0'))
        v.pop_back();
    return v;
}

/* A byte that may stand for itself in a key (see dicom.h). */
bool uid_key_byte(unsigned char c)
{
    return c >= '!' && c <= '~' && c != '#';
}

/* The key of raw into key (HS_UID_KEY_MAX bytes), and the note on it
 * into note (HS_UID_NOTE_MAX bytes) naming it as name: see dicom.h. */
void uid_key(const std::string &raw, const char *name, char *key, char *note)
{
    key[0] = '\0';
    note[0] = '\0';
    size_t n = raw.size();
    bool plain = n <= 64;
    size_t bad = n; /* first byte outside the UI set (digits and dots) */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)raw[i];
        if (!uid_key_byte(c))
            plain = false;
        if (bad == n && !((c >= '0' && c <= '9') || c == '.'))
            bad = i;
    }
    if (plain) {
        std::memcpy(key, raw.data(), n);
        key[n] = '\0';
    } else {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)raw[i];
            bool as_is = uid_key_byte(c) && c != '\\';
            if (k + (as_is ? 1 : 4) > HS_UID_KEY_PREFIX)
                break;
            if (as_is)
                key[k++] = (char)c;
            else
                k += (size_t)std::snprintf(key + k, 5, "\\x%02x", c);
        }
        unsigned char digest[HS_SHA256_LEN];
        char hex[65];
        hs_sha256(raw.data(), n, digest);
        hs_sha256_hex(digest, hex);
        std::snprintf(key + k, HS_UID_KEY_MAX - k, "#sha256:%s", hex);
    }

    std::string what;
    if (n > 64)
        what = " is " + std::to_string(n) + " bytes (DICOM allows 64)";
    if (bad < n) {
        unsigned char c = (unsigned char)raw[bad];
        char b[64];
        if (c == '\0')
            std::snprintf(b, sizeof b, "a NUL");
        else if (c == ' ')
            std::snprintf(b, sizeof b, "a space");
        else if (c < 0x20 || c == 0x7f)
            std::snprintf(b, sizeof b, "control byte 0x%02x", c);
        else if (c > 0x7e)
            std::snprintf(b, sizeof b, "byte 0x%02x", c);
        else
            std::snprintf(b, sizeof b, "'%c'", c);
        what += std::string(n > 64 ? " and" : "") + " holds " + b + " at byte " + std::to_string(bad + 1);
        if (c > ' ' && c < 0x7f)
            what += " (a UID has digits and dots only)";
    }
    if (!what.empty())
        std::snprintf(note, HS_UID_NOTE_MAX, "%s%s", name, what.c_str());
}

void get_uid(DcmItem *ds, const DcmTagKey &tag, const char *name, char *key, char *note)
{
    uid_key(get_raw_uid(ds, tag), name, key, note);
}

/* Value pos of a decimal (DS, or anything DCMTK can read as a number);
 * 1 if present and finite. */
int get_double(DcmItem *ds, const DcmTagKey &tag, unsigned long pos, double *out)
{
    DcmElement *el = dicom_attribute(ds, tag);
    Float64 v = 0.0;
    if (el == nullptr || el->getFloat64(v, pos).bad())
        return 0;
    if (!std::isfinite(v))
        return 0;
    *out = v;
    return 1;
}

/* A rescale attribute (RescaleSlope, RescaleIntercept) as written, so that
 * the checks of rescale_problem can tell a missing value from a bad one:
 * 1 with *out set when present and finite, 0 when absent or empty, -1 with
 * *out = NaN when present but not a finite number ("NaN", "1e999", text). */
int get_rescale(DcmItem *ds, const DcmTagKey &tag, double *out)
{
    if (get_double(ds, tag, 0, out))
        return 1;
    std::string txt = get_string(ds, tag);
    if (txt.find_first_not_of(" \\") == std::string::npos)
        return 0;
    *out = NAN;
    return -1;
}

/* The first n values of a decimal attribute into out; 1 if all are there
 * (out is then fully written). */
int get_doubles(DcmItem *ds, const DcmTagKey &tag, unsigned long n, double *out)
{
    double v[6];
    for (unsigned long i = 0; i < n && i < 6; i++)
        if (!get_double(ds, tag, i, &v[i]))
            return 0;
    std::memcpy(out, v, n * sizeof *out);
    return 1;
}

/* An integer attribute stored as IS or as a binary US/SS/UL/SL. */
int get_int(DcmItem *ds, const DcmTagKey &tag, int *out)
{
    DcmElement *el = dicom_attribute(ds, tag);
    if (el == nullptr)
        return 0;
    Sint32 s = 0;
    if (el->getSint32(s).good()) {
        *out = (int)s;
        return 1;
    }
    Uint16 u = 0;
    if (el->getUint16(u).good()) {
        *out = (int)u;
        return 1;
    }
    Sint16 ss = 0;
    if (el->getSint16(ss).good()) {
        *out = (int)ss;
        return 1;
    }
    /* IS values are strings: DCMTK's Sint32 getter covers valid ones only,
     * so parse the text too and refuse anything with trailing junk. */
    std::string txt = get_string(ds, tag);
    size_t slash = txt.find('\\');
    if (slash != std::string::npos)
        txt.resize(slash);
    if (txt.empty())
        return 0;
    char *end = nullptr;
    long v = std::strtol(txt.c_str(), &end, 10);
    while (end != nullptr && *end == ' ')
        end++;
    if (end == txt.c_str() || end == nullptr || *end != '\0')
        return 0;
    *out = (int)v;
    return 1;
}

/* A 16-bit padding attribute (US or SS by PixelRepresentation) as its raw
 * bit pattern, so that it goes through the same masking as the pixels. */
int get_raw16(DcmItem *ds, const DcmTagKey &tag, unsigned *out)
{
    DcmElement *el = dicom_attribute(ds, tag);
    if (el == nullptr)
        return 0;
    Uint16 u = 0;
    if (el->getUint16(u).good()) {
        *out = u;
        return 1;
    }
    Sint16 s = 0;
    if (el->getSint16(s).good()) {
        *out = (unsigned)(Uint16)s;
        return 1;
    }
    return 0;
}

bool has_value(const std::string &multi, const char *value)
{
    size_t start = 0;
    while (start <= multi.size()) {
        size_t end = multi.find('\\', start);
        if (end == std::string::npos)
            end = multi.size();
        std::string one = multi.substr(start, end - start);
        while (!one.empty() && one.back() == ' ')
            one.pop_back();
        while (!one.empty() && one.front() == ' ')
            one.erase(0, 1);
        if (one == value)
            return true;
        start = end + 1;
    }
    return false;
}

bool starts_with(const char *s, const char *prefix)
{
    return std::strncmp(s, prefix, std::strlen(prefix)) == 0;
}

/* CT Image Storage, Enhanced CT, Legacy Converted Enhanced CT. */
bool is_ct_sop_class(const char *uid)
{
    return std::strcmp(uid, "1.2.840.10008.5.1.4.1.1.2") == 0 ||
           starts_with(uid, "1.2.840.10008.5.1.4.1.1.2.");
}

bool is_secondary_capture(const char *uid)
{
    return std::strcmp(uid, "1.2.840.10008.5.1.4.1.1.7") == 0 ||
           starts_with(uid, "1.2.840.10008.5.1.4.1.1.7.");
}

bool is_j2k(E_TransferSyntax x)
{
    return x == EXS_JPEG2000LosslessOnly || x == EXS_JPEG2000;
}

bool is_jpegls(E_TransferSyntax x)
{
    return x == EXS_JPEGLSLossless || x == EXS_JPEGLSLossy;
}

/* The transfer syntaxes hs_dicom_read_hu decodes (see dicom.h). */
bool xfer_supported(E_TransferSyntax x)
{
    switch (x) {
    case EXS_LittleEndianImplicit:
    case EXS_LittleEndianExplicit:
    case EXS_BigEndianExplicit:
    case EXS_DeflatedLittleEndianExplicit:
    case EXS_RLELossless:
    case EXS_JPEGProcess1:
    case EXS_JPEGProcess2_4:
    case EXS_JPEGProcess14:
    case EXS_JPEGProcess14SV1:
    case EXS_JPEGLSLossless:
    case EXS_JPEGLSLossy:
    case EXS_JPEG2000LosslessOnly:
    case EXS_JPEG2000:
        return true;
    default:
        return false;
    }
}

/* Whether the bytes of f from offset start up to the first Pixel Data tag
 * hold the tag of a DirectoryRecordSequence (0004,1220), in either byte
 * order. DCMTK reads the items of that sequence as DICOMDIR records, and
 * its record parser threw std::out_of_range on a malformed
 * DirectoryRecordType (a fuzzed 416-byte file), leaking the record it was
 * reading. hemoscan needs nothing from a DICOMDIR, so such a file is not
 * given to DCMTK at all. Raw bytes, not a parse: stopping at the first
 * Pixel Data tag keeps pixel values from matching by chance, and a header
 * holds these four bytes only as a tag. */
bool has_directory_records(std::FILE *f, long start)
{
    static const unsigned char dir_le[4] = {0x04, 0x00, 0x20, 0x12}, dir_be[4] = {0x00, 0x04, 0x12, 0x20};
    static const unsigned char pix_le[4] = {0xE0, 0x7F, 0x10, 0x00}, pix_be[4] = {0x7F, 0xE0, 0x00, 0x10};
    if (std::fseek(f, start, SEEK_SET) != 0)
        return false;
    std::vector<unsigned char> buf(65536 + 3);
    size_t kept = 0; /* the last 3 bytes of the previous chunk, for tags across chunks */
    for (;;) {
        size_t got = std::fread(buf.data() + kept, 1, buf.size() - kept, f);
        size_t n = kept + got;
        for (size_t i = 0; i + 4 <= n; i++) {
            const unsigned char *b = buf.data() + i;
            if (std::memcmp(b, pix_le, 4) == 0 || std::memcmp(b, pix_be, 4) == 0)
                return false;
            if (std::memcmp(b, dir_le, 4) == 0 || std::memcmp(b, dir_be, 4) == 0)
                return true;
        }
        if (got == 0)
            return false;
        kept = n < 3 ? n : 3;
        std::memmove(buf.data(), buf.data() + n - kept, kept);
    }
}

/* What a file is before DCMTK sees it: DICOM with a preamble (DICM),
 * a raw data set (ACR-NEMA style), a DICOMDIR not to be parsed (see
 * has_directory_records), not DICOM, or unreadable. One open and one
 * read from the start of the file for all of it. DCMTK's auto-detection
 * will read almost any bytes as an implicit-VR data set, so a file without
 * the "DICM" marker is only handed to it when it starts like an ACR-NEMA
 * data set: an element of group 0000 (command), 0002 (meta) or 0008
 * (identifying), little endian. */
enum sniff { HS_SNIFF_DICM, HS_SNIFF_RAW, HS_SNIFF_DIRECTORY, HS_SNIFF_NOT_DICOM, HS_SNIFF_IO };

sniff sniff_file(const char *path, std::string *why)
{
    FILE *f = std::fopen(path, "rb");
    if (f == nullptr) {
        *why = std::strerror(errno);
        return HS_SNIFF_IO;
    }
    unsigned char b[132];
    size_t n = std::fread(b, 1, sizeof b, f);
    if (std::ferror(f) != 0) {
        *why = std::strerror(errno);
        std::fclose(f);
        return HS_SNIFF_IO;
    }
    sniff kind = HS_SNIFF_NOT_DICOM;
    if (n == sizeof b && std::memcmp(b + 128, "DICM", 4) == 0) {
        kind = HS_SNIFF_DICM;
    } else if (n < 8) {
        *why = "shorter than a DICOM element";
    } else {
        unsigned group = (unsigned)b[0] | ((unsigned)b[1] << 8);
        unsigned element = (unsigned)b[2] | ((unsigned)b[3] << 8);
        if ((group == 0x0000 || group == 0x0002 || group == 0x0008) && element < 0x1000)
            kind = HS_SNIFF_RAW;
        else
            *why = "no DICM marker at offset 128 and no ACR-NEMA data set at the start";
    }
    if (kind != HS_SNIFF_NOT_DICOM && has_directory_records(f, kind == HS_SNIFF_DICM ? 132 : 0))
        kind = HS_SNIFF_DIRECTORY;
    std::fclose(f);
    return kind;
}

/* A lossy copy: said by the header (LossyImageCompression 01), or by an
 * encoding that cannot be lossless (JPEG processes 1, 2/4; JPEG-LS
 * near-lossless; JPEG 2000 part 1 "lossy or lossless" is counted lossy, as
 * PS3.5 allows both). */
int lossy_copy(DcmItem *ds, const char *transfer_syntax)
{
    static const char *const lossy_syntaxes[] = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
                                                 "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.91"};
    if (get_string(ds, DCM_LossyImageCompression).compare(0, 2, "01") == 0)
        return 1;
    for (const char *ts : lossy_syntaxes)
        if (std::strcmp(transfer_syntax, ts) == 0)
            return 1;
    return 0;
}

/* Fill h from a parsed data set. meta may be NULL (ACR-NEMA). */
void fill_header(DcmItem *ds, DcmItem *meta, E_TransferSyntax xfer, hs_dicom_header *h)
{
    get_uid(ds, DCM_StudyInstanceUID, "StudyInstanceUID", h->study_uid, h->study_uid_note);
    get_uid(ds, DCM_SeriesInstanceUID, "SeriesInstanceUID", h->series_uid, h->series_uid_note);
    get_uid(ds, DCM_SOPInstanceUID, "SOPInstanceUID", h->sop_uid, h->sop_uid_note);
    get_field(ds, DCM_SOPClassUID, h->sop_class_uid, sizeof h->sop_class_uid);
    /* Some writers leave the SOP UIDs out of the data set; the meta header
     * carries copies of them. */
    if (meta != nullptr && h->sop_class_uid[0] == '\0')
        get_field(meta, DCM_MediaStorageSOPClassUID, h->sop_class_uid, sizeof h->sop_class_uid);
    if (meta != nullptr && h->sop_uid[0] == '\0')
        get_uid(meta, DCM_MediaStorageSOPInstanceUID, "MediaStorageSOPInstanceUID", h->sop_uid, h->sop_uid_note);
    get_field(ds, DCM_Modality, h->modality, sizeof h->modality);
    get_field(ds, DCM_ImageType, h->image_type, sizeof h->image_type);
    get_field(ds, DCM_BodyPartExamined, h->body_part, sizeof h->body_part);
    get_field(ds, DCM_SeriesDescription, h->series_description, sizeof h->series_description);
    get_field(ds, DCM_StudyDescription, h->study_description, sizeof h->study_description);
    get_field(ds, DCM_AccessionNumber, h->accession, sizeof h->accession);
    get_field(ds, DCM_PatientID, h->patient_id, sizeof h->patient_id);
    get_field(ds, DCM_StudyDate, h->study_date, sizeof h->study_date);
    get_field(ds, DCM_StudyTime, h->study_time, sizeof h->study_time);
    get_field(ds, DCM_ConvolutionKernel, h->convolution_kernel, sizeof h->convolution_kernel);
    copy_field(h->transfer_syntax, sizeof h->transfer_syntax, DcmXfer(xfer).getXferID());

    h->has_instance_number = get_int(ds, DCM_InstanceNumber, &h->instance_number);
    if (!h->has_instance_number)
        h->instance_number = 0;

    int v = 0;
    h->rows = get_int(ds, DCM_Rows, &v) ? v : 0;
    h->columns = get_int(ds, DCM_Columns, &v) ? v : 0;
    h->bits_allocated = get_int(ds, DCM_BitsAllocated, &v) ? v : 0;
    h->bits_stored = get_int(ds, DCM_BitsStored, &v) ? v : h->bits_allocated;
    /* BitsStored - 1 by default; a hostile BitsStored of INT_MIN (an SL
     * value) must not overflow here, classification refuses it anyway. */
    h->high_bit = get_int(ds, DCM_HighBit, &v) ? v : h->bits_stored > INT_MIN ? h->bits_stored - 1 : INT_MIN;
    h->pixel_representation = get_int(ds, DCM_PixelRepresentation, &v) ? v : 0;
    h->frames = get_int(ds, DCM_NumberOfFrames, &v) && v > 1 ? v : 1;
    std::string photometric = get_string(ds, DCM_PhotometricInterpretation);
    h->monochrome1 = photometric.rfind("MONOCHROME1", 0) == 0;

    h->has_position = 1;
    for (unsigned long i = 0; i < 3; i++)
        h->has_position &= get_double(ds, DCM_ImagePositionPatient, i, &h->position[i]);
    if (!h->has_position)
        std::memset(h->position, 0, sizeof h->position);
    h->has_orientation = 1;
    for (unsigned long i = 0; i < 6; i++)
        h->has_orientation &= get_double(ds, DCM_ImageOrientationPatient, i, &h->orientation[i]);
    if (!h->has_orientation)
        std::memset(h->orientation, 0, sizeof h->orientation);
    h->has_pixel_spacing = get_double(ds, DCM_PixelSpacing, 0, &h->pixel_spacing[0]) &&
                           get_double(ds, DCM_PixelSpacing, 1, &h->pixel_spacing[1]);
    if (!h->has_pixel_spacing) {
        h->pixel_spacing[0] = 0.0;
        h->pixel_spacing[1] = 0.0;
    }
    if (!get_double(ds, DCM_SliceThickness, 0, &h->slice_thickness))
        h->slice_thickness = 0.0;
    if (!get_double(ds, DCM_GantryDetectorTilt, 0, &h->gantry_tilt))
        h->gantry_tilt = 0.0;
    /* Kept as written (a slope of 0, a NaN): rescale_problem refuses to
     * decode what would give meaningless HU, and says which value it was. */
    if (get_rescale(ds, DCM_RescaleSlope, &h->rescale_slope) == 0)
        h->rescale_slope = 1.0;
    h->has_rescale_intercept = get_rescale(ds, DCM_RescaleIntercept, &h->rescale_intercept) != 0;
    if (!h->has_rescale_intercept)
        h->rescale_intercept = 0.0;
    if (!get_double(ds, DCM_WindowCenter, 0, &h->window_center_hu))
        h->window_center_hu = NAN;
    if (!get_double(ds, DCM_WindowWidth, 0, &h->window_width_hu))
        h->window_width_hu = NAN;

    unsigned raw = 0;
    h->has_padding = get_raw16(ds, DCM_PixelPaddingValue, &raw);
    h->padding_value = 0.0;
    if (h->has_padding)
        h->padding_value = (double)raw;
    h->has_padding_limit = get_raw16(ds, DCM_PixelPaddingRangeLimit, &raw);
    h->padding_limit = 0.0;
    if (h->has_padding_limit)
        h->padding_limit = (double)raw;

    std::string agent = get_string(ds, DCM_ContrastBolusAgent);
    char agent_field[65];
    copy_field(agent_field, sizeof agent_field, agent);
    /* Scanners write "NONE" or "NO" rather than leave the field empty. */
    h->contrast = agent_field[0] != '\0' && std::strcmp(agent_field, "NONE") != 0 &&
                  std::strcmp(agent_field, "NO") != 0;
    h->lossy = lossy_copy(ds, h->transfer_syntax);
}

/* Overrides the fields a functional group item g (shared, or one frame's
 * item of the per-frame sequence) carries; what it lacks stays as it was.
 * frame_type: FrameType replaces ImageType (per-frame headers only; the
 * file's verdict uses the top-level ImageType). */
void apply_group(DcmItem *g, hs_dicom_header *h, bool frame_type)
{
    DcmItem *it = nullptr;
    double d[6];
    if (g->findAndGetSequenceItem(DCM_PixelMeasuresSequence, it, 0).good() && it != nullptr) {
        if (get_double(it, DCM_PixelSpacing, 0, &d[0]) && get_double(it, DCM_PixelSpacing, 1, &d[1])) {
            h->has_pixel_spacing = 1;
            h->pixel_spacing[0] = d[0];
            h->pixel_spacing[1] = d[1];
        }
        if (get_double(it, DCM_SliceThickness, 0, &d[0]))
            h->slice_thickness = d[0];
    }
    it = nullptr;
    if (g->findAndGetSequenceItem(DCM_PlaneOrientationSequence, it, 0).good() && it != nullptr &&
        get_doubles(it, DCM_ImageOrientationPatient, 6, d)) {
        h->has_orientation = 1;
        std::memcpy(h->orientation, d, sizeof h->orientation);
    }
    it = nullptr;
    if (g->findAndGetSequenceItem(DCM_PlanePositionSequence, it, 0).good() && it != nullptr &&
        get_doubles(it, DCM_ImagePositionPatient, 3, d)) {
        h->has_position = 1;
        std::memcpy(h->position, d, sizeof h->position);
    }
    it = nullptr;
    if (g->findAndGetSequenceItem(DCM_PixelValueTransformationSequence, it, 0).good() && it != nullptr) {
        if (get_rescale(it, DCM_RescaleSlope, &d[0]) != 0)
            h->rescale_slope = d[0];
        if (get_rescale(it, DCM_RescaleIntercept, &d[0]) != 0) {
            h->rescale_intercept = d[0];
            h->has_rescale_intercept = 1;
        }
    }
    it = nullptr;
    if (g->findAndGetSequenceItem(DCM_FrameVOILUTSequence, it, 0).good() && it != nullptr) {
        if (get_double(it, DCM_WindowCenter, 0, &d[0]) && get_double(it, DCM_WindowWidth, 0, &d[1])) {
            h->window_center_hu = d[0];
            h->window_width_hu = d[1];
        }
    }
    it = nullptr;
    if (g->findAndGetSequenceItem(DCM_CTAcquisitionDetailsSequence, it, 0).good() && it != nullptr) {
        if (get_double(it, DCM_GantryDetectorTilt, 0, &d[0]))
            h->gantry_tilt = d[0];
    }
    it = nullptr;
    if (frame_type && g->findAndGetSequenceItem(DCM_CTImageFrameTypeSequence, it, 0).good() && it != nullptr) {
        std::string ft = get_string(it, DCM_FrameType);
        if (!ft.empty())
            copy_field(h->image_type, sizeof h->image_type, ft);
    }
}

bool has_groups(DcmItem *ds)
{
    return ds->tagExists(DCM_SharedFunctionalGroupsSequence) || ds->tagExists(DCM_PerFrameFunctionalGroupsSequence);
}

/* Turns h, filled from the top level, into the header of frame k: the
 * shared group first, then the frame's own item (frames are the items of
 * per_frame, which may be NULL), per-frame values winning. */
void apply_frame(DcmItem *ds, DcmSequenceOfItems *per_frame, long k, hs_dicom_header *h, bool frame_type)
{
    h->frame = (int)k;
    DcmItem *shared = nullptr;
    if (ds->findAndGetSequenceItem(DCM_SharedFunctionalGroupsSequence, shared, 0).good() && shared != nullptr)
        apply_group(shared, h, frame_type);
    DcmItem *own = per_frame != nullptr && (unsigned long)k < per_frame->card() ? per_frame->getItem((unsigned long)k)
                                                                                : nullptr;
    if (own != nullptr)
        apply_group(own, h, frame_type);
}

DcmSequenceOfItems *dicom_per_frame(DcmItem *ds)
{
    DcmSequenceOfItems *seq = nullptr;
    if (ds->findAndGetSequence(DCM_PerFrameFunctionalGroupsSequence, seq).bad())
        return nullptr;
    return seq;
}

/* Why the frames of a multi-frame file cannot be placed; "" when they can
 * (or the file has one frame). Only the frame's own PlanePositionSequence
 * counts: a shared or top-level position would put every frame in one
 * place. */
std::string dicom_multiframe_problem(DcmItem *ds, int frames)
{
    if (frames <= 1)
        return std::string();
    char b[256];
    if (frames > HS_DICOM_MAX_FRAMES) {
        std::snprintf(b, sizeof b, "%d frames, more than the %d read", frames, HS_DICOM_MAX_FRAMES);
        return b;
    }
    DcmSequenceOfItems *seq = dicom_per_frame(ds);
    if (seq == nullptr) {
        std::snprintf(b, sizeof b,
                      "%d frames and no PerFrameFunctionalGroupsSequence: nothing gives each frame its "
                      "position (old-style multi-frame CT)",
                      frames);
        return b;
    }
    if (seq->card() < (unsigned long)frames) {
        std::snprintf(b, sizeof b, "%d frames but PerFrameFunctionalGroupsSequence has %lu items", frames,
                      seq->card());
        return b;
    }
    for (long k = 0; k < frames; k++) {
        DcmItem *own = seq->getItem((unsigned long)k);
        DcmItem *pos = nullptr;
        double d = 0.0;
        if (own == nullptr || own->findAndGetSequenceItem(DCM_PlanePositionSequence, pos, 0).bad() ||
            pos == nullptr || !get_double(pos, DCM_ImagePositionPatient, 2, &d)) {
            std::snprintf(b, sizeof b,
                          "%d frames and frame %ld has no ImagePositionPatient of its own "
                          "(PerFrameFunctionalGroupsSequence / PlanePositionSequence)",
                          frames, k + 1);
            return b;
        }
    }
    return std::string();
}

/* The stored value of a raw sample: bits HighBit-BitsStored+1..HighBit,
 * sign extended from BitsStored bits when signed. */
inline long stored_value(unsigned raw, int bits_stored, int high_bit, int is_signed)
{
    unsigned shift = (unsigned)(high_bit + 1 - bits_stored);
    unsigned mask = bits_stored >= 32 ? 0xFFFFFFFFu : ((1u << bits_stored) - 1u);
    unsigned v = (raw >> shift) & mask;
    if (is_signed && bits_stored < 32 && (v & (1u << (bits_stored - 1))) != 0)
        return (long)v - (1L << bits_stored);
    return (long)v;
}

/* Verdict rules 7 and 8 of dicom.h: HS_DICOM_OK when hs_dicom_read_hu can
 * decode the pixels, else MULTIFRAME_UNSUPPORTED or UNSUPPORTED with why. */
hs_dicom_verdict check_decodable(const hs_dicom_header *h, E_TransferSyntax xfer, const std::string &photometric,
                                 int samples_per_pixel, const std::string &multiframe_problem, char why[200])
{
    if (!multiframe_problem.empty()) {
        std::snprintf(why, 200, "%s", multiframe_problem.c_str());
        return HS_DICOM_MULTIFRAME_UNSUPPORTED;
    }
    if (!xfer_supported(xfer))
        std::snprintf(why, 200, "transfer syntax %s (%s) cannot be decoded", h->transfer_syntax,
                      DcmXfer(xfer).getXferName());
    else if (samples_per_pixel != 1)
        std::snprintf(why, 200, "SamplesPerPixel is %d, expected 1", samples_per_pixel);
    else if (!photometric.empty() && photometric != "MONOCHROME1" && photometric != "MONOCHROME2")
        std::snprintf(why, 200, "PhotometricInterpretation is %s, expected MONOCHROME1 or MONOCHROME2",
                      photometric.c_str());
    else if (h->bits_allocated != 8 && h->bits_allocated != 16)
        std::snprintf(why, 200, "BitsAllocated is %d, expected 8 or 16", h->bits_allocated);
    else if (h->bits_stored < 1 || h->bits_stored > h->bits_allocated || h->high_bit < h->bits_stored - 1 ||
             h->high_bit >= h->bits_allocated)
        std::snprintf(why, 200, "BitsStored %d / HighBit %d do not fit BitsAllocated %d", h->bits_stored,
                      h->high_bit, h->bits_allocated);
    else if (h->rows < 1 || h->columns < 1 || h->rows > HS_DICOM_MAX_SIDE || h->columns > HS_DICOM_MAX_SIDE)
        std::snprintf(why, 200, "Rows x Columns is %d x %d, expected 1..%d each", h->rows, h->columns,
                      HS_DICOM_MAX_SIDE);
    else
        return HS_DICOM_OK;
    return HS_DICOM_UNSUPPORTED;
}

hs_dicom_verdict classify(const hs_dicom_header *h, bool has_pixels, E_TransferSyntax xfer,
                          const std::string &photometric, int samples_per_pixel,
                          const std::string &multiframe_problem, bool check_geometry, char reason[256])
{
    reason[0] = '\0';
    if (!has_pixels) {
        std::snprintf(reason, 256, "no Pixel Data (7FE0,0010)%s%s", h->modality[0] ? "; Modality is " : "",
                      h->modality);
        return HS_DICOM_NO_PIXELS;
    }
    if (h->modality[0] != '\0') {
        if (std::strcmp(h->modality, "CT") != 0) {
            std::snprintf(reason, 256, "Modality is %s, not CT", h->modality);
            return HS_DICOM_NOT_CT;
        }
    } else if (h->sop_class_uid[0] != '\0') {
        if (!is_ct_sop_class(h->sop_class_uid)) {
            std::snprintf(reason, 256, "no Modality and SOPClassUID %s is not a CT storage class",
                          h->sop_class_uid);
            return HS_DICOM_NOT_CT;
        }
    } else {
        std::snprintf(reason, 256, "neither Modality nor SOPClassUID present: cannot tell it is CT");
        return HS_DICOM_NOT_CT;
    }
    /* Localizers and derived images are decodable verdicts, so rules 7 and
     * 8 are looked at first: a verdict that decodes promises Rows and
     * Columns a caller may allocate for (a fuzzed secondary capture had
     * 4096 x 0, and 65535 x 65535 would have passed as well). */
    char undecodable[200];
    hs_dicom_verdict decodable =
        check_decodable(h, xfer, photometric, samples_per_pixel, multiframe_problem, undecodable);
    hs_dicom_verdict kind = HS_DICOM_OK;
    std::string it = h->image_type;
    if (has_value(it, "LOCALIZER") || has_value(it, "SCOUT")) {
        std::snprintf(reason, 256, "ImageType is %s: a localizer", h->image_type);
        kind = HS_DICOM_LOCALIZER;
    } else if (is_secondary_capture(h->sop_class_uid)) {
        std::snprintf(reason, 256, "SOPClassUID %s is secondary capture", h->sop_class_uid);
        kind = HS_DICOM_DERIVED;
    } else if (it.rfind("DERIVED", 0) == 0 || has_value(it, "SECONDARY")) {
        std::snprintf(reason, 256, "ImageType is %s: not an original image", h->image_type);
        kind = HS_DICOM_DERIVED;
    }
    if (kind != HS_DICOM_OK && decodable != HS_DICOM_OK) {
        size_t used = std::strlen(reason);
        std::snprintf(reason + used, 256 - used, ", and %s", undecodable);
        return decodable;
    }
    if (kind != HS_DICOM_OK)
        return kind;
    if (decodable != HS_DICOM_OK) {
        std::snprintf(reason, 256, "%s", undecodable);
        return decodable;
    }
    if (!check_geometry) {
        std::snprintf(reason, 256, "%d frames: each frame is judged on its own", h->frames);
        return HS_DICOM_OK;
    }
    if (!h->has_orientation) {
        std::snprintf(reason, 256, "no ImageOrientationPatient: assumed axial");
        return HS_DICOM_OK;
    }
    const double *o = h->orientation;
    double n[3] = {o[1] * o[5] - o[2] * o[4], o[2] * o[3] - o[0] * o[5], o[0] * o[4] - o[1] * o[3]};
    double len = std::sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
    if (len < 0.5) {
        std::snprintf(reason, 256,
                      "ImageOrientationPatient is not two orthogonal unit vectors: assumed axial");
        return HS_DICOM_OK;
    }
    double cos_z = std::fabs(n[2]) / len;
    if (cos_z > 1.0)
        cos_z = 1.0;
    double angle = std::acos(cos_z) * (180.0 / 3.14159265358979323846);
    double limit = HS_DICOM_AXIAL_LIMIT_DEG + std::fabs(h->gantry_tilt);
    if (limit > 45.0)
        limit = 45.0;
    if (angle > limit) {
        std::snprintf(reason, 256, "slice normal is %.1f degrees from the z axis (limit %.1f): not axial",
                      angle, limit);
        return HS_DICOM_NOT_AXIAL;
    }
    return HS_DICOM_OK;
}

/* Everything hs_dicom_read_header does once the file is known to be worth
 * parsing; shared with hs_dicom_read_hu, which loads the whole file. */
struct dicom_parsed {
    DcmFileFormat ff;
    E_TransferSyntax xfer = EXS_Unknown;
    /* what classification needs again for each frame */
    hs_dicom_header top; /* the header from top-level attributes alone */
    bool has_pixels = false;
    int spp = 1;
    std::string photometric;
    /* The inflated data set of a deflated file (see load_deflated), a
     * memory file that DCMTK reads through /proc/self/fd; -1 if none. */
    int inflated_fd = -1;
    dicom_parsed() = default;
    dicom_parsed(const dicom_parsed &) = delete;
    dicom_parsed &operator=(const dicom_parsed &) = delete;
    ~dicom_parsed()
    {
        if (inflated_fd >= 0)
            close(inflated_fd);
    }
};

/* The data set of a deflated file, after its meta header has been read from
 * fs. DCMTK inflating a file itself allocates whatever length an element
 * claims before it finds the stream ending (a 400-byte file may claim a
 * 3 GB Pixel Data) and inflates whatever is there (a 3 MB file may hold
 * 3 GB of zeros), so a header scan could be made to take gigabytes. Here
 * at most HS_DICOM_MAX_INFLATED bytes are inflated, into a memory file,
 * which DCMTK then parses like any file: it compares every length with
 * the bytes left in the file and leaves large values there until asked. */
OFCondition load_deflated(DcmInputFileStream &fs, Uint32 max_read, dicom_parsed *p)
{
    OFCondition c = fs.installCompressionFilter(ESC_zlib);
    if (c.bad())
        return c;
    p->inflated_fd = memfd_create("hemoscan-inflated", MFD_CLOEXEC);
    if (p->inflated_fd < 0)
        return makeOFCondition(OFM_dcmdata, 0xF001, OF_error, "cannot create a memory file to inflate into");
    std::vector<Uint8> chunk(1 << 16);
    size_t total = 0;
    bool too_large = false;
    while (fs.good() && !fs.eos()) {
        if (total >= HS_DICOM_MAX_INFLATED) {
            too_large = true;
            break;
        }
        offile_off_t got = fs.read(chunk.data(), (offile_off_t)chunk.size());
        if (got <= 0)
            break;
        for (size_t done = 0; done < (size_t)got;) {
            ssize_t k = write(p->inflated_fd, chunk.data() + done, (size_t)got - done);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                return makeOFCondition(OFM_dcmdata, 0xF002, OF_error, "cannot write the inflated data set to memory");
            done += (size_t)k;
        }
        total += (size_t)got;
    }
    /* What did inflate is parsed even when the stream broke or was cut at
     * the limit, so the header fields before that point are kept, as for a
     * truncated file. */
    char name[64];
    std::snprintf(name, sizeof name, "/proc/self/fd/%d", p->inflated_fd);
    c = p->ff.getDataset()->loadFile(OFFilename(name), EXS_LittleEndianExplicit, EGL_noChange, max_read);
    if (too_large)
        return makeOFCondition(OFM_dcmdata, 0xF003, OF_error,
                               "deflated data set inflates to more than " HS_DICOM_MAX_INFLATED_TEXT);
    if (c.good() && fs.status().bad())
        return fs.status();
    return c;
}

/* DcmFileFormat::loadFile into p (emptied first), except that a deflated
 * data set goes through load_deflated. The meta header of a file with
 * the DICM marker (dicm) says which it is, so it is read first, into the
 * same DcmFileFormat; loadFile starts over (it clears the object) for
 * every other file. */
OFCondition dicom_load(const char *path, bool dicm, Uint32 max_read, dicom_parsed *p)
{
    p->ff.clear();
    p->xfer = EXS_Unknown;
    if (p->inflated_fd >= 0) {
        close(p->inflated_fd);
        p->inflated_fd = -1;
    }
    if (dicm) {
        DcmInputFileStream fs{OFFilename(path)};
        DcmMetaInfo *meta = p->ff.getMetaInfo();
        if (fs.good() && meta != nullptr) {
            meta->transferInit();
            OFCondition c = meta->read(fs, EXS_Unknown, EGL_noChange, max_read);
            meta->transferEnd();
            OFString ts;
            if (c.good() && meta->findAndGetOFString(DCM_TransferSyntaxUID, ts).good() &&
                ts == UID_DeflatedExplicitVRLittleEndianTransferSyntax) {
                p->xfer = EXS_DeflatedLittleEndianExplicit;
                return load_deflated(fs, max_read, p);
            }
        }
    }
    return p->ff.loadFile(OFFilename(path), EXS_Unknown, EGL_noChange, max_read, ERM_autoDetect);
}

/* h as it is before anything of the file at path is known. */
void header_init(hs_dicom_header *h, const char *path)
{
    std::memset(h, 0, sizeof *h);
    h->window_center_hu = NAN;
    h->window_width_hu = NAN;
    h->rescale_slope = 1.0;
    h->frames = 1;
    std::snprintf(h->path, sizeof h->path, "%s", path);
}

hs_status dicom_parse(const char *path, Uint32 max_read, dicom_parsed *p, hs_dicom_header *h,
                      hs_dicom_verdict *verdict, char reason[256], hs_error *err)
{
    header_init(h, path);
    reason[0] = '\0';

    std::string why;
    sniff s = sniff_file(path, &why);
    if (s == HS_SNIFF_IO)
        return hs_fail(err, HS_ERR_IO, "%s: cannot read: %s", path, why.c_str());
    if (s == HS_SNIFF_NOT_DICOM) {
        *verdict = HS_DICOM_NOT_DICOM;
        std::snprintf(reason, 256, "not DICOM: %s", why.c_str());
        return HS_OK;
    }
    if (s == HS_SNIFF_DIRECTORY) {
        *verdict = HS_DICOM_NO_PIXELS;
        std::snprintf(reason, 256,
                      "a DirectoryRecordSequence (0004,1220) before any Pixel Data: a DICOMDIR, an index of other "
                      "files (not parsed further)");
        return HS_OK;
    }
    register_codecs_once();
    bool dicm = s == HS_SNIFF_DICM;
    OFCondition c = dicom_load(path, dicm, max_read, p);
    DcmDataset *ds = p->ff.getDataset();
    if (ds == nullptr || ds->card() == 0) {
        *verdict = HS_DICOM_NOT_DICOM;
        std::snprintf(reason, 256, "not DICOM: DCMTK found no data set (%s)", c.text());
        return HS_OK;
    }
    if (c.bad()) {
        /* DCMTK keeps the element it was reading when the data ran out,
         * with part of its value never read, and keeps elements in tag
         * order, which a file need not follow, so that element may be
         * anywhere (a fuzzed file failed inside StudyTime, before elements
         * of higher tags). So the file is parsed once more with every value
         * left in the file (max_read 0), and every top-level element whose
         * values are all short enough to be read at all (dicom_attribute's
         * limit, checked inside sequences too) is loaded now: one that runs
         * past the end fails to load and goes, and so does one that claims
         * more. (Left for later, DCMTK would hand out a half-read value on
         * the second request.) */
        dicom_load(path, dicm, 0, p);
        ds = p->ff.getDataset();
        for (unsigned long i = ds->card(); i-- > 0;) {
            DcmElement *el = ds->getElement(i);
            if (el != nullptr && (!values_within(el, max_attribute) || el->loadAllDataIntoMemory().bad()))
                delete ds->remove(i);
        }
    }
    /* load_deflated's data set was read as explicit little endian; the
     * file's own transfer syntax is the one to report. */
    if (p->xfer != EXS_DeflatedLittleEndianExplicit)
        p->xfer = ds->getOriginalXfer();
    DcmItem *meta = p->ff.getMetaInfo();
    if (meta != nullptr && meta->card() == 0)
        meta = nullptr;
    fill_header(ds, meta, p->xfer, h);
    p->top = *h;
    if (has_groups(ds))
        apply_frame(ds, dicom_per_frame(ds), 0, h, false);
    if (c.bad()) {
        *verdict = HS_DICOM_CORRUPT;
        std::snprintf(reason, 256, "DCMTK could not parse the whole file: %s", c.text());
        return HS_OK;
    }
    int v = 0;
    if (get_int(ds, DCM_SamplesPerPixel, &v))
        p->spp = v;
    p->photometric = get_string(ds, DCM_PhotometricInterpretation);
    while (!p->photometric.empty() && p->photometric.back() == ' ')
        p->photometric.pop_back();
    p->has_pixels = ds->tagExists(DCM_PixelData) != OFFalse;
    *verdict = classify(h, p->has_pixels, p->xfer, p->photometric, p->spp, dicom_multiframe_problem(ds, h->frames),
                        h->frames <= 1, reason);
    return HS_OK;
}

/* OpenJPEG reads the codestream from memory through these callbacks. */
struct mem_stream {
    const unsigned char *data;
    size_t size, pos;
};

OPJ_SIZE_T mem_read(void *buf, OPJ_SIZE_T n, void *user)
{
    mem_stream *m = static_cast<mem_stream *>(user);
    size_t left = m->size - m->pos;
    if (left == 0)
        return (OPJ_SIZE_T)-1; /* OpenJPEG's end-of-stream convention */
    size_t k = n < left ? n : left;
    std::memcpy(buf, m->data + m->pos, k);
    m->pos += k;
    return k;
}

OPJ_OFF_T mem_skip(OPJ_OFF_T n, void *user)
{
    mem_stream *m = static_cast<mem_stream *>(user);
    if (n < 0) {
        size_t back = (size_t)(-n);
        if (back > m->pos)
            back = m->pos;
        m->pos -= back;
        return -(OPJ_OFF_T)back;
    }
    size_t k = (size_t)n;
    if (k > m->size - m->pos)
        k = m->size - m->pos;
    m->pos += k;
    return (OPJ_OFF_T)k;
}

OPJ_BOOL mem_seek(OPJ_OFF_T n, void *user)
{
    mem_stream *m = static_cast<mem_stream *>(user);
    if (n < 0 || (size_t)n > m->size)
        return OPJ_FALSE;
    m->pos = (size_t)n;
    return OPJ_TRUE;
}

/* OpenJPEG reports problems through callbacks; keep the first error line
 * for the message instead of letting it print to stderr. */
void opj_error(const char *msg, void *user)
{
    std::string *s = static_cast<std::string *>(user);
    if (s->empty() && msg != nullptr) {
        *s = msg;
        while (!s->empty() && (s->back() == '\n' || s->back() == ' '))
            s->pop_back();
    }
}

void opj_quiet(const char *, void *) {}

/* Most tiles a JPEG 2000 codestream may have. OpenJPEG sets every tile up
 * (about 16 kB each, more with more components) while it reads the main
 * header, before anything can be compared with Rows and Columns: a 794-byte
 * codestream of 3 x 3 tiles and 64 components took over 2 GB. 1024 is a
 * 4096 x 4096 slice in 128 x 128 tiles; encoders use one tile or a few. */
const Uint64 j2k_max_tiles = 1024;

/* The big-endian number of n bytes at code[at]; the caller checks bounds. */
Uint64 dicom_be(const unsigned char *code, size_t at, int n)
{
    Uint64 v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | code[at + (size_t)i];
    return v;
}

/* Where the codestream starts: 0 for a raw one, inside the 'jp2c' box of a
 * JP2 file (jp2); size when there is none. */
size_t j2k_codestream_start(const unsigned char *code, size_t size, bool jp2)
{
    if (!jp2)
        return 0;
    size_t pos = 0;
    while (size - pos >= 8) {
        Uint64 len = dicom_be(code, pos, 4);
        size_t header = 8;
        if (len == 1) {
            if (size - pos < 16)
                break;
            len = dicom_be(code, pos + 8, 8);
            header = 16;
        } else if (len == 0) {
            len = size - pos; /* the last box runs to the end */
        }
        if (std::memcmp(code + pos + 4, "jp2c", 4) == 0)
            return pos + header;
        if (len < header || len > size - pos)
            break;
        pos += (size_t)len;
    }
    return size;
}

/* The SIZ marker segment, which must follow SOC, against h before OpenJPEG
 * allocates what it claims: one component, not subsampled, Columns x Rows,
 * at most j2k_max_tiles tiles. Empty when it fits, else what does not. */
std::string j2k_check_siz(const unsigned char *code, size_t size, size_t start, const hs_dicom_header *h)
{
    /* SOC, SIZ, Lsiz, Rsiz, 8 sizes and offsets of 4 bytes, Csiz, and
     * Ssiz, XRsiz, YRsiz of the first component. */
    if (start > size || size - start < 45 || dicom_be(code, start, 2) != 0xFF4F ||
        dicom_be(code, start + 2, 2) != 0xFF51)
        return "no SIZ marker after SOC";
    const size_t at = start + 8;
    Uint64 x = dicom_be(code, at, 4), y = dicom_be(code, at + 4, 4);
    Uint64 x0 = dicom_be(code, at + 8, 4), y0 = dicom_be(code, at + 12, 4);
    Uint64 tw = dicom_be(code, at + 16, 4), th = dicom_be(code, at + 20, 4);
    Uint64 tx0 = dicom_be(code, at + 24, 4), ty0 = dicom_be(code, at + 28, 4);
    Uint64 comps = dicom_be(code, at + 32, 2);
    Uint64 dx = code[at + 35], dy = code[at + 36];
    char why[160];
    if (comps != 1 || dx != 1 || dy != 1) {
        std::snprintf(why, sizeof why, "%llu components (first subsampled %llu x %llu), expected 1 not subsampled",
                      (unsigned long long)comps, (unsigned long long)dx, (unsigned long long)dy);
        return why;
    }
    if (x <= x0 || y <= y0 || x - x0 != (Uint64)h->columns || y - y0 != (Uint64)h->rows) {
        std::snprintf(why, sizeof why, "%lld x %lld pixels, expected %d x %d", (long long)x - (long long)x0,
                      (long long)y - (long long)y0, h->columns, h->rows);
        return why;
    }
    if (tw == 0 || th == 0 || tx0 > x0 || ty0 > y0) {
        std::snprintf(why, sizeof why, "invalid tiling (%llu x %llu tiles at %llu, %llu)", (unsigned long long)tw,
                      (unsigned long long)th, (unsigned long long)tx0, (unsigned long long)ty0);
        return why;
    }
    Uint64 tiles = ((x - tx0 + tw - 1) / tw) * ((y - ty0 + th - 1) / th);
    if (tiles > j2k_max_tiles) {
        std::snprintf(why, sizeof why, "%llu tiles, expected at most %llu", (unsigned long long)tiles,
                      (unsigned long long)j2k_max_tiles);
        return why;
    }
    return std::string();
}

/* 1 when img (after opj_read_header or opj_decode) is one component of
 * h's Columns x Rows. */
bool j2k_size_ok(const opj_image_t *img, const hs_dicom_header *h)
{
    return img->numcomps == 1 && img->comps != nullptr && img->comps[0].w == (OPJ_UINT32)h->columns &&
           img->comps[0].h == (OPJ_UINT32)h->rows;
}

/* The frame header (SOFn) of the JPEG or JPEG-LS stream in code, against
 * h and the transfer syntax, before a DCMTK decoder reads it: the libjpeg
 * inside DCMTK sizes its buffers by the stream, not by Rows and Columns,
 * and a progressive stream is buffered whole (a 60000 x 60000 one in a
 * 1 kB file took over 2 GB). Wants the process the transfer syntax names
 * (baseline SOF0; extended SOF0/SOF1; lossless SOF3; JPEG-LS SOF55), one
 * component, Columns x Rows. Empty when it fits, else what does not. */
std::string jpeg_check_frame(const unsigned char *code, size_t size, E_TransferSyntax xfer,
                             const hs_dicom_header *h)
{
    if (size < 4 || code[0] != 0xFF || code[1] != 0xD8)
        return "no JPEG stream (SOI) in the first fragment";
    size_t pos = 2;
    while (size - pos >= 4) {
        if (code[pos] != 0xFF)
            return "JPEG markers out of step before the frame header";
        unsigned m = code[pos + 1];
        if (m == 0xFF) { /* fill byte */
            pos++;
            continue;
        }
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) { /* markers without a segment */
            pos += 2;
            continue;
        }
        if (m == 0xD9 || m == 0xDA)
            return "no frame header (SOF) before the scan";
        size_t len = (size_t)dicom_be(code, pos + 2, 2);
        bool sof = (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) || m == 0xF7;
        if (!sof) {
            if (len < 2 || len > size - pos - 2)
                return "a JPEG marker segment shorter than its length field or longer than the stream";
            pos += 2 + len;
            continue;
        }
        if (len < 8 || size - pos < 10)
            return "a truncated frame header";
        bool allowed = false;
        switch (xfer) {
        case EXS_JPEGProcess1:
            allowed = m == 0xC0;
            break;
        case EXS_JPEGProcess2_4:
            allowed = m == 0xC0 || m == 0xC1;
            break;
        case EXS_JPEGProcess14:
        case EXS_JPEGProcess14SV1:
            allowed = m == 0xC3;
            break;
        case EXS_JPEGLSLossless:
        case EXS_JPEGLSLossy:
            allowed = m == 0xF7;
            break;
        default:
            break;
        }
        char why[160];
        Uint64 rows = dicom_be(code, pos + 5, 2), cols = dicom_be(code, pos + 7, 2), comps = code[pos + 9];
        if (!allowed)
            std::snprintf(why, sizeof why, "a frame of type SOF%s%u, not the process of transfer syntax %s",
                          m == 0xF7 ? "55 " : "", m == 0xF7 ? 0u : m - 0xC0u, DcmXfer(xfer).getXferName());
        else if (comps != 1 || rows != (Uint64)h->rows || cols != (Uint64)h->columns)
            std::snprintf(why, sizeof why, "a frame of %llu component(s) of %llu x %llu, expected 1 of %d x %d",
                          (unsigned long long)comps, (unsigned long long)cols, (unsigned long long)rows, h->columns,
                          h->rows);
        else
            return std::string();
        return why;
    }
    return "no frame header (SOF)";
}

/* The fragments [first, last) of frame `frame` of `frames` in seq, the
 * encapsulated Pixel Data of codec (named in messages), as 0-based items,
 * item 0 being the Basic Offset Table: all fragments for a single frame;
 * else the Basic Offset Table's byte offsets, or one fragment per frame
 * when the table is empty. */
hs_status frame_items(const char *path, const char *codec, DcmPixelSequence *seq, int frames, int frame,
                      unsigned long *first, unsigned long *last, hs_error *err)
{
    unsigned long items = seq->card();
    if (frames <= 1) {
        *first = 1;
        *last = items;
        return HS_OK;
    }
    DcmPixelItem *bot = nullptr;
    Uint32 bot_len = 0;
    if (items > 0 && seq->getItem(bot, 0).good() && bot != nullptr)
        bot_len = bot->getLength();
    if (bot_len >= 4u * (Uint32)frames) {
        Uint8 *b = nullptr;
        if (bot->getUint8Array(b).bad() || b == nullptr)
            return hs_fail(err, HS_ERR_FORMAT, "%s: %s Basic Offset Table unreadable", path, codec);
        auto offset = [b](int k) {
            const Uint8 *q = b + 4 * (size_t)k;
            return (unsigned long)q[0] | ((unsigned long)q[1] << 8) | ((unsigned long)q[2] << 16) |
                   ((unsigned long)q[3] << 24);
        };
        /* An offset counts bytes from the first fragment's item tag: each
         * fragment takes its length plus 8 (tag and length). */
        unsigned long start = offset(frame);
        unsigned long end = frame + 1 < frames ? offset(frame + 1) : ~0ul;
        unsigned long pos = 0;
        *first = 0;
        *last = 0;
        for (unsigned long i = 1; i < items; i++) {
            DcmPixelItem *item = nullptr;
            if (seq->getItem(item, i).bad() || item == nullptr)
                return hs_fail(err, HS_ERR_FORMAT, "%s: %s fragment %lu unreadable", path, codec, i);
            if (pos == start)
                *first = i;
            if (pos >= end)
                break;
            if (*first != 0)
                *last = i + 1;
            pos += (unsigned long)item->getLength() + 8;
        }
        if (*first == 0 || *last <= *first)
            return hs_fail(err, HS_ERR_FORMAT,
                           "%s: %s frame %d: the Basic Offset Table points between fragments", path, codec,
                           frame + 1);
        return HS_OK;
    }
    if (bot_len == 0 && items == (unsigned long)frames + 1) {
        *first = (unsigned long)frame + 1;
        *last = *first + 1;
        return HS_OK;
    }
    return hs_fail(err, HS_ERR_FORMAT,
                   "%s: %s frame %d cannot be found: %lu fragments for %d frames and no usable Basic "
                   "Offset Table",
                   path, codec, frame + 1, items > 0 ? items - 1 : 0ul, frames);
}

/* The compressed bytes of fragments [first, last) of seq, a frame. *data
 * points into the data set when they are one non-empty fragment (the usual
 * case), else into *joined, which holds them concatenated. */
hs_status fragment_bytes(const char *path, DcmPixelSequence *seq, unsigned long first, unsigned long last,
                         std::vector<unsigned char> *joined, const unsigned char **data, size_t *len,
                         hs_error *err)
{
    *data = nullptr;
    *len = 0;
    int pieces = 0;
    for (unsigned long i = first; i < last; i++) {
        DcmPixelItem *item = nullptr;
        if (seq->getItem(item, i).bad() || item == nullptr)
            return hs_fail(err, HS_ERR_FORMAT, "%s: Pixel Data fragment %lu unreadable", path, i);
        Uint8 *bytes = nullptr;
        Uint32 n = item->getLength();
        if (n == 0)
            continue;
        if (item->getUint8Array(bytes).bad() || bytes == nullptr)
            return hs_fail(err, HS_ERR_FORMAT, "%s: Pixel Data fragment %lu unreadable", path, i);
        if (pieces++ == 1)
            joined->assign(*data, *data + *len);
        if (pieces == 1) {
            *data = bytes;
            *len = n;
        } else {
            joined->insert(joined->end(), bytes, bytes + n);
        }
    }
    if (pieces > 1) {
        *data = joined->data();
        *len = joined->size();
    }
    return HS_OK;
}

/* The compressed bytes of frame h->frame of ds's encapsulated Pixel Data
 * in transfer syntax xfer (codec names it in messages): its fragments,
 * concatenated into *joined when there are several (see
 * fragment_bytes). */
hs_status frame_bytes(const char *path, const char *codec, DcmDataset *ds, E_TransferSyntax xfer,
                      const hs_dicom_header *h, std::vector<unsigned char> *joined, const unsigned char **code,
                      size_t *code_len, hs_error *err)
{
    DcmElement *el = nullptr;
    if (ds->findAndGetElement(DCM_PixelData, el).bad() || el == nullptr)
        return hs_fail(err, HS_ERR_FORMAT, "%s: no Pixel Data element", path);
    DcmPixelSequence *seq = nullptr;
    OFCondition c = OFstatic_cast(DcmPixelData *, el)->getEncapsulatedRepresentation(xfer, nullptr, seq);
    if (c.bad() || seq == nullptr)
        return hs_fail(err, HS_ERR_FORMAT, "%s: %s Pixel Data is not encapsulated: %s", path, codec,
                       c.bad() ? c.text() : "no fragments");
    unsigned long first = 1, last = 1;
    hs_status st = frame_items(path, codec, seq, h->frames, h->frame, &first, &last, err);
    if (st != HS_OK)
        return st;
    return fragment_bytes(path, seq, first, last, joined, code, code_len, err);
}

/* Decode JPEG 2000 frame h->frame of ds into stored values. */
hs_status decode_j2k(const char *path, DcmDataset *ds, E_TransferSyntax xfer, const hs_dicom_header *h,
                     std::vector<int32_t> *stored, hs_error *err)
{
    std::vector<unsigned char> joined;
    const unsigned char *code = nullptr;
    size_t code_len = 0;
    hs_status got = frame_bytes(path, "JPEG 2000", ds, xfer, h, &joined, &code, &code_len, err);
    if (got != HS_OK)
        return got;
    if (code_len < 12)
        return hs_fail(err, HS_ERR_FORMAT, "%s: JPEG 2000 Pixel Data holds no codestream", path);
    /* Most files hold a raw codestream (SOC marker FF4F); some wrap it in a
     * JP2 file (signature box). */
    static const unsigned char jp2_sig[12] = {0, 0, 0, 0x0C, 'j', 'P', ' ', ' ', 0x0D, 0x0A, 0x87, 0x0A};
    bool jp2 = std::memcmp(code, jp2_sig, 12) == 0;
    OPJ_CODEC_FORMAT fmt = jp2 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K;
    std::string siz = j2k_check_siz(code, code_len, j2k_codestream_start(code, code_len, jp2), h);
    if (!siz.empty())
        return hs_fail(err, HS_ERR_FORMAT, "%s: JPEG 2000 codestream is not the slice: %s", path, siz.c_str());

    mem_stream mem = {code, code_len, 0};
    std::string opj_msg;
    opj_codec_t *codec = opj_create_decompress(fmt);
    opj_stream_t *stream = opj_stream_create(OPJ_J2K_STREAM_CHUNK_SIZE, OPJ_TRUE);
    opj_image_t *img = nullptr;
    hs_status st = HS_OK;
    if (codec == nullptr || stream == nullptr) {
        st = hs_fail(err, HS_ERR_NOMEM, "%s: cannot create a JPEG 2000 decoder", path);
    } else {
        opj_set_error_handler(codec, opj_error, &opj_msg);
        opj_set_warning_handler(codec, opj_quiet, nullptr);
        opj_set_info_handler(codec, opj_quiet, nullptr);
        opj_stream_set_user_data(stream, &mem, nullptr);
        opj_stream_set_user_data_length(stream, code_len);
        opj_stream_set_read_function(stream, mem_read);
        opj_stream_set_skip_function(stream, mem_skip);
        opj_stream_set_seek_function(stream, mem_seek);
        opj_dparameters_t params;
        opj_set_default_decoder_parameters(&params);
        if (!opj_setup_decoder(codec, &params) || !opj_read_header(stream, codec, &img) || img == nullptr)
            st = hs_fail(err, HS_ERR_FORMAT, "%s: JPEG 2000 codestream header unreadable: %s", path,
                         opj_msg.empty() ? "OpenJPEG failed" : opj_msg.c_str());
        /* The codestream's own size decides what OpenJPEG allocates, so it
         * must match Rows and Columns (bounded by HS_DICOM_MAX_SIDE) before
         * anything is decoded: a small file may claim 60000 x 60000. */
        if (st == HS_OK && !j2k_size_ok(img, h))
            st = hs_fail(err, HS_ERR_FORMAT,
                         "%s: JPEG 2000 codestream is %u component(s) of %u x %u, expected 1 of %d x %d", path,
                         img->numcomps, img->numcomps >= 1 ? img->comps[0].w : 0u,
                         img->numcomps >= 1 ? img->comps[0].h : 0u, h->columns, h->rows);
        if (st == HS_OK && (!opj_decode(codec, stream, img) || !opj_end_decompress(codec, stream)))
            st = hs_fail(err, HS_ERR_FORMAT, "%s: JPEG 2000 codestream does not decode: %s", path,
                         opj_msg.empty() ? "OpenJPEG failed" : opj_msg.c_str());
    }
    if (st == HS_OK) {
        const opj_image_comp_t *comp = &img->comps[0];
        if (!j2k_size_ok(img, h) || comp->data == nullptr) {
            st = hs_fail(err, HS_ERR_FORMAT,
                         "%s: JPEG 2000 image decoded to %u component(s) of %u x %u, expected 1 of %d x %d", path,
                         img->numcomps, comp->w, comp->h, h->columns, h->rows);
        } else {
            size_t n = (size_t)h->rows * (size_t)h->columns;
            stored->resize(n);
            /* The codestream's signedness wins over PixelRepresentation, except
             * that an unsigned codestream in a signed file holds two's
             * complement values: sign extend them from the narrower of the
             * codestream precision and BitsStored (see dicom.h). */
            int extend_bits = 0;
            if (!comp->sgnd && h->pixel_representation == 1) {
                extend_bits = (int)comp->prec;
                if (h->bits_stored < extend_bits)
                    extend_bits = h->bits_stored;
                if (extend_bits < 2 || extend_bits > 31)
                    extend_bits = 0;
            }
            for (size_t i = 0; i < n; i++) {
                long v = comp->data[i];
                if (extend_bits > 0)
                    v = stored_value((unsigned)v, extend_bits, extend_bits - 1, 1);
                (*stored)[i] = (int32_t)v;
            }
        }
    }
    if (img != nullptr)
        opj_image_destroy(img);
    if (stream != nullptr)
        opj_stream_destroy(stream);
    if (codec != nullptr)
        opj_destroy_codec(codec);
    return st;
}

/* Raw samples (px16 for BitsAllocated 16, else px8), rows x columns of
 * them, into stored values. */
void raw_to_stored(const Uint16 *px16, const Uint8 *px8, const hs_dicom_header *h, std::vector<int32_t> *stored)
{
    size_t n = (size_t)h->rows * (size_t)h->columns;
    stored->resize(n);
    int is_signed = h->pixel_representation == 1;
    int32_t *dst = stored->data();
    if (px16 != nullptr) {
        const Uint16 *px = px16;
        if (h->bits_stored == 16 && h->high_bit == 15) {
            /* the common case: every bit is the value, no masking */
            if (is_signed) {
                for (size_t i = 0; i < n; i++)
                    dst[i] = (int16_t)px[i];
            } else {
                for (size_t i = 0; i < n; i++)
                    dst[i] = px[i];
            }
        } else {
            for (size_t i = 0; i < n; i++)
                dst[i] = stored_value(px[i], h->bits_stored, h->high_bit, is_signed);
        }
    } else {
        for (size_t i = 0; i < n; i++)
            dst[i] = stored_value(px8[i], h->bits_stored, h->high_bit, is_signed);
    }
}

/* Decode JPEG-LS frame h->frame of ds into stored values, with CharLS 2
 * (Debian's libcharls2), not the CharLS 1.0 inside DCMTK: that copy keeps
 * its assertions, and a one-byte change in a file's scan header (three
 * components where the frame has one) made it abort the whole process. The
 * frame header is checked against Rows and Columns first
 * (jpeg_check_frame), so CharLS sizes nothing by an unchecked header. */
hs_status decode_jpegls(const char *path, DcmDataset *ds, E_TransferSyntax xfer, const hs_dicom_header *h,
                        std::vector<int32_t> *stored, hs_error *err)
{
    std::vector<unsigned char> joined;
    const unsigned char *code = nullptr;
    size_t code_len = 0;
    hs_status st = frame_bytes(path, "JPEG-LS", ds, xfer, h, &joined, &code, &code_len, err);
    if (st != HS_OK)
        return st;
    std::string frame = jpeg_check_frame(code, code_len, xfer, h);
    if (!frame.empty())
        return hs_fail(err, HS_ERR_FORMAT, "%s: the JPEG-LS stream is not the slice: %s", path, frame.c_str());

    charls_jpegls_decoder *dec = charls_jpegls_decoder_create();
    if (dec == nullptr)
        return hs_fail(err, HS_ERR_NOMEM, "%s: cannot create a JPEG-LS decoder", path);
    charls_frame_info info = {};
    std::vector<unsigned char> out;
    charls_jpegls_errc ec = charls_jpegls_decoder_set_source_buffer(dec, code, code_len);
    if (ec == charls::jpegls_errc::success)
        ec = charls_jpegls_decoder_read_header(dec);
    if (ec == charls::jpegls_errc::success)
        ec = charls_jpegls_decoder_get_frame_info(dec, &info);
    int bytes = info.bits_per_sample > 8 ? 2 : 1;
    if (ec == charls::jpegls_errc::success &&
        (info.component_count != 1 || info.width != (uint32_t)h->columns || info.height != (uint32_t)h->rows ||
         (bytes == 2 && h->bits_allocated != 16))) {
        st = hs_fail(err, HS_ERR_FORMAT,
                     "%s: the JPEG-LS stream is %d component(s) of %u x %u at %d bits, expected 1 of %d x %d in "
                     "%d bits",
                     path, info.component_count, info.width, info.height, info.bits_per_sample, h->columns, h->rows,
                     h->bits_allocated);
    } else if (ec == charls::jpegls_errc::success) {
        size_t need = 0;
        ec = charls_jpegls_decoder_get_destination_size(dec, 0, &need);
        if (ec == charls::jpegls_errc::success) {
            out.resize(need);
            ec = charls_jpegls_decoder_decode_to_buffer(dec, out.data(), out.size(), 0);
        }
    }
    charls_jpegls_decoder_destroy(dec);
    if (st != HS_OK)
        return st;
    if (ec != charls::jpegls_errc::success)
        return hs_fail(err, HS_ERR_FORMAT, "%s: JPEG-LS pixels do not decode: %s", path, charls_get_error_message(ec));
    size_t n = (size_t)h->rows * (size_t)h->columns;
    if (out.size() < n * (size_t)bytes)
        return hs_fail(err, HS_ERR_FORMAT, "%s: JPEG-LS decoded to %zu bytes, expected %zu", path, out.size(),
                       n * (size_t)bytes);
    if (bytes == 2) {
        std::vector<Uint16> px(n);
        std::memcpy(px.data(), out.data(), n * 2); /* CharLS writes native byte order */
        raw_to_stored(px.data(), nullptr, h, stored);
    } else if (h->bits_allocated == 16) {
        std::vector<Uint16> px(out.begin(), out.begin() + (std::ptrdiff_t)n);
        raw_to_stored(px.data(), nullptr, h, stored);
    } else {
        raw_to_stored(nullptr, out.data(), h, stored);
    }
    return HS_OK;
}

/* A single-frame lossless JPEG stream (code) through the fast decoder
 * (ljpeg.h); false when it declines the stream, which then goes to DCMTK.
 * HEMOSCAN_LJPEG=dcmtk turns the fast decoder off, so that the two can be
 * compared on any file. */
bool decode_ljpeg(const unsigned char *code, size_t code_len, E_TransferSyntax xfer, const hs_dicom_header *h,
                  std::vector<int32_t> *stored)
{
    if ((xfer != EXS_JPEGProcess14 && xfer != EXS_JPEGProcess14SV1) || h->bits_allocated != 16 || h->frames > 1)
        return false;
    static const bool off = [] {
        const char *e = std::getenv("HEMOSCAN_LJPEG");
        return e != nullptr && std::strcmp(e, "dcmtk") == 0;
    }();
    if (off)
        return false;
    size_t n = (size_t)h->rows * (size_t)h->columns;
    std::unique_ptr<uint16_t[]> px(new uint16_t[n]);
    if (!hs_ljpeg_decode(code, code_len, h->columns, h->rows, px.get(), nullptr))
        return false;
    raw_to_stored(px.get(), nullptr, h, stored);
    return true;
}

/* Native (or DCMTK-decompressed) Pixel Data into stored values. */
hs_status decode_native(const char *path, DcmDataset *ds, E_TransferSyntax xfer, const hs_dicom_header *h,
                        std::vector<int32_t> *stored, hs_error *err)
{
    if (DcmXfer(xfer).isEncapsulated() && xfer != EXS_RLELossless) {
        /* JPEG (JPEG-LS never gets here: decode_jpegls): the stream's
         * own frame header is checked before any decoder sizes its buffers
         * by it; lossless JPEG then goes to the fast decoder first. */
        std::vector<unsigned char> joined;
        const unsigned char *code = nullptr;
        size_t code_len = 0;
        hs_status fst =
            frame_bytes(path, DcmXfer(xfer).getXferName(), ds, xfer, h, &joined, &code, &code_len, err);
        if (fst != HS_OK)
            return fst;
        std::string frame = jpeg_check_frame(code, code_len, xfer, h);
        if (!frame.empty())
            return hs_fail(err, HS_ERR_FORMAT, "%s: the JPEG stream is not the slice: %s", path, frame.c_str());
        if (decode_ljpeg(code, code_len, xfer, h, stored))
            return HS_OK;
    }
    if (DcmXfer(xfer).isEncapsulated()) {
        /* RLE and JPEG: the registered DCMTK decoders produce an
         * uncompressed little-endian copy of the pixels. RLE decodes into
         * what Rows and Columns say. */
        OFCondition c = ds->chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
        if (c.bad() || !ds->canWriteXfer(EXS_LittleEndianExplicit))
            return hs_fail(err, HS_ERR_FORMAT, "%s: %s pixels do not decode: %s", path,
                           DcmXfer(xfer).getXferName(), c.bad() ? c.text() : "no decoder");
    }
    DcmElement *el = nullptr;
    if (ds->findAndGetElement(DCM_PixelData, el).bad() || el == nullptr)
        return hs_fail(err, HS_ERR_FORMAT, "%s: no Pixel Data element", path);
    size_t n = (size_t)h->rows * (size_t)h->columns;
    if (h->bits_allocated == 16) {
        Uint16 *px = nullptr;
        OFCondition c = el->getUint16Array(px);
        if (c.bad() || px == nullptr)
            return hs_fail(err, HS_ERR_FORMAT, "%s: 16-bit Pixel Data unreadable: %s", path, c.text());
        if (el->getLength() / 2 < n)
            return hs_fail(err, HS_ERR_FORMAT, "%s: Pixel Data has %lu bytes, expected %zu for %d x %d x 16 bits",
                           path, (unsigned long)el->getLength(), n * 2, h->rows, h->columns);
        raw_to_stored(px, nullptr, h, stored);
    } else {
        Uint8 *px = nullptr;
        OFCondition c = el->getUint8Array(px);
        if (c.bad() || px == nullptr)
            return hs_fail(err, HS_ERR_FORMAT, "%s: 8-bit Pixel Data unreadable: %s", path, c.text());
        if (el->getLength() < n)
            return hs_fail(err, HS_ERR_FORMAT, "%s: Pixel Data has %lu bytes, expected %zu for %d x %d x 8 bits",
                           path, (unsigned long)el->getLength(), n, h->rows, h->columns);
        raw_to_stored(nullptr, px, h, stored);
    }
    return HS_OK;
}

/* Frame h->frame of a multi-frame file, without loading or decoding the
 * others: native pixels are read at the frame's offset (through cache, an
 * open file handle), encapsulated ones through the codec's per-frame
 * decoder, which finds the frame's fragments by the Basic Offset Table or
 * one fragment per frame. buf is scratch space kept between calls. */
hs_status decode_frame(const char *path, DcmDataset *ds, E_TransferSyntax xfer, const hs_dicom_header *h,
                       DcmFileCache *cache, std::vector<Uint16> *buf, std::vector<int32_t> *stored, hs_error *err)
{
    DcmElement *el = nullptr;
    if (ds->findAndGetElement(DCM_PixelData, el).bad() || el == nullptr)
        return hs_fail(err, HS_ERR_FORMAT, "%s: no Pixel Data element", path);
    DcmPixelData *pd = OFstatic_cast(DcmPixelData *, el);
    size_t n = (size_t)h->rows * (size_t)h->columns;
    size_t need = n * (h->bits_allocated == 16 ? 2 : 1);
    Uint32 frame_size = 0;
    OFCondition c = pd->getUncompressedFrameSize(ds, frame_size);
    if (c.bad() || frame_size < need)
        return hs_fail(err, HS_ERR_FORMAT, "%s: frame size unknown or below %zu bytes: %s", path, need,
                       c.bad() ? c.text() : "too small");
    buf->resize((size_t)frame_size / 2 + 1);
    Uint32 start = 0;
    OFString color;
    c = pd->getUncompressedFrame(ds, (Uint32)h->frame, start, buf->data(), frame_size, color, cache);
    if (c.bad())
        return hs_fail(err, HS_ERR_FORMAT, "%s: frame %d (%s) does not decode: %s", path, h->frame + 1,
                       DcmXfer(xfer).getXferName(), c.text());
    if (h->bits_allocated == 16)
        raw_to_stored(buf->data(), nullptr, h, stored);
    else
        raw_to_stored(nullptr, reinterpret_cast<const Uint8 *>(buf->data()), h, stored);
    return HS_OK;
}

/* The HU ranges of the content check (dicom.h, "Hounsfield units"): air
 * inside the scan field and soft tissue (fat, CSF, brain, blood, muscle). */
const float air_lo_hu = -1200.0f, air_hi_hu = -800.0f;
const float soft_lo_hu = -150.0f, soft_hi_hu = 150.0f;

/* "signed 16-bit" and the like, for messages. */
std::string storage_name(const hs_dicom_header *h)
{
    return std::string(h->pixel_representation == 1 ? "signed " : "unsigned ") + std::to_string(h->bits_stored) +
           "-bit";
}

/* The rescale checks of dicom.h ("Hounsfield units"): true with why when
 * the slope and intercept of h cannot give meaningful HU. wrap: the 12-bit
 * wrap-around applies to this slice. BitsStored is 1..16 here (the
 * verdict decodes). */
bool rescale_problem(const hs_dicom_header *h, bool wrap, char *why, size_t cap)
{
    const char *meaningless = "Hounsfield units would be meaningless";
    const double slope = h->rescale_slope, intercept = h->rescale_intercept;
    if (!std::isfinite(slope)) {
        std::snprintf(why, cap, "RescaleSlope is not a finite number: %s", meaningless);
        return true;
    }
    if (!std::isfinite(intercept)) {
        std::snprintf(why, cap, "RescaleIntercept is not a finite number: %s", meaningless);
        return true;
    }
    if (slope <= 0.0) {
        std::snprintf(why, cap, "RescaleSlope %g: %s (a CT slope is positive)", slope, meaningless);
        return true;
    }
    if (slope > HS_DICOM_MAX_SLOPE) {
        std::snprintf(why, cap, "RescaleSlope %g: %s (more than %g HU per stored step)", slope, meaningless,
                      HS_DICOM_MAX_SLOPE);
        return true;
    }
    const int bits = h->bits_stored;
    if (!h->has_rescale_intercept && h->pixel_representation == 0 && !wrap) {
        std::snprintf(why, cap,
                      "RescaleIntercept missing with %s storage: stored values 0..%ld would be %g..%g HU, "
                      "with no air; %s",
                      storage_name(h).c_str(), (1L << bits) - 1, 0.0, (double)((1L << bits) - 1) * slope,
                      meaningless);
        return true;
    }
    /* The stored range, as signed when the 12-bit wrap-around may apply
     * (decided per slice, and a slice without air may not show it). */
    bool as_signed = h->pixel_representation == 1 ||
                     (h->pixel_representation == 0 && bits == 12 && intercept > -100.0);
    double lo = as_signed ? -(double)(1L << (bits - 1)) : 0.0;
    double hi = as_signed ? (double)((1L << (bits - 1)) - 1) : (double)((1L << bits) - 1);
    double lo_hu = lo * slope + intercept, hi_hu = hi * slope + intercept;
    if (lo_hu > -1000.0 || hi_hu < 1000.0) {
        /* name first the value that is outside what scanners write */
        bool slope_odd = slope < 0.5 || slope > 2.0;
        std::snprintf(why, cap,
                      "%s %g (%s %g): %s stored values would be %g..%g HU, not air (-1000) to bone (+1000); %s",
                      slope_odd ? "RescaleSlope" : "RescaleIntercept", slope_odd ? slope : intercept,
                      slope_odd ? "RescaleIntercept" : "RescaleSlope", slope_odd ? intercept : slope,
                      storage_name(h).c_str(), lo_hu, hi_hu, meaningless);
        return true;
    }
    return false;
}

/* The content check of dicom.h: true with why when fewer than
 * HS_DICOM_MIN_PLAUSIBLE_FRACTION of the counted (non-padding) pixels are
 * air and fewer are soft tissue. */
bool content_problem(const hs_dicom_header *h, size_t counted, size_t air, size_t soft, char *why, size_t cap)
{
    if (counted == 0)
        return false;
    double air_f = (double)air / (double)counted, soft_f = (double)soft / (double)counted;
    if (air_f >= HS_DICOM_MIN_PLAUSIBLE_FRACTION || soft_f >= HS_DICOM_MIN_PLAUSIBLE_FRACTION)
        return false;
    std::snprintf(why, cap,
                  "%.1f%% of the pixels are air (%g..%g HU) and %.1f%% soft tissue (%g..%g HU), a head slice has at least "
                  "%g%% of one or the other: with RescaleIntercept %g and RescaleSlope %g, Hounsfield units "
                  "would be meaningless",
                  100.0 * air_f, (double)air_lo_hu, (double)air_hi_hu, 100.0 * soft_f, (double)soft_lo_hu,
                  (double)soft_hi_hu, 100.0 * HS_DICOM_MIN_PLAUSIBLE_FRACTION, h->rescale_intercept,
                  h->rescale_slope);
    return true;
}

/* Stored values to HU: padding, the 12-bit wrap-around, the rescale, then
 * the checks that refuse meaningless HU (see dicom.h for the rules and
 * why). False with why (cap bytes) when refused; hu is then undefined. */
bool stored_to_hu(const hs_dicom_header *h, const std::vector<int32_t> &stored, float *hu, char *why, size_t cap)
{
    size_t n = stored.size();
    bool pad = h->has_padding != 0;
    long pad_lo = 0;
    long pad_hi = 0;
    if (pad) {
        int is_signed = h->pixel_representation == 1;
        pad_lo = stored_value((unsigned)h->padding_value, h->bits_stored, h->bits_stored - 1, is_signed);
        pad_hi = pad_lo;
        if (h->has_padding_limit) {
            long lim = stored_value((unsigned)h->padding_limit, h->bits_stored, h->bits_stored - 1, is_signed);
            if (lim < pad_lo)
                pad_lo = lim;
            else
                pad_hi = lim;
        }
    }
    bool wrap = false;
    if (h->pixel_representation == 0 && h->bits_stored == 12 && h->rescale_intercept > -100.0) {
        size_t high = 0;
        size_t counted = 0;
        for (size_t i = 0; i < n; i++) {
            long v = stored[i];
            if (pad && v >= pad_lo && v <= pad_hi)
                continue;
            counted++;
            if (v >= 2048)
                high++;
        }
        wrap = counted > 0 && high * 10 >= counted;
    }
    if (rescale_problem(h, wrap, why, cap))
        return false;
    const double slope = h->rescale_slope, intercept = h->rescale_intercept;
    const int32_t *src = stored.data();
    const bool check = (double)h->rows * (double)h->columns >= HS_DICOM_CONTENT_MIN_PIXELS;
    size_t counted = 0, air = 0, soft = 0;
    if (!pad && !wrap) {
        /* the common case, kept branch-free so that it vectorises */
        for (size_t i = 0; i < n; i++)
            hu[i] = (float)((double)src[i] * slope + intercept);
        if (check) {
            for (size_t i = 0; i < n; i++) {
                air += hu[i] >= air_lo_hu && hu[i] <= air_hi_hu;
                soft += hu[i] >= soft_lo_hu && hu[i] <= soft_hi_hu;
            }
            counted = n;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            long v = src[i];
            if (pad && v >= pad_lo && v <= pad_hi) {
                hu[i] = padding_hu;
                continue;
            }
            if (wrap && v >= 2048)
                v -= 4096;
            float x = (float)((double)v * slope + intercept);
            hu[i] = x;
            counted++;
            air += x >= air_lo_hu && x <= air_hi_hu;
            soft += x >= soft_lo_hu && x <= soft_hi_hu;
        }
        if (!check)
            counted = 0;
    }
    return !content_problem(h, counted, air, soft, why, cap);
}

bool dicom_decodable(hs_dicom_verdict v)
{
    return v == HS_DICOM_OK || v == HS_DICOM_LOCALIZER || v == HS_DICOM_DERIVED || v == HS_DICOM_NOT_AXIAL;
}

/* The header and verdict of every frame of a parsed file (see
 * hs_dicom_read_frames). */
void build_frames(dicom_parsed *p, int frames, std::vector<hs_dicom_header> *out,
                  std::vector<hs_dicom_verdict> *verdicts, std::vector<std::string> *reasons)
{
    DcmDataset *ds = p->ff.getDataset();
    DcmSequenceOfItems *per_frame = dicom_per_frame(ds);
    bool groups = has_groups(ds);
    out->assign((size_t)frames, p->top);
    verdicts->assign((size_t)frames, HS_DICOM_OK);
    reasons->assign((size_t)frames, std::string());
    const std::string none;
    for (int k = 0; k < frames; k++) {
        hs_dicom_header *h = &(*out)[(size_t)k];
        h->frame = k;
        if (groups)
            apply_frame(ds, per_frame, k, h, true);
        char reason[256];
        (*verdicts)[(size_t)k] = classify(h, p->has_pixels, p->xfer, p->photometric, p->spp, none, true, reason);
        (*reasons)[(size_t)k] = reason;
    }
}

} // namespace

/* A parsed multi-frame file kept between frames (see dicom.h). */
struct hs_dicom_reader {
    std::string path;
    struct stat key;
    std::unique_ptr<dicom_parsed> parsed;
    std::vector<hs_dicom_header> frames;
    DcmFileCache cache;
    std::vector<Uint16> buf;
    std::vector<int32_t> stored;
};

namespace {

bool same_file(const struct stat &a, const struct stat &b)
{
    return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size &&
           a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

/* Makes r hold path parsed, unless it already does. */
hs_status reader_open(hs_dicom_reader *r, const char *path, hs_error *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return hs_fail(err, HS_ERR_IO, "%s: cannot read: %s", path, std::strerror(errno));
    if (r->parsed && r->path == path && same_file(r->key, sb))
        return HS_OK;
    r->parsed.reset();
    r->frames.clear();
    r->cache.clear();
    std::unique_ptr<dicom_parsed> p(new dicom_parsed);
    hs_dicom_header now;
    hs_dicom_verdict verdict = HS_DICOM_NOT_DICOM;
    char reason[256];
    hs_status st = dicom_parse(path, header_max_read, p.get(), &now, &verdict, reason, err);
    if (st != HS_OK)
        return st;
    if (!dicom_decodable(verdict))
        return hs_fail(err, HS_ERR_FORMAT, "%s: not a CT image hemoscan can decode (%s: %s)", path,
                       hs_dicom_verdict_name(verdict), reason);
    std::vector<hs_dicom_verdict> verdicts;
    std::vector<std::string> reasons;
    build_frames(p.get(), now.frames, &r->frames, &verdicts, &reasons);
    r->parsed = std::move(p);
    r->path = path;
    r->key = sb;
    return HS_OK;
}

/* Frame h->frame of the multi-frame file at path to HU, through r. */
hs_status reader_hu(hs_dicom_reader *r, const char *path, const hs_dicom_header *h, float *hu, hs_error *err)
{
    hs_status st = reader_open(r, path, err);
    if (st != HS_OK)
        return st;
    if (h->frame < 0 || (size_t)h->frame >= r->frames.size() || (int)r->frames.size() != h->frames)
        return hs_fail(err, HS_ERR_FORMAT, "%s: has %zu frames now; frame %d of %d was asked for", path,
                       r->frames.size(), h->frame + 1, h->frames);
    const hs_dicom_header *now = &r->frames[(size_t)h->frame];
    if (now->rows != h->rows || now->columns != h->columns)
        return hs_fail(err, HS_ERR_FORMAT, "%s: is now %d x %d pixels, expected %d x %d as in its header", path,
                       now->rows, now->columns, h->rows, h->columns);
    DcmDataset *ds = r->parsed->ff.getDataset();
    if (is_j2k(r->parsed->xfer))
        st = decode_j2k(path, ds, r->parsed->xfer, now, &r->stored, err);
    else if (is_jpegls(r->parsed->xfer))
        st = decode_jpegls(path, ds, r->parsed->xfer, now, &r->stored, err);
    else
        st = decode_frame(path, ds, r->parsed->xfer, now, &r->cache, &r->buf, &r->stored, err);
    if (st != HS_OK)
        return st;
    char why[320];
    if (!stored_to_hu(now, r->stored, hu, why, sizeof why))
        return hs_fail(err, HS_ERR_FORMAT, "%s: frame %d: %s", path, h->frame + 1, why);
    return HS_OK;
}

/* The single-frame path: the whole file loaded, decoded at once. */
hs_status single_hu(const char *path, const hs_dicom_header *h, float *hu, hs_error *err)
{
    dicom_parsed p;
    hs_dicom_header now;
    hs_dicom_verdict verdict = HS_DICOM_NOT_DICOM;
    char reason[256];
    hs_status st = dicom_parse(path, DCM_MaxReadLength, &p, &now, &verdict, reason, err);
    if (st != HS_OK)
        return st;
    if (!dicom_decodable(verdict))
        return hs_fail(err, HS_ERR_FORMAT, "%s: not a CT image hemoscan can decode (%s: %s)", path,
                       hs_dicom_verdict_name(verdict), reason);
    if (now.rows != h->rows || now.columns != h->columns || now.frames != 1)
        return hs_fail(err, HS_ERR_FORMAT, "%s: is now %d x %d pixels and %d frame(s), expected %d x %d and 1",
                       path, now.rows, now.columns, now.frames, h->rows, h->columns);
    std::vector<int32_t> stored;
    DcmDataset *ds = p.ff.getDataset();
    if (is_j2k(p.xfer))
        st = decode_j2k(path, ds, p.xfer, &now, &stored, err);
    else if (is_jpegls(p.xfer))
        st = decode_jpegls(path, ds, p.xfer, &now, &stored, err);
    else
        st = decode_native(path, ds, p.xfer, &now, &stored, err);
    if (st != HS_OK)
        return st;
    char why[320];
    if (!stored_to_hu(&now, stored, hu, why, sizeof why))
        return hs_fail(err, HS_ERR_FORMAT, "%s: %s", path, why);
    return HS_OK;
}

} // namespace

extern "C" const char *hs_dicom_verdict_name(hs_dicom_verdict v)
{
    switch (v) {
    case HS_DICOM_OK:
        return "ok";
    case HS_DICOM_NOT_DICOM:
        return "not_dicom";
    case HS_DICOM_NO_PIXELS:
        return "no_pixels";
    case HS_DICOM_NOT_CT:
        return "not_ct";
    case HS_DICOM_LOCALIZER:
        return "localizer";
    case HS_DICOM_DERIVED:
        return "derived";
    case HS_DICOM_NOT_AXIAL:
        return "not_axial";
    case HS_DICOM_MULTIFRAME_UNSUPPORTED:
        return "multiframe_unsupported";
    case HS_DICOM_CORRUPT:
        return "corrupt";
    case HS_DICOM_UNSUPPORTED:
        return "unsupported";
    }
    return "unknown";
}

extern "C" hs_status hs_dicom_read_header(const char *path, hs_dicom_header *h, hs_dicom_verdict *verdict,
                                          char reason[256], hs_error *err)
{
    if (path == nullptr || h == nullptr || verdict == nullptr || reason == nullptr)
        return hs_fail(err, HS_ERR_ARG, "hs_dicom_read_header: path, header, verdict and reason are required");
    /* An exception other than running out of memory comes from DCMTK
     * meeting something it did not expect in the file: a fuzzed 416-byte
     * file made its DICOMDIR record parser throw std::out_of_range. The
     * file is then CORRUPT, like any file DCMTK cannot parse, so that a
     * study scan records it and goes on; the header is reset, since the
     * parse stopped halfway. The text is copied inside the handler: the
     * exception, and what() with it, is gone once the handler ends. */
    char what[200] = "an unknown exception";
    try {
        dicom_parsed p;
        return dicom_parse(path, header_max_read, &p, h, verdict, reason, err);
    } catch (const std::bad_alloc &) {
        return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory reading the DICOM header", path);
    } catch (const std::exception &e) {
        std::snprintf(what, sizeof what, "%s", e.what());
    } catch (...) {
    }
    header_init(h, path);
    *verdict = HS_DICOM_CORRUPT;
    std::snprintf(reason, 256, "DCMTK failed while parsing the file: %s", what);
    return HS_OK;
}

extern "C" hs_status hs_dicom_read_hu(const char *path, const hs_dicom_header *h, float *hu, hs_error *err)
{
    return hs_dicom_reader_read_hu(nullptr, path, h, hu, err);
}

extern "C" hs_dicom_reader *hs_dicom_reader_new(void)
{
    try {
        return new hs_dicom_reader;
    } catch (...) {
        return nullptr;
    }
}

extern "C" void hs_dicom_reader_free(hs_dicom_reader *r)
{
    delete r;
}

extern "C" hs_status hs_dicom_reader_read_hu(hs_dicom_reader *r, const char *path, const hs_dicom_header *h,
                                             float *hu, hs_error *err)
{
    if (path == nullptr || h == nullptr || hu == nullptr)
        return hs_fail(err, HS_ERR_ARG, "hs_dicom_read_hu: path, header and output are required");
    try {
        if (h->frames <= 1)
            return single_hu(path, h, hu, err);
        if (r != nullptr)
            return reader_hu(r, path, h, hu, err);
        hs_dicom_reader once;
        return reader_hu(&once, path, h, hu, err);
    } catch (const std::bad_alloc &) {
        if (r != nullptr)
            r->parsed.reset();
        return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory decoding the pixels", path);
    } catch (...) {
        if (r != nullptr)
            r->parsed.reset();
        return hs_fail(err, HS_ERR_FORMAT, "%s: unexpected failure decoding the pixels", path);
    }
}

extern "C" hs_status hs_dicom_read_frames(const char *path, const hs_dicom_header *file, hs_dicom_header *out,
                                          hs_dicom_verdict *verdicts, char (*reasons)[256], hs_error *err)
{
    if (path == nullptr || file == nullptr || out == nullptr || verdicts == nullptr)
        return hs_fail(err, HS_ERR_ARG, "hs_dicom_read_frames: path, file header, output and verdicts are required");
    try {
        dicom_parsed p;
        hs_dicom_header now;
        hs_dicom_verdict verdict = HS_DICOM_NOT_DICOM;
        char reason[256];
        hs_status st = dicom_parse(path, header_max_read, &p, &now, &verdict, reason, err);
        if (st != HS_OK)
            return st;
        if (verdict != HS_DICOM_OK)
            return hs_fail(err, HS_ERR_FORMAT, "%s: frames are read from accepted files only (%s: %s)", path,
                           hs_dicom_verdict_name(verdict), reason);
        if (now.frames != file->frames || now.rows != file->rows || now.columns != file->columns)
            return hs_fail(err, HS_ERR_FORMAT, "%s: is now %d frame(s) of %d x %d, expected %d of %d x %d", path,
                           now.frames, now.rows, now.columns, file->frames, file->rows, file->columns);
        std::vector<hs_dicom_header> headers;
        std::vector<hs_dicom_verdict> vs;
        std::vector<std::string> rs;
        build_frames(&p, now.frames, &headers, &vs, &rs);
        for (size_t k = 0; k < headers.size(); k++) {
            out[k] = headers[k];
            verdicts[k] = vs[k];
            if (reasons != nullptr)
                std::snprintf(reasons[k], 256, "%s", rs[k].c_str());
        }
        return HS_OK;
    } catch (const std::bad_alloc &) {
        return hs_fail(err, HS_ERR_NOMEM, "%s: out of memory reading the frames", path);
    } catch (...) {
        return hs_fail(err, HS_ERR_FORMAT, "%s: unexpected failure reading the frames", path);
    }
}
